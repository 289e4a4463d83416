"""Small I/O helpers shared by every stage: the input error type and atomic writes.

Every file a stage produces is first written under a temporary name in the same folder and
then renamed into place, so a crash never leaves a half-written file behind.
"""

from __future__ import annotations

import contextlib
import functools
import glob
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq


class InputError(ValueError):
    """Bad input from the user: the message names the file, the record and what was expected.

    The command line turns it into a one-line error and exit status 2.
    """


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds.

    Works for files and folders alike: whatever the block creates at the temporary path
    replaces ``path`` (:func:`replace_path`). Temporary paths of ``path`` that a killed process left
    behind (``.NAME.*.tmp``) are removed first: at full scale a half-written ``pairs`` folder holds
    gigabytes. One process writes a given path at a time.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    tmp.rmdir()  # the block creates a file or a folder here
    try:
        yield tmp
        replace_path(tmp, path)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


def replace_path(tmp: Path, path: Path) -> None:
    """Move ``tmp`` (a file or a folder, named ``.NAME...tmp``) onto ``path``. An existing folder at
    ``path`` is renamed aside first and removed only once the new one is in place: a failed move puts
    it back, and a kill between the two renames (microseconds, not the removal of gigabytes) leaves
    it under a temporary name that the next :func:`atomic_path` of ``path`` clears."""
    old = None
    if path.is_dir() and not path.is_symlink():
        old = tmp.with_name(tmp.name.removesuffix(".tmp") + ".old.tmp")
        os.replace(path, old)
    try:
        os.replace(tmp, path)
    except OSError:
        if old is not None:
            os.replace(old, path)  # put the old folder back
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_json(obj: object, path: str | os.PathLike) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(orjson.dumps(obj, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))


def read_json(path: str | os.PathLike) -> object:
    """Read a JSON file; a broken file is an :class:`InputError` naming it."""
    try:
        return orjson.loads(Path(path).read_bytes())
    except orjson.JSONDecodeError as err:
        raise InputError(f"{path}: not valid JSON ({err})") from err


def write_parquet(table: pa.Table, path: str | os.PathLike, **kwargs) -> None:
    """Write ``table`` to a Parquet file, atomically."""
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, **kwargs)


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's content, remembered while its size and modification time are unchanged
    (a stage that fingerprints its inputs and also keys a cache by them reads each file once)."""
    stat = os.stat(path)
    return _file_sha256(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def require_file(path: str | os.PathLike, *, made_by: str) -> Path:
    """Return ``path`` if it exists, else raise an :class:`InputError` saying which stage makes it."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path} does not exist: run `imagenet-multimodal {made_by}` first")
    return path


def read_parquet(path: str | os.PathLike, *, columns=None, made_by: str | None = None) -> pa.Table:
    """Read a Parquet file (``columns`` only, when given). A missing file (naming the stage that
    makes it, ``made_by``), an unreadable one or a missing column is an :class:`InputError`
    naming the file and what was expected."""
    path = require_file(path, made_by=made_by) if made_by else Path(path)
    rerun = f"; rerun `imagenet-multimodal {made_by}`" if made_by else ""
    try:
        names = pq.read_schema(path).names
        missing = [name for name in columns or () if name not in names]
        if missing:
            raise InputError(f"{path}: expected columns {list(columns)}, missing {missing}{rerun}")
        return pq.read_table(path, columns=columns)
    except (pa.ArrowException, OSError) as err:
        raise InputError(f"{path}: cannot read as Parquet ({err}){rerun}") from err


def digest_table(table, columns) -> str:
    """A short content digest (BLAKE2b, 8 bytes) of ``columns`` of an Arrow ``table``: the same rows
    give the same digest however the table is chunked or sliced (the IPC form of one contiguous
    batch; raw buffers held chunk boundaries and the data outside a slice)."""
    digest = hashlib.blake2b(digest_size=8)
    for batch in table.select(list(columns)).combine_chunks().to_batches():
        digest.update(batch.serialize())
    return digest.hexdigest()


def synthetic_source(work: Path) -> bool | None:
    """Whether ``prepare`` read a synthetic sample (``WORK/prepare_stats.json``); ``None``: unknown."""
    path = Path(work) / "prepare_stats.json"
    return bool(read_json(path).get("synthetic")) if path.exists() else None


# the prepare stage's outputs (here, not in prepare: the training loop checks them where the
# caption readers' libraries may be missing, on a GPU image)


def prepared_outputs(work: Path) -> dict[str, str] | None:
    """SHA-256 of every output (``captions.parquet``, ``pairs/*``): a rerun skips only when they are
    the files this run wrote (a killed rerun with other options can leave a new captions.parquet
    beside old pairs); ``None`` when any is missing."""
    work = Path(work)
    files = [work / "captions.parquet", *sorted((work / "pairs").glob("*"))]
    if not (work / "pairs").is_dir() or not all(path.is_file() for path in files):
        return None
    return {path.relative_to(work).as_posix(): file_sha256(path) for path in files}


def check_outputs(work: Path) -> None:
    """Refuse a work folder whose ``captions.parquet`` and ``pairs/`` are not the files that
    ``prepare_stats.json`` records: prepare was killed between writing them (new roles beside old
    pairs: a test caption the model trains on), or they were changed since. Folders without the
    record (pairs made by other means, older folders) are not checked."""
    stats_path = Path(work) / "prepare_stats.json"
    recorded = read_json(stats_path).get("outputs") if stats_path.exists() else None
    if recorded is not None and recorded != prepared_outputs(work):
        raise InputError(f"{work}: captions.parquet and pairs/ are not the files {stats_path.name} records (prepare "
                         f"was interrupted between them, or they changed since); rerun `imagenet-multimodal prepare "
                         f"--work {work}`")
