"""The demo end to end on a tiny model, and its report in a real headless Chromium."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from _tiny import make_encoder_folder

from imagenet_multimodal.demo import DemoOptions
from imagenet_multimodal.demo import run as run_demo
from imagenet_multimodal.io import InputError
from imagenet_multimodal.sample import write_sample

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    corpus = write_sample(root / "vocab.json", records=400, classes=4, seed=5)  # vocabulary for the tokenizer
    texts = [r["title"] + " " + r["description"] for r in json.loads((root / "vocab.json").read_text())]
    assert corpus["records"] == 400
    encoder = make_encoder_folder(root / "encoder", texts + ["a the of and"])
    options = DemoOptions(work=root / "work", records=400, classes=4, seed=5, encoder=str(encoder), epochs=1,
                          folds=2, max_length=32, low=0.0)  # a tiny model after one epoch: keep p >= mean
    return options, run_demo(options)


def test_summary_matches_the_published_parquet(demo):
    options, summary = demo
    hub = options.work / "hub" / "data"
    filtered = sum(pq.read_metadata(p).num_rows for p in (hub / "filtered").glob("*.parquet"))
    captions = pq.read_table(next((hub / "captions").glob("*.parquet")))
    assert summary["kept"] == filtered == summary["loaded_rows"]["filtered/train"]
    assert summary["records"] == captions.num_rows == 400
    assert sum(summary["reasons"].values()) == summary["records"]
    assert summary["scored"] == sum(1 for e in captions["eligible"].to_pylist() if e)
    assert {"paper rule, in-sample", "paper rule, out-of-fold", "name match"} <= set(summary["filter_quality"])
    assert json.loads((options.work / "demo_summary.json").read_text())["kept"] == summary["kept"]


def test_second_run_reuses_finished_stages(demo):
    options, summary = demo
    weights = options.work / "model" / "model.safetensors"
    before = (weights.stat().st_mtime_ns, (options.work / "scores.parquet").stat().st_mtime_ns)
    again = run_demo(options)
    assert (weights.stat().st_mtime_ns, (options.work / "scores.parquet").stat().st_mtime_ns) == before
    assert again["kept"] == summary["kept"]


def test_missing_stage_input_is_refused(tmp_path):
    from imagenet_multimodal.score import ScoreOptions
    from imagenet_multimodal.score import run as run_score

    with pytest.raises(InputError, match="run `imagenet-multimodal prepare"):
        run_score(ScoreOptions(work=tmp_path))
    with pytest.raises(InputError, match="--records"):
        DemoOptions(work=tmp_path, records=10)
    # the later stages' options are checked before any work is done
    for wrong, message in (({"epochs": 0}, "--epochs: expected >= 1"), ({"folds": 0}, "--folds and --batch-size"),
                           ({"low": 5.0}, "--low/--high")):
        with pytest.raises(InputError, match=message):
            DemoOptions(work=tmp_path / "never", **wrong)
    assert not (tmp_path / "never").exists()


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (.ci/run installs it)")
def test_report_renders_in_headless_chromium(demo, tmp_path):
    options, summary = demo
    page = Path(summary["report"])
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0"]
    dom = subprocess.run([*flags, "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120)
    figures = page.read_text().count("<img")
    assert figures >= 5
    assert f"({figures}/{figures} figures)" in dom.stdout  # every embedded figure decoded
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line]
    assert not [line for line in console if "rror" in line or "Uncaught" in line], console
    shot = tmp_path / "report.png"
    subprocess.run([*flags, "--window-size=1200,1800", "--hide-scrollbars", f"--screenshot={shot}", page.as_uri()],
                   capture_output=True, timeout=120, check=True)
    from PIL import Image

    image = Image.open(shot).convert("L")
    colours = image.getcolors(maxcolors=1 << 16) or []
    assert image.size == (1200, 1800) and len(colours) > 50  # figures, not a blank page
    if target := os.environ.get("IMAGENET_MULTIMODAL_SCREENSHOT"):
        shutil.copy(shot, target)


def test_demo_sample_is_rewritten_when_its_options_change(tmp_path):
    """The demo reuses its sample only if records, classes and seed are the ones asked for."""
    from imagenet_multimodal.demo import _sample_options
    from imagenet_multimodal.sample import truth_path, write_sample

    out = tmp_path / "sample_captions.json"
    assert _sample_options(truth_path(out)) is None
    write_sample(out, records=300, classes=5, seed=3)
    assert _sample_options(truth_path(out)) == {"records": 300, "classes": 5, "seed": 3}
    truth_path(out).write_bytes(b"damaged")
    assert _sample_options(truth_path(out)) is None


def test_report_names_a_damaged_input(demo, tmp_path):
    from imagenet_multimodal.report import ReportOptions
    from imagenet_multimodal.report import run as run_report

    options, _ = demo
    work = tmp_path / "work"
    shutil.copytree(options.work, work, ignore=shutil.ignore_patterns("hub*", "report", "checkpoints"))
    (work / "scores.parquet").write_bytes(b"PAR1 cut short")
    with pytest.raises(InputError, match=r"scores\.parquet: cannot read as Parquet .*rerun `imagenet-multimodal score"):
        run_report(ReportOptions(work=work))
    (work / "scores.parquet").unlink()
    pq.write_table(pq.read_table(options.work / "classes.parquet").drop(["name"]), work / "classes.parquet")
    shutil.copy(options.work / "scores.parquet", work / "scores.parquet")
    with pytest.raises(InputError, match=r"classes\.parquet: expected columns \['name'\], missing \['name'\]"):
        run_report(ReportOptions(work=work))


def test_report_leaves_out_scores_of_other_captions(demo, tmp_path):
    """After prepare ran again, scores.parquet's records name other captions: the report says so
    and shows no scores (it crashed, or showed scores next to the wrong texts)."""
    from imagenet_multimodal.report import ReportOptions
    from imagenet_multimodal.report import run as run_report

    options, _ = demo
    work = tmp_path / "work"
    shutil.copytree(options.work, work, ignore=shutil.ignore_patterns("hub*", "report", "checkpoints"))
    captions = pq.read_table(work / "captions.parquet")
    pq.write_table(captions.slice(0, captions.num_rows // 2), work / "captions.parquet")
    page = run_report(ReportOptions(work=work)).read_text()
    assert "No score sections" in page and "made from another captions.parquet" in page
    assert "Examples" not in page


def test_a_demo_whose_filter_kept_nothing_still_writes_its_report(demo, monkeypatch):
    """The report (p_correct distribution) is how one sees an unconverged model: it comes before
    publish, which refuses an empty filter; the error says what to change in the demo."""
    from imagenet_multimodal import publish

    options, _ = demo
    (options.work / "report" / "index.html").unlink()

    def refuses(publish_options):
        raise InputError("scores.parquet: the relevance filter kept no caption")

    monkeypatch.setattr(publish, "run", refuses)
    with pytest.raises(InputError, match=r"kept no caption\nThe report .*index\.html shows the p_correct "
                                         r"distribution; for the demo, try `imagenet-multimodal demo --low 0.2`"):
        run_demo(options)
    assert (options.work / "report" / "index.html").exists()
