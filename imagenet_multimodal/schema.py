"""The public contract: columns and ``datasets`` features of every published config.

One place defines what ``load_dataset("<org>/imagenet-multimodal", CONFIG)`` returns, what
``publish`` writes and what the builder yields, so the three cannot drift apart.
"""

from __future__ import annotations

import functools

import datasets
import pyarrow as pa
import pyarrow.compute as pc

from .classes import imagenet_classes
from .io import digest_table, read_json, synthetic_source  # noqa: F401 (schema.synthetic_source)

HUB_REPO_ID = "imagenet-multimodal/imagenet-multimodal"
CONFIGS = ("filtered", "captions", "classes", "pairs")
IMAGE_CONFIGS = {"images-filtered": "filtered", "images-captioned": "captions"}

# the captions.parquet columns the scores depend on (score_stats.json's fingerprint digests them)
SCORED_CAPTION_COLUMNS = ("record", "label", "text", "role")
SCORED_ROLES = ("train", "test")  # the captions that get scores (the others are not eligible)


def scored_captions_digest(captions: pa.Table) -> str:
    """Digest of what the scores depend on besides the model: the text, class and role (the split
    decides which model scores a caption out of fold) of every scored caption in ``captions``."""
    scored = captions.filter(pc.is_in(captions["role"], pa.array(SCORED_ROLES)))
    return digest_table(scored, SCORED_CAPTION_COLUMNS)

# scores.parquet, one row per eligible caption (stage `score`); `record` joins it to captions.parquet
SCORE_SCHEMA = pa.schema(
    [
        ("record", pa.int64()),
        ("image_id", pa.string()),
        ("label", pa.int64()),
        ("p_correct", pa.float32()),
        ("p_mean", pa.float32()),
        ("rank", pa.int32()),
        ("top5", pa.list_(pa.int32())),
        ("kept", pa.bool_()),
        ("drop_reason", pa.string()),
        ("relevance", pa.float32()),
        ("scored_out_of_fold", pa.bool_()),
        ("score_method", pa.string()),  # in-sample, out-of-fold or held-out test
        ("p_correct_in_sample", pa.float32()),
        ("name_match", pa.bool_()),
        ("class_similarity", pa.float32()),
        ("informativeness", pa.float32()),
    ]
)

_STRING = datasets.Value("string")
_FILTERED = {
    "image_id": _STRING,
    "filename": _STRING,
    "label": None,  # ClassLabel, filled in by class_label()
    "wnid": _STRING,
    "class_name": _STRING,
    "text": _STRING,
    "title": _STRING,
    "description": _STRING,
    "tags": datasets.List(_STRING),
    "p_correct": datasets.Value("float32"),
    "relevance": datasets.Value("float32"),
}
_CAPTIONS_EXTRA = {
    "record": datasets.Value("int64"),
    "role": _STRING,
    "eligible": datasets.Value("bool"),
    "reason": _STRING,
    "p_mean": datasets.Value("float32"),
    "rank": datasets.Value("int32"),
    "kept": datasets.Value("bool"),
    "drop_reason": _STRING,
    "scored_out_of_fold": datasets.Value("bool"),
    "score_method": _STRING,
    "p_correct_in_sample": datasets.Value("float32"),
    "name_match": datasets.Value("bool"),
    "class_similarity": datasets.Value("float32"),
    "informativeness": datasets.Value("float32"),
}
_CLASSES = {
    "label": None,
    "wnid": _STRING,
    "name": _STRING,
    "lemmas": datasets.List(_STRING),
    "wikipedia_title": _STRING,
    "wikipedia_url": _STRING,
    "wikipedia_revision": datasets.Value("int64"),
    "wikipedia_timestamp": _STRING,
    "summary": _STRING,
    "description": _STRING,
    "sentences": datasets.List(_STRING),
    "text_source": _STRING,
}
_PAIRS = {"text": _STRING, "label": None, "image_id": _STRING, "sentence_index": datasets.Value("int32")}


@functools.cache
def class_label() -> datasets.ClassLabel:
    """ClassLabel over the 1,000 ImageNet-1k class names, in label order."""
    return datasets.ClassLabel(names=[c.name for c in imagenet_classes()])


def features(config: str, *, with_class_text: bool = False) -> datasets.Features:
    """The features of a config (image configs add an ``image`` column to their base config)."""
    base = IMAGE_CONFIGS.get(config, config)
    columns = {
        "filtered": _FILTERED,
        "captions": {**_FILTERED, **_CAPTIONS_EXTRA},
        "classes": _CLASSES,
        "pairs": _PAIRS,
    }.get(base)
    if columns is None:
        raise ValueError(f"unknown config {config!r}; expected one of {[*CONFIGS, *IMAGE_CONFIGS]}")
    spec = {name: class_label() if kind is None else kind for name, kind in columns.items()}
    if with_class_text and base in ("filtered", "captions"):
        spec["class_text"] = _STRING
    if config in IMAGE_CONFIGS:
        spec = {"image": datasets.Image(), **spec}
    return datasets.Features(spec)


def splits(config: str) -> tuple[str, ...]:
    """Splits of a config: the classifier's train/test for pairs, one train split otherwise
    (every image of this dataset is an ImageNet train image)."""
    return ("train", "test") if config == "pairs" else ("train",)
