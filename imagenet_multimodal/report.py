"""Stage ``report``: one self-contained HTML page about a work folder (figures embedded, offline).

Input: whatever of the work folder exists: ``prepare_stats.json`` (the paper's Fig. 1 and the
buckets), ``model/metrics.json`` (training curves), ``scores.parquet`` and ``score_stats.json``
(relevance and p_correct distributions, kept share per class, examples), ``score_report.json``
(the filter measured against ground truth, the threshold sweep). Output: ``WORK/report/index.html``.

Example::

    imagenet-multimodal report --work W
"""

from __future__ import annotations

import base64
import html
import io
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc

from .io import atomic_path, read_json, read_parquet, require_file
from .options import parse_options

logger = logging.getLogger(__name__)

STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#222;line-height:1.45}
h1{font-size:1.6rem} h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem} td,th{border:1px solid #ddd;padding:.25rem .5rem}
th{background:#f4f4f4;text-align:left} td.num{text-align:right;font-variant-numeric:tabular-nums}
.figs{display:flex;flex-wrap:wrap;gap:1rem} figure{margin:0} img{max-width:520px;border:1px solid #eee}
.banner{background:#fff4d6;border:1px solid #e6c35c;padding:.6rem 1rem}
.kept{color:#1b6e20} .dropped{color:#a02020} .caption{max-width:560px}
"""


def _png(draw: Callable, *, size=(6.4, 3.6)) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=size, dpi=100)
    draw(ax)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def _figure(title: str, draw: Callable) -> str:
    return (f'<figure><img alt="{html.escape(title)}" src="data:image/png;base64,{_png(draw)}">'
            f"<figcaption>{html.escape(title)}</figcaption></figure>")


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f'<td class="num">{value:.3f}</td>'
        if isinstance(value, int):
            return f'<td class="num">{value:,}</td>'
        return f"<td>{html.escape(str(value))}</td>"

    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def prepare_section(stats: dict) -> str:
    """Fig. 1 and the records per bucket."""
    counts = np.asarray(stats["per_class_eligible"])
    present = counts[counts > 0]

    def fig1(ax):
        ax.hist(present, bins=min(50, max(len(present), 1)), color="#3b6ea8", edgecolor="white")
        ax.set(xlabel="eligible captions per class", ylabel="number of classes")

    rows = [(reason, count) for reason, count in stats["reasons"].items()]
    split = [("train", stats["roles"]["train"]), ("test", stats["roles"]["test"]),
             ("train pairs", stats["pairs"]["train"]), ("test pairs", stats["pairs"]["test"])]
    return ("<h2>Captions</h2>" + f"<p>{stats['records']:,} input records; every record has exactly one reason.</p>"
            + '<div class="figs">' + _figure("Captions per class (the paper's Fig. 1)", fig1)
            + _table(["reason", "records"], rows) + _table(["split", "count"], split) + "</div>")


def training_section(metrics: dict) -> str:
    """Loss and accuracy per epoch."""
    history = metrics.get("history") or []
    if not history:
        return ""
    epochs = [row["epoch"] for row in history]

    def curves(ax):
        from matplotlib.ticker import MaxNLocator

        ax.plot(epochs, [row.get("train_loss") for row in history], marker="o", label="train loss")
        ax.plot(epochs, [(row.get("pairs") or {}).get("loss") for row in history], marker="o", label="test pairs loss")
        ax.set(xlabel="epoch", ylabel="loss")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        twin = ax.twinx()
        twin.plot(epochs, [(row.get("pairs") or {}).get("top1") for row in history], "g--", label="pairs top-1")
        twin.plot(epochs, [(row.get("captions") or {}).get("top1") for row in history], "r--",
                  label="captions top-1")
        twin.set(ylabel="top-1 accuracy", ylim=(0, 1))
        ax.legend(loc="upper left", fontsize=8)
        twin.legend(loc="upper right", fontsize=8)

    return "<h2>Training</h2>" + _figure("Training curves", curves)


def score_section(scores, stats: dict) -> str:
    """p_correct and relevance distributions, kept share per class, and the filter's counts."""
    kept = scores["kept"].to_numpy(zero_copy_only=False)
    relevance = scores["relevance"].drop_null().to_numpy()
    labels = scores["label"].to_numpy()

    def distribution(ax):
        for name, hist in stats["p_correct_histogram"].items():
            edges = np.asarray(hist["edges"])
            ax.stairs(hist["counts"], edges, label=f"p_correct, {name}")
        ax.axvline(stats["low"], color="k", ls=":", label=f"low = {stats['low']}")
        ax.axvline(stats["high"], color="grey", ls=":", label=f"high = {stats['high']}")
        ax.set(xlabel="p_correct", ylabel="captions")
        ax.legend(fontsize=8)

    def relevance_hist(ax):
        ax.hist(relevance, bins=20, range=(0, 1), color="#2f8f5b", edgecolor="white")
        ax.set(xlabel="relevance (kept captions)", ylabel="captions")

    present = np.bincount(labels, minlength=1000)
    share = np.bincount(labels, weights=kept.astype(float), minlength=1000)[present > 0] / present[present > 0]

    def per_class(ax):
        order = np.sort(share)[::-1]
        ax.bar(np.arange(len(order)), order, width=1.0, color="#8a5cb8")
        ax.set(xlabel="classes, sorted", ylabel="kept share", ylim=(0, 1))

    counts = [(reason, n) for reason, n in stats["reasons"].items()]
    text = (f"<p>{len(kept):,} eligible captions scored with <b>{stats['method']}</b> probabilities and the "
            f"<b>{stats['mode']}</b> rule (low {stats['low']}, high {stats['high']}, {stats['curve']} curve): "
            f"{int(kept.sum()):,} kept ({kept.mean():.1%}).</p>")
    figures = (_figure("p_correct distribution (0.5 only means something for a converged model)", distribution)
               + _figure("Relevance of the kept captions", relevance_hist)
               + _figure("Kept share per class", per_class))
    return "<h2>Relevance</h2>" + text + _table(["outcome", "captions"], counts) + f'<div class="figs">{figures}</div>'


def evaluation_section(report: dict) -> str:
    """The filter against ground truth: methods, AUCs and the threshold sweep."""
    methods = [(name, v["precision"], v["recall"], v["f1"], v["kept"]) for name, v in report["methods"].items()]
    aucs = [(name, value) for name, value in report["roc_auc"].items()]
    sweep = report["sweep"]
    lows = sorted({row["low"] for row in sweep})

    def sweep_plot(ax):
        by_low = {row["low"]: row for row in sweep}
        ax.plot(lows, [by_low[x]["f1"] for x in lows], marker="o", label="F1")
        ax.plot(lows, [by_low[x]["precision"] for x in lows], marker=".", label="precision")
        ax.plot(lows, [by_low[x]["recall"] for x in lows], marker=".", label="recall")
        ax.set(xlabel="lower threshold (low)", ylabel="score", ylim=(0, 1.02))
        ax.legend(fontsize=8)

    intro = (f"<p>Against ground truth for {report['captions_with_truth']:,} captions "
             f"({report['relevant']:,} relevant).</p>")
    return ("<h2>Filter against ground truth</h2>" + intro + _table(["method", "precision", "recall", "F1", "kept"],
                                                                     methods)
            + _table(["score", "ROC AUC"], aucs) + _figure("Threshold sweep (the paper's rule)", sweep_plot))


def examples_section(work: Path, scores, *, per_side: int = 8) -> str:
    """Example captions kept and dropped, with their scores and reasons."""
    captions = read_parquet(work / "captions.parquet", columns=["record", "text"], made_by=f"prepare --work {work}")
    names = read_parquet(work / "classes.parquet", columns=["name"], made_by=f"classes --work {work}")
    names = names["name"].to_pylist()
    rows = []
    rng = np.random.default_rng(0)
    for kept in (True, False):
        part = scores.filter(pc.equal(scores["kept"], kept))
        if part.num_rows == 0:
            continue
        chosen = np.sort(rng.choice(part.num_rows, size=min(per_side, part.num_rows), replace=False))
        for row in part.take(chosen).to_pylist():
            text = captions["text"][row["record"]].as_py()
            rows.append(("kept" if kept else "dropped", names[row["label"]], text, row["p_correct"],
                         "" if row["relevance"] is None else f"{row['relevance']:.3f}", row["drop_reason"] or ""))
    body = "".join(
        f'<tr><td class="{outcome}">{outcome}</td><td>{html.escape(name)}</td>'
        f'<td class="caption">{html.escape(text)}</td><td class="num">{p:.3f}</td><td class="num">{rel}</td>'
        f"<td>{reason}</td></tr>" for outcome, name, text, p, rel, reason in rows)
    return ("<h2>Examples</h2><table><tr><th>outcome</th><th>class</th><th>caption</th><th>p_correct</th>"
            f"<th>relevance</th><th>drop reason</th></tr>{body}</table>")


def build_report(work: Path) -> str:
    """The HTML page for ``work`` (sections for what exists)."""
    prepare = read_json(require_file(work / "prepare_stats.json", made_by=f"prepare --work {work}"))
    parts = []
    if prepare.get("synthetic"):
        parts.append('<p class="banner">The captions are a <b>synthetic sample</b> from '
                     "<code>imagenet-multimodal sample</code>, not ImageNet-Captions.</p>")
    parts.append(prepare_section(prepare))
    if (work / "model" / "metrics.json").exists():
        parts.append(training_section(read_json(work / "model" / "metrics.json")))
    if (work / "scores.parquet").exists() and (work / "score_stats.json").exists():
        from .publish import StaleScores, read_scores

        try:  # scores of other captions would be shown next to the wrong texts
            scores = read_scores(work, read_parquet(work / "captions.parquet", made_by=f"prepare --work {work}"))
        except StaleScores as err:
            logger.warning("report: %s; the report leaves the scores out", err)
            parts.append(f'<p class="banner">No score sections: {html.escape(str(err))}.</p>')
            scores = None
    else:
        scores = None
    if scores is not None:
        parts.append(score_section(scores, read_json(work / "score_stats.json")))
        if (work / "score_report.json").exists():
            parts.append(evaluation_section(read_json(work / "score_report.json")))
        parts.append(examples_section(work, scores))
    figures = sum(part.count("<img") for part in parts)
    script = ("<script>window.addEventListener('load',()=>{const imgs=[...document.images];"
              "const ok=imgs.filter(i=>i.complete&&i.naturalWidth>0).length;"
              "document.title='imagenet-multimodal report ('+ok+'/'+imgs.length+' figures)';});</script>")
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>imagenet-multimodal report</title><style>{STYLE}</style>{script}</head><body>"
            f"<h1>imagenet-multimodal report</h1><p>Work folder <code>{html.escape(str(work))}</code>; "
            f"{figures} figures.</p>" + "".join(parts) + "</body></html>")


@dataclass
class ReportOptions:
    """Options of the ``report`` stage."""

    work: Path = field(metadata={"help": "work folder"})

    def __post_init__(self) -> None:
        self.work = Path(self.work)


def run(options: ReportOptions) -> Path:
    """Write ``WORK/report/index.html`` and return its path."""
    page = build_report(options.work)
    target = options.work / "report" / "index.html"
    with atomic_path(target) as tmp:
        tmp.write_text(page, encoding="utf-8")
    logger.info("report: wrote %s", target)
    return target


def parse_args(argv: Sequence[str] | None = None) -> ReportOptions:
    """Parse the ``report`` command line."""
    return parse_options(ReportOptions, argv, prog="imagenet-multimodal report", description=__doc__)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``imagenet-multimodal report``."""
    run(parse_args(argv))
    return 0


if __name__ == "__main__":  # python -m imagenet_multimodal.STAGE, accelerate launch -m ...
    import sys

    from .cli import run_stage

    sys.exit(run_stage(main, sys.argv[1:]))
