"""The class table: label order, names, text sources and the user's own class texts."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.csv
import pyarrow.parquet as pq
import pytest

from imagenet_multimodal.classes import (
    LEMMA_SOURCE,
    LLM_SOURCE,
    ClassesOptions,
    imagenet_classes,
    read_class_table,
    read_class_texts,
    run,
)
from imagenet_multimodal.cli import main as cli_main
from imagenet_multimodal.io import InputError


def test_standard_label_order_and_unique_names():
    classes = imagenet_classes()
    assert len(classes) == 1000
    assert (classes[0].wnid, classes[0].name) == ("n01440764", "tench")
    assert classes[999].wnid == "n15075141" and "toilet" in classes[999].name
    assert [c.wnid for c in classes] == sorted(c.wnid for c in classes)
    assert len({c.name for c in classes}) == 1000
    assert classes[0].lemmas == ("tench", "Tinca tinca")


def test_offline_source_is_labelled_and_lemmas_fill_the_rest(work):
    table = pq.read_table(work / "classes.parquet")
    sources = table["text_source"].to_pylist()
    assert sources.count(LLM_SOURCE) == 975
    assert sources.count(LEMMA_SOURCE) == 25
    assert "wikipedia" not in sources
    assert table["wikipedia_title"].null_count == 1000
    rows = table.to_pylist()
    lemma_row = next(r for r in rows if r["text_source"] == LEMMA_SOURCE)
    assert lemma_row["summary"].rstrip(".") == ", ".join(lemma_row["lemmas"])
    assert all(1 <= len(r["sentences"]) <= 10 for r in rows)
    assert read_class_table(work).num_rows == 1000


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_user_class_texts_override(tmp_path, suffix):
    rows = [
        {"wnid": "n01440764", "text": "The tench is a fish. It lives in lakes. It is green.", "source": "my-notes"},
        {"wnid": "n01443537", "text": "Goldfish are small carp kept as pets.", "source": None},
    ]
    path = tmp_path / f"texts{suffix}"
    table = pa.Table.from_pylist(rows)
    if suffix == ".csv":
        pyarrow.csv.write_csv(table, path)
    elif suffix == ".jsonl":
        path.write_text("\n".join(json.dumps(row) for row in rows))
    else:
        pq.write_table(table, path)
    out = run(ClassesOptions(work=tmp_path / "w", source="offline", class_texts=path, max_sentences=2))
    first, second = out.slice(0, 2).to_pylist()
    assert first["text_source"] == "my-notes"
    assert first["sentences"] == ["The tench is a fish.", "It lives in lakes."]
    assert second["text_source"] == "user-file"
    assert out["text_source"].to_pylist()[2] == LLM_SOURCE


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("wnid,text\nn99999999,hello there\n", r"line 2 field 'wnid': 'n99999999' is not an ImageNet-1k class"),
        ("wnid,text\nn01440764,a b\nn01440764,c d\n", r"line 3 field 'wnid': n01440764 appears twice"),
        ("wnid,body\nn01440764,hello\n", r"expected columns 'wnid' and 'text'"),
        ('wnid,text\nn01440764,"  "\n', r"line 2 field 'text': expected a non-empty string"),
        ("wnid,text,source\nn01440764,a fish,7\n", r"line 2 field 'source': expected a string, got 7"),
    ],
)
def test_bad_class_texts(tmp_path, content, message):
    path = tmp_path / "texts.csv"
    path.write_text(content)
    with pytest.raises(InputError, match=message):
        read_class_texts(path)


def test_bad_suffix_and_missing_table(tmp_path):
    path = tmp_path / "texts.txt"
    path.write_text("x")
    with pytest.raises(InputError, match=r"expected a \.csv, \.jsonl or \.parquet file"):
        read_class_texts(path)
    with pytest.raises(InputError, match="run `imagenet-multimodal classes"):
        read_class_table(tmp_path)


def test_cli_classes(tmp_path, capsys):
    assert cli_main(["classes", "--work", str(tmp_path), "--max-sentences", "3"]) == 0
    assert pq.read_table(tmp_path / "classes.parquet").num_rows == 1000
    assert cli_main(["classes", "--work", str(tmp_path), "--max-sentences", "1"]) == 2
    assert cli_main(["nonsense"]) == 2
    assert cli_main([]) == 2
    assert "prepare" in capsys.readouterr().err  # the usage, on stderr when it is an error
