"""Reading the user's own ImageNet train images for the builder's image join.

Images are not republished (ImageNet's terms): the ``images-*`` configs join them from a copy the
user already has, in one of three layouts (:data:`LAYOUTS`):

* ``"parquet"``: the Hub's ``ILSVRC/imagenet-1k`` download, ``data/train-00000-of-00294.parquet`` …
  with columns ``image: struct<bytes: binary, path: string>`` and ``label``. Its file names carry a
  ``_<wnid>`` suffix: ``n01440764_10026_n01440764.JPEG``.
* ``"tar"``: the original ``ILSVRC2012_img_train.tar``, a tar of per-class tars ``n01440764.tar``
  each holding ``n01440764_10026.JPEG`` … (plain image members in the outer tar are read too).
* ``"folder"``: ``train/<wnid>/<file>.JPEG`` (``data_dir`` may also be the ``train`` folder itself).

:func:`iter_images` yields ``(image_id, {"path": name, "bytes": raw bytes})`` with the canonical
join key ``n01440764_10026`` (:func:`canonical_id`). Bytes pass through unchanged, never decoded:
ImageNet's CMYK JPEGs, grayscale JPEGs and the PNG saved as ``.JPEG`` reach the user as stored.
Archives are read in place (headers, then each wanted image at its offset), never extracted;
order is the stored order (sorted file names, archive member order), so keys are deterministic.

Example::

    wanted = {"n01440764_10026", "n01443537_2"}
    for image_id, image in iter_images("/data/imagenet", wanted=wanted):
        ...
    report = join_report(wanted, found)
"""

from __future__ import annotations

import contextlib
import hashlib
import heapq
import logging
import os
import re
import tarfile
from collections.abc import Collection, Iterator
from collections.abc import Set as AbstractSet
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .captions import image_id
from .io import InputError

logger = logging.getLogger(__name__)

LAYOUTS = ("parquet", "tar", "folder")
TRAIN_TAR = "ILSVRC2012_img_train.tar"
PARQUET_GLOB = "train-*.parquet"
GET_IMAGENET = (
    "ImageNet is not redistributed: download it from https://image-net.org/download.php "
    "(ILSVRC2012_img_train.tar), or the Hub dataset ILSVRC/imagenet-1k after accepting its terms "
    "(huggingface-cli download ILSVRC/imagenet-1k --repo-type dataset --local-dir DIR)"
)
PARQUET_BATCH_ROWS = 256  # ~30 MB of ImageNet JPEGs per Arrow batch
_WNID = re.compile(r"n\d{8}")
# image files in tars and folders (any case); others that share an image's name (an annotation
# n01440764_10026.xml, say) are not images and must not be read as one
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")
# canonical_id() in Arrow's RE2 dialect: basename, minus the extension and the `_<wnid>` suffix
_ID_PATTERN = r"^(?:.*/)?(.+?)(?:_n[0-9]{8})?(?:\.[^./]*)?$"


def canonical_id(name: str) -> str:
    """The join key of an image file name: basename without extension or the Hub's wnid suffix.

    ``n01440764_10026.JPEG`` and ``data/n01440764_10026_n01440764.JPEG`` -> ``n01440764_10026``.
    """
    stem = image_id(name)
    if len(stem) > 10 and stem[-10] == "_" and stem[-9] == "n" and stem[-8:].isdigit() and stem.isascii():
        return stem[:-10]
    return stem


def _is_image(name: str) -> bool:
    return name[:1] != "." and name.lower().endswith(IMAGE_SUFFIXES)


def _looked_for(data_dir: Path) -> str:
    return (
        f"(1) Parquet shards {data_dir / 'data' / PARQUET_GLOB} or {data_dir / PARQUET_GLOB} "
        f"(the Hub's ILSVRC/imagenet-1k), or data_dir being one .parquet file; "
        f"(2) the tar {data_dir / TRAIN_TAR}, or data_dir being a .tar file; "
        f"(3) class folders {data_dir / 'train' / '<wnid>'}/*.JPEG, or <wnid> folders "
        f"(n01440764 …) directly in {data_dir}"
    )


