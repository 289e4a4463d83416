"""Stage ``prepare``: bucket, clean, split and pair the ImageNet-Captions records.

Inputs: ``--captions FILE`` (.json list, the published .zip, or .jsonl; downloaded and cached when
left out) and ``WORK/classes.parquet`` (stage ``classes``).

Outputs, each written atomically:

* ``WORK/captions.parquet``: one row per input record (image_id, filename, wnid, label, cleaned
  title and description, tags, text, eligible, role = train/test/excluded, reason);
* ``WORK/pairs/{train,test}-NNNNN-of-NNNNN.parquet``: every split caption x its class sentences
  (text = caption + " " + sentence, label, image_id, sentence_index), written shard by shard;
* ``WORK/captions_per_class.png``: the paper's Fig. 1;
* ``WORK/prepare_stats.json``: records per reason (summing to the input), split and pair counts.
  Written last: a rerun with the same input and options finds it and skips the stage.

Example::

    imagenet-multimodal prepare --work W --captions imagenet_captions.zip
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from . import captions as cap
from .classes import NUM_CLASSES, read_class_table
from .io import InputError, atomic_path, file_sha256, prepared_outputs, read_json, write_json, write_parquet
from .options import as_path, parse_options
from .split import PAPER_ELIGIBLE, PAPER_RECORDS, default_train_size, split_train, train_bounds
from .text import caption_text, clean_text, is_eligible

logger = logging.getLogger(__name__)

REASONS = ("eligible", "one_word", "no_text", *cap.BAD_REASONS)
CAPTION_SCHEMA = pa.schema(
    [
        ("record", pa.int64()),
        ("image_id", pa.string()),
        ("filename", pa.string()),
        ("wnid", pa.string()),
        ("label", pa.int64()),
        ("title", pa.string()),
        ("description", pa.string()),
        ("tags", pa.list_(pa.string())),
        ("text", pa.string()),
        ("eligible", pa.bool_()),
        ("role", pa.string()),
        ("reason", pa.string()),
    ]
)
BUCKET_SCHEMA = pa.schema([f for f in CAPTION_SCHEMA if f.name != "role"])
PAIR_SCHEMA = pa.schema(
    [("text", pa.string()), ("label", pa.int64()), ("image_id", pa.string()), ("sentence_index", pa.int32())]
)


@dataclass
class PrepareOptions:
    """Options of the ``prepare`` stage."""

    work: Path = field(metadata={"help": "work folder (holds classes.parquet)"})
    captions: Path | None = field(
        default=None,
        metadata={"help": "ImageNet-Captions file (.json, .zip or .jsonl); downloaded when left out"},
    )
    cache: Path = field(
        default=Path.home() / ".cache" / "imagenet-multimodal",
        metadata={"help": "where the downloaded captions zip is kept"},
    )
    train_size: int | None = field(
        default=None, metadata={"help": "train captions (default: 300,000 / 389,598 of the eligible)"}
    )
    seed: int = field(default=0, metadata={"help": "seed of the train/test split"})
    tags: bool = field(default=False, metadata={"help": "append Flickr tags to the caption text"})
    strict: bool = field(default=False, metadata={"help": "a bad record is an error, not a bucket"})
    shard_pairs: int = field(default=200_000, metadata={"help": "pairs per Parquet shard"})
    force: bool = field(default=False, metadata={"help": "redo the stage even if it is up to date"})

    def __post_init__(self) -> None:
        self.work, self.cache = Path(self.work), Path(self.cache)
        self.captions = as_path(self.captions)
        if self.train_size is not None and self.train_size < 1:
            raise InputError(f"--train-size: expected a positive number, got {self.train_size}")
        if self.shard_pairs < 1:
            raise InputError(f"--shard-pairs: expected a positive number, got {self.shard_pairs}")
        if self.seed < 0:
            raise InputError(f"--seed: expected a non-negative integer, got {self.seed}")


def bucket_records(
    records: Iterable[tuple[int | None, Any]], *, known_wnids: dict[str, int], tags: bool, strict: bool,
    path: Path | str, batch_size: int = 65_536, counts: dict[str, int] | None = None,
) -> Iterator[pa.RecordBatch]:
    """Validate, clean and bucket every record; yield the rows of ``captions.parquet`` (all
    columns but ``role``) as Arrow record batches, so Python objects never pile up.

    ``records`` are ``(line, record)`` pairs (:func:`captions.iter_numbered_records`): the line in a
    JSON Lines file, None in a JSON list. With ``strict`` the first bad record raises an
    :class:`InputError` naming the file, the line (JSON Lines) or record index (JSON list) and the
    field. ``counts["synthetic_records"]``, when given, counts the records
    marked synthetic by ``imagenet-multimodal sample`` (:data:`captions.SYNTHETIC_KEY`).
    """
    rows: list[tuple] = []
    seen: set[str] = set()
    synthetic = 0
    for index, (line, record) in enumerate(tqdm(records, desc="records", unit="rec", mininterval=1, leave=False)):
        if type(record) is dict and record.get(cap.SYNTHETIC_KEY):
            synthetic += 1
        problem = cap.check_record(record, known_wnids=known_wnids, seen=seen)
        if problem is None:
            rows.append(_good_row(index, record, known_wnids, tags))
        elif strict:
            reason, name, detail = problem
            # a JSON list's records count from 0, as captions.parquet's record column does
            where = f"record {index} (counted from 0)" if line is None else f"line {line}"
            field_name = f" field {name!r}" if name else ""
            raise InputError(f"{path}: {where}{field_name}: {detail} [{reason}]")
        else:
            rows.append(_bad_row(index, record, problem[0], known_wnids))
        if len(rows) == batch_size:
            yield _to_batch(rows)
            rows = []
    yield _to_batch(rows)
    if counts is not None:
        counts["synthetic_records"] = synthetic


def _to_batch(rows: list[tuple]) -> pa.RecordBatch:
    columns = zip(*rows) if rows else [()] * len(BUCKET_SCHEMA)
    return pa.RecordBatch.from_arrays(
        [pa.array(column, type=f.type) for column, f in zip(columns, BUCKET_SCHEMA)], schema=BUCKET_SCHEMA
    )


def _good_row(index: int, record: dict, known: dict[str, int], tags: bool) -> tuple:
    """A valid record, cleaned and bucketed by the eligibility rule (columns of BUCKET_SCHEMA)."""
    title, description = clean_text(record["title"]), clean_text(record["description"])
    eligible, reason = is_eligible(title, description)
    extra = [clean_text(t) for t in record["tags"]] if tags else ()
    filename, wnid = record["filename"], record["wnid"]
    text = caption_text(title, description, extra)
    return (index, cap.image_id(filename), filename, wnid, known[wnid], title, description,
            record["tags"], text, eligible, reason)


def _bad_row(index: int, record: Any, reason: str, known: dict[str, int]) -> tuple:
    """A bad record's row, keeping whichever of its raw fields has the right type."""
    def get(name: str, kind: type) -> Any:
        value = record.get(name) if isinstance(record, dict) else None
        return value if isinstance(value, kind) else None

    filename, wnid, tags = get("filename", str), get("wnid", str), get("tags", list)
    if tags is not None and not all(isinstance(t, str) for t in tags):
        tags = None
    return (index, cap.image_id(filename) if filename else None, filename, wnid, known.get(wnid),
            get("title", str), get("description", str), tags, None, False, reason)


