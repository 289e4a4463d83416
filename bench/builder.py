"""Benchmark of the builder's image join (``images-filtered``) against its peers, in one run.

On a few thousand synthetic JPEG-sized images (random bytes of ~110 KB: nothing decodes them) laid
out as the original ``ILSVRC2012_img_train.tar``, the same run times, interleaved, median of
``--repeat`` after one untimed warm-up round (the read-only runs first, then the two that write an
Arrow cache, each after an ``os.sync``):

* ``tarfile (limit)``: reading every member of the tar of class tars with plain ``tarfile``;
* ``builder, generator only``: the builder's ``_generate_examples`` (the join and the rows), which is
  what the builder itself controls;
* ``builder, streaming``: ``ImagenetMultimodal(config_name="images-filtered", ...)`` from the tar,
  iterated with ``as_streaming_dataset`` (join with the captions, images not decoded);
* ``imagefolder, streaming``: ``datasets``' ``imagefolder`` on the same images as a folder, streamed;
* ``..., Arrow cache``: the same two with ``download_and_prepare`` into a fresh cache (both also
  write ~330 MB of Arrow to disk, which dominates on this machine).

Then the builder's peak memory with a caption index of 1,281,167 entries (every ImageNet train
image captioned), measured in a fresh process. Prints a table; writes ``bench/results/builder.json``.

    python bench/builder.py [--classes 30] [--per-class 100] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).parent))
from builder_images import raw_tar, synthetic_images

from imagenet_multimodal import ImagenetMultimodal
from imagenet_multimodal.io import write_json
from imagenet_multimodal.sample_images import write_layouts
from imagenet_multimodal.schema import features

IMAGENET_TRAIN = 1_281_167


def write_artifacts(root: Path, image_ids: list[str]) -> Path:
    """A minimal Hub folder whose ``filtered`` config keeps a caption for each of ``image_ids``."""
    n = len(image_ids)
    table = pa.table({
        "image_id": image_ids, "filename": [f"{i}.JPEG" for i in image_ids], "label": [0] * n,
        "wnid": [i.split("_")[0] for i in image_ids], "class_name": ["tench"] * n,
        "text": ["a photo of a fish"] * n, "title": ["a photo"] * n, "description": ["of a fish"] * n,
        "tags": [["fish"]] * n, "p_correct": [0.9] * n, "relevance": [1.0] * n,
    })
    target = features("filtered").arrow_schema
    (root / "data" / "filtered").mkdir(parents=True, exist_ok=True)
    pq.write_table(table.select(target.names).cast(target), root / "data" / "filtered" / "train-00000-of-00001.parquet")
    return root


def run_builder(artifacts: Path, data_dir: Path, cache: Path) -> int:
    builder = ImagenetMultimodal(config_name="images-filtered", artifacts=str(artifacts), data_dir=str(data_dir),
                                 cache_dir=str(cache))
    builder.download_and_prepare()
    return builder.info.splits["train"].num_examples


def generate_builder(artifacts: Path, data_dir: Path, cache: Path) -> int:
    """The builder's own work: its ``_generate_examples`` (join + rows), without ``datasets``' encoding."""
    builder = ImagenetMultimodal(config_name="images-filtered", artifacts=str(artifacts), data_dir=str(data_dir),
                                 cache_dir=str(cache))
    return sum(1 for _ in builder._generate_examples(split="train", data_dir=str(data_dir)))


def stream_builder(artifacts: Path, data_dir: Path, cache: Path) -> int:
    builder = ImagenetMultimodal(config_name="images-filtered", artifacts=str(artifacts), data_dir=str(data_dir),
                                 cache_dir=str(cache))
    stream = builder.as_streaming_dataset(split="train").cast_column("image", datasets.Image(decode=False))
    return sum(1 for _ in stream)


def stream_imagefolder(folder: Path, cache: Path) -> int:
    stream = datasets.load_dataset("imagefolder", data_dir=str(folder), cache_dir=str(cache), split="train",
                                   streaming=True).cast_column("image", datasets.Image(decode=False))
    return sum(1 for _ in stream)


def run_imagefolder(folder: Path, cache: Path) -> int:
    builder = datasets.load_dataset_builder("imagefolder", data_dir=str(folder), cache_dir=str(cache))
    builder.download_and_prepare()
    return builder.info.splits["train"].num_examples


MEMORY = """
def peak():  # VmHWM: this process's own high-water mark (ru_maxrss is inherited across fork)
    return next(int(x.split()[1]) for x in open("/proc/self/status") if x.startswith("VmHWM:")) / 1024
