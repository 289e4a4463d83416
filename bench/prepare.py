"""Benchmark of the prepare stage at full scale (463,622 records), against a plain-Python loop.

Writes the full-size synthetic corpus once (``imagenet-multimodal sample --records 463622``), then
runs, each in a fresh process and ``--repeat`` times:

* ``prepare``: this project's stage (streamed reading, validation, cleaning, split, sharded pairs);
* ``plain loop``: the obvious script: ``json.load``, clean each record, random split, build every
  pair string in a Python list, write one Parquet file. It does less (no validation buckets, no
  per-class guarantees, no statistics) and is the figure to beat.

Prints a table of median wall time and peak RSS, checks the paper's counts on the prepare output,
and writes ``bench/results/prepare.json``.

    python bench/prepare.py [--repeat 3] [--work bench/work]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from imagenet_multimodal.io import write_json

RECORDS = 463_622

PREPARE = """
def peak():  # VmHWM: this process's own high-water mark (ru_maxrss is inherited across fork)
    return next(int(x.split()[1]) for x in open("/proc/self/status") if x.startswith("VmHWM:")) / 1024
import json, resource, sys, time
from pathlib import Path
from imagenet_multimodal.prepare import PrepareOptions, run
t = time.perf_counter()
run(PrepareOptions(work=Path(sys.argv[1]), captions=Path(sys.argv[2]), force=True))
print(json.dumps({"wall_s": time.perf_counter() - t,
                  "peak_rss_mb": peak()}))
"""

PLAIN = """
def peak():  # VmHWM: this process's own high-water mark (ru_maxrss is inherited across fork)
    return next(int(x.split()[1]) for x in open("/proc/self/status") if x.startswith("VmHWM:")) / 1024
import html, json, random, re, resource, sys, time
import pyarrow as pa, pyarrow.parquet as pq
from pathlib import Path
t = time.perf_counter()
work, captions = Path(sys.argv[1]), Path(sys.argv[2])
classes = pq.read_table(work / "classes.parquet").to_pylist()
label = {c["wnid"]: c["label"] for c in classes}
sentences = [c["sentences"] for c in classes]
tag, url = re.compile(r"<[^>]+>"), re.compile(r"https?://\\S+|www\\.\\S+")
def clean(s):
    return " ".join(url.sub(" ", tag.sub(" ", html.unescape(s))).split())
rows = []
for r in json.load(open(captions)):
    title, desc = clean(r["title"]), clean(r["description"])
    if len(title.split()) > 1 or len(desc.split()) > 1:
        rows.append((title + " " + desc, label[r["wnid"]], r["filename"][:-5]))
random.seed(0)
random.shuffle(rows)
cut = round(len(rows) * 300000 / 389598)
for name, part in (("train", rows[:cut]), ("test", rows[cut:])):
    pairs = [(text + " " + s, lab, iid, i) for text, lab, iid in part for i, s in enumerate(sentences[lab])]
    cols = list(zip(*pairs))
    pq.write_table(pa.table({"text": cols[0], "label": cols[1], "image_id": cols[2],
                             "sentence_index": cols[3]}), work / f"plain-{name}.parquet")
print(json.dumps({"wall_s": time.perf_counter() - t,
                  "peak_rss_mb": peak()}))
"""


def run_child(code: str, work: Path, captions: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", code, str(work), str(captions)], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def check_counts(work: Path) -> dict:
    """The paper's numbers on the prepare output, and the small-class guarantees."""
    import numpy as np
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    stats = json.loads((work / "prepare_stats.json").read_text())
    captions = pq.read_table(work / "captions.parquet", columns=["label", "role"])
    sentences = np.array([len(s) for s in pq.read_table(work / "classes.parquet")["sentences"].to_pylist()])
    checks = {
        "eligible == 389,598": stats["reasons"]["eligible"] == 389_598,
        "train == 300,000": stats["roles"]["train"] == 300_000,
        "test == 89,598": stats["roles"]["test"] == 89_598,
        "classes present == 999": stats["classes_present"] == 999,
    }
    per_split = {}
    for split in ("train", "test"):
        labels = captions["label"].filter(pc.equal(captions["role"], split)).to_numpy()
        per_split[split] = np.bincount(labels, minlength=1000)
        pairs_ok = int(sentences[labels].sum()) == stats["pairs"][split]
        checks[f"{split} pairs == sum of class sentences"] = pairs_ok
    train, test = per_split["train"], per_split["test"]
    n = train + test
    small = (n > 1) & (n <= 100)
    half_in_train = np.all(train[small] >= np.ceil(n[small] / 2))
    fifth_in_test = np.all(test[small] >= np.ceil(0.2 * n[small]))
    name = f"small-class guarantees ({int(small.sum())} classes <= 100)"
    checks[name] = bool(half_in_train and fifth_in_test)
    return checks


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path("bench/work/prepare"))
    parser.add_argument("--out", type=Path, default=Path("bench/results/prepare.json"))
    args = parser.parse_args()

    from imagenet_multimodal.classes import ClassesOptions
    from imagenet_multimodal.classes import run as run_classes
    from imagenet_multimodal.sample import write_sample

    captions = args.work / "captions_full.json"
    if not captions.exists():
        t = time.perf_counter()
        write_sample(captions, records=RECORDS, seed=0)
        print(f"wrote the synthetic corpus in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    run_classes(ClassesOptions(work=args.work, source="offline"))

    results = {"prepare": [], "plain loop": []}
    for _ in range(args.repeat):  # interleaved, so both see the same machine load
        results["prepare"].append(run_child(PREPARE, args.work, captions))
        results["plain loop"].append(run_child(PLAIN, args.work, captions))
    summary = {
        name: {
            "median_wall_s": statistics.median(r["wall_s"] for r in runs),
            "median_peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in runs),
            "runs": runs,
        }
        for name, runs in results.items()
    }
    ratio = summary["plain loop"]["median_wall_s"] / summary["prepare"]["median_wall_s"]
    checks = check_counts(args.work)

    print(f"\nprepare at full scale: {RECORDS:,} records, median of {args.repeat} runs")
    print(f"{'':<12} {'wall s':>8} {'peak RSS MB':>12}")
    for name, row in summary.items():
        print(f"{name:<12} {row['median_wall_s']:>8.1f} {row['median_peak_rss_mb']:>12.0f}")
    print(f"speed-up of prepare over the plain loop: {ratio:.2f}x")
    for name, ok in checks.items():
        print(f"  [{'ok' if ok else 'FAIL'}] {name}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json({"records": RECORDS, "results": summary, "speedup": ratio,
               "checks": checks},
               args.out)
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
