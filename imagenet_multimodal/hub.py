"""Upload a prepared folder to the Hugging Face Hub: batched commits that resume.

Files already on the Hub with the same content are skipped, so rerunning an interrupted upload
only sends what is missing. Remote files that the folder no longer holds are deleted in the last
commit only where they match ``delete_patterns``: the files this tool manages (the Parquet shards
under ``data/`` of the dataset repo, the weights and ``runs/`` of the model repo), so a mistyped
repo id or a repo shared with other people's files loses nothing else. The token comes from
``HF_TOKEN`` or the login store (``hf auth login``) through :class:`huggingface_hub.HfApi` and is
never logged.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable
from pathlib import Path

from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi
from huggingface_hub.errors import HfHubHTTPError, HFValidationError

from .io import InputError

try:  # the HTTP client under huggingface_hub: httpx2 in 2.x, httpx in 1.x
    from httpx2 import HTTPError as _TransportError
except ImportError:  # pragma: no cover - depends on the installed huggingface_hub
    from httpx import HTTPError as _TransportError

logger = logging.getLogger(__name__)

MAX_FILES_PER_COMMIT = 100
# The remote files each repo's upload manages: a stale one (not in the local folder) is deleted.
DATASET_DELETE_PATTERNS = ("data/**",)  # Parquet shards of an earlier release
MODEL_DELETE_PATTERNS = (  # what save_pretrained writes as weights, and the TensorBoard logs
    "*.safetensors", "*.safetensors.index.json", "pytorch_model*.bin", "pytorch_model*.bin.index.json", "runs/**",
)


def git_blob_sha1(data: bytes) -> str:
    """The git object id of ``data`` (what the Hub reports for files not stored in LFS)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _local_files(folder: Path) -> dict[str, Path]:
    return {p.relative_to(folder).as_posix(): p for p in sorted(folder.rglob("*")) if p.is_file()}


def _remote_files(api: HfApi, repo_id: str, repo_type: str) -> dict[str, set[str]]:
    """Each remote file's known content hashes (LFS sha256 and git blob id)."""
    remote = {}
    for entry in api.list_repo_tree(repo_id, recursive=True, repo_type=repo_type):
        if getattr(entry, "blob_id", None) is None:
            continue  # a folder
        hashes = {entry.blob_id}
        lfs = getattr(entry, "lfs", None)
        if lfs is not None:
            hashes.add(lfs.sha256 if hasattr(lfs, "sha256") else lfs["sha256"])
        remote[entry.path] = hashes
    return remote


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A repo path pattern as a regex: ``**`` matches across folders, ``*`` and ``?`` within one.

    ``*.safetensors`` matches ``model.safetensors`` but not ``notes/model.safetensors``.
    """
    parts = re.split(r"(\*\*|\*|\?)", pattern)
    wildcards = {"**": ".*", "*": "[^/]*", "?": "[^/]"}
    return re.compile("".join(wildcards.get(part, re.escape(part)) for part in parts))


def _managed(names: Iterable[str], patterns: Iterable[str]) -> list[str]:
    regexes = [glob_regex(pattern) for pattern in patterns]
    return [name for name in names if any(regex.fullmatch(name) for regex in regexes)]


def _unchanged(path: Path, hashes: set[str]) -> bool:
    data = path.read_bytes()
    return hashlib.sha256(data).hexdigest() in hashes or git_blob_sha1(data) in hashes


def push_folder(
    folder: str | Path, repo_id: str, *, repo_type: str, private: bool = False,
    max_files: int = MAX_FILES_PER_COMMIT, delete_patterns: Iterable[str] = (), api: HfApi | None = None,
) -> dict[str, int]:
    """Upload ``folder`` to ``repo_id`` in commits of at most ``max_files`` files.

    A remote file that ``folder`` lacks is deleted only if it matches one of ``delete_patterns``
    (see :func:`glob_regex`; by default nothing is deleted): other remote files are left alone.
    Returns counts: ``uploaded``, ``skipped`` (already there) and ``deleted`` (stale remote files).
    """
    folder = Path(folder)
    api = api or HfApi()
    try:
        api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
        remote = _remote_files(api, repo_id, repo_type)
        local = _local_files(folder)
        todo = [name for name, path in local.items() if name not in remote or not _unchanged(path, remote[name])]
        # data first, top-level files (the card with its row counts) last, in the commit that also
        # deletes stale shards. An upload cut between commits can still hold old and new shards side
        # by side (a new shard count renames them): rerun it to finish
        todo.sort(key=lambda name: ("/" not in name, name))
        absent = [name for name in remote if name not in local]
        stale = _managed(absent, delete_patterns)
        kept = sorted(set(absent) - set(stale) - {".gitattributes"})
        if kept:
            logger.info("hub: %s: %d remote files that %s lacks are not managed here and stay, e.g. %s",
                        repo_id, len(kept), folder, kept[:5])
        batches = [todo[i:i + max_files] for i in range(0, len(todo), max_files)] or [[]]
        for number, batch in enumerate(batches, start=1):
            operations = [CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(local[name])) for name in batch]
            if number == len(batches) and stale:
                logger.info("hub: %s: deleting %d stale files: %s", repo_id, len(stale), ", ".join(stale))
                operations += [CommitOperationDelete(path_in_repo=name) for name in stale]
            if not operations:
                continue
            api.create_commit(repo_id, operations=operations, repo_type=repo_type,
                              commit_message=f"Upload {folder.name} ({number}/{len(batches)})")
            logger.info("hub: %s commit %d/%d: %d files", repo_id, number, len(batches), len(operations))
    except (HfHubHTTPError, HFValidationError, _TransportError, OSError) as err:  # HTTP, bad repo id, no host
        raise InputError(f"uploading {folder} to {repo_type} repo {repo_id} failed: {err}") from err
    counts = {"uploaded": len(todo), "skipped": len(local) - len(todo), "deleted": len(stale)}
    logger.info("hub: %s: %d uploaded, %d already there, %d stale deleted", repo_id, *counts.values())
    return counts
