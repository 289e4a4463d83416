"""The train stage: learning a toy task, saved outputs, exact resume, two processes, bad input."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from _tiny import make_encoder_folder, toy_texts, write_toy_work
from accelerate.utils import is_tensorboard_available
from safetensors.torch import load_file
from transformers import AutoModel, AutoTokenizer

from imagenet_multimodal import checkpoints, train
from imagenet_multimodal.io import InputError
from imagenet_multimodal.model import weights_digest

ROOT = Path(__file__).resolve().parents[1]
# settings that learn the toy task in seconds on a CPU
FAST = ["--batch-size", "8", "--learning-rate", "1e-3", "--head-learning-rate", "1e-2",
        "--loss", "softmax", "--warmup-ratio", "0", "--checkpoint-steps", "0"]


@pytest.fixture(scope="module")
def encoder(tmp_path_factory) -> Path:
    return make_encoder_folder(tmp_path_factory.mktemp("encoder"), toy_texts())


@pytest.fixture
def work(tmp_path) -> Path:
    return write_toy_work(tmp_path / "work")


def _run(work: Path, encoder: Path, *extra: str) -> dict:
    return train.run(train.parse_args(["--work", str(work), "--encoder", str(encoder), *FAST, *extra]))


def _reloaded_captions_loss(out: Path, work: Path, loss: str = "softmax") -> float:
    """Mean loss of the saved model on the test captions, computed here in one process."""
    from imagenet_multimodal.model import classification_loss

    model, tokenizer = AutoModel.from_pretrained(out).eval(), AutoTokenizer.from_pretrained(out)
    test = [c for c in pq.read_table(work / "captions.parquet").to_pylist() if c["role"] == "test"]
    enc = tokenizer([c["text"] for c in test], padding=True, truncation=True, max_length=128, return_tensors="pt")
    with torch.no_grad():
        logits = model(**enc).logits
    return classification_loss(logits, torch.tensor([c["label"] for c in test]), loss=loss).item()


def test_learns_toy_task_and_saves_a_loadable_model(work, encoder):
    # best epoch by captions top-1, which saturates before the last epoch: the saved model must be
    # the best epoch's, not the last one's
    metrics = _run(work, encoder, "--epochs", "10", "--best-metric", "captions_top1")
    best = next(r for r in metrics["history"] if r["epoch"] == metrics["best"]["epoch"])
    assert metrics["finished"] and len(metrics["history"]) == 10
    assert best["pairs"]["top1"] >= 0.9 and best["captions"]["top1"] >= 0.9
    assert best["pairs"]["examples"] == metrics["test_pairs"] == 80
    assert best["captions"]["examples"] == metrics["test_captions"] == 40
    out = work / "model"
    assert json.loads((out / "metrics.json").read_text())["best"] == metrics["best"]
    card = (out / "README.md").read_text()
    assert "$" not in card.replace("$$", "") and f"{100 * best['pairs']['top1']:.2f}%" in card
    model, tokenizer = AutoModel.from_pretrained(out).eval(), AutoTokenizer.from_pretrained(out)
    captions = pq.read_table(work / "captions.parquet").to_pylist()
    test = [c for c in captions if c["role"] == "test"]
    enc = tokenizer([c["text"] for c in test], padding=True, truncation=True, max_length=128,
                    return_tensors="pt")
    with torch.no_grad():
        p = model.probabilities(model(**enc).logits)
    top1 = (p.argmax(-1) == torch.tensor([c["label"] for c in test])).float().mean().item()
    assert top1 == pytest.approx(best["captions"]["top1"])
    loss = _reloaded_captions_loss(out, work)
    assert loss == pytest.approx(best["captions"]["loss"], rel=1e-5)
    others = [r["captions"]["loss"] for r in metrics["history"] if r["epoch"] != best["epoch"]]
    assert all(abs(loss - other) > 1e-4 for other in others)  # the best epoch's weights, no other's
    assert not (out / "checkpoints").exists()  # a finished run keeps no checkpoints (--keep-checkpoints)
    with pytest.raises(InputError, match="finished and removed its checkpoints"):
        _run(work, encoder, "--epochs", "10", "--best-metric", "captions_top1", "--resume", "latest")
    lengths = metrics["token_lengths"]
    assert set(lengths) == {"train", "pairs", "captions"} and 0 < lengths["captions"]["p50"] < lengths["pairs"]["p50"]
    assert lengths["pairs"]["at_max_length"] == 0.0 and lengths["pairs"]["max"] < 128
    # a rerun with the same options finds the finished run and does not train again
    assert _run(work, encoder, "--epochs", "10", "--best-metric", "captions_top1")["seconds"] == metrics["seconds"]


def test_sigmoid_head_trains_and_records_history(work, encoder):
    metrics = _run(work, encoder, "--epochs", "2", "--loss", "sigmoid", "--best-metric", "pairs_loss",
                   "--no-eval-captions")
    assert [r["epoch"] for r in metrics["history"]] == [0, 1]
    assert "captions" not in metrics["history"][0] and metrics["best"]["metric"] == "pairs_loss"
    assert metrics["history"][1]["train_loss"] < metrics["history"][0]["train_loss"]


@pytest.mark.parametrize("accumulate, stop", [(1, 7), (2, 15)])
def test_resume_gives_the_same_result_as_an_uninterrupted_run(work, encoder, accumulate, stop):
    common = ["--epochs", "3", "--warmup-ratio", "0.1", "--checkpoint-steps", "4",
              "--gradient-accumulation-steps", str(accumulate)]
    full = _run(work, encoder, *common, "--output", str(work / "full"))
    part = _run(work, encoder, *common, "--output", str(work / "part"), "--stop-after-steps", str(stop))
    assert not part["finished"] and not (work / "part" / "metrics.json").exists()
    resumed = _run(work, encoder, *common, "--output", str(work / "part"), "--resume", "latest")
    assert resumed["finished"] and resumed["history"] == full["history"]
    assert weights_digest(AutoModel.from_pretrained(work / "full")) == weights_digest(
        AutoModel.from_pretrained(work / "part"))


def test_seconds_trained_add_up_over_epochs_and_a_resume(work, encoder, monkeypatch):
    """A clock that moves 10 s in each call of train_epoch: three epochs are 30 s, not 10 + 20 + 30."""
    clock = [1000.0]
    epoch = train.train_epoch

    def ten_seconds(*args, **kwargs):
        clock[0] += 10.0
        return epoch(*args, **kwargs)

    monkeypatch.setattr(train, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    monkeypatch.setattr(train, "train_epoch", ten_seconds)
    common = ["--epochs", "3", "--checkpoint-steps", "0"]
    assert _run(work, encoder, *common, "--output", str(work / "full"))["seconds"] == 30.0
    assert _run(work, encoder, *common, "--output", str(work / "part"), "--stop-after-steps", "20")["seconds"] == 20.0
    # the rest of epoch 1 and epoch 2 after the resume: 20 s more than the checkpoint's 20
    assert _run(work, encoder, *common, "--output", str(work / "part"), "--resume", "latest")["seconds"] == 40.0


def test_kill_between_best_weights_and_checkpoint(work, encoder, monkeypatch):
    """Killed after saving a better epoch's weights but before the checkpoint that records them: the
    resumed run ends as an uninterrupted one and keeps no weights that no checkpoint recorded."""
    common = ["--epochs", "3", "--best-metric", "pairs_loss", "--keep-checkpoints"]
    full = _run(work, encoder, *common, "--output", str(work / "full"))
    save = checkpoints.save_checkpoint

    def killed(accelerator, state, *, options):
        if state["epoch"] == 2 and state["batches_done"] == 0:
            raise KeyboardInterrupt("killed")
        return save(accelerator, state, options=options)

    monkeypatch.setattr(train, "save_checkpoint", killed)
    with pytest.raises(KeyboardInterrupt):
        _run(work, encoder, *common, "--output", str(work / "part"))
    assert (work / "part" / "checkpoints" / "best-epoch-0001").is_dir()  # saved, not yet recorded
    monkeypatch.setattr(train, "save_checkpoint", save)
    resumed = _run(work, encoder, *common, "--output", str(work / "part"), "--resume", "latest")
    assert resumed["history"] == full["history"] and resumed["best"] == full["best"]
    assert weights_digest(AutoModel.from_pretrained(work / "full")) == weights_digest(
        AutoModel.from_pretrained(work / "part"))
    assert [p.name for p in (work / "part" / "checkpoints").glob("*best*")] == \
        [f"best-epoch-{full['best']['epoch']:04d}"]


def test_resume_from_a_checkpoint_whose_best_weights_are_gone(work, encoder):
    common = ["--epochs", "3", "--output", str(work / "gone"), "--checkpoints-total-limit", "3"]
    _run(work, encoder, *common, "--stop-after-steps", "40")
    first = work / "gone" / "checkpoints" / "step-00000015"  # epoch 0's, naming best-epoch-0000
    assert first.is_dir() and not (work / "gone" / "checkpoints" / "best-epoch-0000").exists()
    with pytest.raises(InputError, match=r"step-00000015: the best weights it records .* are gone"):
        _run(work, encoder, *common, "--resume", str(first))


def test_early_stopping(work, encoder):
    # a learning rate of ~0 never improves top-1: patience 1 stops after the second epoch
    metrics = _run(work, encoder, "--epochs", "6", "--learning-rate", "1e-12", "--head-learning-rate",
                   "1e-12", "--patience", "1", "--best-metric", "pairs_top1", "--keep-checkpoints")
    assert metrics["stopped_early"] and len(metrics["history"]) == 2 and metrics["best"]["epoch"] == 0
    # the checkpoint records the stop: resuming it (kept here) does not train on
    again = _run(work, encoder, "--epochs", "6", "--learning-rate", "1e-12", "--head-learning-rate",
                 "1e-12", "--patience", "1", "--best-metric", "pairs_top1", "--resume", "latest")
    assert again["stopped_early"] and again["history"] == metrics["history"]


def test_auto_resume_continues_and_other_options_start_afresh(work, encoder, monkeypatch):
    common = ["--epochs", "2", "--output", str(work / "auto")]
    _run(work, encoder, *common, "--stop-after-steps", "20", "--eval-batch-size", "64")
    assert (work / "auto" / "checkpoints" / "step-00000020").is_dir()
    epochs = []  # the epochs trained: a resume at step 20 (in epoch 1 of 0-1) trains only epoch 1
    epoch = train.train_epoch
    monkeypatch.setattr(train, "train_epoch", lambda job, state, progress: epochs.append(state["epoch"]) or
                        epoch(job, state, progress))
    # --resume auto is the default; the work folder spelled otherwise and another evaluation batch
    # size change nothing that is trained
    spelled = work.parent / ".." / work.parent.name / work.name
    resumed = train.run(train.parse_args(["--work", str(spelled), "--encoder", str(encoder), *FAST, *common]))
    assert resumed["finished"] and resumed["history"][0]["step"] == 15 and epochs == [1]
    monkeypatch.setattr(train, "train_epoch", epoch)
    other = _run(work, encoder, *common, "--seed", "7", "--stop-after-steps", "3")
    steps = sorted(p.name for p in (work / "auto" / "checkpoints").glob("step-*"))
    assert not other["finished"] and steps == ["step-00000003"]


def test_resume_needs_as_many_processes(work, encoder):
    """A checkpoint's place in the epoch counts each process's batches: resumed by another number
    of processes it would train part of the epoch twice."""
    common = ["--epochs", "2", "--output", str(work / "ranks")]
    _run(work, encoder, *common, "--stop-after-steps", "5")
    state_file = work / "ranks" / "checkpoints" / "step-00000005" / "trainer_state.json"
    state = json.loads(state_file.read_text())
    assert state["world_size"] == 1
    state_file.write_text(json.dumps(state | {"world_size": 2}))
    expected = "made by 2 training processes, resumed by 1; launch it with --num_processes 2"
    with pytest.raises(InputError, match=expected):
        _run(work, encoder, *common, "--resume", "latest")


def test_a_checkpoint_written_by_older_code_resumes(work, encoder, monkeypatch):
    """Older checkpoints recorded the work and output paths and the evaluation batch size in their
    run key, and no world size: they resume (--resume auto deleted them)."""
    common = ["--epochs", "2", "--output", str(work / "old")]
    _run(work, encoder, *common, "--stop-after-steps", "20")  # in epoch 1: a resume trains only that
    state_file = work / "old" / "checkpoints" / "step-00000020" / "trainer_state.json"
    state = json.loads(state_file.read_text())
    state.pop("world_size")
    state["options"] |= {"work": "elsewhere/w", "output": "elsewhere/w/model", "eval_batch_size": 3}
    state_file.write_text(json.dumps(state))
    epochs = []
    epoch = train.train_epoch
    monkeypatch.setattr(train, "train_epoch", lambda job, state, progress: epochs.append(state["epoch"]) or
                        epoch(job, state, progress))
    resumed = _run(work, encoder, *common)
    assert resumed["finished"] and epochs == [1] and resumed["history"][0]["step"] == 15
    assert resumed["global_step"] == 30


def test_changed_inputs_train_again(work, encoder):
    """A finished run or a checkpoint is reused only for the same options and the same inputs:
    after `prepare` rewrote the pairs (say, another split), train trains again."""
    common = ["--epochs", "1", "--output", str(work / "inputs")]
    first = _run(work, encoder, *common)
    assert _run(work, encoder, *common)["seconds"] == first["seconds"]  # unchanged: reused
    shard = sorted((work / "pairs").glob("train-*.parquet"))[0]
    table = pq.read_table(shard)
    pq.write_table(table.slice(1), shard)  # one pair fewer
    again = _run(work, encoder, *common)
    assert again["inputs"] != first["inputs"] and again["train_pairs"] == first["train_pairs"] - 1
    _run(work, encoder, *common, "--epochs", "2", "--stop-after-steps", "3")
    pq.write_table(table, shard)  # the checkpoint's inputs are gone again: it cannot be resumed
    with pytest.raises(InputError, match="made with other training options or inputs"):
        _run(work, encoder, *common, "--epochs", "2", "--resume", "latest")


def test_cross_fitting_leaves_a_fold_out(work, encoder):
    argv = ["--work", str(work), "--encoder", str(encoder), *FAST, "--epochs", "1", "--folds", "2",
            "--fold", "0", "--output", str(work / "fold0")]
    assert train.main(argv) == 0
    metrics = json.loads((work / "fold0" / "metrics.json").read_text())
    assert 0 < metrics["train_pairs"] < 160 and metrics["train_pairs"] % 2 == 0


@pytest.mark.skipif(shutil.which("accelerate", path=str(Path(sys.executable).parent)) is None,
                    reason="accelerate launcher not found")
def test_rerun_in_a_fresh_process_skips_the_finished_run(work, encoder):
    """The skip is decided before any Accelerator exists (Accelerate's logger refuses to log then)."""
    command = [str(Path(sys.executable).parent / "imagenet-multimodal"), "train", "--work", str(work),
               "--encoder", str(encoder), *FAST, "--epochs", "1"]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    first = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    weights = (work / "model" / "model.safetensors").read_bytes()
    again = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "already holds a finished run" in again.stderr
    assert (work / "model" / "model.safetensors").read_bytes() == weights


def test_two_cpu_processes_cooperate(work, encoder):
    launcher = str(Path(sys.executable).parent / "accelerate")
    out = work / "dist"
    command = [launcher, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
               "--mixed_precision", "no", "--dynamo_backend", "no", str(ROOT / "build" / "train.py"),
               "--work", str(work), "--encoder", str(encoder), "--output", str(out), *FAST,
               "--batch-size", "4", "--eval-batch-size", "7", "--epochs", "2", "--write-rank-digests",
               "--keep-checkpoints"]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads((out / f"rank-{i}.json").read_text()) for i in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    assert ranks[0]["weights_sha256"] == ranks[1]["weights_sha256"]
    last = AutoModel.from_pretrained(out)  # the digests are of each rank's last-step weights
    last.load_state_dict(load_file(sorted((out / "checkpoints").glob("step-*"))[-1] / "model.safetensors"))
    assert ranks[0]["weights_sha256"] == weights_digest(last)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["steps_per_epoch"] == 15
    for record in metrics["history"]:  # every test example counted exactly once
        assert record["pairs"]["examples"] == 80 and record["captions"]["examples"] == 40
    # the gathered evaluation equals one process's over the same weights (none counted twice or lost)
    best = next(r for r in metrics["history"] if r["epoch"] == metrics["best"]["epoch"])
    assert _reloaded_captions_loss(out, work) == pytest.approx(best["captions"]["loss"], rel=1e-5)
    assert "***** Running training *****" in done.stderr


def test_compiled_model_trains_and_saves_plain_weights(work, encoder):
    """`accelerate launch --dynamo_backend inductor`: Accelerate compiles the model (dynamic shapes,
    as batch lengths vary); the best weights and the saved model carry no compile wrapper."""
    launcher = str(Path(sys.executable).parent / "accelerate")
    out = work / "compiled"
    command = [launcher, "launch", "--num_processes", "1", "--num_machines", "1", "--mixed_precision", "no",
               "--dynamo_backend", "inductor", "--dynamo_use_dynamic", str(ROOT / "build" / "train.py"),
               "--work", str(work), "--encoder", str(encoder), "--output", str(out), *FAST, "--epochs", "2",
               "--keep-checkpoints"]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["torch_compile"] == "inductor" and metrics["finished"] and len(metrics["history"]) == 2
    assert metrics["history"][1]["train_loss"] < metrics["history"][0]["train_loss"]
    best = load_file(next((out / "checkpoints").glob("best-epoch-*")) / "model.safetensors")
    saved = AutoModel.from_pretrained(out).state_dict()
    assert not [k for k in best if "_orig_mod" in k] and best.keys() <= saved.keys()
    assert all(torch.equal(best[k], saved[k]) for k in best)


def _write_pairs(work: Path, rows: list[dict]) -> None:
    schema = pa.schema([("text", pa.string()), ("label", pa.int64()), ("image_id", pa.string())])
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), work / "pairs" / "train-00000-of-00002.parquet")


