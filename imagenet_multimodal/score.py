"""Stage ``score``: score every eligible caption on its text alone, filter, and measure the filter.

Inputs: ``WORK/captions.parquet``, ``WORK/classes.parquet``, ``WORK/model/`` (stage ``train``);
with ``--folds K`` also K cross-fitted models in ``WORK/folds/fold-<k>/`` (trained here when missing,
with the options of ``WORK/model``: each caption is then scored by a model that never saw it).

Outputs (atomic; a rerun with other thresholds recomputes everything from the cached model pass,
never mixing runs):

* ``WORK/scores.parquet``: one row per eligible caption: p_correct, p_mean, rank of the true class,
  top-5 labels, kept, drop_reason, relevance (null when dropped), scored_out_of_fold, score_method,
  and the extra signals name_match, class_similarity, informativeness;
* ``WORK/score_stats.json``: options, counts per reason, the p_correct distribution;
* ``WORK/score_report.json`` where ground truth exists (the sample writer's side file, or ``--truth``
  with columns image_id, relevant): precision, recall, F1 and ROC AUC per method, and a sweep.

Example::

    imagenet-multimodal score --work W --folds 5
    accelerate launch -m imagenet_multimodal.score --work W      # the model pass on every GPU
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch

from . import relevance as rules
from .classes import NUM_CLASSES, read_class_table
from .io import (
    InputError,
    check_outputs,
    file_sha256,
    read_json,
    read_parquet,
    require_file,
    write_json,
    write_parquet,
)
from .options import as_path, parse_options
from .schema import SCORE_SCHEMA, SCORED_ROLES, scored_captions_digest

logger = logging.getLogger(__name__)


@dataclass
class ScoreOptions:
    """Options of the ``score`` stage."""

    work: Path = field(metadata={"help": "work folder"})
    model: Path | None = field(default=None, metadata={"help": "relevance model folder (default WORK/model)"})
    folds: int = field(default=1, metadata={"help": "K > 1: out-of-fold scores from K cross-fitted models"})
    low: float = field(default=0.5, metadata={
        "help": "lower threshold: drop captions with p_correct below it (--mode fixed; calibrated drops below "
                "the class's threshold instead); the smooth curve starts at it"})
    high: float = field(default=0.9, metadata={"help": "upper threshold: relevance 1 above it"})
    curve: str = field(default="linear", metadata={"help": "relevance curve", "choices": list(rules.CURVES)})
    mode: str = field(default="fixed", metadata={
        "help": "fixed: the paper's thresholds; calibrated: per-class thresholds t_j = mean p_j",
        "choices": list(rules.MODES)})
    published: str = field(default="auto", metadata={
        "help": "which probabilities decide kept/relevance: auto = out-of-fold when --folds > 1",
        "choices": ["auto", "in-sample", "out-of-fold"]})
    batch_size: int = field(default=256, metadata={"help": "captions per batch and process"})
    mixed_precision: str = field(default="model", metadata={
        "help": "the encoder's precision on a GPU (the head always runs in float32): model = as the model was "
                "trained; the CPU runs float32", "choices": ["model", "no", "bf16", "fp16"]})
    truth: Path | None = field(default=None, metadata={
        "help": "ground truth (parquet/csv: image_id, relevant); default: the sample writer's side file"})
    force: bool = field(default=False, metadata={"help": "recompute even if the scores are up to date"})

    def __post_init__(self) -> None:
        self.work = Path(self.work)
        self.model = self.work / "model" if self.model is None else Path(self.model)
        self.truth = as_path(self.truth)
        try:
            rules.check_thresholds(self.low, self.high)
        except ValueError as err:
            raise InputError(f"--low/--high: {err}") from err
        if self.folds < 1 or self.batch_size < 1:
            raise InputError(f"--folds and --batch-size must be >= 1, got {self.folds}, {self.batch_size}")
        if self.published == "out-of-fold" and self.folds < 2:
            raise InputError("--published out-of-fold needs --folds K with K >= 2")
        if self.published == "auto":
            self.published = "out-of-fold" if self.folds > 1 else "in-sample"


def load_model(folder: Path, *, device: torch.device):
    """The relevance model and tokenizer in ``folder``; checked against the 1,000-class table."""
    from .model import RelevanceModel, load_tokenizer

    weights = folder / "model.safetensors"
    if not (folder / "config.json").exists() or not weights.exists():
        raise InputError(f"{folder}: no trained relevance model (config.json, model.safetensors); "
                         "run `imagenet-multimodal train` first")
    model = RelevanceModel.from_pretrained(folder).to(device).eval()
    if model.config.num_labels != NUM_CLASSES:
        raise InputError(f"{folder}: the model has {model.config.num_labels} labels; the class table has "
                         f"{NUM_CLASSES}: it was trained for another label set")
    return model, load_tokenizer(str(folder))


def eligible_captions(work: Path) -> pa.Table:
    """record, image_id, label, text of the captions with role train or test."""
    path = require_file(work / "captions.parquet", made_by=f"prepare --work {work}")
    table = read_parquet(path, columns=["record", "image_id", "label", "text", "role"],
                         made_by=f"prepare --work {work}")
    table = table.filter(pc.is_in(table["role"], pa.array(SCORED_ROLES)))
    if table.num_rows == 0:
        raise InputError(f"{path}: no eligible captions to score")
    return table


def precision(options: ScoreOptions) -> str:
    """The mixed precision of the model pass: float32 ("no") on a CPU; on a GPU the option, or with
    ``model`` the precision the model was trained in (its ``metrics.json``)."""
    if not torch.cuda.is_available():
        return "no"
    if options.mixed_precision != "model":
        return options.mixed_precision
    metrics = options.model / "metrics.json"
    return (read_json(metrics).get("mixed_precision") if metrics.exists() else None) or "no"


def _accelerator(mixed_precision: str):
    from accelerate import Accelerator

    return Accelerator(cpu=not torch.cuda.is_available(), mixed_precision=mixed_precision)


def model_pass(folder: Path, captions: pa.Table, class_texts: list[str], *, accelerator, batch_size: int,
               cache: Path) -> dict[str, np.ndarray]:
    """Score ``captions`` with the model in ``folder``; cached by the model's and captions' content."""
    from .scoring import class_embeddings, score_texts

    max_length = read_json(folder / "metrics.json").get("options", {}).get("max_length", 128) \
        if (folder / "metrics.json").exists() else 128
    key = (f"{file_sha256(folder / 'model.safetensors')[:24]}-{scored_captions_digest(captions)}"
           f"-{accelerator.mixed_precision}-{_digest([class_texts, max_length])}")  # class_similarity reads both
    path = cache / f"{key}.parquet"
    if path.exists():
        try:
            cached = pq.read_table(path)
            return {name: cached[name].to_numpy() for name in cached.column_names}
        except (pa.ArrowException, OSError) as err:  # a damaged cache is recomputed, not trusted
            logger.warning("score: the cache file %s is unreadable (%s); scoring again", path, err)
    model, tokenizer = load_model(folder, device=accelerator.device)
    classes = class_embeddings(model, tokenizer, class_texts, max_length=max_length)
    result = score_texts(model, tokenizer, captions["text"].to_pylist(), captions["label"].to_numpy(),
                         accelerator=accelerator, batch_size=batch_size, max_length=max_length,
                         classes=classes, desc=f"scoring with {folder.name}")
    bad = ~(np.isfinite(result["p_correct"]) & np.isfinite(result["p_mean"]))
    if bad.any():  # a diverged model; every threshold comparison would keep a NaN
        first = captions["record"][int(np.flatnonzero(bad)[0])].as_py()
        raise InputError(f"{folder}: the model gave no finite probability for {int(bad.sum())} of {len(bad)} "
                         f"captions (first: record {first}); it has diverged: train it again (a lower "
                         "learning rate, or --mixed-precision no)")
    if accelerator.is_main_process:
        write_parquet(pa.table(result), path)
    return result


def fold_models(options: ScoreOptions, mixed_precision: str) -> list[Path]:
    """The K cross-fitted models, trained (in sequence, sharing one tokenisation) where missing, in
    the model pass's ``mixed_precision`` (one process holds one precision)."""
    from .train import TrainOptions
    from .train import run as run_train

    metrics = read_json(require_file(options.model / "metrics.json", made_by=f"train --work {options.work}"))
    base = {k: v for k, v in metrics["options"].items()
            if k not in ("work", "output", "folds", "fold", "resume", "stop_after_steps", "force",
                         "write_rank_digests")} | {"mixed_precision": mixed_precision}
    folders = []
    for fold in range(options.folds):
        output = options.work / "folds" / f"fold-{fold}"
        logger.info("score: cross-fitted model %d of %d -> %s", fold + 1, options.folds, output)
        run_train(TrainOptions(work=options.work, output=output, folds=options.folds, fold=fold, **base))
        folders.append(output)
    return folders


