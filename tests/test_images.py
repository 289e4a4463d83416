"""The image-join layer: layout detection, streaming readers, filtering, errors, join report."""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from PIL import Image

from imagenet_multimodal.images import (
    _ID_PATTERN,
    canonical_id,
    detect_layout,
    iter_images,
    join_report,
    locate,
)
from imagenet_multimodal.io import InputError

HUB_TYPE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
HUB_SCHEMA = pa.schema([("image", HUB_TYPE), ("label", pa.int64())])
LABELS = {"n01440764": 0, "n01739381": 49, "n02105855": 229}


def _encode(mode: str, color, fmt: str = "JPEG") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (8, 8), color).save(buffer, fmt)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def images() -> dict[str, bytes]:
    """{file name: bytes}: three classes, with ImageNet's odd files (CMYK, PNG as .JPEG, grayscale)."""
    return {
        "n01440764_10026.JPEG": _encode("RGB", (200, 30, 30)),
        "n01440764_10027.JPEG": _encode("RGB", (30, 200, 30)),
        "n01440764_9.JPEG": _encode("RGB", (30, 30, 200)),
        "n01739381_1309.JPEG": _encode("CMYK", (10, 200, 30, 0)),
        "n01739381_2.JPEG": _encode("RGB", (1, 2, 3)),
        "n02105855_2933.JPEG": _encode("RGB", (9, 99, 199), "PNG"),
        "n02105855_10.JPEG": _encode("L", 128),
        "n02105855_11.JPEG": _encode("RGB", (50, 60, 70)),
    }


def _by_class(images: dict[str, bytes]) -> dict[str, list[str]]:
    classes: dict[str, list[str]] = {}
    for name in sorted(images):
        classes.setdefault(name.split("_")[0], []).append(name)
    return classes