def _find_parquet(data_dir: Path) -> list[Path]:
    if data_dir.is_file():
        return [data_dir] if data_dir.suffix == ".parquet" else []
    for folder in (data_dir / "data", data_dir):
        shards = sorted(folder.glob(PARQUET_GLOB))
        if shards:
            return shards
    return []


def _find_tar(data_dir: Path) -> list[Path]:
    if data_dir.is_file():
        return [data_dir] if data_dir.suffix == ".tar" else []
    return [data_dir / TRAIN_TAR] if (data_dir / TRAIN_TAR).is_file() else []


def _has_class_dirs(folder: Path) -> bool:
    if not folder.is_dir():
        return False
    with os.scandir(folder) as entries:
        return any(_WNID.fullmatch(e.name) and e.is_dir() for e in entries)


def _find_folder(data_dir: Path) -> list[Path]:
    for folder in (data_dir / "train", data_dir):
        if _has_class_dirs(folder):
            return [folder]
    return []


_FINDERS = {"parquet": _find_parquet, "tar": _find_tar, "folder": _find_folder}


def locate(data_dir: str | os.PathLike, *, layout: str | None = None) -> tuple[str, list[Path]]:
    """Find the images under ``data_dir``: returns ``(layout, sources)``.

    ``sources`` are the Parquet shards (sorted), the one tar, or the one train folder. With
    ``layout=None`` the layouts are tried in the order of :data:`LAYOUTS`; the first found wins.
    Raises :class:`InputError` naming ``data_dir`` and everything it looked for.
    """
    data_dir = Path(data_dir)
    if layout is not None and layout not in LAYOUTS:
        raise InputError(f"unknown image layout {layout!r}; expected one of {', '.join(LAYOUTS)}")
    if not data_dir.exists():
        raise InputError(f"{data_dir}: no such file or folder; expected your ImageNet train images. {GET_IMAGENET}")
    for name in [layout] if layout else LAYOUTS:
        sources = _FINDERS[name](data_dir)
        if sources:
            logger.debug("images: %s layout, %d source(s) under %s", name, len(sources), data_dir)
            return name, sources
    which = f"no ImageNet train images in the {layout} layout" if layout else "no ImageNet train images"
    raise InputError(f"{data_dir}: {which}. Looked for: {_looked_for(data_dir)}. {GET_IMAGENET}")


def version(data_dir: str | os.PathLike) -> str:
    """A short digest of what ``data_dir`` holds now, for a cache key: the names, sizes and modification
    times of its Parquet shards or tar, or of its class folders (a file added or removed renews a
    folder's time). ``"none"`` where no layout is found (reading it will say why)."""
    try:
        layout, sources = locate(data_dir)
    except InputError:
        return "none"
    if layout == "folder":
        with os.scandir(sources[0]) as entries:
            sources = sorted(Path(e.path) for e in entries if _WNID.fullmatch(e.name) and e.is_dir())
    digest = hashlib.blake2b(layout.encode(), digest_size=8)
    for path in sources:
        stat = path.stat()
        digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def detect_layout(data_dir: str | os.PathLike) -> str:
    """Return the layout of the images under ``data_dir``: one of ``"parquet"``, ``"tar"``, ``"folder"``.

    Raises :class:`InputError` naming ``data_dir``, what was looked for, and where to get ImageNet.
    """
    return locate(data_dir)[0]


