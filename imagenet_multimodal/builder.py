"""``ImagenetMultimodal``: the ``datasets`` builder of the dataset and of its image joins.

datasets >= 4 runs no loading scripts, so the builder lives in this package::

    from imagenet_multimodal import ImagenetMultimodal

    builder = ImagenetMultimodal(config_name="images-filtered", artifacts="W", data_dir="/data/imagenet")
    builder.download_and_prepare()
    ds = builder.as_dataset(split="train")

``artifacts`` is a work folder, a local copy of the Hub folder, or a Hub repo id (default: the
published repo). The text configs need no images; ``images-filtered`` and ``images-captioned``
join the captions with the user's own ImageNet train images (``data_dir``), streamed from the
Hub's Parquet shards, the original tar of tars, or a ``train/<wnid>/`` folder.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import publish, schema
from .io import InputError

logger = logging.getLogger(__name__)

_CITATION = """\
@article{imagenet_multimodal_2025,
  title = {Extending the ImageNet dataset for multimodal text and image learning},
  year  = {2025}
}
"""
# the full release's; a work or Hub folder that says what it holds (a synthetic sample, say) gets its own
_DESCRIPTION = publish.description(synthetic=False, sources=("wikipedia",))
_HOMEPAGE = f"https://huggingface.co/datasets/{schema.HUB_REPO_ID}"
_LICENSE = publish.LICENSE_NOTES
_IMAGENET_HELP = (
    "The images configs join the captions with your own copy of the ImageNet-1k train images, which "
    "ImageNet's terms do not allow us to redistribute. Get them from https://image-net.org/download.php "
    "(ILSVRC2012_img_train.tar) or the Hub dataset ILSVRC/imagenet-1k (after accepting its terms), then "
    "pass data_dir= one of: the folder of the Hub's Parquet shards (data/train-*.parquet), the folder "
    "holding ILSVRC2012_img_train.tar, or a train/<wnid>/<file>.JPEG folder."
)
_JOIN_BATCH = 256
# what a work or Hub folder's rows come from (their stat is the cache's version)
_VERSION_FILES = ("*.parquet", "*.json", "pairs/*.parquet", "data/*/*.parquet", "README.md")


@dataclass
class ImagenetMultimodalConfig(datasets.BuilderConfig):
    """A config of :class:`ImagenetMultimodal`.

    Parameters
    ----------
    artifacts : str, optional
        Work folder, local copy of the Hub folder, or Hub repo id (default: the published repo).
    min_relevance : float, optional
        Keep only captions whose relevance is at least this (``filtered`` and ``images-filtered``).
    with_class_text : bool
        Attach the class text (summary + description) to each caption row as ``class_text``.
    strict : bool
        A caption whose image is missing from ``data_dir`` is an error (else counted and logged).
    """

    artifacts: str | None = None
    min_relevance: float | None = None
    with_class_text: bool = False
    strict: bool = False

    def check(self) -> None:
        """Options that cannot apply are an :class:`InputError` (``datasets`` sets the keyword
        arguments on a copy of a predefined config, so ``__post_init__`` never sees them)."""
        if self.min_relevance is not None:
            if isinstance(self.min_relevance, bool) or not isinstance(self.min_relevance, (int, float)):
                raise InputError(f"min_relevance: expected a number in [0, 1], got {self.min_relevance!r}")
            if not 0.0 <= self.min_relevance <= 1.0:  # NaN fails this too
                raise InputError(f"min_relevance: expected a value in [0, 1], got {self.min_relevance}")
            if schema.IMAGE_CONFIGS.get(self.name, self.name) != "filtered":
                raise InputError(f"min_relevance: only the filtered configs have relevance to cut at; "
                                 f"config {self.name!r} does not")


class ImagenetMultimodal(datasets.GeneratorBasedBuilder):
    """ImageNet-1k with captions, class texts and caption relevance."""

    BUILDER_CONFIG_CLASS = ImagenetMultimodalConfig
    BUILDER_CONFIGS = [
        ImagenetMultimodalConfig(name="filtered", description="Captions kept by the relevance filter."),
        ImagenetMultimodalConfig(name="captions", description="Every input record, its bucket and score."),
        ImagenetMultimodalConfig(name="classes", description="The 1,000 classes and their texts."),
        ImagenetMultimodalConfig(name="pairs", description="The classifier's caption x sentence pairs."),
        ImagenetMultimodalConfig(name="images-filtered", description="Kept captions joined with your images."),
        ImagenetMultimodalConfig(name="images-captioned", description="Every captioned image joined with its image."),
    ]
    DEFAULT_CONFIG_NAME = "filtered"

    def __init__(self, *args, **kwargs):
        # the cache folder follows the artifacts' content, not only their name: a republished work
        # folder or a new Hub revision is read again instead of served from an old cache
        self._revision = None
        if kwargs.get("hash") is None:
            kwargs["hash"] = self._artifacts_version(kwargs.get("artifacts"))
            if kwargs.get("config_name") in schema.IMAGE_CONFIGS and kwargs.get("data_dir"):
                # and the images' content: a data_dir completed after a build with missing images is read again
                from .images import version

                images = version(Path(kwargs["data_dir"]).expanduser())
                kwargs["hash"] = hashlib.blake2b(f"{kwargs['hash']}:{images}".encode(), digest_size=8).hexdigest()
        super().__init__(*args, **kwargs)
        self.config.check()

    def _artifacts_version(self, spec: str | None) -> str | None:
        """A short digest of what ``spec`` holds now: a local folder's data files (names, sizes,
        modification times; atomic writes renew them), or a Hub repo's current commit (None offline)."""
        spec = spec or schema.HUB_REPO_ID
        folder = Path(spec).expanduser()
        if folder.is_dir():
            digest = hashlib.blake2b(digest_size=8)
            for path in sorted(p for pattern in _VERSION_FILES for p in folder.glob(pattern)):
                stat = path.stat()
                digest.update(f"{path.relative_to(folder)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
            return digest.hexdigest()
        from huggingface_hub import HfApi, constants, snapshot_download
        from huggingface_hub.errors import HfHubHTTPError, HFValidationError, OfflineModeIsEnabled
        from huggingface_hub.utils import validate_repo_id

        from .hub import _TransportError

        try:
            validate_repo_id(spec)
        except HFValidationError:
            return None  # not a repo id either: _artifacts says so when it is needed
        try:  # bounded: the shared client waits forever by default
            self._revision = HfApi().dataset_info(spec, timeout=constants.HF_HUB_ETAG_TIMEOUT).sha
        except (HfHubHTTPError, OfflineModeIsEnabled, _TransportError, OSError) as err:
            # offline or refused: the cached snapshot's own commit (never no hash at all, whose cache
            # folder is the parent of the per-commit ones and would be cleared by the next build)
            try:
                cached = Path(snapshot_download(spec, repo_type="dataset", local_files_only=True)).name
            except (HfHubHTTPError, OfflineModeIsEnabled, _TransportError, OSError, ValueError):
                cached = "unknown-revision"
            logger.info("artifacts %s: no revision from the Hub (%s); using %s", spec, err, cached)
            if cached != "unknown-revision":
                self._revision = cached  # and read that commit, not a newer one that the key would not name
            return cached[:16]
        return self._revision[:16] if self._revision else "unknown-revision"

    @property
    def _base(self) -> str:
        return schema.IMAGE_CONFIGS.get(self.config.name, self.config.name)

    @property
    def manual_download_instructions(self) -> str | None:
        return _IMAGENET_HELP if self.config.name in schema.IMAGE_CONFIGS else None

    def _info(self) -> datasets.DatasetInfo:
        info = datasets.DatasetInfo(
            description=_DESCRIPTION,
            features=schema.features(self.config.name, with_class_text=self.config.with_class_text),
            homepage=_HOMEPAGE,
            license=_LICENSE,
            citation=_CITATION,
        )
        if self._local:  # a repo id is labelled once downloaded (_split_generators)
            self._label(info)
        return info

    @property
    def _local(self) -> bool:
        return bool(self.config.artifacts) and Path(self.config.artifacts).expanduser().is_dir()

    def _label(self, info: datasets.DatasetInfo) -> None:
        """Describe what the artifacts really hold (real or synthetic captions, the class texts' sources);
        a folder that does not say gets a neutral description. Labels only: an unreadable file here
        is a warning (the stage that reads it names it), so a cached dataset still loads."""
        kind, folder = self._artifacts  # no such folder, or a repo that cannot be fetched: said here, once
        try:
            labels = publish.release_labels(kind, folder)
        except (InputError, OSError, ValueError, pa.ArrowException) as err:
            logger.warning("cannot tell what %s holds (%s); its description stays generic", folder, err)
            labels = None
        if labels is None:
            info.description, info.license = publish.UNLABELLED_DESCRIPTION, publish.UNLABELLED_LICENSE
            return
        synthetic, sources = labels
        info.description = publish.description(synthetic=synthetic, sources=sources)
        info.license = publish.license_notes(synthetic=synthetic, sources=sources)

    def _split_generators(self, dl_manager):
        if not self._local:
            self._label(self.info)  # a Hub repo id is known only once downloaded
        data_dir = None
        if self.config.name in schema.IMAGE_CONFIGS:
            data_dir = dl_manager.manual_dir
            data_dir = str(Path(data_dir).expanduser()) if data_dir else data_dir
            if not data_dir or not Path(data_dir).exists():
                raise datasets.exceptions.ManualDownloadError(f"data_dir={data_dir!r} not found. {_IMAGENET_HELP}")
            from .images import locate

            try:  # a folder without images: said before any split is generated
                locate(data_dir)
            except InputError as err:
                raise datasets.exceptions.ManualDownloadError(str(err)) from err
        return [
            datasets.SplitGenerator(name=split, gen_kwargs={"split": split, "data_dir": data_dir})
            for split in schema.splits(self._base)
        ]

    def _generate_examples(self, split: str, data_dir: str | None):
        if data_dir is not None:
            yield from self._image_examples(Path(data_dir))
            return
        index = 0
        for table in self._tables(split):
            for row in table.to_pylist():
                yield f"{split}-{index}", row
                index += 1

    # -- artifacts -----------------------------------------------------------------------------

    @functools.cached_property
    def _artifacts(self) -> tuple[str, Path]:
        """("work" | "hub", folder) for the configured artifacts; a repo id is downloaded first."""
        spec = self.config.artifacts or schema.HUB_REPO_ID
        folder = Path(spec).expanduser()
        if not folder.is_dir():
            if spec.count("/") != 1 or folder.exists():
                raise InputError(f"artifacts={spec!r}: not a folder and not a Hub repo id ORG/NAME")
            from huggingface_hub import snapshot_download
            from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

            from .hub import _TransportError

            patterns = ["README.md", f"data/{self._base}/*", "data/classes/*"]
            try:
                folder = Path(snapshot_download(spec, repo_type="dataset", allow_patterns=patterns,
                                                revision=self._revision))
            except (HfHubHTTPError, OfflineModeIsEnabled, _TransportError, OSError, ValueError) as err:
                raise InputError(f"artifacts={spec!r}: no such local folder, and fetching the Hub dataset repo "
                                 f"{spec} failed: {err}. Until a release is published, pass artifacts= a work "
                                 "folder or a folder written by `imagenet-multimodal publish`") from err
        if (folder / "captions.parquet").exists():
            return "work", folder
        if (folder / "data").is_dir():
            return "hub", folder
        raise InputError(
            f"{folder}: neither a work folder (captions.parquet) nor a Hub folder (data/<config>/*.parquet)"
        )

    def _tables(self, split: str) -> Iterator[pa.Table]:
        """The rows of the base config and split, as Arrow tables in the published schema."""
        kind, folder = self._artifacts
        base, with_text = self._base, self.config.with_class_text
        if kind == "work" and base == "pairs":
            yield from publish.pair_tables(folder, split)
            return
        if kind == "work":
            table = publish.classes_table(folder) if base == "classes" else \
                publish.caption_tables(folder, with_class_text=with_text)[base]
        else:
            table = _read_hub_split(folder, base, split)
            if with_text and base in ("filtered", "captions"):
                table = publish.attach_class_text(table, _read_hub_split(folder, "classes", "train"))
        if self.config.min_relevance is not None and base == "filtered":
            table = table.filter(pc.greater_equal(table["relevance"], self.config.min_relevance))
        yield publish.cast_to(table, schema.features(base, with_class_text=with_text))

    def _image_examples(self, data_dir: Path):
        """Join the base config's rows with the images under ``data_dir`` (streamed)."""
        from .images import iter_images, join_report

        table = pa.concat_tables(self._tables("train"))
        if self._base == "captions":  # one row per image: the bad-record buckets carry no usable image
            table = table.filter(pc.is_in(table["reason"], pa.array(["eligible", "one_word", "no_text"])))
        index = {image_id: row for row, image_id in enumerate(table["image_id"].to_pylist())}
        found: set[str] = set()
        pending: list[tuple[str, dict]] = []
        for image_id, image in iter_images(data_dir, wanted=index.keys()):
            found.add(image_id)
            pending.append((image_id, image))
            if len(pending) == _JOIN_BATCH:
                yield from _joined(table, index, pending)
                pending = []
        yield from _joined(table, index, pending)
        report = join_report(index.keys(), found)
        missing = len(index) - len(found & index.keys())
        if missing:
            message = f"{missing} of {len(index)} captioned images are missing from {data_dir}: {report}"
            if self.config.strict:
                raise InputError(message)
            logger.warning(message)


def _joined(table: pa.Table, index: dict[str, int], batch: list[tuple[str, dict]]):
    rows = table.take(pa.array([index[image_id] for image_id, _ in batch])).to_pylist()
    for (image_id, image), row in zip(batch, rows):
        yield image_id, {"image": image, **row}


def _read_hub_split(folder: Path, config: str, split: str) -> pa.Table:
    files = sorted((folder / "data" / config).glob(f"{split}-*.parquet"))
    if not files:
        raise InputError(f"{folder / 'data' / config}: no {split}-*.parquet files")
    expected = schema.features(config).arrow_schema
    tables = []
    for path in files:
        table = pq.read_table(path)
        if not set(expected.names) <= set(table.column_names):
            raise InputError(f"{path}: columns {table.column_names} differ from the {config} schema {expected.names}")
        tables.append(table.select(expected.names).cast(expected))
    return pa.concat_tables(tables)
