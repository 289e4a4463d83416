"""Reading ImageNet-Captions files: zip members, damaged and malformed input, the cached download."""

from __future__ import annotations

import json
import logging
import zipfile

import pytest
from conftest import record

from imagenet_multimodal.captions import iter_records
from imagenet_multimodal.io import InputError

RECORDS = [record(0, 1, title="a tench"), record(1, 2, title="a goldfish")]


def _zip(path, members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


# ----------------------------------------------------------------------------- zip members


def test_zip_with_one_json_member_of_any_name(tmp_path):
    path = _zip(tmp_path / "c.zip", {"README.txt": b"hi", "captions/my.jsonl": b"\n".join(
        json.dumps(r).encode() for r in RECORDS)})
    assert list(iter_records(path)) == RECORDS


def test_zip_with_several_members_prefers_imagenet_captions_json_and_names_the_others(tmp_path, caplog):
    path = _zip(tmp_path / "c.zip", {"extra.json": b"[]", "imagenet_captions.json": json.dumps(RECORDS).encode(),
                                     "a.jsonl": b"{}"})
    caplog.set_level(logging.WARNING)
    assert list(iter_records(path)) == RECORDS
    assert "reading imagenet_captions.json and ignoring ['extra.json', 'a.jsonl']" in caplog.text


@pytest.mark.parametrize("names", [
    ["a.json", "b.jsonl"],  # neither is the published name
    ["v1/imagenet_captions.json", "v2/imagenet_captions.json"],  # the published name twice
])
def test_zip_with_several_members_and_no_single_choice_is_an_error(tmp_path, names):
    path = _zip(tmp_path / "c.zip", {name: json.dumps(RECORDS).encode() for name in names})
    with pytest.raises(InputError, match=r"c\.zip: the zip holds 2 \.json/\.jsonl files") as err:
        list(iter_records(path))
    assert all(name in str(err.value) for name in names)


def test_damaged_deflate_data_is_an_input_error_naming_the_file(tmp_path):
    records = [record(0, i, title=f"photo {i * 7919 % 1000}") for i in range(3000)]
    name = "imagenet_captions.json"
    path = _zip(tmp_path / "c.zip", {name: json.dumps(records).encode()})
    data = bytearray(path.read_bytes())
    start = 30 + len(name)  # the member's compressed data follows its local header
    data[start:start + 4] = b"\xff\xff\xff\xff"  # an invalid deflate block type
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"c\.zip!imagenet_captions\.json: the zip member is damaged \(Error -3"):
        list(iter_records(path))