def out_of_fold(captions: pa.Table, class_texts: list[str], in_sample: dict[str, np.ndarray], *,
                options: ScoreOptions, accelerator) -> dict[str, np.ndarray]:
    """Train captions scored by the fold model that left them out; test captions keep the main model's."""
    from .pairs import fold_key, fold_of

    seed = read_json(options.model / "metrics.json")["options"]["seed"]
    keys = [fold_key(text, image_id) for text, image_id in zip(captions["text"].to_pylist(),
                                                               captions["image_id"].to_pylist())]
    folds = fold_of(keys, folds=options.folds, seed=seed)
    is_train = pc.equal(captions["role"], "train").to_numpy(zero_copy_only=False)
    result = {name: values.copy() for name, values in in_sample.items()}
    for fold, folder in enumerate(fold_models(options, accelerator.mixed_precision)):
        rows = np.flatnonzero(is_train & (folds == fold))
        if len(rows):
            part = model_pass(folder, captions.take(pa.array(rows)), class_texts, accelerator=accelerator,
                              batch_size=options.batch_size, cache=options.work / "score_cache")
            for name, values in part.items():
                result[name][rows] = values
    return result


def apply_rule(p: dict[str, np.ndarray], labels: np.ndarray, *, options: ScoreOptions) -> tuple[np.ndarray, np.ndarray]:
    """kept (bool) and relevance (NaN when dropped) from one set of probabilities."""
    if options.mode == "calibrated":
        kept, reasons = rules.calibrated_rule(p["p_correct"], p["p_mean"], labels, num_classes=NUM_CLASSES)
    else:
        kept, reasons = rules.keep_rule(p["p_correct"], p["p_mean"], low=options.low)
    relevance = np.full(len(kept), np.nan)
    relevance[kept] = rules.relevance_curve(p["p_correct"][kept], low=options.low, high=options.high,
                                            curve=options.curve)
    return reasons, relevance


