"""Helpers for benchmarking the image join (:mod:`imagenet_multimodal.images`) against raw tarfile.

``make_layouts`` writes a synthetic ImageNet train set in the three layouts the builder reads
(random bytes of JPEG size: the reader never decodes); ``raw_tar`` is the peer, the obvious
nested ``tarfile`` loop that reads every image of ``ILSVRC2012_img_train.tar``. Run directly it
times both (median of ``--repeat`` interleaved runs, page cache warm) and writes
``bench/results/builder_images.json``:

    python bench/builder_images.py [--classes 30] [--per-class 100] [--kb 110] [--repeat 5]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tarfile
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

from imagenet_multimodal.images import iter_images
from imagenet_multimodal.io import write_json
from imagenet_multimodal.sample_images import write_layouts as make_layouts


def synthetic_images(classes: int, per_class: int, kb: int, seed: int = 0) -> dict[str, dict[str, bytes]]:
    """{wnid: {file name: bytes}} with sizes spread around ``kb`` KiB, like ImageNet's JPEGs."""
    rng = random.Random(seed)
    block = rng.randbytes(4 * kb * 1024)
    out = {}
    for c in range(classes):
        wnid = f"n{1440764 + c:08d}"
        out[wnid] = {}
        for i in range(per_class):
            size = int(kb * 1024 * rng.uniform(0.5, 1.5))
            start = rng.randrange(len(block) - size)
            out[wnid][f"{wnid}_{i * 7 + 1}.JPEG"] = block[start:start + size]
    return out


def raw_tar(path: Path) -> tuple[int, int]:
    """The peer: read every image of a tar of class tars with plain tarfile; (images, bytes)."""
    count = total = 0
    with tarfile.open(path, mode="r|") as outer:
        for member in outer:
            with tarfile.open(fileobj=outer.extractfile(member), mode="r|") as inner:
                for image in inner:
                    total += len(inner.extractfile(image).read())
                    count += 1
    return count, total


def raw_parquet(data_dir: Path) -> tuple[int, int]:
    """Peer for the Parquet layout: every shard's image column through ``to_pylist``; (images, bytes)."""
    count = total = 0
    for shard in sorted((data_dir / "data").glob("train-*.parquet")):
        for batch in pq.ParquetFile(shard).iter_batches(columns=["image"]):
            for row in batch.column(0).to_pylist():
                total += len(row["bytes"])
                count += 1
    return count, total


def ours(data_dir: Path, wanted: set[str] | None = None) -> tuple[int, int]:
    """Read through :func:`iter_images`; (images, bytes)."""
    count = total = 0
    for _, image in iter_images(data_dir, wanted=wanted):
        total += len(image["bytes"])
        count += 1
    return count, total


def _time(runs: dict, *, repeat: int) -> dict:
    """Median wall time of each ``name: (fn, args)``, the runs interleaved so that noise hits all alike."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    results = {}
    for _ in range(repeat):
        for name, (fn, *args) in runs.items():
            start = time.perf_counter()
            results[name] = fn(*args)
            times[name].append(time.perf_counter() - start)
    return {name: {"median_s": statistics.median(times[name]), "images": results[name][0],
                   "bytes": results[name][1]} for name in runs}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=30)
    parser.add_argument("--per-class", type=int, default=100)
    parser.add_argument("--kb", type=int, default=110)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "builder_images.json")
    args = parser.parse_args(argv)
    images = synthetic_images(args.classes, args.per_class, args.kb)
    every = {name.rsplit(".", 1)[0] for files in images.values() for name in files}
    wanted = set(random.Random(1).sample(sorted(every), int(len(every) * 0.36)))  # 463,622 / 1.28M
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_layouts(Path(tmp), images)
        del images
        plan = {"raw tarfile": (raw_tar, paths["tar"] / "ILSVRC2012_img_train.tar"),
                "raw pyarrow (parquet)": (raw_parquet, paths["parquet"])}
        for layout, folder in paths.items():
            plan[f"iter_images {layout}"] = (ours, folder)
            plan[f"iter_images {layout}, 36% wanted"] = (ours, folder, wanted)
        runs = _time(plan, repeat=args.repeat)
    raw = runs["raw tarfile"]["median_s"]
    print(f"{'run':<36} {'median s':>9} {'images':>7} {'MB/s':>7} {'speed vs raw':>12}")
    for name, run in runs.items():
        rate = run["bytes"] / run["median_s"] / 1e6
        print(f"{name:<36} {run['median_s']:9.3f} {run['images']:7d} {rate:7.0f} {raw / run['median_s']:11.2f}x")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json({"args": {k: str(v) for k, v in vars(args).items()}, "runs": runs},
               args.out)


if __name__ == "__main__":
    main()
