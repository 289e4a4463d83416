"""Reading and validating ImageNet-Captions records.

The published file (github.com/mlfoundations/imagenet-captions, MIT) is a JSON list of
``{"filename": "n01440764_10026.JPEG", "title": str, "tags": [str], "description": str,
"wnid": "n01440764"}``, distributed as ``imagenet_captions.zip``. We read the JSON list, the zip
(without extracting it) and JSON Lines. Validation is a pure function that puts a bad record into
a named bucket; ``strict`` callers turn the bucket into an error naming the record and field.
"""

from __future__ import annotations

import logging
import os
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import orjson

from .io import InputError, atomic_path

logger = logging.getLogger(__name__)

CAPTIONS_URL = "https://github.com/mlfoundations/imagenet-captions/raw/main/imagenet_captions.zip"
FIELDS = {"filename": str, "wnid": str, "title": str, "description": str, "tags": list}

# Buckets of records that cannot be used, in the order they are checked.
BAD_REASONS = (
    "not_an_object",
    "missing_field",
    "wrong_type",
    "unknown_wnid",
    "filename_mismatch",
    "duplicate_filename",
)


def _decode_error(path: Path | str, err: orjson.JSONDecodeError, *, line: int | None = None) -> InputError:
    where = f"line {line}" if line is not None else f"line {err.lineno}, column {err.colno} (byte {err.pos})"
    return InputError(f"{path}: not valid JSON at {where}: {err.msg} (is the file truncated?)")


def parse_json_list(data: bytes, *, path: Path | str) -> list[Any]:
    """Parse the bytes of a JSON list file; errors name the file and the position."""
    if not data.strip():
        raise InputError(f"{path}: the file is empty; expected a JSON list of caption records")
    try:
        records = orjson.loads(data)
    except orjson.JSONDecodeError as err:
        raise _decode_error(path, err) from err
    if not isinstance(records, list):
        raise InputError(f"{path}: expected a JSON list of caption records, got a {type(records).__name__}")
    return records


def parse_json_lines(data: bytes, *, path: Path | str) -> list[Any]:
    """Parse JSON Lines (one record per line, blank lines ignored)."""
    records = []
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(orjson.loads(line))
        except orjson.JSONDecodeError as err:
            raise _decode_error(path, err, line=number) from err
    if not records:
        raise InputError(f"{path}: the file is empty; expected one JSON caption record per line")
    return records


def _zip_member(archive: zipfile.ZipFile, path: Path) -> str:
    names = [n for n in archive.namelist() if n.endswith((".json", ".jsonl")) and "__MACOSX" not in n]
    if not names:
        raise InputError(
            f"{path}: the zip holds no .json or .jsonl file (members: {archive.namelist()[:10]}); "
            "expected imagenet_captions.json inside"
        )
    preferred = [n for n in names if Path(n).name == "imagenet_captions.json"]
    return (preferred or sorted(names))[0]


def read_records(path: str | os.PathLike) -> list[Any]:
    """Read caption records from a ``.json`` list, a ``.zip`` holding one, or ``.jsonl``."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such captions file")
    if path.suffix.lower() == ".zip":
        try:
            with zipfile.ZipFile(path) as archive:
                member = _zip_member(archive, path)
                data = archive.read(member)
        except zipfile.BadZipFile as err:
            raise InputError(f"{path}: not a readable zip file ({err})") from err
        label = f"{path}!{member}"
        parse = parse_json_lines if member.endswith(".jsonl") else parse_json_list
        return parse(data, path=label)
    data = path.read_bytes()
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        return parse_json_lines(data, path=path)
    return parse_json_list(data, path=path)


def download_captions(cache_dir: str | os.PathLike, *, url: str = CAPTIONS_URL) -> Path:
    """Download the published zip into ``cache_dir`` once (atomically) and return its path."""
    target = Path(cache_dir) / Path(url).name
    if target.exists():
        logger.info("captions: using cached %s", target)
        return target
    logger.info("captions: downloading %s", url)
    try:
        with urllib.request.urlopen(url, timeout=60) as response, atomic_path(target) as tmp:
            tmp.write_bytes(response.read())
    except OSError as err:
        raise InputError(f"cannot download {url} ({err}); pass --captions PATH to a local copy") from err
    return target


def check_record(record: Any, *, known_wnids: dict[str, int], seen: set[str]) -> tuple[str, str, str] | None:
    """Validate one record. Returns ``None`` when it is usable, else ``(reason, field, detail)``
    with reason one of :data:`BAD_REASONS`. Adds a usable record's filename to ``seen``.
    """
    if not isinstance(record, dict):
        return "not_an_object", "", f"expected an object, got {type(record).__name__}"
    for name, kind in FIELDS.items():
        if name not in record:
            return "missing_field", name, "field is missing"
        if not isinstance(record[name], kind):
            got = type(record[name]).__name__
            return "wrong_type", name, f"expected {kind.__name__}, got {got} {record[name]!r:.40}"
    if not all(isinstance(tag, str) for tag in record["tags"]):
        return "wrong_type", "tags", "expected a list of strings"
    wnid, filename = record["wnid"], record["filename"]
    if wnid not in known_wnids:
        return "unknown_wnid", "wnid", f"{wnid!r} is not an ImageNet-1k class"
    if not filename.startswith(wnid + "_"):
        return "filename_mismatch", "filename", f"{filename!r} does not start with its wnid {wnid}_"
    if filename in seen:
        return "duplicate_filename", "filename", f"{filename!r} appeared in an earlier record"
    seen.add(filename)
    return None


def image_id(filename: str) -> str:
    """Canonical basename used as the join key: ``n01440764_10026.JPEG`` -> ``n01440764_10026``."""
    stem = filename.rsplit("/", 1)[-1]
    return stem.rsplit(".", 1)[0] if "." in stem else stem