def iter_images(
    data_dir: str | os.PathLike,
    *,
    wanted: Collection[str] | None = None,
    layout: str | None = None,
) -> Iterator[tuple[str, dict]]:
    """Yield ``(image_id, {"path": name, "bytes": raw bytes})`` for the images under ``data_dir``.

    ``path`` is the name as stored (tar member, Parquet ``image.path``, file name in the folder).
    ``wanted`` holds canonical ids (``captions.image_id(record["filename"])``): only those are read,
    others are skipped before their bytes are touched, whole class tars and folders whose wnid no
    wanted id starts with are skipped, and reading stops once every wanted id was yielded.
    Each id is yielded once: a later image with an id already read is skipped, and counted in a warning.
    ``layout`` forces a layout instead of detecting it.
    Damaged archives and foreign Parquet schemas raise :class:`InputError` naming the file.
    """
    layout, sources = locate(data_dir, layout=layout)
    if wanted is not None and not isinstance(wanted, AbstractSet):  # sets and dict key views pass uncopied
        wanted = set(wanted)
    if wanted is not None and not wanted:
        return
    reader = {"parquet": _iter_parquet, "tar": _iter_tar, "folder": _iter_folder}[layout]
    # said here, where the reading starts (the builder also locates the images for its cache key
    # and its early error, which need not say it again)
    logger.info("images: %s layout, %d source(s) under %s", layout, len(sources), data_dir)
    remaining = len(wanted) if wanted is not None else None
    seen: set[str] = set()  # an id read twice (old shards beside new ones, x.JPEG and x.png) is yielded once
    repeats, examples = 0, []
    with contextlib.closing(reader(sources, wanted)) as images:  # closes open files on an early stop
        for key, image in images:
            if key in seen:
                repeats += 1
                if len(examples) < 3:
                    examples.append(image["path"])
                continue
            seen.add(key)
            yield key, image
            if remaining is not None:
                remaining -= 1
                if not remaining:
                    break
    if repeats:
        logger.warning("images: %d image(s) under %s repeat an id read before and were skipped (the first copy "
                       "is kept), e.g. %s; are two downloads side by side?", repeats, data_dir, examples)
    logger.info("images: read %d image(s) from %s (%s layout)", len(seen), data_dir, layout)


def _class_filter(wanted: Collection[str] | None) -> frozenset[str] | None:
    """The wnids (the part before the first ``_``) of the wanted ids, or ``None`` for all."""
    return None if wanted is None else frozenset(key.split("_", 1)[0] for key in wanted)


# --- Parquet -----------------------------------------------------------------------------------


def _image_fields(parquet: pq.ParquetFile, path: Path) -> None:
    """Check that ``parquet`` has the Hub's ``image: struct<bytes, path>`` column."""
    schema = parquet.schema_arrow
    index = schema.get_field_index("image")
    kind = schema.field(index).type if index >= 0 else None
    ok = (
        isinstance(kind, pa.StructType)
        and kind.get_field_index("bytes") >= 0
        and kind.get_field_index("path") >= 0
        and kind.field("bytes").type in (pa.binary(), pa.large_binary())
        and kind.field("path").type in (pa.string(), pa.large_string())
    )
    if not ok:
        found = ", ".join(f"{field.name}: {field.type}" for field in schema)
        raise InputError(
            f"{path}: expected a column image: struct<bytes: binary, path: string> (the Hub's "
            f"ILSVRC/imagenet-1k Parquet), found schema {{{found}}}"
        )


def _iter_parquet(shards: list[Path], wanted: Collection[str] | None) -> Iterator[tuple[str, dict]]:
    value_set = None if wanted is None else pa.array(sorted(wanted), pa.string())
    for shard in shards:
        try:
            parquet = pq.ParquetFile(shard)
        except (pa.ArrowException, OSError) as err:
            raise InputError(f"{shard}: not a readable Parquet file ({err})") from err
        with parquet:
            _image_fields(parquet, shard)
            try:
                yield from _parquet_rows(parquet, shard, value_set)
            except (pa.ArrowException, OSError) as err:
                raise InputError(f"{shard}: the Parquet file is damaged ({err})") from err