@pytest.mark.parametrize("label", [1000, -1])
def test_label_out_of_range(work, encoder, label):
    _write_pairs(work, [{"text": "a b", "label": 3, "image_id": "x"},
                        {"text": "c d", "label": label, "image_id": "y"}])
    with pytest.raises(InputError, match=r"train-00000-of-00002.parquet: row 1 field 'label'"):
        _run(work, encoder)


def test_label_column_of_strings(work, encoder):
    schema = pa.schema([("text", pa.string()), ("label", pa.string()), ("image_id", pa.string())])
    rows = [{"text": "a b", "label": "3", "image_id": "x"}]
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), work / "pairs" / "train-00000-of-00002.parquet")
    with pytest.raises(InputError, match=r"train-00000-of-00002.parquet: field 'label': expected integers in "
                                         r"0-999, got a column of string"):
        _run(work, encoder)


def test_max_length_beyond_the_encoder_positions(work, encoder):
    # the tiny RoBERTa has 160 positions, of which RoBERTa's ids start after the padding index (1)
    with pytest.raises(InputError, match=r"--max-length 512: the encoder .* takes at most 158 tokens"):
        _run(work, encoder, "--max-length", "512")


def test_empty_and_missing_pairs(work, encoder, tmp_path, monkeypatch):
    for path in (work / "pairs").glob("train-*"):
        path.unlink()
    with pytest.raises(InputError, match="no train-"):
        _run(work, encoder)
    _write_pairs(work, [])
    with pytest.raises(InputError, match="no rows"):
        _run(work, encoder)
    with pytest.raises(InputError, match="pairs does not exist"):
        _run(tmp_path / "nowhere", encoder)
    # checked before the encoder is resolved (for a hub name, that would mean a download)
    def resolve(name):
        raise AssertionError(f"the encoder {name} was resolved before the pairs were checked")

    monkeypatch.setattr(train, "resolve_encoder", resolve)
    with pytest.raises(InputError, match="pairs does not exist"):
        _run(tmp_path / "nowhere", encoder)


