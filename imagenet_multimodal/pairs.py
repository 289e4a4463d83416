"""Training data for the relevance model: read, tokenise once, batch by length, pad per batch.

* :func:`read_pairs` / :func:`read_test_captions` read the prepare stage's files and validate them.
* :func:`tokenize_cached` tokenises a table's ``text`` once and keeps the token ids in
  ``WORK/tokens/<tokenizer+max_length key>/<name>.parquet``; reruns, resumed runs and the K
  trainings of cross-fitting reuse them (the cache is checked against a hash of the input files).
  A pair longer than the max length loses the end of its caption, never its class sentence (the
  pair's point): plain truncation would cut the sentence, and all of a caption's pairs would be
  the same text.
* :class:`TokenDataset` holds ragged token ids in two NumPy arrays; :class:`PadCollator` pads a
  batch to its own longest sequence.
* :class:`LengthGroupedBatches` draws each epoch's random subset and batch order as a pure function
  of ``(seed, epoch)``, grouping similar lengths so that little padding is processed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch

from .classes import NUM_CLASSES
from .io import InputError, require_file, write_parquet

logger = logging.getLogger(__name__)

PAIR_COLUMNS = ("text", "label", "image_id")
PAIR_SCHEMA = pa.schema([("text", pa.string()), ("label", pa.int64()), ("image_id", pa.string())])
TOKENIZE_CHUNK = 10_000


def _check_labels(table: pa.Table, where: str) -> None:
    labels = table.column("label")
    if not pa.types.is_integer(labels.type):
        raise InputError(f"{where}: field 'label': expected integers in 0-{NUM_CLASSES - 1}, got a column "
                         f"of {labels.type}")
    if labels.null_count:
        row = pc.index(pc.is_null(labels), True).as_py()
        raise InputError(f"{where}: row {row} field 'label': expected an int in 0-999, got null")
    bad = pc.or_(pc.less(labels, 0), pc.greater_equal(labels, NUM_CLASSES))
    if pc.any(bad).as_py():
        row = pc.index(bad, True).as_py()
        raise InputError(
            f"{where}: row {row} field 'label': expected an int in 0-{NUM_CLASSES - 1}, "
            f"got {labels[row].as_py()}"
        )


def pair_files(work: Path, split: str) -> list[Path]:
    """The Parquet files of ``split`` ("train" or "test") in ``WORK/pairs``, sorted."""
    folder = require_file(Path(work) / "pairs", made_by=f"prepare --work {work}")
    files = sorted(folder.glob(f"{split}-*.parquet"))
    if not files:
        raise InputError(f"{folder}: no {split}-*.parquet files: run `imagenet-multimodal prepare` first")
    return files


def read_pairs(work: Path, split: str) -> pa.Table:
    """Read ``WORK/pairs/<split>-*.parquet`` (columns text, label, image_id), validated.

    Raises :class:`InputError` for a missing folder, a missing column, no rows, a null text or a
    label outside 0-999, naming the file and row.
    """
    tables = []
    for path in pair_files(work, split):
        try:
            table = pq.read_table(path)
        except (pa.ArrowInvalid, OSError) as err:
            raise InputError(f"{path}: cannot read as Parquet ({err})") from err
        missing = [name for name in PAIR_COLUMNS if name not in table.column_names]
        if missing:
            raise InputError(f"{path}: expected columns {list(PAIR_COLUMNS)}, missing {missing}")
        table = table.select(list(PAIR_COLUMNS))
        _check_labels(table, str(path))
        if table.column("text").null_count:
            row = pc.index(pc.is_null(table.column("text")), True).as_py()
            raise InputError(f"{path}: row {row} field 'text': expected a string, got null")
        try:
            tables.append(table.cast(PAIR_SCHEMA))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
            raise InputError(f"{path}: expected columns {PAIR_SCHEMA} ({err})") from err
    table = pa.concat_tables(tables)
    if table.num_rows == 0:
        raise InputError(f"{Path(work) / 'pairs'}: the {split} pairs have no rows")
    return table


def pair_sentences(work: Path, split: str, table: pa.Table) -> list[str | None] | None:
    """The class sentence each pair of ``table`` (as :func:`read_pairs` read it) ends with: sentence
    ``sentence_index`` of its class in ``WORK/classes.parquet``. ``None`` where the pairs or the
    class table lack what that needs (then long pairs are truncated plainly)."""
    classes = Path(work) / "classes.parquet"
    files = pair_files(work, split)
    if not classes.exists() or any("sentence_index" not in pq.read_schema(f).names for f in files):
        return None
    index = pa.concat_tables(pq.read_table(f, columns=["sentence_index"]) for f in files)["sentence_index"]
    per_class = pq.read_table(classes, columns=["sentences"])["sentences"].to_pylist()
    out = []
    for label, i in zip(table["label"].to_pylist(), index.to_pylist()):
        sentences = per_class[label] if label < len(per_class) else None
        out.append(sentences[i] if sentences and i is not None and 0 <= i < len(sentences) else None)
    return out


def read_test_captions(work: Path) -> pa.Table | None:
    """The test captions alone (``role == "test"`` in ``WORK/captions.parquet``): text, label.

    Returns ``None`` when the file does not exist (evaluation on captions is then skipped).
    """
    path = Path(work) / "captions.parquet"
    if not path.exists():
        return None
    missing = {"text", "label", "role"} - set(pq.read_schema(path).names)
    if missing:
        raise InputError(f"{path}: expected columns text, label and role, missing {sorted(missing)}")
    table = pq.read_table(path, columns=["text", "label", "role"])
    table = table.filter(pc.equal(table.column("role"), "test")).select(["text", "label"])
    _check_labels(table, str(path) + " (role == 'test')")
    return table.cast(pa.schema([("text", pa.string()), ("label", pa.int64())]))


def label_names(work: Path) -> dict[int, str] | None:
    """Class names by label from ``WORK/classes.parquet``, or ``None`` if it is not there."""
    path = Path(work) / "classes.parquet"
    if not path.exists():
        return None
    table = pq.read_table(path, columns=["label", "name"])
    if table.num_rows != NUM_CLASSES:
        raise InputError(f"{path}: expected {NUM_CLASSES} rows, got {table.num_rows}")
    return dict(zip(table["label"].to_pylist(), table["name"].to_pylist(), strict=True))


def fold_of(keys: Sequence[str], *, folds: int, seed: int) -> np.ndarray:
    """A stable fold number (0..folds-1) for each key, the same in every process and run."""
    out = np.empty(len(keys), dtype=np.int64)
    for i, key in enumerate(keys):
        digest = hashlib.blake2b(f"{seed}:{key}".encode(), digest_size=8).digest()
        out[i] = int.from_bytes(digest, "little") % folds
    return out


FOLD_RULE = "caption-text"  # what fold_key groups by; a fold model made under another rule is retrained


def fold_key(text: str | None, image_id: str) -> str:
    """What puts a caption in its fold: its text, case and white space folded, so that one Flickr
    text on many photos (batch uploads) falls in one fold; a fold model that trained on the same
    text would score it as if in-sample. The image id where there is no text."""
    return " ".join(text.lower().split()) if text else f"image:{image_id}"


def caption_fold_keys(work: Path, image_ids: Sequence[str]) -> list[str]:
    """:func:`fold_key` of the caption of each of ``image_ids`` (from ``WORK/captions.parquet``)."""
    table = pq.read_table(require_file(Path(work) / "captions.parquet", made_by=f"prepare --work {work}"),
                          columns=["image_id", "text", "role"])
    table = table.filter(pc.is_in(table["role"], pa.array(["train", "test"])))  # the captions pairs come from
    texts = dict(zip(table["image_id"].to_pylist(), table["text"].to_pylist()))
    return [fold_key(texts.get(image_id), image_id) for image_id in image_ids]


def _files_digest(paths: Sequence[Path]) -> str:
    digest = hashlib.blake2b(digest_size=16)
    for path in paths:
        digest.update(path.name.encode())
        with path.open("rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()


def tokenizer_key(tokenizer, max_length: int) -> str:
    """A short key naming the token cache of ``tokenizer`` (a fast tokenizer) at ``max_length``."""
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    spec["truncation"] = spec["padding"] = None  # call settings, changed by tokenising
    text = json.dumps(spec, sort_keys=True) + f"|max_length={max_length}|{TRUNCATION}"
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


TRUNCATION = "cut-caption-keep-sentence"  # part of the cache key: caches of another rule are not read


def _special_tokens(tokenizer, text: str) -> tuple[list[int], list[int]] | None:
    """The special tokens that a single text gets before and after its own, read off ``text``."""
    full = tokenizer(text, verbose=False)["input_ids"]
    body = tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
    start = next((k for k in range(len(full) - len(body) + 1) if full[k:k + len(body)] == body), None)
    return None if start is None else (full[:start], full[start + len(body):])


class _SentenceKeeper:
    """Cuts long pairs at the end of their caption, keeping the class sentence whole.

    A pair is caption + " " + sentence. Where the text does not end in the sentence's tokens (a
    tokenizer that merges across the space), or the sentence alone does not fit, the plain
    truncation stays. Bodies are tokenised in one batch per chunk; each distinct sentence once.
    """

    def __init__(self, tokenizer, max_length: int) -> None:
        self.tokenizer, self.max_length = tokenizer, max_length
        self.tails: dict[str, list[int]] = {}
        self.special: tuple[list[int], list[int]] | None = None
        self.kept = 0

    def cut(self, texts: Sequence[str], sentences: Sequence[str]) -> list[list[int] | None]:
        """The cut ids of each long pair ``texts[i]`` ending in ``sentences[i]``, or ``None``."""
        tokenizer = self.tokenizer
        if self.special is None:
            self.special = _special_tokens(tokenizer, texts[0]) or ([], [])
        prefix, suffix = self.special
        new = sorted(set(sentences) - self.tails.keys())
        if new:
            encoded = tokenizer([" " + s for s in new], add_special_tokens=False, verbose=False)["input_ids"]
            self.tails.update(zip(new, encoded))
        bodies = tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"]
        out: list[list[int] | None] = []
        for body, sentence in zip(bodies, sentences):
            tail = self.tails[sentence]
            room = self.max_length - len(prefix) - len(suffix) - len(tail)  # for the caption's tokens
            ends_in_tail = len(tail) <= len(body) and body[len(body) - len(tail):] == tail
            if room < 1 or not ends_in_tail or len(body) - len(tail) <= room:  # cannot cut, or it fits
                out.append(None)
            else:
                out.append(prefix + body[:room] + tail + suffix)
                self.kept += 1
        return out


def tokenize(texts: Sequence[str], tokenizer, *, max_length: int,
             sentences: Sequence[str | None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Tokenise ``texts`` (with special tokens, truncated to ``max_length``) into ragged arrays.

    ``sentences``: the class sentence that each text (a pair) ends with, or ``None``; a pair longer
    than ``max_length`` is cut at the end of its caption and keeps its sentence whole.

    Returns
    -------
    ids : np.ndarray, shape (total_tokens,), int32
        All token ids, one text after another.
    offsets : np.ndarray, shape (len(texts) + 1,), int64
        Text ``i`` is ``ids[offsets[i]:offsets[i + 1]]``.
    """
    chunks, lengths = [], []
    keeper = _SentenceKeeper(tokenizer, max_length)
    for start in range(0, len(texts), TOKENIZE_CHUNK):
        batch = tokenizer(list(texts[start:start + TOKENIZE_CHUNK]), truncation=True,
                          max_length=max_length, return_attention_mask=False)["input_ids"]
        if sentences is not None:  # a pair at max_length may have been cut: cut its caption instead
            long = [i for i, ids in enumerate(batch) if len(ids) == max_length and sentences[start + i]]
            if long:
                cuts = keeper.cut([texts[start + i] for i in long], [sentences[start + i] for i in long])
                for i, cut in zip(long, cuts):
                    if cut is not None:
                        batch[i] = cut
        lengths.extend(len(ids) for ids in batch)
        chunks.append(np.fromiter((t for ids in batch for t in ids), dtype=np.int32))
    if keeper.kept:
        logger.info("tokenise: %d of %d pairs were longer than %d tokens: their caption was cut, their class "
                    "sentence kept", keeper.kept, len(texts), max_length)
    offsets = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    ids = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int32)
    return ids, offsets


