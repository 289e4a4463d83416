"""Synthetic ImageNet train images in the three layouts the builder reads (for tests, demo, benchmarks).

Nothing here is ImageNet: the images are generated, and say so in nothing but their origin, so keep
them out of anything published.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

TRAIN_TAR = "ILSVRC2012_img_train.tar"
HUB_IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def synthetic_jpegs(image_ids: Iterable[str], *, size: int = 32, seed: int = 0) -> dict[str, dict[str, bytes]]:
    """Small real JPEGs (flat colour per class, noise per image), grouped ``{wnid: {file name: bytes}}``."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    out: dict[str, dict[str, bytes]] = {}
    for image_id in sorted(image_ids):
        wnid = image_id.split("_")[0]
        base = np.frombuffer(wnid.encode()[-3:], dtype=np.uint8)
        pixels = np.clip(base + rng.integers(-20, 20, (size, size, 3)), 0, 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels, "RGB").save(buffer, format="JPEG", quality=85)
        out.setdefault(wnid, {})[f"{image_id}.JPEG"] = buffer.getvalue()
    return out


def _write_tar(target, files: dict[str, bytes]) -> None:
    with tarfile.open(fileobj=target, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def write_layouts(root: Path, images: dict[str, dict[str, bytes]], *, shard_rows: int = 500) -> dict[str, Path]:
    """Write ``images`` as the original tar of class tars, the Hub's Parquet shards (file names with
    the ``_<wnid>`` suffix) and a ``train/<wnid>/`` folder under ``root``; returns each layout's data_dir.
    """
    root.mkdir(parents=True, exist_ok=True)
    class_tars = {}
    for wnid, files in images.items():
        buffer = io.BytesIO()
        _write_tar(buffer, files)
        class_tars[f"{wnid}.tar"] = buffer.getvalue()
    (root / "tar").mkdir(exist_ok=True)
    with open(root / "tar" / TRAIN_TAR, "wb") as out:
        _write_tar(out, class_tars)
    rows = [{"bytes": data, "path": name.replace(".JPEG", f"_{wnid}.JPEG")}
            for wnid, files in images.items() for name, data in files.items()]
    shards = max(1, -(-len(rows) // shard_rows))
    (root / "parquet" / "data").mkdir(parents=True, exist_ok=True)
    for index in range(shards):
        part = rows[index * shard_rows:(index + 1) * shard_rows]
        table = pa.table({"image": pa.array(part, HUB_IMAGE), "label": pa.array([0] * len(part), pa.int64())})
        pq.write_table(table, root / "parquet" / "data" / f"train-{index:05d}-of-{shards:05d}.parquet",
                       row_group_size=100)
    for wnid, files in images.items():
        (root / "folder" / "train" / wnid).mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (root / "folder" / "train" / wnid / name).write_bytes(data)
    return {"tar": root / "tar", "parquet": root / "parquet", "folder": root / "folder"}