def test_encoder_without_tokenizer(work, encoder, tmp_path):
    for name in ("config.json", "model.safetensors"):
        (tmp_path / name).write_bytes((encoder / name).read_bytes())
    with pytest.raises(InputError, match="no tokenizer"):
        _run(work, tmp_path)


def test_bad_options_and_config(tmp_path):
    with pytest.raises(InputError, match="--epoch-fraction"):
        train.parse_args(["--work", str(tmp_path), "--epoch-fraction", "0"])
    with pytest.raises(InputError, match="--fold"):
        train.parse_args(["--work", str(tmp_path), "--folds", "3"])
    for flag, value, expected in [("--dropout", "1.5", "a probability in"), ("--patience", "-1", ">= 0"),
                                  ("--checkpoint-steps", "-3", ">= 0"), ("--max-grad-norm", "-1", ">= 0"),
                                  ("--weight-decay", "-1", ">= 0"), ("--logging-steps", "0", ">= 1"),
                                  ("--head-learning-rate", "0", "> 0"),  # 0 is no "same as the encoder's"
                                  ("--seed", "-1", ">= 0")]:
        with pytest.raises(InputError, match=f"{flag}: expected {expected}"):
            train.parse_args(["--work", str(tmp_path), flag, value])
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    with pytest.raises(InputError, match=r"bad\.json: expected a JSON object of options, got list \[1, 2\]"):
        train.parse_args(["--work", str(tmp_path), "--config", str(bad)])
    bad.write_text('{"epochs": 2, "learning_rat": 1}')
    with pytest.raises(InputError, match="learning_rat"):
        train.parse_args(["--work", str(tmp_path), "--config", str(bad)])
    for text, expected in (('{"eval_captions": "false"}', "'eval_captions': expected true or false, got 'false'"),
                           ('{"epochs": 2.7}', "option 'epochs': expected an integer, got 2.7"),
                           ('{"output": 5}', "option 'output': expected a path string or null, got 5"),
                           ('{"learning_rate": 1}', None)):
        bad.write_text(text)
        if expected is None:
            assert train.parse_args(["--work", str(tmp_path), "--config", str(bad)]).learning_rate == 1
            continue
        with pytest.raises(InputError, match=re.escape(expected)):
            train.parse_args(["--work", str(tmp_path), "--config", str(bad)])
    bad.write_text('{"loss": "bogus"}')
    with pytest.raises(InputError, match=r"bad\.json: option 'loss': expected one of \['sigmoid', 'softmax'\]"):
        train.parse_args(["--work", str(tmp_path), "--config", str(bad)])
    with pytest.raises(InputError, match="--config .*nope.json: no such file"):
        train.parse_args(["--work", str(tmp_path), "--config", str(tmp_path / "nope.json")])
    if not is_tensorboard_available():  # the dev extra installs it
        with pytest.raises(InputError, match="tensorboard"):
            train.parse_args(["--work", str(tmp_path), "--report-to", "tensorboard"])
    resume = tmp_path / "not-a-checkpoint"
    resume.mkdir()
    with pytest.raises(InputError, match="not a checkpoint"):
        checkpoints.find_resume(train.parse_args(["--work", str(tmp_path), "--resume", str(resume)]), None)


