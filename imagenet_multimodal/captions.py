"""Reading and validating ImageNet-Captions records.

The published file (github.com/mlfoundations/imagenet-captions, MIT) is a JSON list of
``{"filename": "n01440764_10026.JPEG", "title": str, "tags": [str], "description": str,
"wnid": "n01440764"}``, distributed as ``imagenet_captions.zip``. We read the JSON list, the zip
(without extracting it) and JSON Lines. Validation is a pure function that puts a bad record into
a named bucket; ``strict`` callers turn the bucket into an error naming the record and field.
"""

from __future__ import annotations

import codecs
import http.client
import io
import json
import logging
import os
import shutil
import urllib.request
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import ijson
import orjson

from .io import InputError, atomic_path

logger = logging.getLogger(__name__)

CAPTIONS_URL = "https://github.com/mlfoundations/imagenet-captions/raw/main/imagenet_captions.zip"
FIELDS = {"filename": str, "wnid": str, "title": str, "description": str, "tags": list}
# a key only `imagenet-multimodal sample` writes: its records are synthetic, wherever the file goes
SYNTHETIC_KEY = "synthetic"

# Buckets of records that cannot be used, in the order they are checked.
BAD_REASONS = (
    "not_an_object",
    "missing_field",
    "wrong_type",
    "unknown_wnid",
    "filename_mismatch",
    "duplicate_filename",
)


def _json_error(label: str, err: Exception, count: int) -> InputError:
    message = err.args[0] if err.args else ""
    if isinstance(message, bytes):  # ijson's C backend passes some of yajl's messages on as bytes
        message = message.decode("utf-8", errors="replace")
    lines = [line.strip() for line in str(message).splitlines() if line.strip()]
    problem = lines[0].rstrip(".") if lines else type(err).__name__
    near = f"; near: {lines[1]}" if len(lines) > 2 else ""  # yajl shows the text, then a pointer
    # the input ended inside the list: yajl says "premature EOF", ijson's Python backend "Incomplete JSON"
    truncated = " (is the file truncated?)" if "premature EOF" in problem or "Incomplete JSON" in problem else ""
    return InputError(f"{label}: not valid JSON after record {count}: {problem}{truncated}{near}")


def _skip_bom(handle: BinaryIO) -> None:
    """Skip a UTF-8 byte order mark (some Windows editors write one; JSON parsers refuse it)."""
    if handle.peek(3)[:3] == codecs.BOM_UTF8:
        handle.read(3)


def _iter_json_list(handle: BinaryIO, label: str) -> Iterator[tuple[int | None, Any]]:
    """Stream the items of a JSON list with ijson (constant memory, C backend), each with line None."""
    _skip_bom(handle)
    head = handle.peek(4096).lstrip()[:1]
    if not head:
        raise InputError(f"{label}: the file is empty; expected a JSON list of caption records")
    if head != b"[":
        if head == b"{":
            got = "an object"
        elif head in (b"\xff", b"\xfe"):
            got = "UTF-16 text (a UTF-16 byte order mark); save it as UTF-8"
        elif head.isascii():
            got = f"a JSON value starting with {head.decode()!r}"
        else:
            got = f"a first byte {head!r} that starts no JSON text"
        raise InputError(f"{label}: expected a JSON list of caption records, got {got}")
    count = 0
    try:
        for item in ijson.items(handle, "item", use_float=True):
            yield None, item
            count += 1
    except ijson.JSONError as err:
        raise _json_error(label, err, count) from err


def _iter_json_lines(handle: BinaryIO, label: str) -> Iterator[tuple[int | None, Any]]:
    """Stream JSON Lines (one record per line, blank lines ignored), each with its line number."""
    count = 0
    _skip_bom(handle)
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError as err:
            record = _lenient_json(line)  # a lone surrogate escape, which orjson refuses
            if record is None:
                raise InputError(f"{label}: not valid JSON at line {number}: {err.msg}") from err
        yield number, record
        count += 1
    if not count:
        raise InputError(f"{label}: the file is empty; expected one JSON caption record per line")


def _lenient_json(line: bytes) -> Any:
    """``line`` parsed by the standard library, which accepts a lone UTF-16 surrogate escape
    (``"\\ud83d"``, half an emoji, as Python's json.dumps writes it) where orjson refuses the whole
    line; the surrogate becomes "?", as the JSON-list reader (ijson) makes it. None if not JSON."""
    try:
        return _replace_lone_surrogates(json.loads(line, parse_constant=_no_constant))
    except (ValueError, RecursionError):
        return None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # the standard library would take NaN and Infinity