import json, resource, sys
from pathlib import Path
sys.path.insert(0, sys.argv[4])
from builder import run_builder
n = run_builder(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
print(json.dumps({"examples": n, "peak_rss_mb": peak()}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--classes", type=int, default=30)
    parser.add_argument("--per-class", type=int, default=100)
    parser.add_argument("--kb", type=int, default=110)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "builder.json")
    args = parser.parse_args()
    datasets.disable_progress_bars()
    images = synthetic_images(args.classes, args.per_class, args.kb)
    ids = sorted(name.rsplit(".", 1)[0] for files in images.values() for name in files)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        layouts = write_layouts(tmp / "imagenet", images)
        artifacts = write_artifacts(tmp / "artifacts", ids)
        read_only = {
            "tarfile (limit)": lambda a: raw_tar(layouts["tar"] / "ILSVRC2012_img_train.tar")[0],
            "builder, generator only": lambda a: generate_builder(artifacts, layouts["tar"], tmp / f"g{a}"),
            "builder, streaming": lambda a: stream_builder(artifacts, layouts["tar"], tmp / f"s{a}"),
            "imagefolder, streaming": lambda a: stream_imagefolder(layouts["folder"], tmp / f"t{a}"),
        }
        writing = {
            "builder, Arrow cache": lambda a: run_builder(artifacts, layouts["tar"], tmp / f"c{a}"),
            "imagefolder, Arrow cache": lambda a: run_imagefolder(layouts["folder"], tmp / f"f{a}"),
        }
        times: dict[str, list[float]] = {}
        # the read-only runs first, then the ones that write ~330 MB each: their disk writeback
        # would otherwise land in the next read-only run. Round 0 warms imports and page cache.
        for group in (read_only, writing):
            for attempt in range(args.repeat + 1):
                for name, fn in group.items():
                    if group is writing:
                        os.sync()  # the previous run's writes are flushed before the clock starts
                    start = time.perf_counter()
                    count = fn(attempt)
                    elapsed = time.perf_counter() - start
                    if count != len(ids):
                        raise RuntimeError(f"{name} gave {count} examples, expected {len(ids)}")
                    if attempt:
                        times.setdefault(name, []).append(elapsed)
                    for cache in tmp.glob(f"[cf]{attempt}"):
                        shutil.rmtree(cache)
        big = [f"n{1440764 + i % 1000:08d}_{900_000 + i}" for i in range(IMAGENET_TRAIN - len(ids))] + ids
        big_artifacts = write_artifacts(tmp / "big", sorted(big))
        peaks = []
        for attempt in range(args.repeat):
            out = subprocess.run([sys.executable, "-c", MEMORY, str(big_artifacts), str(layouts["tar"]),
                                  str(tmp / f"m{attempt}"), str(Path(__file__).parent)],
                                 check=True, capture_output=True, text=True)
            peaks.append(json.loads(out.stdout.strip().splitlines()[-1])["peak_rss_mb"])
        memory = {"peak_rss_mb": statistics.median(peaks), "runs_mb": peaks}
    rates = {name: len(ids) / statistics.median(t) for name, t in times.items()}
    limit = rates["tarfile (limit)"]

    def ratio(mode: str) -> float:
        return rates[f"builder, {mode}"] / rates[f"imagefolder, {mode}"]

    print(f"\nimage join: {len(ids):,} images of ~{args.kb} KB, median of {args.repeat} runs")
    print(f"{'':<26} {'images/s':>10} {'vs tarfile':>11} {'vs imagefolder (same mode)':>27}")
    for name, rate in rates.items():
        peer = rates.get("imagefolder, " + name.split(", ")[-1]) if name.startswith("builder") else None
        versus = f"{rate / peer:>26.2f}x" if peer else ""
        print(f"{name:<26} {rate:>10.0f} {rate / limit:>10.2f}x {versus}")
    print(f"builder peak RSS with a {IMAGENET_TRAIN:,}-entry caption index: {memory['peak_rss_mb']:.0f} MB "
          f"(median; runs {', '.join(f'{p:.0f}' for p in memory['runs_mb'])})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json({"images": len(ids), "kb": args.kb, "repeat": args.repeat,
               "images_per_s": rates, "times_s": times,
               "streaming_vs_tarfile": rates["builder, streaming"] / limit,
               "streaming_vs_imagefolder": ratio("streaming"),
               "cache_vs_imagefolder": ratio("Arrow cache"),
               "caption_index_entries": IMAGENET_TRAIN, "memory": memory,
               "self_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024},
               args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
