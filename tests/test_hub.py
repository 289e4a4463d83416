"""push_folder against a stand-in Hub: a local HTTP server speaking the Hub's commit API.

huggingface_hub's real client makes the requests (create repo, tree listing, YAML check, preupload,
the Git LFS batch API and the PUT of LFS content, NDJSON commit); the server keeps LFS content by
its sha256 and the committed files by path. The token must reach the Hub in the Authorization
header, never the storage URL of an LFS upload, and appear in no log line. The client's Xet
transfer is switched off: the stand-in speaks the basic LFS protocol the Hub also serves.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from huggingface_hub import HfApi, constants
from huggingface_hub.utils import _detect_agent

from imagenet_multimodal.hub import (
    DATASET_DELETE_PATTERNS,
    MODEL_DELETE_PATTERNS,
    git_blob_sha1,
    glob_regex,
    push_folder,
)
from imagenet_multimodal.io import InputError

TOKEN = "hf_test_secret_token_123"


LFS_SUFFIXES = (".parquet", ".safetensors", ".bin")  # stored in LFS, as the Hub's default .gitattributes says


def lfs_pointer(data: bytes) -> bytes:
    """The Git LFS pointer file that git stores in place of ``data``."""
    oid = hashlib.sha256(data).hexdigest()
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {len(data)}\n".encode()


def tree_entries(files: dict[str, bytes]) -> list[dict]:
    """What GET /api/{repo_type}s/{repo}/tree/{revision}?recursive=true answers: folders, plain files
    (oid = git blob id of the content) and LFS files (oid = git blob id of the pointer; ``lfs.oid`` =
    sha256 of the content, ``size`` = the content's size)."""
    folders = sorted({"/".join(path.split("/")[:i]) for path in files for i in range(1, path.count("/") + 1)})
    entries = [{"type": "directory", "oid": git_blob_sha1(f.encode()), "size": 0, "path": f} for f in folders]
    for path, data in sorted(files.items()):
        entry = {"type": "file", "path": path, "size": len(data)}
        if path.endswith(LFS_SUFFIXES):
            pointer = lfs_pointer(data)
            entry["oid"] = git_blob_sha1(pointer)
            entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": len(pointer)}
        else:
            entry["oid"] = git_blob_sha1(data)
        entries.append(entry)
    return entries


class FakeHub(BaseHTTPRequestHandler):
    files: dict[str, bytes]
    commits: list[list[str]]
    unknown: list[str]
    tokens: set[str]
    lfs: dict[str, bytes]  # LFS content by sha256, kept whether or not a commit names it
    lfs_puts: list[str]  # the sha256 of every LFS content upload
    fail_commits: int  # answer this many commits with a server error

    def log_message(self, *args):  # keep the test output quiet
        pass

    def _reply(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_GET(self):
        self.tokens.add(self.headers.get("Authorization", ""))
        if "/tree/" in self.path:
            return self._reply(200, tree_entries(self.files))
        self.unknown.append("GET " + self.path)
        return self._reply(404, {"error": "not found"})

    def do_POST(self):
        self.tokens.add(self.headers.get("Authorization", ""))
        body = self._body()
        if self.path.startswith("/api/repos/create"):
            return self._reply(200, {"url": f"http://{self.headers['Host']}/datasets/org/name"})
        if self.path.startswith("/api/validate-yaml"):
            return self._reply(200, {})
        if "/preupload/" in self.path:
            files = json.loads(body)["files"]
            return self._reply(200, {"files": [
                {"path": f["path"], "uploadMode": "lfs" if f["path"].endswith(LFS_SUFFIXES) else "regular",
                 "shouldIgnore": False} for f in files]})
        if self.path.endswith(".git/info/lfs/objects/batch"):  # git-lfs batch API: where to PUT what is new
            host = self.headers["Host"]
            return self._reply(200, {"transfer": "basic", "objects": [
                {"oid": o["oid"], "size": o["size"]} if o["oid"] in self.lfs else
                {"oid": o["oid"], "size": o["size"], "actions": {"upload": {"href": f"http://{host}/lfs/{o['oid']}"}}}
                for o in json.loads(body)["objects"]]})
        if "/commit/" in self.path:
            if self.fail_commits:
                type(self).fail_commits -= 1
                return self._reply(500, {"error": "commit failed"})
            changed = []
            for line in body.decode().splitlines():
                item = json.loads(line)
                if item["key"] == "file":
                    self.files[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
                    changed.append(item["value"]["path"])
                elif item["key"] == "lfsFile":
                    self.files[item["value"]["path"]] = self.lfs[item["value"]["oid"]]
                    changed.append(item["value"]["path"])
                elif item["key"] == "deletedFile":
                    self.files.pop(item["value"]["path"], None)
                    changed.append("-" + item["value"]["path"])
            self.commits.append(changed)
            url = f"http://{self.headers['Host']}/datasets/org/name/commit/{'1' * 40}"
            return self._reply(200, {"commitUrl": url, "commitOid": "1" * 40})
        self.unknown.append("POST " + self.path)
        return self._reply(404, {"error": "not found"})

    def do_PUT(self):  # the LFS storage URL (S3 on the Hub): no Hub token may come here
        body = self._body()
        if not self.path.startswith("/lfs/") or "Authorization" in self.headers:
            self.unknown.append("PUT " + self.path + " " + self.headers.get("Authorization", ""))
            return self._reply(403, {"error": "forbidden"})
        oid = self.path.removeprefix("/lfs/")
        assert hashlib.sha256(body).hexdigest() == oid
        self.lfs[oid] = body
        self.lfs_puts.append(oid)
        return self._reply(200, {})


@pytest.fixture
def hub(monkeypatch):
    # the stand-in Hub is on loopback: lift the suite's offline switch, and skip the client's
    # own look-up of an agent registry on huggingface.co (its User-Agent detection)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(_detect_agent, "_registry", _detect_agent._EMPTY_REGISTRY)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    handler = type("Hub", (FakeHub,), {"files": {}, "commits": [], "unknown": [], "tokens": set(),
                                       "lfs": {}, "lfs_puts": [], "fail_commits": 0})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield handler, HfApi(endpoint=f"http://127.0.0.1:{server.server_port}", token=TOKEN)
    server.shutdown()
    thread.join()


def _folder(tmp_path, shards: int):
    folder = tmp_path / "hub"
    (folder / "data" / "filtered").mkdir(parents=True)
    (folder / "README.md").write_text("---\npretty_name: test\n---\n# card\n")
    for i in range(shards):
        (folder / "data" / "filtered" / f"train-{i:05d}-of-{shards:05d}.parquet").write_bytes(b"PAR1" + bytes([i]) * 50)
    return folder


def test_push_sends_content_in_batches_then_one_commit_and_deletes_stale(hub, tmp_path, caplog):
    server, api = hub
    caplog.set_level(logging.DEBUG)
    folder = _folder(tmp_path, shards=5)
    first = push_folder(folder, "org/name", repo_type="dataset", max_files=2, api=api)
    assert first == {"uploaded": 6, "skipped": 0, "deleted": 0}
    assert [len(c) for c in server.commits] == [6]  # one commit, whatever the batch size
    assert "content of 2/6 files sent" in caplog.text and "content of 6/6 files sent" in caplog.text
    assert len(server.lfs_puts) == 5  # the shards went to LFS storage, the card inline in the commit
    assert server.files["README.md"].startswith(b"---")
    assert server.files["data/filtered/train-00003-of-00005.parquet"] == b"PAR1" + bytes([3]) * 50
    assert server.unknown == []

    # a file lost remotely and a changed card: only those two are sent
    del server.files["data/filtered/train-00004-of-00005.parquet"]
    (folder / "README.md").write_text("---\npretty_name: test 2\n---\n# card\n")
    again = push_folder(folder, "org/name", repo_type="dataset", max_files=2, api=api)
    assert again == {"uploaded": 2, "skipped": 4, "deleted": 0}
    assert len(server.lfs_puts) == 5  # the Hub still held that shard's content: not sent again

    # a smaller release replaces the shards and deletes the stale ones, and only those: files that
    # others put into the repo stay
    foreign = {".gitattributes": b"*.parquet filter=lfs\n", "notes/x.ipynb": b"{}", "LICENSE": b"MIT"}
    server.files.update(foreign)
    smaller = _folder(tmp_path / "v2", shards=2)
    (smaller / "data" / "filtered" / "train-00001-of-00002.parquet").write_bytes(b"PAR1 release 2")
    last = push_folder(smaller, "org/name", repo_type="dataset", api=api, delete_patterns=DATASET_DELETE_PATTERNS)
    assert last["deleted"] == 5 and sorted(server.files) == sorted(
        ["README.md", *foreign, *[f"data/filtered/train-{i:05d}-of-00002.parquet" for i in range(2)]])
    assert "deleting 5 stale files: data/filtered/train-00000-of-00005.parquet" in caplog.text
    assert "notes/x.ipynb" in caplog.text  # named among the files left alone

    assert server.tokens == {f"Bearer {TOKEN}"}
    assert TOKEN not in caplog.text


def test_an_upload_cut_before_its_commit_leaves_the_old_release_whole(hub, tmp_path):
    """A new shard count renames every shard: a repo holding old and new ones would serve both.
    The content goes first and one commit swaps the release, so a failed commit changes nothing,
    and the rerun sends no content again."""
    server, api = hub
    push_folder(_folder(tmp_path, shards=3), "org/name", repo_type="dataset", api=api)
    old = dict(server.files)
    bigger = _folder(tmp_path / "v2", shards=4)
    for shard in (bigger / "data" / "filtered").iterdir():
        shard.write_bytes(b"PAR1 release 2 " + shard.name.encode())
    server.fail_commits = 1
    with pytest.raises(InputError, match="dataset repo org/name failed"):  # in batches of 2: one commit all the same
        push_folder(bigger, "org/name", repo_type="dataset", api=api, delete_patterns=DATASET_DELETE_PATTERNS,
                    max_files=2)
    assert server.files == old
    puts = len(server.lfs_puts)
    assert puts == 3 + 4
    counts = push_folder(bigger, "org/name", repo_type="dataset", api=api, delete_patterns=DATASET_DELETE_PATTERNS)
    assert counts == {"uploaded": 4, "skipped": 1, "deleted": 3}  # the card is unchanged
    assert len(server.lfs_puts) == puts  # the Hub kept the content of the cut upload
    assert sorted(server.files) == sorted(p.relative_to(bigger).as_posix() for p in bigger.rglob("*") if p.is_file())
    assert server.files["data/filtered/train-00002-of-00004.parquet"] == b"PAR1 release 2 train-00002-of-00004.parquet"


def test_push_failure_is_an_input_error_without_token(hub, tmp_path, caplog):
    api = HfApi(endpoint="http://127.0.0.1:9", token=TOKEN)  # nothing listens on the discard port
    with pytest.raises(InputError, match="dataset repo org/name failed") as err:
        push_folder(_folder(tmp_path, 1), "org/name", repo_type="dataset", api=api)
    assert TOKEN not in str(err.value) and TOKEN not in caplog.text


def test_push_deletes_nothing_unless_told_which_files_it_manages(hub, tmp_path):
    """A mistyped repo id must not wipe someone else's repo: without delete patterns nothing goes."""
    server, api = hub
    others = {"README.md": b"their card", "data/train.csv": b"a,b", "notes/x.ipynb": b"{}"}
    server.files.update(others)
    counts = push_folder(_folder(tmp_path, shards=1), "org/name", repo_type="dataset", api=api)
    assert counts["deleted"] == 0
    assert all(name in server.files for name in others)


def test_model_push_deletes_only_stale_weights_and_runs(hub, tmp_path):
    server, api = hub
    server.files.update({
        "model.safetensors": b"old weights", "model.safetensors.index.json": b"{}", "pytorch_model.bin": b"old",
        "pytorch_model-00001-of-00002.bin": b"old", "runs/old/events.out.tfevents.1": b"log",
        "notes/x.ipynb": b"{}", "notes/model.safetensors": b"someone's", "extra/config.json": b"{}",
    })
    folder = tmp_path / "hub-model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "model-00001-of-00002.safetensors").write_bytes(b"new 1")
    (folder / "model-00002-of-00002.safetensors").write_bytes(b"new 2")
    (folder / "runs" / "new").mkdir(parents=True)
    (folder / "runs" / "new" / "events.out.tfevents.2").write_bytes(b"log 2")
    counts = push_folder(folder, "org/name-relevance", repo_type="model", api=api,
                         delete_patterns=MODEL_DELETE_PATTERNS)
    assert counts == {"uploaded": 4, "skipped": 0, "deleted": 5}
    assert sorted(server.files) == [
        "config.json", "extra/config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
        "notes/model.safetensors", "notes/x.ipynb", "runs/new/events.out.tfevents.2"]


@pytest.mark.parametrize(("pattern", "path", "matches"), [
    ("data/**", "data/filtered/train-00000-of-00001.parquet", True),
    ("data/**", "notes/data/x", False),
    ("*.safetensors", "model.safetensors", True),
    ("*.safetensors", "notes/model.safetensors", False),
    ("pytorch_model*.bin", "pytorch_model-00001-of-00002.bin", True),
    ("runs/**", "runs/a/b/events", True),
    ("*.safetensors", "model.safetensors.index.json", False),
])
def test_glob_regex(pattern, path, matches):
    assert bool(glob_regex(pattern).fullmatch(path)) is matches


def test_unchanged_lfs_files_are_skipped_on_resume(hub, tmp_path):
    """Parquet shards live in LFS: the tree's oid is the pointer's blob id, so only the LFS sha256
    says that the content is already there."""
    server, api = hub
    folder = _folder(tmp_path, shards=3)
    assert push_folder(folder, "org/name", repo_type="dataset", api=api)["uploaded"] == 4
    listing = {e["path"]: e for e in tree_entries(server.files)}
    shard = "data/filtered/train-00000-of-00003.parquet"
    assert "lfs" in listing[shard] and listing[shard]["oid"] != git_blob_sha1((folder / shard).read_bytes())
    assert listing["data/filtered"]["type"] == "directory"
    commits = len(server.commits)
    assert push_folder(folder, "org/name", repo_type="dataset", api=api) == {"uploaded": 0, "skipped": 4, "deleted": 0}
    assert len(server.commits) == commits  # nothing to send: no commit at all
    (folder / shard).write_bytes(b"PAR1 changed")  # a changed LFS file is sent again
    assert push_folder(folder, "org/name", repo_type="dataset", api=api)["uploaded"] == 1
    assert server.commits[-1] == [shard]


def test_invalid_repo_id_is_an_input_error(hub, tmp_path):
    server, api = hub
    with pytest.raises(InputError, match="dataset repo org/bad name failed"):
        push_folder(_folder(tmp_path, 1), "org/bad name", repo_type="dataset", api=api)
