"""Shared fixtures: a class table built once per session, and a caption-file writer."""

from __future__ import annotations

import os

# Tests never reach the network: the Hub clients of huggingface_hub, datasets and transformers stay offline
# (test_hub.py lifts this for its own local stand-in Hub).
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import shutil
from pathlib import Path

import orjson
import pytest

from imagenet_multimodal.classes import ClassesOptions, imagenet_classes, run


@pytest.fixture(scope="session")
def _classes_dir(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("classes")
    run(ClassesOptions(work=work, source="offline"))
    return work


@pytest.fixture
def work(tmp_path, _classes_dir) -> Path:
    """A work folder that already holds classes.parquet (offline source)."""
    folder = tmp_path / "work"
    folder.mkdir()
    shutil.copy(_classes_dir / "classes.parquet", folder / "classes.parquet")
    return folder


def record(label: int, number: int, title: str = "", description: str = "", tags=()) -> dict:
    """One ImageNet-Captions record of class ``label``."""
    wnid = imagenet_classes()[label].wnid
    return {"filename": f"{wnid}_{number}.JPEG", "title": title, "tags": list(tags),
            "description": description, "wnid": wnid}


def write_captions(path: Path, records: list) -> Path:
    """Write ``records`` as a JSON list (the published format)."""
    path.write_bytes(orjson.dumps(records))
    return path
