"""Upload a prepared folder to the Hugging Face Hub in one commit, after its content is sent.

The large files (the Parquet shards, the weights: LFS on the Hub) are preuploaded in batches with
:meth:`~huggingface_hub.HfApi.preupload_lfs_files`; then a single commit adds every file and deletes
the stale ones, so the repo goes from the old release to the new one at once: a reader never sees
old and new shards side by side (a new shard count renames them). An upload cut before that commit
leaves the repo as it was; rerunning it sends only what the Hub lacks, both because files already
on the Hub with the same content are skipped and because the Hub keeps preuploaded content.
Remote files that the folder no longer holds are deleted only where they match
``delete_patterns``: the files this tool manages (the Parquet shards under ``data/`` of the dataset
repo, the weights and ``runs/`` of the model repo), so a mistyped repo id or a repo shared with
other people's files loses nothing else. The token comes from ``HF_TOKEN`` or the login store
(``hf auth login``) through :class:`huggingface_hub.HfApi` and is never logged.
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

# the HTTP client under huggingface_hub: httpx2 in 2.x, httpx in 1.x (a dependency of ours, for
# Wikipedia, so the import never fails); the requests of 0.x raise OSErrors, which are caught too
try:
    from httpx2 import HTTPError as _TransportError
except ImportError:  # pragma: no cover - depends on the installed huggingface_hub
    from httpx import HTTPError as _TransportError

logger = logging.getLogger(__name__)

MAX_FILES_PER_BATCH = 100  # files preuploaded per request batch (the Hub's advice for a commit's size)
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
    max_files: int = MAX_FILES_PER_BATCH, delete_patterns: Iterable[str] = (), api: HfApi | None = None,
) -> dict[str, int]:
    """Upload ``folder`` to ``repo_id``: its new or changed files' content in batches of at most
    ``max_files``, then one commit.

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
        absent = [name for name in remote if name not in local]
        stale = _managed(absent, delete_patterns)
        kept = sorted(set(absent) - set(stale) - {".gitattributes"})
        if kept:
            logger.info("hub: %s: %d remote files that %s lacks are not managed here and stay, e.g. %s",
                        repo_id, len(kept), folder, kept[:5])
        additions = [CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(local[name])) for name in todo]
        for start in range(0, len(additions), max_files):
            batch = additions[start:start + max_files]
            api.preupload_lfs_files(repo_id, additions=batch, repo_type=repo_type)
            logger.info("hub: %s: content of %d/%d files sent", repo_id, start + len(batch), len(additions))
        if stale:
            logger.info("hub: %s: deleting %d stale files: %s", repo_id, len(stale), ", ".join(stale))
        if additions or stale:
            api.create_commit(repo_id, repo_type=repo_type, commit_message=f"Upload {folder.name}",
                              operations=[*additions, *(CommitOperationDelete(path_in_repo=name) for name in stale)])
    # HTTP, bad repo id, no host; the LFS batch API's refusals (ValueError) and Xet's errors (RuntimeError)
    except (HfHubHTTPError, HFValidationError, _TransportError, OSError, ValueError, RuntimeError) as err:
        raise InputError(f"uploading {folder} to {repo_type} repo {repo_id} failed: {err}") from err
    counts = {"uploaded": len(todo), "skipped": len(local) - len(todo), "deleted": len(stale)}
    logger.info("hub: %s: one commit: %d uploaded, %d already there, %d stale deleted", repo_id, *counts.values())
    return counts