def _parquet_rows(parquet: pq.ParquetFile, shard: Path, value_set: pa.Array | None) -> Iterator[tuple[str, dict]]:
    """Rows of one shard; ids are computed and filtered in Arrow before any bytes are copied."""
    row = 0
    for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=["image"]):
        image = batch.column(0)
        children = dict(zip((f.name for f in image.type), image.flatten()))
        paths, data = children["path"], children["bytes"]
        if paths.null_count:
            first = row + paths.is_null().to_pylist().index(True)
            raise InputError(f"{shard}: row {first} has no image.path; expected the image's file name there")
        keys = pc.replace_substring_regex(paths, pattern=_ID_PATTERN, replacement=r"\1")
        row += len(batch)
        if value_set is not None:
            mask = pc.is_in(keys, value_set=value_set)
            if not pc.any(mask).as_py():
                continue
            keys, paths, data = keys.filter(mask), paths.filter(mask), data.filter(mask)
        if data.null_count:
            raise InputError(f"{shard}: an image in rows {row - len(batch)}..{row - 1} has no bytes")
        for key, name, raw in zip(keys.to_pylist(), paths.to_pylist(), data.to_pylist()):
            yield key, {"path": name, "bytes": raw}


# --- tar ---------------------------------------------------------------------------------------


class _StrictTarInfo(tarfile.TarInfo):
    """A TarInfo whose reader fails loudly where tarfile would silently end the archive.

    tarfile treats a truncated header, a bad-checksum header and a missing end-of-archive marker
    after the first member as the end of the archive; an ImageNet tar cut short would lose its
    tail without a word. Here they raise :class:`tarfile.ReadError`.
    """

    @classmethod
    def fromtarfile(cls, tar):
        try:
            return super().fromtarfile(tar)
        except tarfile.EOFHeaderError:
            raise  # the end-of-archive marker: a proper end
        except tarfile.EmptyHeaderError as err:
            if tar.offset == 0:
                raise
            raise tarfile.ReadError(f"data ends at byte {tar.offset} without the end-of-archive marker") from err
        except (tarfile.TruncatedHeaderError, tarfile.InvalidHeaderError) as err:
            if tar.offset == 0:
                raise
            raise tarfile.ReadError(f"{err} at byte {tar.offset}") from err


def _iter_tar(sources: list[Path], wanted: Collection[str] | None) -> Iterator[tuple[str, dict]]:
    """tarfile reads the headers (seeking past data nobody asked for); each image is then one
    ``os.pread`` at its offset in the file: ~3x faster than streaming the bytes through tarfile's
    nested file objects (bench/builder_images.py). Every read is bounds-checked, so a truncated archive
    still fails loudly."""
    (path,) = sources
    classes = _class_filter(wanted)
    inner = None
    try:
        with open(path, "rb") as handle, tarfile.open(fileobj=handle, mode="r:", tarinfo=_StrictTarInfo) as outer:
            fd, size = handle.fileno(), os.fstat(handle.fileno()).st_size
            for member in outer:
                if not member.isfile():
                    continue
                name = member.name
                if name.endswith(".tar"):
                    if classes is not None and name.rsplit("/", 1)[-1][:-4] not in classes:
                        continue  # a class with no wanted image: skipped without opening it
                    inner = name
                    # a sparse class tar (a repack with `tar -S`) is not stored in one piece: its
                    # images go through tarfile, which knows the map
                    at = None if member.issparse() else (fd, member.offset_data, member.size)
                    with tarfile.open(fileobj=outer.extractfile(member), mode="r:", tarinfo=_StrictTarInfo) as tar:
                        yield from _tar_members(tar, wanted, at)
                    inner = None
                elif _is_image(name.rsplit("/", 1)[-1]):
                    key = canonical_id(name)
                    if wanted is None or key in wanted:
                        yield key, {"path": name, "bytes": _read_member(outer, member, fd, 0, size)}
    except (tarfile.TarError, EOFError) as err:
        raise _tar_error(path, inner, err) from err


