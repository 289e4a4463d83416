"""Which short-run training settings make the relevance filter work on the demo sample.

DESIGN.md asks that the settings for short runs (the demo, tests, CPU users) be chosen by
measurement and written down: the paper's sigmoid head needs its 120 epochs before p_correct
passes 0.5. This trains the demo's model (the packaged MiniLM, max length 48, 75% of the pairs per
epoch, batch 32) under each setting on the demo's own sample (1,200 records, 12 classes, seed 0),
scores the captions in-sample (no folds, to keep it short) and measures the paper's rule (low 0.5,
high 0.9) and the calibrated rule against the sample's ground truth: the share of captions with
p_correct >= 0.5, the kept share, precision, recall and F1. One run per setting (a CPU run of this
size gives the same figures run to run up to thread scheduling), in one process, in order.

    python bench/demo_settings.py [--only NAME ...]
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from imagenet_multimodal import classes, prepare, sample, score, train
from imagenet_multimodal.demo import DEMO_TRAINING
from imagenet_multimodal.io import write_json

WORK = Path("bench/work/demo_settings")
RESULTS = Path("bench/results/demo_settings.json")
BASE = {**DEMO_TRAINING, "max_length": 48}
# name -> changes to the demo's training settings (the last one is the demo's own)
SETTINGS = {
    "sigmoid, one learning rate 1e-4, 2 epochs (the paper's head)": {"loss": "sigmoid", "head_learning_rate": None,
                                                                     "epochs": 2},
    "sigmoid, head 5e-3, 2 epochs": {"loss": "sigmoid", "epochs": 2},
    "sigmoid, head 5e-3, 6 epochs": {"loss": "sigmoid", "epochs": 6},
    "softmax, one learning rate 1e-4, 2 epochs": {"head_learning_rate": None, "epochs": 2},
    "softmax, head 5e-3, 1 epoch": {"epochs": 1},
    "softmax, head 5e-3, 2 epochs (the demo)": {"epochs": 2},
}


def base_work() -> Path:
    """The demo's sample, classes and prepared pairs (made once)."""
    base = WORK / "base"
    captions = base / "sample_captions.json"
    if not captions.exists():
        base.mkdir(parents=True, exist_ok=True)
        sample.write_sample(captions, records=1200, classes=12, seed=0)
    if not (base / "classes.parquet").exists():
        classes.run(classes.ClassesOptions(work=base, source="offline"))
    prepare.run(prepare.PrepareOptions(work=base, captions=captions, seed=0))
    return base


def measure(base: Path, name: str, changes: dict) -> dict:
    work = WORK / "runs" / str(list(SETTINGS).index(name))
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(base, work, ignore=shutil.ignore_patterns("model", "score*", "folds", "hub*", "report"))
    settings = {**BASE, **changes}
    started = time.perf_counter()
    train.run(train.TrainOptions(work=work, encoder="offline", **settings))
    stats = score.run(score.ScoreOptions(work=work, folds=1))
    seconds = time.perf_counter() - started
    p = pq.read_table(work / "scores.parquet", columns=["p_correct"])["p_correct"].to_numpy()
    report = json.loads((work / "score_report.json").read_text())
    row = {"setting": name, "training": {k: settings[k] for k in ("loss", "learning_rate", "head_learning_rate",
                                                                   "epochs")},
           "seconds": round(seconds, 1), "p_correct_at_least_0.5": round(float(np.mean(p >= 0.5)), 3),
           "kept_share": round(stats["reasons"].get("kept", 0) / stats["captions"], 3),
           "paper_rule": report["methods"]["paper rule, in-sample"],
           "calibrated": report["methods"]["calibrated, in-sample"]}
    shutil.rmtree(work, ignore_errors=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", default=None, help="setting names to run (default: all)")
    args = parser.parse_args()
    base = base_work()
    rows = [measure(base, name, changes) for name, changes in SETTINGS.items()
            if args.only is None or name in args.only]
    print(f"\n{'setting':<62} {'p>=0.5':>7} {'kept':>6} {'paper P/R/F1':>17} {'calibrated F1':>14} {'s':>6}")
    for r in rows:
        paper = r["paper_rule"]
        print(f"{r['setting']:<62} {r['p_correct_at_least_0.5']:>7.3f} {r['kept_share']:>6.3f} "
              f"{paper['precision']:>5.3f}/{paper['recall']:.3f}/{paper['f1']:.3f} {r['calibrated']['f1']:>14.3f} "
              f"{r['seconds']:>6.0f}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    write_json({"sample": "demo (1,200 records, 12 classes, seed 0)", "scores": "in-sample, no folds",
                "rows": rows}, RESULTS)
    print(f"results: {RESULTS}")


if __name__ == "__main__":
    main()