def name_matches(texts: list[str], labels: np.ndarray, lemmas: list[list[str]]) -> np.ndarray:
    """Whether each caption names its class (any lemma, word boundaries, case-insensitive)."""
    patterns = {}
    out = np.zeros(len(texts), dtype=bool)
    for i, (text, label) in enumerate(zip(texts, labels)):
        if label not in patterns:
            patterns[label] = rules.name_matcher(lemmas[label])
        out[i] = patterns[label].search(text) is not None
    return out


def truth_file(options: ScoreOptions) -> Path | None:
    """The ground-truth file: ``--truth``, else the side file of the synthetic sample that ``prepare``
    read (``None`` when there is neither)."""
    if options.truth is not None:
        if not options.truth.exists():
            raise InputError(f"--truth {options.truth}: no such file")
        return options.truth
    from .sample import truth_path

    stats_path = options.work / "prepare_stats.json"
    stats = read_json(stats_path) if stats_path.exists() else {}
    if not stats.get("captions_file"):
        return None
    source = Path(stats["captions_file"])
    # relative to the work folder (a sample inside it moves with it); older folders: to where prepare ran
    for candidate in ([options.work / source, source] if not source.is_absolute() else [source]):
        if truth_path(candidate).exists():
            return truth_path(candidate)
    if stats.get("synthetic"):
        logger.warning("score: the synthetic sample's ground truth %s is gone: no report of the filter against it",
                       truth_path(source))
    return None