@dataclass
class TokenDataset(torch.utils.data.Dataset):
    """Ragged token ids and labels; item ``i`` is ``{"input_ids": int32 array, "labels": int}``."""

    ids: np.ndarray
    offsets: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict:
        return {"input_ids": self.ids[self.offsets[index]:self.offsets[index + 1]],
                "labels": int(self.labels[index])}

    @property
    def lengths(self) -> np.ndarray:
        """Tokens per example, shape (n,)."""
        return np.diff(self.offsets)

    def subset(self, indices: np.ndarray) -> TokenDataset:
        """A new dataset of the examples at ``indices``, in that order."""
        lengths = self.lengths[indices]
        offsets = np.zeros(len(indices) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        # new position p of example j reads old position offsets[indices[j]] + (p - new_offsets[j])
        shift = np.repeat(self.offsets[indices] - offsets[:-1], lengths)
        gather = np.arange(offsets[-1], dtype=np.int64) + shift
        return TokenDataset(self.ids[gather], offsets, self.labels[indices])


def tokenize_cached(
    table: pa.Table, tokenizer, *, max_length: int, cache: Path, name: str, sources: Sequence[Path],
    sentences: Callable[[], Sequence[str | None] | None] | None = None,
) -> TokenDataset:
    """Tokenise ``table`` (columns text, label) or reuse ``cache/<key>/<name>.parquet``.

    ``sentences``: called on a cache miss only, it gives what :func:`tokenize` takes (pairs keep
    their class sentence when cut).

    The cache is valid while the tokenizer, ``max_length`` and the content of ``sources`` (the
    files ``table`` was read from) are unchanged; otherwise it is rewritten (atomically).
    """
    path = Path(cache) / tokenizer_key(tokenizer, max_length) / f"{name}.parquet"
    digest = _files_digest(sources)
    if path.exists():
        try:
            cached = pq.read_table(path)
        except (pa.ArrowException, OSError) as err:  # a damaged cache is rewritten, not trusted
            logger.warning("the token cache %s is unreadable (%s); tokenising again", path, err)
        else:
            metadata = cached.schema.metadata or {}
            if metadata.get(b"sources") == digest.encode() and cached.num_rows == table.num_rows:
                return _dataset_from_arrow(cached)
    logger.info("tokenising %d %s texts (max_length %d) into %s", table.num_rows, name, max_length, path)
    ids, offsets = tokenize(table.column("text").to_pylist(), tokenizer, max_length=max_length,
                            sentences=sentences() if sentences is not None else None)
    lists = pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), pa.array(ids))
    out = pa.table({"input_ids": lists, "label": table.column("label")})
    write_parquet(out.replace_schema_metadata({"sources": digest}), path)
    return TokenDataset(ids, offsets, table.column("label").to_numpy().astype(np.int64))


