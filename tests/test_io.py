"""Atomic writes: nothing half-written is ever seen, and what a killed writer left is cleaned."""

from __future__ import annotations

import pytest

from imagenet_multimodal.io import InputError, atomic_path, read_json, write_json


def test_a_failed_block_leaves_the_old_content_and_no_temporary(tmp_path):
    target = tmp_path / "stats.json"
    write_json({"a": 1}, target)
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert read_json(target) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stats.json"]


def test_what_a_killed_writer_left_is_removed_on_the_next_write(tmp_path):
    folder = tmp_path / "pairs"
    left = [tmp_path / ".pairs.abc123.tmp", tmp_path / ".pairs.x.tmp"]  # a folder and a file
    (left[0] / "sub").mkdir(parents=True)
    (left[0] / "sub" / "train-00000.parquet").write_bytes(b"x" * 1000)
    left[1].write_bytes(b"partial")
    other = tmp_path / ".pairs-old.zz.tmp"  # another target's temporary: not ours to remove
    other.write_bytes(b"keep")
    with atomic_path(folder) as tmp:
        tmp.mkdir()
        (tmp / "train-00000.parquet").write_bytes(b"new")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".pairs-old.zz.tmp", "pairs"]
    assert (folder / "train-00000.parquet").read_bytes() == b"new"


def test_broken_json_names_the_file(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    with pytest.raises(InputError, match=r"broken\.json: not valid JSON"):
        read_json(path)


def test_read_parquet_names_the_file_and_what_was_expected(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from imagenet_multimodal.io import read_parquet

    good = tmp_path / "captions.parquet"
    pq.write_table(pa.table({"record": [0, 1], "label": [3, 4]}), good)
    assert read_parquet(good, columns=["label"]).column_names == ["label"]
    with pytest.raises(InputError, match=r"captions\.parquet: expected columns \['record', 'text'\], missing \['text'\]"
                                         r"; rerun `imagenet-multimodal prepare --work W`"):
        read_parquet(good, columns=["record", "text"], made_by="prepare --work W")
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 not really")
    with pytest.raises(InputError, match=r"broken\.parquet: cannot read as Parquet"):
        read_parquet(broken)
    with pytest.raises(InputError, match=r"missing\.parquet does not exist: run `imagenet-multimodal score"):
        read_parquet(tmp_path / "missing.parquet", made_by="score --work W")


def test_work_that_is_a_file_is_refused_by_every_stage(tmp_path, caplog):
    from imagenet_multimodal.cli import main

    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    for stage in (["classes", "--source", "offline"], ["prepare"], ["train"], ["score"], ["publish"], ["report"]):
        caplog.clear()
        assert main([stage[0], "--work", str(afile), *stage[1:]]) == 2, stage
        assert "afile: a file, not a folder; expected the work folder" in caplog.text, stage


def test_help_shows_every_optional_default_booleans_included():
    import dataclasses

    from imagenet_multimodal.options import build_parser

    @dataclasses.dataclass
    class Opts:
        work: str = dataclasses.field(metadata={"help": "the work folder"})
        force: bool = dataclasses.field(default=False, metadata={"help": "start over"})
        eval_captions: bool = dataclasses.field(default=True, metadata={"help": "also the captions"})
        batch_size: int = dataclasses.field(default=32, metadata={"help": "examples per batch"})
        output: str | None = dataclasses.field(default=None, metadata={"help": "output (default: WORK/out)"})

    text = " ".join(build_parser(Opts, prog="x", description=None).format_help().split())
    assert "start over (default: off)" in text
    assert "also the captions (default: on)" in text
    assert "examples per batch (default: 32)" in text
    assert "the work folder (default" not in text
    assert "output (default: WORK/out) --" in text + " --" and "(default: None)" not in text


def test_stages_end_with_one_line_and_an_exit_status(tmp_path, caplog):
    """An OS error and Ctrl-C end in one line, not a traceback; `python -m` runs a stage."""
    import subprocess
    import sys

    from imagenet_multimodal.cli import run_stage

    def raises(error):
        def stage(argv):
            raise error
        return stage

    assert run_stage(raises(NotADirectoryError(20, "Not a directory", "/tmp/afile/w")), []) == 1
    assert run_stage(raises(KeyboardInterrupt()), []) == 130
    err = caplog.text
    assert "error: NotADirectoryError: [Errno 20] Not a directory: '/tmp/afile/w'" in err
    assert "error: interrupted; run the same command again" in err and "Traceback" not in err
    afile = tmp_path / "afile"
    afile.write_text("x")
    for stage in ("prepare", "train", "report"):
        done = subprocess.run([sys.executable, "-m", f"imagenet_multimodal.{stage}", "--work", str(afile)],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 2 and "a file, not a folder" in done.stderr, (stage, done.stderr[-500:])


def test_a_failed_folder_swap_keeps_the_old_folder(tmp_path, monkeypatch):
    """The old folder is renamed aside, not deleted, before the new one moves in: if that move
    fails, the old one is put back (it was gone when it was removed first)."""
    import os

    from imagenet_multimodal import io

    folder = tmp_path / "hub"
    folder.mkdir()
    (folder / "README.md").write_text("old")
    real = os.replace
    calls = []

    def failing(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:  # the new folder onto the target
            raise OSError("disk gone")
        return real(src, dst)

    monkeypatch.setattr(io.os, "replace", failing)
    with pytest.raises(OSError, match="disk gone"), atomic_path(folder) as tmp:
        tmp.mkdir()
        (tmp / "README.md").write_text("new")
    monkeypatch.setattr(io.os, "replace", real)
    assert calls[0][0] == folder and (folder / "README.md").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hub"]


def test_library_log_lines_print_once():
    """huggingface_hub logs through its own handler (its retries, say) and also propagated to the
    stage's: each line came out twice."""
    import subprocess
    import sys

    code = ("from huggingface_hub.utils import logging as hub_logging\n"
            "from imagenet_multimodal.cli import run_stage\n"
            "def stage(argv):\n"
            "    hub_logging.get_logger('huggingface_hub.file_download').warning('Retrying in 1s [Retry 1/5].')\n"
            "    return 0\n"
            "raise SystemExit(run_stage(stage, []))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stderr.count("Retrying in 1s") == 1, done.stderr


def test_table_digest_follows_content_not_layout():
    import pyarrow as pa

    from imagenet_multimodal.io import digest_table

    rows = {"text": ["a tench", None, "a jay", "snow dog"], "label": [0, 1, 17, 250]}
    whole = pa.table(rows)
    sliced = pa.table({"text": ["x", *rows["text"]], "label": [9, *rows["label"]]}).slice(1)
    chunked = pa.concat_tables([whole.slice(0, 2), whole.slice(2)])
    digests = {digest_table(t, ["text", "label"]) for t in (whole, sliced, chunked)}
    assert len(digests) == 1
    changed = pa.table({**rows, "label": [0, 1, 17, 251]})
    assert digest_table(changed, ["text", "label"]) not in digests
    assert digest_table(changed, ["text"]) == digest_table(whole, ["text"])