def read_truth(path: Path | None) -> pa.Table | None:
    """Ground truth (image_id, relevant) from ``path`` (:func:`truth_file`), checked; ``None`` for none."""
    if path is None:
        return None
    import pyarrow.csv

    try:
        table = pyarrow.csv.read_csv(path) if path.suffix.lower() == ".csv" else pq.read_table(path)
    except (pa.ArrowException, OSError) as err:
        raise InputError(f"--truth {path}: cannot read it as {path.suffix.lstrip('.') or 'Parquet'} ({err})") from err
    if not {"image_id", "relevant"} <= set(table.column_names):
        raise InputError(f"{path}: expected columns image_id and relevant, found {table.column_names}")
    try:
        return table.select(["image_id", "relevant"]).cast(
            pa.schema([("image_id", pa.string()), ("relevant", pa.bool_())]))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
        raise InputError(f"{path}: expected image_id strings and relevant true/false ({err})") from err


def _histogram(values: np.ndarray) -> dict[str, list]:
    counts, edges = np.histogram(values[~np.isnan(values)], bins=20, range=(0.0, 1.0))
    return {"edges": edges.round(3).tolist(), "counts": counts.tolist()}


def measure(relevant: np.ndarray, positions: np.ndarray, labels: np.ndarray, signals: dict[str, dict[str, np.ndarray]],
            name_match: np.ndarray, *, options: ScoreOptions) -> dict[str, Any]:
    """Precision/recall/F1 of each filter, ROC AUC of each score, and the low x high sweep.

    ``signals`` maps "in-sample" (and "out-of-fold") to model-pass arrays over all scored captions;
    ``labels`` and ``name_match`` cover them too. Each filter is applied to all captions, as it is
    published (per-class thresholds and the rescaling depend on every caption), then measured on
    the captions at ``positions``, whose ground truth ``relevant`` holds.
    """
    methods, aucs = {}, {}
    for name, p in signals.items():
        fixed, _ = rules.keep_rule(p["p_correct"], p["p_mean"], low=options.low)
        calibrated, _ = rules.calibrated_rule(p["p_correct"], p["p_mean"], labels, num_classes=NUM_CLASSES)
        methods[f"paper rule, {name}"] = rules.precision_recall_f1(fixed[positions], relevant)
        methods[f"calibrated, {name}"] = rules.precision_recall_f1(calibrated[positions], relevant)
        aucs[f"p_correct, {name}"] = rules.roc_auc(p["p_correct"][positions], relevant)
    base = signals.get("out-of-fold", signals["in-sample"])
    similarity = base["similarity"]
    class_mean = rules.class_thresholds(similarity, labels, num_classes=NUM_CLASSES)
    methods["name match"] = rules.precision_recall_f1(name_match[positions], relevant)
    methods["class similarity (per-class mean)"] = rules.precision_recall_f1(
        (similarity >= class_mean[labels])[positions], relevant)
    aucs["class_similarity"] = rules.roc_auc(similarity[positions], relevant)
    informative = rules.informativeness(np.stack([base["prob1"], base["prob2"]], 1))
    aucs["informativeness"] = rules.roc_auc(informative[positions], relevant)
    aucs["name_match"] = rules.roc_auc(name_match[positions].astype(float), relevant)
    report = {"captions_with_truth": int(len(relevant)), "relevant": int(relevant.sum()),
              "methods": methods, "roc_auc": aucs, "sweep": _sweep(base, relevant, positions)}
    if "out-of-fold" in signals:
        report["oof_minus_in_sample_auc"] = aucs["p_correct, out-of-fold"] - aucs["p_correct, in-sample"]
    return report


def _sweep(p: dict[str, np.ndarray], relevant: np.ndarray, positions: np.ndarray) -> list[dict[str, float]]:
    """The paper's rule at each (low, high), applied to all captions, measured at ``positions``."""
    rows = []
    for low in np.round(np.arange(0.05, 1.0, 0.1), 2):
        kept, _ = rules.keep_rule(p["p_correct"], p["p_mean"], low=low)
        scores = rules.precision_recall_f1(kept[positions], relevant)
        for high in (0.6, 0.7, 0.8, 0.9, 0.95):
            if high < low:
                continue
            rel = np.full(len(kept), np.nan)
            rel[kept] = rules.relevance_curve(p["p_correct"][kept], low=low, high=high)
            rel, kept_here = rel[positions], kept[positions]
            on_relevant, on_irrelevant = rel[kept_here & relevant], rel[kept_here & ~relevant]
            rows.append({"low": float(low), "high": high, **scores,
                         "mean_relevance_relevant": float(on_relevant.mean()) if len(on_relevant) else None,
                         "mean_relevance_irrelevant": float(on_irrelevant.mean()) if len(on_irrelevant) else None})
    return rows