def assign_roles(table: pa.Table, *, train_size: int | None, seed: int) -> tuple[np.ndarray, int]:
    """Split the eligible captions; returns the role of every row and the train size used."""
    eligible = table["eligible"].to_numpy(zero_copy_only=False)
    labels = table["label"].fill_null(-1).to_numpy()
    if train_size is None:
        size = default_train_size(int(eligible.sum()), num_records=len(eligible))
        if len(eligible) >= PAPER_RECORDS:
            logger.info("prepare: full scale: %d eligible captions (the paper had %d); %d train as in the paper",
                        int(eligible.sum()), PAPER_ELIGIBLE, size)
        low, high = train_bounds(np.bincount(labels[eligible], minlength=NUM_CLASSES))
        feasible = int(np.clip(size, low.sum(), high.sum()))  # small samples: many classes of <= 100
        if feasible != size:
            logger.warning("prepare: the default train size %d breaks the small-class guarantees here; using %d",
                           size, feasible)
        size = feasible
    else:
        size = train_size
    if size > eligible.sum():
        raise InputError(f"--train-size {size} is larger than the {eligible.sum()} eligible captions")
    roles = np.full(len(eligible), "excluded", dtype=object)
    if eligible.any():
        is_train = split_train(labels[eligible], train_size=size, seed=seed, num_classes=NUM_CLASSES)
        roles[np.flatnonzero(eligible)] = np.where(is_train, "train", "test")
    return roles, size


