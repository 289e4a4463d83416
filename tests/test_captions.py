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


# ----------------------------------------------------------------------------- malformed JSON


def _read(tmp_path, name: str, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return list(iter_records(path))


def test_json_error_from_bytes_is_shown_as_text_without_a_truncation_guess(tmp_path):
    # yajl's message about invalid UTF-8 reaches Python as bytes in ijson's C backend
    with pytest.raises(InputError) as err:
        _read(tmp_path, "c.json", b'[{"title": "\xff\xfe"}]')
    message = str(err.value)
    assert "c.json: not valid JSON after record 0: lexical error: invalid bytes in UTF8 string; near: " in message
    assert "b'" not in message and "\\n" not in message and "truncated" not in message


def test_only_an_incomplete_file_is_called_truncated(tmp_path):
    with pytest.raises(InputError) as err:
        _read(tmp_path, "c.json", json.dumps(RECORDS).encode().replace(b",", b";", 1))
    assert "lexical error" in str(err.value) or "parse error" in str(err.value)
    assert "truncated" not in str(err.value)
    with pytest.raises(InputError, match=r"after record 1: parse error: premature EOF \(is the file truncated\?\)"):
        _read(tmp_path, "c.json", json.dumps(RECORDS).encode()[:-10])


@pytest.mark.parametrize("name", ["c.json", "c.jsonl", "c.zip"])
def test_a_utf8_byte_order_mark_is_skipped(tmp_path, name):
    text = json.dumps(RECORDS) if name != "c.jsonl" else "\n".join(json.dumps(r) for r in RECORDS)
    data = b"\xef\xbb\xbf" + text.encode()
    if name == "c.zip":
        _zip(tmp_path / name, {"imagenet_captions.json": data})
        assert list(iter_records(tmp_path / name)) == RECORDS
    else:
        assert _read(tmp_path, name, data) == RECORDS


def test_a_lone_surrogate_escape_reads_the_same_in_every_format(tmp_path):
    """json.dumps writes half an emoji as a lone "\\ud83d" escape: the JSON-list reader makes it "?",
    and JSON Lines must read the same record, not abort the run."""
    records = [record(0, 1, title="\ud83d goldfish bowl"), *RECORDS]
    as_list = _read(tmp_path, "c.json", json.dumps(records).encode())
    as_lines = _read(tmp_path, "c.jsonl", "\n".join(json.dumps(r) for r in records).encode())
    assert as_list == as_lines and as_lines[0]["title"] == "? goldfish bowl" and as_lines[1:] == RECORDS
    with pytest.raises(InputError, match="c.jsonl: not valid JSON at line 2"):
        _read(tmp_path, "c.jsonl", b'{"title": "a"}\n{"title": \n')
    with pytest.raises(InputError, match="c.jsonl: not valid JSON at line 1"):  # NaN is no JSON either
        _read(tmp_path, "c.jsonl", b'{"title": NaN}\n')


def test_utf16_is_named(tmp_path):
    with pytest.raises(InputError, match="got UTF-16 text .* save it as UTF-8"):
        _read(tmp_path, "c.json", json.dumps(RECORDS).encode("utf-16"))


# ----------------------------------------------------------------------------- the download


LFS_POINTER = (b"version https://git-lfs.github.com/spec/v1\noid sha256:" + b"0" * 64 + b"\nsize 60911045\n")


def test_a_download_that_is_not_a_zip_is_not_cached(tmp_path):
    from imagenet_multimodal.captions import download_captions

    published = tmp_path / "imagenet_captions.zip"
    published.write_bytes(LFS_POINTER)
    cache = tmp_path / "cache"
    with pytest.raises(InputError, match=r"is not a zip file \(a Git LFS pointer, .*nothing was cached"):
        download_captions(cache, url=published.as_uri())
    assert list(cache.iterdir()) == []  # neither the file nor a temporary one
    _zip(published, {"imagenet_captions.json": json.dumps(RECORDS).encode()})  # fixed at the source
    assert list(iter_records(download_captions(cache, url=published.as_uri()))) == RECORDS


def test_a_download_shorter_than_announced_is_not_cached(tmp_path, monkeypatch):
    import io
    import urllib.request

    from imagenet_multimodal.captions import download_captions

    body = _zip(tmp_path / "whole.zip", {"imagenet_captions.json": json.dumps(RECORDS).encode()}).read_bytes()

    class Response(io.BytesIO):
        headers = {"Content-Length": str(len(body) + 1000)}

    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: Response(body))
    cache = tmp_path / "cache"
    with pytest.raises(InputError, match=rf"has {len(body):,} of the {len(body) + 1000:,} bytes announced"):
        download_captions(cache, url="https://example.org/imagenet_captions.zip")
    assert list(cache.iterdir()) == []
    Response.headers = {"Content-Length": str(len(body))}
    assert download_captions(cache, url="https://example.org/imagenet_captions.zip").read_bytes() == body


def test_a_bad_cached_file_is_named_with_what_to_do(tmp_path):
    from imagenet_multimodal.captions import download_captions

    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "imagenet_captions.zip").write_bytes(LFS_POINTER)  # cached by an older version
    with pytest.raises(InputError, match=rf"{cache / 'imagenet_captions.zip'}: the cached download .* delete it"):
        download_captions(cache, url=(tmp_path / "absent" / "imagenet_captions.zip").as_uri())  # never fetched


def test_zip_members_match_like_plain_files(tmp_path):
    """Suffixes in any case, .ndjson as JSON Lines, and macOS resource forks (._name) ignored."""
    lines = b"\n".join(json.dumps(r).encode() for r in RECORDS)
    assert list(iter_records(_zip(tmp_path / "a.zip", {"IMAGENET_CAPTIONS.JSON": json.dumps(RECORDS).encode(),
                                                      "other.json": b"[]"}))) == RECORDS
    assert list(iter_records(_zip(tmp_path / "b.zip", {"caps.NDJSON": lines}))) == RECORDS
    assert list(iter_records(_zip(tmp_path / "c.zip", {"captions.json": json.dumps(RECORDS).encode(),
                                                      "._captions.json": b"\x00\x05\x16\x07"}))) == RECORDS