def _scores_table(captions: pa.Table, published: dict[str, np.ndarray], reasons: np.ndarray,
                  relevance: np.ndarray, extra: dict[str, np.ndarray], options: ScoreOptions) -> pa.Table:
    is_train = pc.equal(captions["role"], "train").to_numpy(zero_copy_only=False)
    method = np.where(~is_train, "held-out test",
                      "out-of-fold" if options.published == "out-of-fold" else "in-sample")
    kept = reasons == ""
    columns = {
        "record": captions["record"], "image_id": captions["image_id"], "label": captions["label"],
        "p_correct": published["p_correct"].astype(np.float32), "p_mean": published["p_mean"].astype(np.float32),
        "rank": published["rank"].astype(np.int32),
        "top5": pa.FixedSizeListArray.from_arrays(
            np.stack([published[f"top{i}"] for i in range(1, 6)], 1).astype(np.int32).ravel(), 5)
        .cast(pa.list_(pa.int32())),
        "kept": kept, "drop_reason": pa.array(np.where(kept, None, reasons).tolist(), pa.string()),
        "relevance": pa.array(relevance.astype(np.float32), mask=~kept),
        "scored_out_of_fold": method != "in-sample",
        **extra, "score_method": method.tolist(),
    }
    return pa.table(columns).select(SCORE_SCHEMA.names).cast(SCORE_SCHEMA)


def _digest(value: Any) -> str:
    return hashlib.blake2b(json.dumps(value).encode(), digest_size=8).hexdigest()


def _fingerprint(options: ScoreOptions, captions: pa.Table, classes: pa.Table, mixed_precision: str,
                 truth: Path | None) -> dict[str, Any]:
    """What the stage's output depends on: a rerun with the same fingerprint is up to date."""
    keep = ("folds", "low", "high", "curve", "mode", "published")  # and the model pass's precision
    return {"model": file_sha256(options.model / "model.safetensors"), "captions": scored_captions_digest(captions),
            "classes": _digest([classes[name].to_pylist() for name in ("summary", "description", "lemmas")]),
            **{k: getattr(options, k) for k in keep}, "mixed_precision": mixed_precision,
            "truth": file_sha256(truth) if truth else None}


def run(options: ScoreOptions) -> dict[str, Any]:
    """Run the stage; returns the statistics written to ``WORK/score_stats.json``."""
    work = options.work
    captions = eligible_captions(work)
    check_outputs(work)
    classes = read_class_table(work)
    if not (options.model / "model.safetensors").exists():
        raise InputError(f"{options.model}: no trained relevance model; run `imagenet-multimodal train` first")
    mixed_precision = precision(options)
    truth_source = truth_file(options)
    fingerprint = _fingerprint(options, captions, classes, mixed_precision, truth_source)
    stats_path = work / "score_stats.json"
    if not options.force and stats_path.exists() and (work / "scores.parquet").exists():
        previous = read_json(stats_path)
        if previous.get("fingerprint") == fingerprint:
            logger.info("score: up to date (%s); --force recomputes", stats_path)
            return previous
    truth = read_truth(truth_source)  # checked before the model pass, which can take hours
    class_texts = [" ".join(p for p in (s, d) if p) for s, d in
                   zip(classes["summary"].to_pylist(), classes["description"].to_pylist())]
    accelerator = _accelerator(mixed_precision)
    cache = work / "score_cache"
    signals = {"in-sample": model_pass(options.model, captions, class_texts, accelerator=accelerator,
                                       batch_size=options.batch_size, cache=cache)}
    if options.folds > 1:
        signals["out-of-fold"] = out_of_fold(captions, class_texts, signals["in-sample"], options=options,
                                             accelerator=accelerator)
    stats = _finish(options, captions, classes, signals, fingerprint, truth) if accelerator.is_main_process else {}
    accelerator.wait_for_everyone()
    accelerator.end_training()  # closes the process group of a distributed launch
    return stats