def _shard_bounds(pair_counts: np.ndarray, shard_pairs: int) -> list[tuple[int, int]]:
    """Caption ranges [start, stop) holding about ``shard_pairs`` pairs each (at least one shard)."""
    ends = np.cumsum(pair_counts)
    total = int(ends[-1]) if len(ends) else 0
    cuts = np.searchsorted(ends, np.arange(shard_pairs, total, shard_pairs), side="left") + 1
    edges = [0, *sorted(set(int(c) for c in cuts if 0 < c < len(ends))), len(pair_counts)]
    return list(zip(edges[:-1], edges[1:]))


def write_pairs(captions: pa.Table, classes: pa.Table, folder: Path, *, split: str, shard_pairs: int) -> int:
    """Write caption x class-sentence pairs of one split as Parquet shards; returns the pair count.

    Pairs are built with Arrow kernels one shard at a time, so memory stays near one shard.
    """
    rows = captions.select(["text", "label", "image_id"]).filter(pc.equal(captions["role"], split))
    sentence_lists = classes.column("sentences").combine_chunks()
    flat = sentence_lists.flatten()
    start = sentence_lists.offsets.to_numpy()[:-1]
    count = np.diff(sentence_lists.offsets.to_numpy())
    labels = rows.column("label").to_numpy()
    pair_counts = count[labels]
    bounds = _shard_bounds(pair_counts, shard_pairs)
    total = 0
    for number, (lo, hi) in enumerate(tqdm(bounds, desc=f"{split} pairs", unit="shard", leave=False)):
        k = pair_counts[lo:hi]
        caption_index = np.repeat(np.arange(lo, hi), k)
        within = np.arange(len(caption_index)) - np.repeat(np.cumsum(k) - k, k)
        sentence = flat.take(pa.array(start[labels[caption_index]] + within))
        part = rows.take(pa.array(caption_index))
        table = pa.table(
            {
                "text": pc.binary_join_element_wise(part["text"], sentence, " "),
                "label": part["label"],
                "image_id": part["image_id"],
                "sentence_index": pa.array(within, pa.int32()),
            },
            schema=PAIR_SCHEMA,
        )
        pq.write_table(table, folder / f"{split}-{number:05d}-of-{len(bounds):05d}.parquet")
        total += table.num_rows
    return total