def _replace_lone_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, list):
        return [_replace_lone_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {_replace_lone_surrogates(key): _replace_lone_surrogates(item) for key, item in value.items()}
    return value


def _zip_member(archive: zipfile.ZipFile, path: Path) -> str:
    """The one .json/.jsonl member to read: the only one, else the only ``imagenet_captions.json``."""
    names = [n for n in archive.namelist() if n.lower().endswith((".json", ".jsonl", ".ndjson"))
             and "__MACOSX" not in n and not Path(n).name.startswith("._")]  # macOS resource forks
    if not names:
        raise InputError(
            f"{path}: the zip holds no .json or .jsonl file (members: {archive.namelist()[:10]}); "
            "expected imagenet_captions.json inside"
        )
    if len(names) == 1:
        return names[0]
    preferred = [n for n in names if Path(n).name.lower() == "imagenet_captions.json"]
    if len(preferred) == 1:
        others = [n for n in names if n != preferred[0]]
        logger.warning("captions: %s holds %d .json/.jsonl files; reading %s and ignoring %s",
                       path, len(names), preferred[0], others)
        return preferred[0]
    raise InputError(
        f"{path}: the zip holds {len(names)} .json/.jsonl files ({names[:10]}) and not exactly one named "
        "imagenet_captions.json; expected one captions file (unzip it and pass the file with --captions)"
    )


def iter_records(path: str | os.PathLike) -> Iterator[Any]:
    """Stream caption records from a ``.json`` list, a ``.zip`` holding one, or ``.jsonl``.

    Nothing is extracted to disk and the file is never held whole in memory.
    """
    for _, record in iter_numbered_records(path):
        yield record


def iter_numbered_records(path: str | os.PathLike) -> Iterator[tuple[int | None, Any]]:
    """:func:`iter_records`, each record with its line number in a JSON Lines file (where blank
    lines are skipped, so the line says more than the record's position), None in a JSON list."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such captions file")
    if path.suffix.lower() != ".zip":
        reader = _iter_json_lines if path.suffix.lower() in (".jsonl", ".ndjson") else _iter_json_list
        with open(path, "rb") as handle:
            yield from reader(handle, str(path))
        return
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as err:
        raise InputError(f"{path}: not a readable zip file ({err})") from err
    with archive:
        member = _zip_member(archive, path)
        reader = _iter_json_lines if member.lower().endswith((".jsonl", ".ndjson")) else _iter_json_list
        with archive.open(member) as handle:
            try:
                yield from reader(io.BufferedReader(handle), f"{path}!{member}")
            except (zipfile.BadZipFile, EOFError, zlib.error) as err:  # bad CRC, cut short, bad deflate data
                raise InputError(f"{path}!{member}: the zip member is damaged ({err})") from err


def download_captions(cache_dir: str | os.PathLike, *, url: str = CAPTIONS_URL) -> Path:
    """Download the published zip into ``cache_dir`` once and return its path.

    The body is streamed into a temporary file that is renamed into place only when it is whole
    (its Content-Length, when the server sends one) and a zip file: an error page or a Git LFS
    pointer is never cached, so a later run does not fail on it.
    """
    target = Path(cache_dir) / Path(url).name
    if target.exists():
        if not zipfile.is_zipfile(target):
            raise InputError(f"{target}: the cached download of {url} is not a zip file; delete it to download "
                             "again, or pass --captions PATH to a local copy")
        logger.info("captions: using cached %s", target)
        return target
    logger.info("captions: downloading %s", url)
    try:
        with urllib.request.urlopen(url, timeout=60) as response, atomic_path(target) as tmp:
            with open(tmp, "wb") as out:
                shutil.copyfileobj(response, out, 1 << 20)
            _check_download(tmp, url, response.headers.get("Content-Length"))
    except (OSError, http.client.HTTPException) as err:  # no connection, HTTP errors, a body cut short
        raise InputError(f"cannot download {url} ({err}); pass --captions PATH to a local copy") from err
    return target


def _check_download(path: Path, url: str, content_length: str | None) -> None:
    """Refuse a download that is shorter than announced or not a zip file (nothing is cached)."""
    size = path.stat().st_size
    if content_length and content_length.strip().isdigit() and int(content_length) != size:
        raise InputError(f"{url}: the download has {size:,} of the {int(content_length):,} bytes announced; "
                         "nothing was cached, run again or pass --captions PATH to a local copy")
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as handle:
            head = handle.read(64)
        what = ("a Git LFS pointer, not the file it points to" if head.startswith(b"version https://git-lfs")
                else f"it starts with {head[:32]!r}")
        raise InputError(f"{url}: the download ({size:,} bytes) is not a zip file ({what}); nothing was cached; "
                         "pass --captions PATH to a local copy of imagenet_captions.zip")


def check_record(record: Any, *, known_wnids: dict[str, int], seen: set[str]) -> tuple[str, str, str] | None:
    """Validate one record. Returns ``None`` when it is usable, else ``(reason, field, detail)``
    with reason one of :data:`BAD_REASONS`. Adds a usable record's image id (the join key,
    :func:`image_id`) to ``seen``: a second record of the same image is a duplicate.
    """
    if _well_typed(record):
        wnid, filename = record["wnid"], record["filename"]
        if wnid in known_wnids and filename.startswith(wnid) and filename[len(wnid):len(wnid) + 1] == "_":
            key = image_id(filename)
            if key not in seen:
                seen.add(key)
                return None
    return _diagnose(record, known_wnids=known_wnids, seen=seen)


def _well_typed(record: Any) -> bool:
    """Fast check that ``record`` has every field with its type (the common case)."""
    return (
        type(record) is dict
        and type(record.get("filename")) is str
        and type(record.get("wnid")) is str
        and type(record.get("title")) is str
        and type(record.get("description")) is str
        and type(record.get("tags")) is list
        and set(map(type, record["tags"])) <= {str}
    )


def _diagnose(record: Any, *, known_wnids: dict[str, int], seen: set[str]) -> tuple[str, str, str] | None:
    """The slow path of :func:`check_record`: say what is wrong with ``record``."""
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
    key = image_id(filename)
    if key in seen:  # the join key: n01440764_1.JPEG and n01440764_1.jpg are one image
        return "duplicate_filename", "filename", f"{filename!r}: image {key} appeared in an earlier record"
    seen.add(key)
    return None


def image_id(filename: str) -> str:
    """Canonical basename used as the join key: ``n01440764_10026.JPEG`` -> ``n01440764_10026``."""
    stem = filename.rsplit("/", 1)[-1]
    return stem.rsplit(".", 1)[0] if "." in stem else stem