def _tar_members(
    tar: tarfile.TarFile, wanted: Collection[str] | None, at: tuple[int, int, int] | None
) -> Iterator[tuple[str, dict]]:
    """Image members of one class tar, in stored order; unwanted members are not read.

    ``at = (fd, base, limit)``: the class tar lies at byte ``base`` of ``fd`` and spans ``limit``
    bytes, so each image is one :func:`_read_member`; ``None``: read through ``tar`` itself."""
    for member in tar:
        name = member.name
        base_name = name.rsplit("/", 1)[-1]
        if not member.isfile() or not _is_image(base_name):
            continue
        key = canonical_id(base_name)
        if wanted is None or key in wanted:
            data = tar.extractfile(member).read() if at is None else _read_member(tar, member, *at)
            yield key, {"path": name, "bytes": data}


def _read_member(tar: tarfile.TarFile, member: tarfile.TarInfo, fd: int, base: int, limit: int) -> bytes:
    """The bytes of a regular member at ``base + member.offset_data`` of ``fd``, bounds checked."""
    if member.issparse():
        return tar.extractfile(member).read()
    if member.offset_data + member.size > limit:
        raise tarfile.ReadError(f"{member.name} needs {member.size} bytes, the archive ends first")
    data = os.pread(fd, member.size, base + member.offset_data)
    if len(data) != member.size:
        raise tarfile.ReadError(f"{member.name}: read {len(data)} of {member.size} bytes")
    return data


def _tar_error(path: Path, inner: str | None, err: Exception) -> InputError:
    if inner is None:
        where = f"{path}: the tar archive is truncated or damaged ({err})"
    else:
        where = f"{path}: the class tar {inner} inside it is truncated or damaged ({err})"
    return InputError(
        f"{where}; expected {TRAIN_TAR}: a tar of per-class tars (n01440764.tar …) each holding JPEG "
        "files such as n01440764_10026.JPEG. Download it again or check its size and checksum"
    )


# --- folder ------------------------------------------------------------------------------------


def _sorted_entries(folder: str | os.PathLike) -> list[os.DirEntry]:
    with os.scandir(folder) as entries:
        return sorted((e for e in entries if e.name[:1] != "."), key=lambda e: e.name)


def _iter_folder(sources: list[Path], wanted: Collection[str] | None) -> Iterator[tuple[str, dict]]:
    (root,) = sources
    classes = _class_filter(wanted)
    for class_dir in _sorted_entries(root):
        if not class_dir.is_dir() or (classes is not None and class_dir.name not in classes):
            continue
        for entry in _sorted_entries(class_dir.path):
            if not _is_image(entry.name):
                continue
            key = canonical_id(entry.name)
            if (wanted is None or key in wanted) and entry.is_file():
                with open(entry.path, "rb") as handle:
                    yield key, {"path": entry.name, "bytes": handle.read()}


# --- report ------------------------------------------------------------------------------------


def join_report(wanted: Collection[str], found: Collection[str], *, examples: int = 10) -> dict:
    """Summarise the image join: how many wanted ids were found, and which are missing.

    Returns ``{"wanted", "found", "missing", "coverage", "missing_classes", "missing_examples"}``:
    counts, the found fraction, the number of wnids with a missing image, and the first
    ``examples`` missing ids in sorted order. Ids found but not wanted are not counted.
    """
    total, missing, classes = 0, 0, set()
    def missing_ids():  # streamed: no copy of a 1.28M-entry index
        nonlocal total, missing
        for key in wanted:
            total += 1
            if key not in found:
                missing += 1
                classes.add(key.split("_", 1)[0])
                yield key

    smallest = heapq.nsmallest(examples, missing_ids())
    return {
        "wanted": total,
        "found": total - missing,
        "missing": missing,
        "coverage": (total - missing) / total if total else 1.0,
        "missing_classes": len(classes),
        "missing_examples": smallest,
    }