def _finish(options: ScoreOptions, captions: pa.Table, classes: pa.Table,
            signals: dict[str, dict[str, np.ndarray]], fingerprint: dict[str, Any],
            truth: pa.Table | None) -> dict[str, Any]:
    """Apply the rule, write scores.parquet, the statistics and (with ground truth) the report."""
    work = options.work
    labels = captions["label"].to_numpy()
    published = signals[options.published]
    reasons, relevance = apply_rule(published, labels, options=options)
    texts = captions["text"].to_pylist()
    name_match = name_matches(texts, labels, classes["lemmas"].to_pylist())
    extra = {
        "p_correct_in_sample": signals["in-sample"]["p_correct"].astype(np.float32),
        "name_match": name_match,
        "class_similarity": published["similarity"].astype(np.float32),
        "informativeness": rules.informativeness(np.stack([published["prob1"], published["prob2"]], 1))
        .astype(np.float32),
    }
    table = _scores_table(captions, published, reasons, relevance, extra, options)
    write_parquet(table, work / "scores.parquet", row_group_size=65_536)
    counts = {reason or "kept": int(n) for reason, n in zip(*np.unique(reasons, return_counts=True))}
    stats = {"fingerprint": fingerprint, "model_path": str(options.model),
             "mixed_precision": fingerprint["mixed_precision"],
             "low": options.low, "high": options.high, "curve": options.curve,
             "mode": options.mode, "method": options.published, "folds": options.folds,
             "captions": len(reasons), "reasons": counts,
             "p_correct_histogram": {name: _histogram(p["p_correct"]) for name, p in signals.items()},
             "p_correct_quantiles": {name: np.quantile(p["p_correct"], [0.1, 0.5, 0.9]).round(4).tolist()
                                     for name, p in signals.items()}}
    report_path = work / "score_report.json"
    report_path.unlink(missing_ok=True)  # a report from an older run never survives a rerun
    if truth is not None:
        stats["report"] = _report(captions, truth, labels, signals, options, name_match, report_path)
    write_json(stats, work / "score_stats.json")
    low = f"low {options.low:.2f}, " if options.mode == "fixed" or options.curve == "smooth" else ""
    logger.info("score: %d captions, %s (%s probabilities, %s rule, %shigh %.2f, %s curve)",
                len(reasons), ", ".join(f"{k} {v}" for k, v in counts.items()), options.published,
                options.mode, low, options.high, options.curve)
    return stats


def _report(captions, truth, labels, signals, options, name_match, path: Path) -> str:
    index = {image_id: i for i, image_id in enumerate(truth["image_id"].to_pylist())}
    flags = truth["relevant"].to_pylist()
    rows = [(i, flags[index[image_id]]) for i, image_id in enumerate(captions["image_id"].to_pylist())
            if image_id in index and flags[index[image_id]] is not None]
    if not rows:
        logger.warning("score: the ground truth names none of the scored captions; no report")
        return ""
    positions = np.array([r[0] for r in rows])
    relevant = np.array([r[1] for r in rows], dtype=bool)
    report = measure(relevant, positions, labels, signals, name_match, options=options)
    write_json(report, path)
    for method, values in report["methods"].items():
        logger.info("  %-36s precision %.3f recall %.3f F1 %.3f", method, values["precision"], values["recall"],
                    values["f1"])
    return str(path)


def parse_args(argv=None) -> ScoreOptions:
    """Parse the ``score`` command line."""
    return parse_options(ScoreOptions, argv, prog="imagenet-multimodal score", description=__doc__)


def main(argv=None) -> int:
    """Entry point of ``imagenet-multimodal score``."""
    run(parse_args(argv))
    return 0


if __name__ == "__main__":
    import sys

    from .cli import run_stage

    sys.exit(run_stage(main, sys.argv[1:]))