def test_shipped_config_is_the_paper_schedule(tmp_path):
    options = train.parse_args(["--work", str(tmp_path), "--config", str(ROOT / "model/train_config.json"),
                                "--epochs", "3"])
    assert options.epochs == 3 and options.epoch_fraction == 0.75 and options.loss == "sigmoid"
    defaults = train.parse_args(["--work", str(tmp_path)])
    assert {**vars(defaults), "epochs": 3} == vars(options)


def test_step_seed_is_pure():
    assert train.step_seed(1, 2, 3, 0) == train.step_seed(1, 2, 3, 0) != train.step_seed(1, 2, 3, 1)
    assert isinstance(np.uint32(train.step_seed(0, 0, 0, 0)), np.uint32)


def test_last_short_accumulation_window_is_a_mean_of_its_batches(work, encoder, monkeypatch):
    """Accelerate divides each loss by the accumulation steps; an epoch's last window of fewer
    batches is scaled back up, so that each optimiser step follows a mean gradient."""
    options = train.parse_args(["--work", str(work), "--encoder", str(encoder), *FAST, "--epochs", "1",
                                "--gradient-accumulation-steps", "4", "--epoch-fraction", "1.0",
                                "--batch-size", "9", "--output", str(work / "window")])
    job = train.setup(options)
    batches = len(job.loaders["train"])
    assert batches % 4 == 2  # 160 pairs in batches of 9: 18 batches, windows of 4, 4, 4, 4 and 2
    seen = []
    backward = job.accelerator.backward
    monkeypatch.setattr(job.accelerator, "backward", lambda loss: (seen.append(loss.item()), backward(loss)))
    raw = []
    forward = job.model.forward
    monkeypatch.setattr(job.model, "forward", lambda **kw: (out := forward(**kw), raw.append(out.loss.item()))[0])
    state = train.initial_state(options)
    from tqdm.auto import tqdm

    train.train_epoch(job, state, tqdm(disable=True))
    assert len(seen) == len(raw) == batches
    assert seen[:-2] == pytest.approx(raw[:-2])  # full windows: as Accelerate scales them
    assert seen[-2:] == pytest.approx([2 * r for r in raw[-2:]])  # a window of 2 of 4: twice


@pytest.mark.skipif(not is_tensorboard_available(), reason="tensorboard not installed (the dev extra has it)")
def test_tensorboard_tracking(work, encoder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    metrics = _run(work, encoder, "--epochs", "2", "--report-to", "tensorboard", "--logging-steps", "5")
    events = sorted((work / "model" / "runs").rglob("events.out.tfevents.*"))
    assert events
    scalars = {}
    for path in events:
        accumulator = EventAccumulator(str(path)).Reload()
        for tag in accumulator.Tags()["scalars"]:
            scalars.setdefault(tag, []).extend(accumulator.Scalars(tag))
    steps = 2 * metrics["steps_per_epoch"]
    assert [e.step for e in scalars["train/loss"]] == list(range(5, steps + 1, 5))
    assert len(scalars["train/learning_rate"]) == steps // 5
    for tag in ("pairs/loss", "pairs/top1", "captions/top1", "train/epoch_loss"):
        assert [e.value for e in scalars[tag]] == pytest.approx(
            [r[tag.split("/")[0]][tag.split("/")[1]] if not tag.startswith("train") else r["train_loss"]
             for r in metrics["history"]])