def plot_captions_per_class(counts: np.ndarray, path: Path) -> None:
    """The paper's Fig. 1: a histogram of eligible captions per class over the classes present."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    present = counts[counts > 0]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    ax.hist(present, bins=min(50, max(len(present), 1)), color="#3b6ea8", edgecolor="white")
    ax.set_xlabel("eligible captions per class")
    ax.set_ylabel("number of classes")
    ax.set_title(f"Captions per class ({len(present)} classes, {int(present.sum()):,} captions)")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


# the code that turns records into buckets, captions, a split and pairs: a rerun after it changed
# (a cleaning fix, say) prepares again. Unchanged outputs are byte-identical, so training is not redone
_RULE_MODULES = ("prepare.py", "captions.py", "text.py", "split.py")


def _rules_digest() -> str:
    digest = hashlib.sha256()
    for name in _RULE_MODULES:
        digest.update(name.encode() + b"\0" + (Path(__file__).parent / name).read_bytes())
    return digest.hexdigest()[:16]


def _fingerprint(options: PrepareOptions, captions_path: Path, classes_path: Path) -> dict[str, Any]:
    keep = ("train_size", "seed", "tags", "strict", "shard_pairs")
    return {
        "captions_sha256": file_sha256(captions_path),
        "classes_sha256": file_sha256(classes_path),
        "rules": _rules_digest(),
        **{key: value for key, value in asdict(options).items() if key in keep},
    }


def _relative_to(path: Path, work: Path) -> str:
    """``path`` relative to the work folder when inside it (it moves with the folder), else absolute."""
    return str(path.relative_to(work)) if path.is_relative_to(work) else str(path)


def _is_synthetic(captions_path: Path, marked_records: int) -> bool:
    """A corpus from ``imagenet-multimodal sample``: its records carry the synthetic key, or (older
    samples) its ground-truth side file lies next to it."""
    from .sample import truth_path

    return marked_records > 0 or truth_path(captions_path).exists()


def run(options: PrepareOptions) -> dict[str, Any]:
    """Run the stage; returns the statistics written to ``WORK/prepare_stats.json``."""
    work = options.work
    classes = read_class_table(work)
    captions_path = options.captions or cap.download_captions(options.cache)
    if not Path(captions_path).is_file():
        raise InputError(f"--captions {captions_path}: no such file; expected the ImageNet-Captions records "
                         "(imagenet_captions.json, a .zip holding it, or .jsonl)")
    stats_path = work / "prepare_stats.json"
    fingerprint = _fingerprint(options, captions_path, work / "classes.parquet")
    if not options.force and stats_path.exists():
        previous = read_json(stats_path)
        if isinstance(previous, dict) and previous.get("fingerprint") == fingerprint \
                and previous.get("outputs") == prepared_outputs(work):
            logger.info("prepare: up to date (%s); --force redoes it", stats_path)
            return previous
        logger.info("prepare: %s does not match these inputs, options and outputs; preparing again", stats_path)

    known = dict(zip(classes["wnid"].to_pylist(), classes["label"].to_pylist()))
    logger.info("prepare: reading %s", captions_path)
    counts: dict[str, int] = {}
    batches = bucket_records(cap.iter_numbered_records(captions_path), known_wnids=known, tags=options.tags,
                             strict=options.strict, path=captions_path, counts=counts)
    table = pa.Table.from_batches(list(batches), schema=BUCKET_SCHEMA)
    num_records = table.num_rows
    roles, train_size = assign_roles(table, train_size=options.train_size, seed=options.seed)
    table = table.add_column(CAPTION_SCHEMA.get_field_index("role"), "role", pa.array(roles, pa.string()))
    write_parquet(table, work / "captions.parquet")

    with atomic_path(work / "pairs") as folder:
        folder.mkdir()
        pairs = {split: write_pairs(table, classes, folder, split=split, shard_pairs=options.shard_pairs)
                 for split in ("train", "test")}

    stats = summarize(table, classes, num_records=num_records, pairs=pairs)
    stats.update(train_size=train_size, captions_file=_relative_to(captions_path.resolve(), work.resolve()),
                 fingerprint=fingerprint,
                 outputs=prepared_outputs(work),
                 synthetic=_is_synthetic(captions_path, counts["synthetic_records"]),
                 synthetic_records=counts["synthetic_records"])
    plot_captions_per_class(np.asarray(stats["per_class_eligible"]), work / "captions_per_class.png")
    write_json(stats, stats_path)
    log_summary(stats)
    return stats


def _value_counts(column: pa.ChunkedArray) -> dict[str, int]:
    counts = pc.value_counts(column)
    return dict(zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist()))


def summarize(
    table: pa.Table, classes: pa.Table, *, num_records: int, pairs: dict[str, int]
) -> dict[str, Any]:
    """Counts per reason and role, per-class eligible counts and the small-class guarantees."""
    reasons = _value_counts(table["reason"])
    roles = _value_counts(table["role"])
    if sum(reasons.values()) != num_records:
        raise RuntimeError(f"bucket counts {sum(reasons.values())} do not sum to {num_records} records")
    eligible_labels = table["label"].filter(table["eligible"]).to_numpy()
    per_class = np.bincount(eligible_labels, minlength=NUM_CLASSES)
    sentence_counts = np.array([len(s) for s in classes["sentences"].to_pylist()])
    return {
        "records": num_records,
        "reasons": {reason: reasons.get(reason, 0) for reason in REASONS},
        "roles": {role: roles.get(role, 0) for role in ("train", "test", "excluded")},
        "classes_present": int((per_class > 0).sum()),
        "small_classes": int(((per_class > 0) & (per_class <= 100)).sum()),
        "classes_without_sentences": int((sentence_counts == 0).sum()),
        "pairs": pairs,
        "per_class_eligible": per_class.tolist(),
    }


def log_summary(stats: dict[str, Any]) -> None:
    """Log the counts per reason and the split as a small table."""
    logger.info("prepare: %d records", stats["records"])
    for reason, count in stats["reasons"].items():
        logger.info("  %-20s %9d", reason, count)
    roles, pairs = stats["roles"], stats["pairs"]
    logger.info("  split: %d train, %d test captions over %d classes (%d with <= 100 eligible)",
                roles["train"], roles["test"], stats["classes_present"], stats["small_classes"])
    logger.info("  pairs: %d train, %d test", pairs["train"], pairs["test"])
    if stats["classes_without_sentences"]:
        logger.warning("  %d classes have no class sentence: their captions form no pairs",
                       stats["classes_without_sentences"])


def parse_args(argv: Sequence[str] | None = None) -> PrepareOptions:
    """Parse the ``prepare`` command line."""
    return parse_options(PrepareOptions, argv, prog="imagenet-multimodal prepare", description=__doc__)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``imagenet-multimodal prepare``."""
    run(parse_args(argv))
    return 0


__all__ = ["PrepareOptions", "bucket_records", "main", "parse_args", "run", "write_pairs"]


if __name__ == "__main__":  # python -m imagenet_multimodal.STAGE, accelerate launch -m ...
    import sys

    from .cli import run_stage

    sys.exit(run_stage(main, sys.argv[1:]))
