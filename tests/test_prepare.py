"""The prepare stage: reading every format, buckets, strict errors, split, pairs and resume."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import record, write_captions

from imagenet_multimodal.cli import main as cli_main
from imagenet_multimodal.io import InputError
from imagenet_multimodal.prepare import PrepareOptions, run


def _good_records(n_per_class: dict[int, int]) -> list[dict]:
    records, number = [], 0
    for label, n in n_per_class.items():
        for _ in range(n):
            records.append(record(label, number, title=f"my photo number {number}", tags=["t"]))
            number += 1
    return records


BAD = [
    ("not_an_object", "description", lambda r: ["a list", "not a record"]),
    ("missing_field", "title", lambda r: {k: v for k, v in r.items() if k != "title"}),
    ("wrong_type", "tags", lambda r: {**r, "tags": "one,two"}),
    ("wrong_type", "description", lambda r: {**r, "description": None}),
    ("unknown_wnid", "wnid", lambda r: {**r, "wnid": "n00000001", "filename": "n00000001_1.JPEG"}),
    ("filename_mismatch", "filename", lambda r: {**r, "filename": "n01443537_99.JPEG"}),
    ("filename_mismatch", "filename", lambda r: {**r, "filename": r["wnid"]}),  # the wnid alone
]


def _with_bad_records(tmp_path):
    good = _good_records({0: 30, 1: 30})
    bad = [make(dict(good[0], filename=f"{good[0]['wnid']}_{900 + i}.JPEG")) for i, (_, _, make) in
           enumerate(BAD)]
    duplicate = dict(good[5])
    same_image = dict(good[6], filename=good[6]["filename"].replace(".JPEG", ".jpg"))  # same join key
    one_word = record(2, 7000, title="IMG_1234")
    no_text = record(2, 7001, title="<br/>", description="  ", tags=["only", "tags"])
    return write_captions(tmp_path / "captions.json", [*good, *bad, duplicate, same_image, one_word, no_text])


def test_every_record_lands_in_exactly_one_bucket(work, tmp_path):
    stats = run(PrepareOptions(work=work, captions=_with_bad_records(tmp_path)))
    reasons = stats["reasons"]
    assert sum(reasons.values()) == stats["records"] == 60 + len(BAD) + 4
    assert reasons["eligible"] == 60
    assert reasons["one_word"] == 1 and reasons["no_text"] == 1
    assert reasons["not_an_object"] == 1 and reasons["missing_field"] == 1
    assert reasons["wrong_type"] == 2 and reasons["unknown_wnid"] == 1
    assert reasons["filename_mismatch"] == 2 and reasons["duplicate_filename"] == 2
    captions = pq.read_table(work / "captions.parquet")
    assert captions.num_rows == stats["records"]
    assert captions["record"].to_pylist() == list(range(stats["records"]))
    roles = captions["role"].to_pylist()
    eligible = captions["eligible"].to_pylist()
    assert all((role != "excluded") == flag for role, flag in zip(roles, eligible))


@pytest.mark.parametrize(("reason", "field", "make"), BAD)
def test_strict_names_record_and_field(work, tmp_path, reason, field, make):
    good = _good_records({0: 3})
    path = write_captions(tmp_path / "c.json", [*good, make(dict(good[0]))])
    with pytest.raises(InputError) as err:
        run(PrepareOptions(work=work, captions=path, strict=True))
    message = str(err.value)
    assert str(path) in message and "record 3 (counted from 0)" in message and reason in message
    if reason != "not_an_object":
        assert f"field {field!r}" in message


def test_strict_duplicate_filename(work, tmp_path):
    good = _good_records({0: 3})
    path = write_captions(tmp_path / "c.json", [*good, dict(good[1])])
    with pytest.raises(InputError, match=r"record 3 \(counted from 0\) field 'filename'.*duplicate_filename"):
        run(PrepareOptions(work=work, captions=path, strict=True))


def test_truncated_file_names_position(work, tmp_path):
    path = tmp_path / "c.json"
    path.write_bytes(json.dumps(_good_records({0: 5})).encode()[:-40])  # inside record 5
    with pytest.raises(InputError, match=r"c\.json: not valid JSON after record 4: .*premature EOF"):
        run(PrepareOptions(work=work, captions=path))


@pytest.mark.parametrize("content", [b"", b"  \n", b'{"filename": "x"}', b"not json at all", b"5", b'"abc"'])
def test_empty_or_not_a_list(work, tmp_path, content):
    path = tmp_path / "c.json"
    path.write_bytes(content)
    with pytest.raises(InputError, match=r"c\.json: (the file is empty|expected a JSON list|not valid JSON)"):
        run(PrepareOptions(work=work, captions=path))


def test_captions_file_is_recorded_absolute(work, tmp_path, monkeypatch):
    """score finds a sample's ground truth next to the captions file prepare read: a path relative
    to the folder prepare ran in would point elsewhere from any other folder."""
    write_captions(tmp_path / "captions.json", _good_records({0: 30, 1: 30}))
    monkeypatch.chdir(tmp_path)
    stats = run(PrepareOptions(work=work, captions="captions.json"))
    assert stats["captions_file"] == str(tmp_path.resolve() / "captions.json")
    write_captions(work / "inside.json", _good_records({0: 31, 1: 30}))  # inside WORK: moves with it
    assert run(PrepareOptions(work=work, captions=work / "inside.json"))["captions_file"] == "inside.json"


def test_missing_captions_file_is_named(work, tmp_path):
    for path in (tmp_path / "nofile.json", tmp_path):  # missing, and a folder
        with pytest.raises(InputError, match=rf"--captions {path}: no such file; expected the ImageNet-Captions"):
            run(PrepareOptions(work=work, captions=path))


def test_zip_without_json(work, tmp_path):
    path = tmp_path / "imagenet_captions.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("README.txt", "nothing here")
    with pytest.raises(InputError, match="zip holds no .json"):
        run(PrepareOptions(work=work, captions=path))


def test_zip_jsonl_and_json_give_the_same_result(work, tmp_path):
    records = _good_records({0: 20, 3: 15})
    plain = write_captions(tmp_path / "imagenet_captions.json", records)
    packed = tmp_path / "imagenet_captions.zip"
    with zipfile.ZipFile(packed, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.write(plain, "imagenet_captions.json")
    lines = tmp_path / "captions.jsonl"
    lines.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    results = []
    for path in (plain, packed, lines):
        run(PrepareOptions(work=work, captions=path, force=True))
        results.append(pq.read_table(work / "captions.parquet").drop_columns([]))
    assert results[0].equals(results[1]) and results[0].equals(results[2])


def test_jsonl_error_names_the_line(work, tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps(record(0, 1, "a b")) + "\n{broken\n")
    with pytest.raises(InputError, match=r"c\.jsonl: not valid JSON at line 2"):
        run(PrepareOptions(work=work, captions=path))


def test_pairs_are_captions_times_class_sentences(work, tmp_path):
    path = write_captions(tmp_path / "c.json", _good_records({0: 40, 1: 25, 7: 3}))
    stats = run(PrepareOptions(work=work, captions=path, shard_pairs=20))
    classes = pq.read_table(work / "classes.parquet")
    sentences = classes["sentences"].to_pylist()
    captions = pq.read_table(work / "captions.parquet").to_pylist()
    for split in ("train", "test"):
        rows = [c for c in captions if c["role"] == split]
        shards = sorted((work / "pairs").glob(f"{split}-*.parquet"))
        assert len(shards) > 1 and all(s.name.endswith(f"-of-{len(shards):05d}.parquet") for s in shards)
        pairs = [p for shard in shards for p in pq.read_table(shard).to_pylist()]
        assert len(pairs) == stats["pairs"][split] == sum(len(sentences[c["label"]]) for c in rows)
        expected = {(c["image_id"], i, f"{c['text']} {s}", c["label"])
                    for c in rows for i, s in enumerate(sentences[c["label"]])}
        assert {(p["image_id"], p["sentence_index"], p["text"], p["label"]) for p in pairs} == expected


def test_split_size_and_small_class_guarantee(work, tmp_path):
    path = write_captions(tmp_path / "c.json", _good_records({0: 300, 1: 100, 2: 9, 3: 1, 4: 2}))
    stats = run(PrepareOptions(work=work, captions=path, seed=3))
    assert stats["roles"]["train"] == round(412 * 300_000 / 389_598)
    captions = pq.read_table(work / "captions.parquet").to_pandas()
    per_class = captions.groupby("label")["role"].value_counts().unstack(fill_value=0)
    for label in (1, 2, 4):
        n = per_class.loc[label].sum()
        assert per_class.loc[label, "train"] >= np.ceil(n / 2)
        assert per_class.loc[label, "test"] >= np.ceil(0.2 * n)
    assert per_class.loc[3, "train"] == 1
    assert stats["classes_present"] == 5 and stats["small_classes"] == 4
    assert (work / "captions_per_class.png").read_bytes()[:4] == b"\x89PNG"


def test_train_size_option_and_tags(work, tmp_path):
    records = _good_records({0: 10, 1: 10})
    path = write_captions(tmp_path / "c.json", records)
    stats = run(PrepareOptions(work=work, captions=path, train_size=12, tags=True))
    assert stats["roles"] == {"train": 12, "test": 8, "excluded": 0}
    texts = pq.read_table(work / "captions.parquet")["text"].to_pylist()
    assert all(text.endswith(" t") for text in texts)
    with pytest.raises(InputError, match="larger than the 20 eligible"):
        run(PrepareOptions(work=work, captions=path, train_size=21, force=True))
    with pytest.raises(InputError, match="--seed: expected a non-negative integer, got -1"):
        PrepareOptions(work=work, captions=path, seed=-1)


def test_rerun_skips_and_changed_options_redo(work, tmp_path, caplog):
    path = write_captions(tmp_path / "c.json", _good_records({0: 30}))
    first = run(PrepareOptions(work=work, captions=path, seed=1))
    mtime = (work / "captions.parquet").stat().st_mtime_ns
    caplog.set_level("INFO")
    assert run(PrepareOptions(work=work, captions=path, seed=1)) == first
    assert "up to date" in caplog.text
    assert (work / "captions.parquet").stat().st_mtime_ns == mtime
    second = run(PrepareOptions(work=work, captions=path, seed=2))
    assert second["fingerprint"]["seed"] == 2
    assert not list(work.glob(".*.tmp")), "no temporary files left behind"


def test_changed_rules_prepare_again_with_identical_outputs(work, tmp_path, monkeypatch, caplog):
    """After the cleaning or split code changed, a rerun is no longer up to date; where the change
    changes nothing, the outputs come out byte for byte the same (so train need not run again)."""
    from imagenet_multimodal import prepare
    from imagenet_multimodal.checkpoints import input_digest

    path = write_captions(tmp_path / "c.json", _good_records({0: 30, 1: 30}))
    first = run(PrepareOptions(work=work, captions=path))
    digest = input_digest(work)
    monkeypatch.setattr(prepare, "_rules_digest", lambda: "a newer rule set")
    caplog.set_level("INFO")
    again = run(PrepareOptions(work=work, captions=path))
    assert "up to date" not in caplog.text and again["fingerprint"]["rules"] == "a newer rule set"
    assert again["outputs"] == first["outputs"] and input_digest(work) == digest


def test_later_stages_refuse_captions_and_pairs_of_different_runs(work, tmp_path):
    """prepare killed between captions.parquet and pairs/ leaves new roles beside old pairs: a caption
    marked test that the model trains on. train, score and publish refuse such a folder."""
    from imagenet_multimodal import train
    from imagenet_multimodal.io import check_outputs
    from imagenet_multimodal.publish import PublishOptions
    from imagenet_multimodal.publish import run as run_publish
    from imagenet_multimodal.score import ScoreOptions
    from imagenet_multimodal.score import run as run_score

    path = write_captions(tmp_path / "c.json", _good_records({0: 30, 1: 30}))
    run(PrepareOptions(work=work, captions=path, seed=1))
    check_outputs(work)  # as prepare left it
    other = tmp_path / "other"
    other.mkdir()
    (other / "classes.parquet").write_bytes((work / "classes.parquet").read_bytes())
    run(PrepareOptions(work=other, captions=path, seed=2))
    (work / "captions.parquet").write_bytes((other / "captions.parquet").read_bytes())  # the new roles only
    expected = r"captions\.parquet and pairs/ are not the files prepare_stats\.json records.*rerun `imagenet-multimodal"
    with pytest.raises(InputError, match=expected):
        train.run(train.parse_args(["--work", str(work), "--encoder", "offline"]))  # the packaged MiniLM
    with pytest.raises(InputError, match=expected):
        run_score(ScoreOptions(work=work))
    with pytest.raises(InputError, match=expected):
        run_publish(PublishOptions(work=work))


def test_outputs_that_are_not_this_runs_are_redone(work, tmp_path):
    """A rerun trusts prepare_stats.json only while the outputs are the files it describes: a
    killed rerun with other options can leave a new captions.parquet beside the old pairs."""
    path = write_captions(tmp_path / "c.json", _good_records({0: 30, 1: 30}))
    first = run(PrepareOptions(work=work, captions=path, seed=1))
    stale = pq.read_table(work / "captions.parquet")
    run(PrepareOptions(work=work, captions=path, seed=2))
    pq.write_table(stale, work / "captions.parquet")  # seed-1 captions beside seed-2 pairs and stats
    (work / "prepare_stats.json").write_text(json.dumps(first))
    again = run(PrepareOptions(work=work, captions=path, seed=1))  # the stats match, the pairs do not: redone
    roles = dict(zip(*pq.read_table(work / "captions.parquet", columns=["image_id", "role"]).to_pydict().values()))
    train_pairs = pq.read_table(sorted((work / "pairs").glob("train-*"))[0], columns=["image_id"])
    assert {roles[i] for i in train_pairs["image_id"].to_pylist()} == {"train"}
    for damage in ("captions", "pairs"):
        if damage == "captions":
            (work / "captions.parquet").unlink()
        else:
            for shard in (work / "pairs").glob("*"):
                shard.unlink()
        redone = run(PrepareOptions(work=work, captions=path, seed=1))
        assert redone["outputs"] == again["outputs"] and (work / "captions.parquet").exists()
    (work / "prepare_stats.json").write_text("[1]")  # not an object: redone, not a crash
    assert run(PrepareOptions(work=work, captions=path, seed=1))["outputs"] == again["outputs"]


def test_missing_class_table_is_a_clear_error(tmp_path):
    path = write_captions(tmp_path / "c.json", _good_records({0: 3}))
    code = cli_main(["prepare", "--work", str(tmp_path / "empty"), "--captions", str(path)])
    assert code == 2
    assert not (tmp_path / "empty" / "captions.parquet").exists()


def test_cli_runs_prepare(work, tmp_path):
    path = write_captions(tmp_path / "c.json", _good_records({0: 12, 5: 12}))
    assert cli_main(["prepare", "--work", str(work), "--captions", str(path), "--seed", "4"]) == 0
    stats = json.loads((work / "prepare_stats.json").read_text())
    assert stats["roles"]["train"] + stats["roles"]["test"] == 24
    assert stats["synthetic"] is False


def test_download_is_cached_and_prepare_uses_it(work, tmp_path, caplog):
    from imagenet_multimodal.captions import download_captions

    published = tmp_path / "published" / "imagenet_captions.zip"
    published.parent.mkdir()
    plain = write_captions(tmp_path / "imagenet_captions.json", _good_records({0: 6, 1: 6}))
    with zipfile.ZipFile(published, "w") as archive:
        archive.write(plain, "imagenet_captions.json")
    cache = tmp_path / "cache"
    first = download_captions(cache, url=published.as_uri())
    assert first.read_bytes() == published.read_bytes()
    published.unlink()  # the second call must not need the source any more
    caplog.set_level("INFO")
    assert download_captions(cache, url=published.as_uri()) == first
    assert "using cached" in caplog.text
    with pytest.raises(InputError, match="cannot download .* pass --captions"):
        download_captions(tmp_path / "other", url=published.as_uri())


def test_default_split_bends_to_the_small_class_guarantees(work, tmp_path, caplog):
    # eight classes of eight captions: 77 % in train would break "at least 20 % in test"
    path = write_captions(tmp_path / "c.json", _good_records(dict.fromkeys(range(8), 8)))
    caplog.set_level("WARNING")
    stats = run(PrepareOptions(work=work, captions=path))
    assert stats["roles"] == {"train": 48, "test": 16, "excluded": 0}
    assert "breaks the small-class guarantees" in caplog.text
    with pytest.raises(InputError, match="cannot be met"):
        run(PrepareOptions(work=work, captions=path, train_size=60, force=True))


def test_a_moved_synthetic_sample_is_still_labelled_synthetic(work, tmp_path):
    """The sample's records carry the synthetic key: without its truth file beside it, under the
    real file's name, it is still labelled synthetic (and a real-format file is not)."""
    from imagenet_multimodal.sample import truth_path, write_sample

    out = tmp_path / "sample.json"
    write_sample(out, records=300, seed=1, classes=20)
    moved = tmp_path / "moved" / "imagenet_captions.json"
    moved.parent.mkdir()
    out.rename(moved)
    assert not truth_path(moved).exists()
    stats = run(PrepareOptions(work=work, captions=moved))
    assert stats["synthetic"] is True and stats["synthetic_records"] == stats["records"] == 300
    real = write_captions(tmp_path / "real.json", _good_records({0: 12, 5: 12}))
    stats = run(PrepareOptions(work=work, captions=real))
    assert stats["synthetic"] is False and stats["synthetic_records"] == 0


def test_strict_jsonl_error_names_the_line_and_leaves_out_an_empty_field(work, tmp_path):
    """In JSON Lines the line number finds the record (blank lines are skipped, so the record's
    position would point elsewhere); a record that is no object has no field to name."""
    good = _good_records({0: 3})
    lines = [json.dumps(good[0]), "", json.dumps(good[1]), "", "", json.dumps({**good[2], "wnid": "n00000001"})]
    path = tmp_path / "c.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r"c\.jsonl: line 6 field 'wnid': 'n00000001' is not an ImageNet-1k class"):
        run(PrepareOptions(work=work, captions=path, strict=True))
    path.write_text("\n".join([*lines[:5], '["not", "a record"]']) + "\n")
    with pytest.raises(InputError) as err:
        run(PrepareOptions(work=work, captions=path, strict=True))
    assert str(err.value) == f"{path}: line 6: expected an object, got list [not_an_object]"
    listed = write_captions(tmp_path / "c.json", [*good, ["not", "a record"]])
    with pytest.raises(InputError) as err:
        run(PrepareOptions(work=work, captions=listed, strict=True))
    assert str(err.value) == f"{listed}: record 3 (counted from 0): expected an object, got list [not_an_object]"