def _tar_bytes(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def write_tar(root: Path, images: dict[str, bytes], *, broken_class: str | None = None) -> Path:
    """ILSVRC2012_img_train.tar: a tar of per-class tars; ``broken_class``'s tar is garbage."""
    class_tars = {
        f"{wnid}.tar": b"not a tar" * 200 if wnid == broken_class else _tar_bytes({n: images[n] for n in names})
        for wnid, names in _by_class(images).items()
    }
    root.mkdir(parents=True, exist_ok=True)
    path = root / "ILSVRC2012_img_train.tar"
    path.write_bytes(_tar_bytes(class_tars))
    return path


def write_parquet(root: Path, images: dict[str, bytes], *, suffix: bool = True, shards: int = 2) -> Path:
    """The Hub's layout: data/train-0000i-of-0000n.parquet, file names with the `_<wnid>` suffix."""
    names = sorted(images)
    (root / "data").mkdir(parents=True, exist_ok=True)
    for index in range(shards):
        part = names[index::shards]
        rows = [{"bytes": images[n], "path": n.replace(".JPEG", f"_{n[:9]}.JPEG") if suffix else n} for n in part]
        table = pa.table({"image": pa.array(rows, HUB_TYPE), "label": [LABELS[n[:9]] for n in part]}, HUB_SCHEMA)
        pq.write_table(table, root / "data" / f"train-{index:05d}-of-{shards:05d}.parquet", row_group_size=2)
    odd = pa.table({"image": pa.array([{"bytes": b"x", "path": "ILSVRC2012_val_00000001_n01440764.JPEG"}], HUB_TYPE),
                    "label": [0]}, HUB_SCHEMA)
    pq.write_table(odd, root / "data" / "validation-00000-of-00001.parquet")  # not a train shard: ignored
    return root


def write_folder(root: Path, images: dict[str, bytes]) -> Path:
    for name, data in images.items():
        folder = root / "train" / name[:9]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    (root / "train" / "n01440764" / ".DS_Store").write_bytes(b"junk")
    return root


@pytest.fixture(scope="module")
def layouts(tmp_path_factory, images) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("layouts")
    return {
        "parquet": write_parquet(root / "parquet", images),
        "parquet-plain": write_parquet(root / "parquet-plain", images, suffix=False, shards=1),
        "tar": write_tar(root / "tar", images).parent,
        "folder": write_folder(root / "folder", images),
    }


def _expected(images: dict[str, bytes]) -> dict[str, bytes]:
    return {name.rsplit(".", 1)[0]: data for name, data in images.items()}


@pytest.mark.parametrize("name", ["parquet", "parquet-plain", "tar", "folder"])
def test_every_layout_yields_the_same_images(layouts, images, name):
    found = list(iter_images(layouts[name]))
    assert {key: image["bytes"] for key, image in found} == _expected(images)
    assert len(found) == len(images)
    assert all(canonical_id(image["path"]) == key for key, image in found)
    assert [key for key, _ in iter_images(layouts[name])] == [key for key, _ in found]  # deterministic


def test_detected_layouts(layouts):
    assert detect_layout(layouts["parquet"]) == "parquet"
    assert detect_layout(layouts["parquet"] / "data" / "train-00000-of-00002.parquet") == "parquet"
    assert detect_layout(layouts["tar"]) == "tar"
    assert detect_layout(layouts["tar"] / "ILSVRC2012_img_train.tar") == "tar"
    assert detect_layout(layouts["folder"]) == "folder"
    assert detect_layout(layouts["folder"] / "train") == "folder"
    assert locate(layouts["folder"] / "train")[1] == [layouts["folder"] / "train"]


def test_paths_are_the_stored_names(layouts):
    tar_paths = {image["path"] for _, image in iter_images(layouts["tar"])}
    parquet_paths = {image["path"] for _, image in iter_images(layouts["parquet"])}
    assert "n01440764_10026.JPEG" in tar_paths
    assert "n01440764_10026_n01440764.JPEG" in parquet_paths


@pytest.mark.parametrize("name", ["parquet", "tar", "folder"])
def test_wanted_filters_before_reading(layouts, images, name):
    wanted = {"n01440764_9", "n02105855_2933", "n01440764_99999", "n09999999_1"}
    found = dict(iter_images(layouts[name], wanted=wanted))
    assert set(found) == {"n01440764_9", "n02105855_2933"}
    assert found["n02105855_2933"]["bytes"] == images["n02105855_2933.JPEG"]
    assert list(iter_images(layouts[name], wanted=set())) == []


def test_a_class_without_wanted_images_is_never_opened(tmp_path, images):
    write_tar(tmp_path, images, broken_class="n01739381")
    found = dict(iter_images(tmp_path, wanted={"n01440764_9", "n02105855_10"}))
    assert set(found) == {"n01440764_9", "n02105855_10"}
    with pytest.raises(InputError, match=r"ILSVRC2012_img_train\.tar.*class tar n01739381\.tar"):
        dict(iter_images(tmp_path, wanted={"n01739381_2"}))


def test_reading_stops_once_every_wanted_image_was_found(tmp_path, images):
    write_parquet(tmp_path, images, shards=1)
    (tmp_path / "data" / "train-00001-of-00001.parquet").write_bytes(b"broken shard, never opened")
    assert set(dict(iter_images(tmp_path, wanted={"n01440764_9"}))) == {"n01440764_9"}
    with pytest.raises(InputError, match=r"train-00001-of-00001\.parquet: not a readable Parquet file"):
        list(iter_images(tmp_path))


def test_an_image_id_read_twice_is_yielded_once(tmp_path, images, caplog):
    """Shards of an older download beside the new ones hold every image twice: each id comes once
    (the first copy), the repeats are counted, and a wanted-set still finds every image."""
    write_parquet(tmp_path, images, shards=2)
    write_parquet(tmp_path / "newer", dict(sorted(images.items())[:3]), shards=3)
    for shard in (tmp_path / "newer" / "data").glob("train-*.parquet"):
        shard.rename(tmp_path / "data" / shard.name)
    wanted = set(_expected(images))
    found = list(iter_images(tmp_path, wanted=wanted))
    assert sorted(key for key, _ in found) == sorted(wanted)
    assert {key: image["bytes"] for key, image in found} == _expected(images)
    assert "repeat an id read before" in caplog.text  # the wanted ones were found before all repeats came
    caplog.clear()
    assert len(list(iter_images(tmp_path))) == len(images)
    assert "3 image(s) under" in caplog.text and "repeat an id read before" in caplog.text


def test_odd_imagenet_files_pass_through_and_decode(layouts, images):
    for name in ("parquet", "tar", "folder"):
        found = dict(iter_images(layouts[name], wanted={"n01739381_1309", "n02105855_2933", "n02105855_10"}))
        decoded = {key: Image.open(io.BytesIO(image["bytes"])) for key, image in found.items()}
        for image in decoded.values():
            image.load()
        assert decoded["n01739381_1309"].mode == "CMYK"
        assert decoded["n02105855_2933"].format == "PNG"
        assert decoded["n02105855_10"].mode == "L"
        assert found["n01739381_1309"]["bytes"] == images["n01739381_1309.JPEG"]


def test_no_images_found_says_what_was_looked_for(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError) as err:
        detect_layout(tmp_path)
    message = str(err.value)
    for part in (str(tmp_path), "data/train-*.parquet", "ILSVRC2012_img_train.tar", "train/<wnid>",
                 "image-net.org/download.php", "ILSVRC/imagenet-1k"):
        assert part in message
    with pytest.raises(InputError, match="no such file or folder"):
        detect_layout(tmp_path / "missing")
    with pytest.raises(InputError, match="unknown image layout 'zip'"):
        list(iter_images(tmp_path, layout="zip"))


def test_forced_layout_must_exist(layouts):
    with pytest.raises(InputError, match="no ImageNet train images in the tar layout"):
        list(iter_images(layouts["folder"], layout="tar"))
    assert len(list(iter_images(layouts["folder"], layout="folder"))) == 8


def _cut(path: Path, size: int, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(path.read_bytes()[:size])
    return target


def test_truncated_tar_is_an_input_error(tmp_path, layouts):
    whole = layouts["tar"] / "ILSVRC2012_img_train.tar"
    with tarfile.open(whole) as tar:
        members = tar.getmembers()
    last = members[-1]
    cuts = {
        "inside a class tar": members[0].offset_data + 2000,
        "at a member boundary": last.offset,  # tarfile alone would end here without a word
        "inside a header": last.offset + 100,
        "before the end marker": last.offset_data + last.size + (-last.size % 512),
        "inside the first header": 300,
    }
    for label, size in cuts.items():
        cut = _cut(whole, size, tmp_path / label.replace(" ", "-") / "ILSVRC2012_img_train.tar")
        with pytest.raises(InputError, match=r"ILSVRC2012_img_train\.tar: .*truncated or damaged") as err:
            list(iter_images(cut.parent))
        assert "expected ILSVRC2012_img_train.tar: a tar of per-class tars" in str(err.value), label
    with pytest.raises(InputError, match="class tar n01440764.tar inside it"):
        list(iter_images(tmp_path / "inside-a-class-tar"))


def test_truncated_class_tar_is_an_input_error(tmp_path, images):
    good = _tar_bytes({n: images[n] for n in _by_class(images)["n01440764"]})
    with tarfile.open(fileobj=io.BytesIO(good)) as tar:
        second = tar.getmembers()[1].offset
    (tmp_path / "ILSVRC2012_img_train.tar").write_bytes(_tar_bytes({"n01440764.tar": good[:second]}))
    with pytest.raises(InputError, match=r"class tar n01440764\.tar inside it .*end-of-archive marker"):
        list(iter_images(tmp_path))


def test_class_tar_cut_inside_an_image_is_an_input_error(tmp_path, images):
    """A class tar cut inside an image but followed by another class tar: its last image would
    read the next class tar's bytes without the bounds check."""
    good = _tar_bytes({n: images[n] for n in _by_class(images)["n01440764"]})
    with tarfile.open(fileobj=io.BytesIO(good)) as tar:
        last = tar.getmembers()[-1]
    cut = good[:last.offset_data + last.size // 2]
    rest = _tar_bytes({n: images[n] for n in _by_class(images)["n01739381"]})
    (tmp_path / "ILSVRC2012_img_train.tar").write_bytes(_tar_bytes({"n01440764.tar": cut, "n01739381.tar": rest}))
    for wanted in (None, {canonical_id(last.name)}):  # alone, reading stops right after that image
        with pytest.raises(InputError, match=r"class tar n01440764\.tar inside it .*truncated or damaged"):
            list(iter_images(tmp_path, wanted=wanted))
    assert set(dict(iter_images(tmp_path, wanted={"n01739381_2"}))) == {"n01739381_2"}


@pytest.mark.skipif(shutil.which("tar") is None, reason="needs GNU tar to write a sparse member")
def test_sparse_class_tar_reads_right_bytes(tmp_path):
    """A class tar stored sparse (``tar -S`` of a class tar with a hole) is not one piece in the
    file: its images must come through tarfile's sparse map, not from offsets."""
    zeros, image = b"\0" * 64 * 1024, bytes(range(256)) * 12
    raw = _tar_bytes({"n01440764_1.JPEG": zeros, "n01440764_2.JPEG": image})
    src = tmp_path / "src"
    src.mkdir()
    with open(src / "n01440764.tar", "wb") as handle:  # the zero image's blocks left as a hole
        handle.write(raw[:512])
        handle.seek(512 + len(zeros))
        handle.write(raw[512 + len(zeros):])
    (src / "n01443537.tar").write_bytes(_tar_bytes({"n01443537_1.JPEG": image[::-1]}))
    for order in (["n01440764.tar", "n01443537.tar"], ["n01443537.tar", "n01440764.tar"]):  # sparse last too
        root = tmp_path / order[0]
        root.mkdir()
        subprocess.run(["tar", "-S", "--format=gnu", "-cf", str(root / "ILSVRC2012_img_train.tar"), "-C", str(src),
                        *order], check=True)
        with tarfile.open(root / "ILSVRC2012_img_train.tar") as tar:
            if not tar.getmember("n01440764.tar").issparse():
                pytest.skip("this file system or tar stored no hole")
        found = {key: value["bytes"] for key, value in iter_images(root)}
        assert found == {"n01440764_1": zeros, "n01440764_2": image, "n01443537_1": image[::-1]}
        assert dict(iter_images(root, wanted={"n01440764_2"}))["n01440764_2"]["bytes"] == image


def test_foreign_parquet_schema_is_an_input_error(tmp_path):
    (tmp_path / "data").mkdir()
    shard = tmp_path / "data" / "train-00000-of-00001.parquet"
    pq.write_table(pa.table({"image": ["n01440764_1.JPEG"], "label": [0]}), shard)
    with pytest.raises(InputError) as err:
        list(iter_images(tmp_path))
    assert str(shard) in str(err.value)
    assert "found schema {image: string, label: int64}" in str(err.value)


def test_parquet_row_without_path_is_an_input_error(tmp_path):
    (tmp_path / "data").mkdir()
    rows = pa.array([{"bytes": b"a", "path": "n01440764_1.JPEG"}, {"bytes": b"b", "path": None}], HUB_TYPE)
    pq.write_table(pa.table({"image": rows, "label": [0, 0]}), tmp_path / "data" / "train-00000-of-00001.parquet")
    with pytest.raises(InputError, match="row 1 has no image.path"):
        list(iter_images(tmp_path))


NAMES = [
    "n01440764_10026.JPEG",
    "n01440764_10026_n01440764.JPEG",
    "data/train/n01440764_10026_n01440764.JPEG",
    "n01440764/n01440764_10026.jpeg",
    "ILSVRC2012_val_00000001_n01751748.JPEG",
    "n01440764_10026",
    "n01440764_10026_n0144076.JPEG",
    "a.b.c",
    "x_n01440764",
    "_n01440764.JPEG",
]


def test_canonical_id_in_python_and_arrow_agree():
    assert canonical_id("n01440764_10026_n01440764.JPEG") == "n01440764_10026"
    assert canonical_id("ILSVRC2012_val_00000001_n01751748.JPEG") == "ILSVRC2012_val_00000001"
    assert canonical_id("n01440764_10026_n0144076.JPEG") == "n01440764_10026_n0144076"
    arrow = pc.replace_substring_regex(pa.array(NAMES), pattern=_ID_PATTERN, replacement=r"\1").to_pylist()
    assert arrow == [canonical_id(name) for name in NAMES]


def test_join_report():
    wanted = {"n01440764_1", "n01440764_2", "n01443537_3", "n01443537_4"}
    report = join_report(wanted, {"n01440764_1", "n01443537_3", "n09999999_9"}, examples=1)
    assert report == {"wanted": 4, "found": 2, "missing": 2, "coverage": 0.5, "missing_classes": 2,
                      "missing_examples": ["n01440764_2"]}
    assert join_report(set(), set())["coverage"] == 1.0


@pytest.mark.parametrize("layout", ["tar", "folder"])
def test_a_file_sharing_an_image_name_is_not_an_image(tmp_path, images, layout):
    """An annotation n01440764_9.xml beside n01440764_9.JPEG is skipped, and the images after it
    are still read (the early stop counted it as the image and lost a later one)."""
    files = {**images, "n01440764_9.xml": b"<annotation/>", "n01440764_10026.txt": b"notes"}
    root = write_tar(tmp_path, files).parent if layout == "tar" else write_folder(tmp_path, files)
    wanted = {"n01440764_9", "n01440764_10026", "n02105855_11"}
    found = list(iter_images(root, wanted=wanted))
    assert sorted(key for key, _ in found) == sorted(wanted)
    assert all(image["path"].endswith(".JPEG") for _, image in found)
    assert {key: image["bytes"] for key, image in found} == {k: v for k, v in _expected(images).items() if k in wanted}