def _dataset_from_arrow(table: pa.Table) -> TokenDataset:
    lists = table.column("input_ids").combine_chunks()
    offsets = lists.offsets.to_numpy().astype(np.int64)
    ids = lists.values.to_numpy().astype(np.int32)
    ids, offsets = ids[offsets[0]:offsets[-1]], offsets - offsets[0]
    return TokenDataset(ids, offsets, table.column("label").to_numpy().astype(np.int64))


class PadCollator:
    """Pad a list of :class:`TokenDataset` items to the longest one (rounded up to a multiple).

    Returns ``input_ids`` (batch, seq_len) int64, ``attention_mask`` (batch, seq_len) int64 and
    ``labels`` (batch,) int64.
    """

    def __init__(self, pad_token_id: int, *, pad_to_multiple_of: int | None = None) -> None:
        self.pad_token_id = pad_token_id
        self.multiple = pad_to_multiple_of or 1

    def __call__(self, items: Sequence[dict]) -> dict[str, torch.Tensor]:
        longest = max(len(item["input_ids"]) for item in items)
        longest = -(-longest // self.multiple) * self.multiple
        input_ids = np.full((len(items), longest), self.pad_token_id, dtype=np.int64)
        mask = np.zeros((len(items), longest), dtype=np.int64)
        for row, item in enumerate(items):
            ids = item["input_ids"]
            input_ids[row, :len(ids)] = ids
            mask[row, :len(ids)] = 1
        labels = np.fromiter((item["labels"] for item in items), dtype=np.int64, count=len(items))
        return {"input_ids": torch.from_numpy(input_ids), "attention_mask": torch.from_numpy(mask),
                "labels": torch.from_numpy(labels)}


class LengthGroupedBatches(torch.utils.data.Sampler):
    """Each epoch: a random ``fraction`` of the examples, in batches of similar length.

    The subset is shuffled and cut into buckets of ``bucket_batches * batch_size`` examples;
    each bucket is sorted by length and cut into batches; then the batches are shuffled. Only
    the last batch of an epoch can be short. The order is a pure function of ``(seed, epoch)``
    (set with :meth:`set_epoch`), so a resumed run sees exactly the batches it would have seen.
    """

    def __init__(
        self, lengths: np.ndarray, *, batch_size: int, seed: int, fraction: float = 1.0,
        bucket_batches: int = 100,
    ) -> None:
        self.lengths = np.asarray(lengths)
        self.batch_size = batch_size
        self.seed = seed
        self.fraction = fraction
        self.bucket_batches = bucket_batches
        self.drop_last = False
        self.epoch = 0
        self.size = max(1, round(fraction * len(self.lengths)))

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose subset and batch order :meth:`__iter__` yields."""
        self.epoch = epoch

    def batches(self, epoch: int) -> list[np.ndarray]:
        """The batches (arrays of example indices) of ``epoch``."""
        rng = np.random.default_rng([self.seed, epoch])
        chosen = rng.permutation(len(self.lengths))[:self.size]
        bucket = self.bucket_batches * self.batch_size
        batches = []
        for start in range(0, len(chosen), bucket):
            part = chosen[start:start + bucket]
            part = part[np.argsort(-self.lengths[part], kind="stable")]
            batches += [part[i:i + self.batch_size] for i in range(0, len(part), self.batch_size)]
        # the one short batch stays last, so that sharding across processes sees full batches
        full = [b for b in batches if len(b) == self.batch_size]
        short = [b for b in batches if len(b) < self.batch_size]
        return [full[i] for i in rng.permutation(len(full))] + short

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.batches(self.epoch):
            yield batch.tolist()

    def __len__(self) -> int:
        return -(-self.size // self.batch_size)


def load_training_data(
    work: Path, tokenizer, *, max_length: int, eval_captions: bool = True, folds: int = 1,
    fold: int | None = None, seed: int = 0,
) -> dict[str, TokenDataset]:
    """Read, validate and tokenise (once, cached in ``WORK/tokens``) what training needs.

    Returns ``{"train": ..., "pairs": ..., "captions": ...}``: the train pairs (without fold
    ``fold`` of ``folds`` when cross-fitting), the test pairs and, when ``eval_captions`` and
    ``WORK/captions.parquet`` has test rows, the test captions alone.
    """
    work = Path(work)
    kw = {"max_length": max_length, "cache": work / "tokens"}
    train_table, test_table = read_pairs(work, "train"), read_pairs(work, "test")
    data = {
        "train": tokenize_cached(train_table, tokenizer, name="train-pairs", sources=pair_files(work, "train"),
                                 sentences=lambda: pair_sentences(work, "train", train_table), **kw),
        "pairs": tokenize_cached(test_table, tokenizer, name="test-pairs", sources=pair_files(work, "test"),
                                 sentences=lambda: pair_sentences(work, "test", test_table), **kw),
    }
    captions = read_test_captions(work) if eval_captions else None
    if captions is not None and captions.num_rows:
        data["captions"] = tokenize_cached(captions, tokenizer, name="test-captions",
                                           sources=[work / "captions.parquet"], **kw)
    if folds > 1:
        keys = caption_fold_keys(work, train_table.column("image_id").to_pylist())
        keep = fold_of(keys, folds=folds, seed=seed) != fold
        data["train"] = data["train"].subset(np.flatnonzero(keep))
        if not len(data["train"]):
            raise InputError(f"fold {fold} of {folds}: no train pairs are left outside the fold")
    return data


def length_stats(data: dict[str, TokenDataset], *, max_length: int) -> dict[str, dict]:
    """Token lengths per dataset: mean, percentiles and the share cut at ``max_length`` (texts of
    exactly ``max_length`` tokens count too), so the max length is a measured choice."""
    stats = {}
    for name, dataset in data.items():
        lengths = dataset.lengths
        p50, p90, p99 = np.percentile(lengths, [50, 90, 99])
        stats[name] = {"mean": round(float(lengths.mean()), 2), "p50": float(p50), "p90": float(p90),
                       "p99": float(p99), "max": int(lengths.max()),
                       "at_max_length": round(float((lengths >= max_length).mean()), 5)}
    return stats


def make_loaders(
    data: dict[str, TokenDataset], *, pad_token_id: int, batch_size: int, eval_batch_size: int,
    seed: int, fraction: float = 1.0, bucket_batches: int = 100, pad_to_multiple_of: int = 0,
    num_workers: int = 0,
) -> tuple[dict[str, torch.utils.data.DataLoader], LengthGroupedBatches]:
    """DataLoaders: length-grouped random batches for ``"train"``, longest first for the rest.

    Returns the loaders by name and the train batch sampler (call its ``set_epoch``).
    """
    collate = PadCollator(pad_token_id, pad_to_multiple_of=pad_to_multiple_of or None)
    sampler = LengthGroupedBatches(data["train"].lengths, batch_size=batch_size, seed=seed,
                                   fraction=fraction, bucket_batches=bucket_batches)
    # an own generator: starting an iterator must not draw from the global RNG
    common = {"collate_fn": collate, "num_workers": num_workers,
              "generator": torch.Generator().manual_seed(seed)}
    loaders = {"train": torch.utils.data.DataLoader(data["train"], batch_sampler=sampler, **common)}
    for name, dataset in data.items():
        if name != "train":
            loaders[name] = torch.utils.data.DataLoader(
                sorted_by_length(dataset), batch_size=eval_batch_size, shuffle=False, **common)
    return loaders, sampler


def sorted_by_length(dataset: TokenDataset) -> TokenDataset:
    """``dataset`` reordered longest first: evaluation batches then need little padding."""
    return dataset.subset(np.argsort(-dataset.lengths, kind="stable"))


__all__ = [
    "LengthGroupedBatches",
    "PadCollator",
    "TokenDataset",
    "caption_fold_keys",
    "fold_key",
    "fold_of",
    "label_names",
    "load_training_data",
    "make_loaders",
    "pair_files",
    "read_pairs",
    "read_test_captions",
    "sorted_by_length",
    "tokenize",
    "tokenize_cached",
    "tokenizer_key",
]
