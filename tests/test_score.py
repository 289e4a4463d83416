"""The score stage end to end on a tiny model: streaming, out-of-fold, report, reruns, bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import torch
from _tiny import make_encoder_folder

from imagenet_multimodal import relevance as rules
from imagenet_multimodal.io import InputError
from imagenet_multimodal.pairs import fold_key, fold_of
from imagenet_multimodal.prepare import PrepareOptions
from imagenet_multimodal.prepare import run as run_prepare
from imagenet_multimodal.sample import write_sample
from imagenet_multimodal.schema import SCORE_SCHEMA
from imagenet_multimodal.score import ScoreOptions, eligible_captions, load_model
from imagenet_multimodal.score import run as run_score
from imagenet_multimodal.train import TrainOptions
from imagenet_multimodal.train import run as run_train

TINY = {"epochs": 2, "batch_size": 32, "eval_batch_size": 64, "learning_rate": 5e-3, "max_length": 48,
        "checkpoint_steps": 0, "loss": "softmax", "seed": 3}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, _classes_dir):
    work = tmp_path_factory.mktemp("score") / "work"
    work.mkdir()
    shutil.copy(_classes_dir / "classes.parquet", work / "classes.parquet")
    write_sample(work.parent / "sample.json", records=500, classes=5, seed=4)
    run_prepare(PrepareOptions(work=work, captions=work.parent / "sample.json"))
    texts = pq.read_table(work / "captions.parquet")["text"].drop_null().to_pylist()
    texts += [s for row in pq.read_table(work / "classes.parquet")["sentences"].to_pylist() for s in row]
    encoder = make_encoder_folder(work.parent / "encoder", texts)
    run_train(TrainOptions(work=work, encoder=str(encoder), **TINY))
    return work


def _copy(trained, tmp_path):
    work = tmp_path / "work"
    shutil.copytree(trained, work, ignore=shutil.ignore_patterns("folds", "score_*", "scores.parquet"))
    return work


def test_scores_follow_the_rule_and_schema(trained, tmp_path):
    work = _copy(trained, tmp_path)
    run_score(ScoreOptions(work=work, low=0.0, high=0.0))
    low = float(np.median(pq.read_table(work / "scores.parquet")["p_correct"].to_numpy()))  # about half kept
    high = (low + 1) / 2
    stats = run_score(ScoreOptions(work=work, low=low, high=high))
    scores = pq.read_table(work / "scores.parquet")
    assert scores.schema == SCORE_SCHEMA
    assert scores.num_rows == eligible_captions(work).num_rows == stats["captions"]
    p, mean = scores["p_correct"].to_numpy(), scores["p_mean"].to_numpy()
    kept, reasons = rules.keep_rule(p, mean, low=low)
    assert scores["kept"].to_pylist() == kept.tolist() == (reasons == "").tolist()
    assert scores["drop_reason"].to_pylist() == [r or None for r in reasons.tolist()]
    assert 0 < kept.sum() < len(kept)
    expected = rules.relevance_curve(p[kept], low=low, high=high)
    assert np.allclose(scores["relevance"].to_numpy(zero_copy_only=False)[kept], expected, atol=1e-6)
    assert scores["relevance"].null_count == int((~kept).sum())
    assert sum(stats["reasons"].values()) == scores.num_rows
    roles = pq.read_table(work / "captions.parquet").to_pandas().set_index("record")["role"]
    methods = scores["score_method"].to_pylist()
    assert all((m == "held-out test") == (roles[r] == "test") for m, r in zip(methods, scores["record"].to_pylist()))
    # the report exists: the sample writer's ground truth sits next to the captions file
    report = json.loads((work / "score_report.json").read_text())
    assert {"paper rule, in-sample", "name match", "class similarity (per-class mean)"} <= set(report["methods"])
    assert 0.0 <= report["roc_auc"]["p_correct, in-sample"] <= 1.0 and report["sweep"]


def test_streamed_batches_equal_one_shot(trained, tmp_path):
    work = _copy(trained, tmp_path)
    run_score(ScoreOptions(work=work, batch_size=7))
    streamed = pq.read_table(work / "scores.parquet")
    captions = eligible_captions(work)
    model, tokenizer = load_model(work / "model", device=torch.device("cpu"))
    enc = tokenizer(captions["text"].to_pylist(), truncation=True, max_length=TINY["max_length"], padding=True,
                    return_tensors="pt")
    with torch.inference_mode():
        probs = model.probabilities(model(**enc).logits).numpy()
    labels = captions["label"].to_numpy()
    one_shot = probs[np.arange(len(labels)), labels]
    assert np.allclose(streamed["p_correct"].to_numpy(), one_shot, atol=1e-5)
    assert np.allclose(streamed["p_mean"].to_numpy(), probs.mean(1), atol=1e-6)
    assert streamed["rank"].to_pylist() == ((probs > one_shot[:, None]).sum(1) + 1).tolist()


def test_out_of_fold_scores(trained, tmp_path):
    work = _copy(trained, tmp_path)
    stats = run_score(ScoreOptions(work=work, folds=2))
    scores = pq.read_table(work / "scores.parquet")
    assert stats["method"] == "out-of-fold" and all(scores["scored_out_of_fold"].to_pylist())
    captions = eligible_captions(work)
    train = captions.filter(pc.equal(captions["role"], "train"))
    folds = fold_of([fold_key(t, i) for t, i in zip(train["text"].to_pylist(), train["image_id"].to_pylist())],
                    folds=2, seed=TINY["seed"])
    pair_ids = [i for shard in sorted((work / "pairs").glob("train-*.parquet"))
                for i in pq.read_table(shard)["image_id"].to_pylist()]
    for fold in range(2):
        # no caption is in its own fold's training set: the fold model trained on exactly the other pairs
        held_out = set(np.array(train["image_id"].to_pylist())[folds == fold])
        metrics = json.loads((work / "folds" / f"fold-{fold}" / "metrics.json").read_text())
        assert 0 < len(held_out) < train.num_rows
        assert metrics["train_pairs"] == sum(1 for i in pair_ids if i not in held_out)
    oof = scores["p_correct"].to_numpy()
    in_sample = scores["p_correct_in_sample"].to_numpy()
    is_train = np.isin(scores["image_id"].to_pylist(), train["image_id"].to_pylist())
    assert np.allclose(oof[~is_train], in_sample[~is_train])
    assert not np.allclose(oof[is_train], in_sample[is_train])
    report = json.loads((work / "score_report.json").read_text())
    assert "oof_minus_in_sample_auc" in report


def test_rerun_with_other_thresholds_recomputes(trained, tmp_path):
    work = _copy(trained, tmp_path)
    run_score(ScoreOptions(work=work, low=0.2))
    first = pq.read_table(work / "scores.parquet")
    written = (work / "scores.parquet").stat().st_mtime_ns
    run_score(ScoreOptions(work=work, low=0.2))  # up to date: nothing rewritten
    assert (work / "scores.parquet").stat().st_mtime_ns == written
    again = run_score(ScoreOptions(work=work, low=0.9, curve="rank"))
    second = pq.read_table(work / "scores.parquet")
    assert again["low"] == 0.9
    assert np.allclose(first["p_correct"].to_numpy(), second["p_correct"].to_numpy())
    assert second["kept"].to_pylist() == (second["p_correct"].to_numpy() >= 0.9).__and__(
        second["p_correct"].to_numpy() >= second["p_mean"].to_numpy()).tolist()


def test_new_class_texts_are_scored_again(trained, tmp_path):
    """class_similarity reads the class texts and name_match the lemmas: a changed class table is no
    up-to-date stage, and its cached model pass is not reused."""
    import pyarrow as pa

    work = _copy(trained, tmp_path)
    run_score(ScoreOptions(work=work))
    before = pq.read_table(work / "scores.parquet")
    classes = pq.read_table(work / "classes.parquet")
    for name, value in (("summary", "A kind of pottery."), ("description", None)):
        column = pa.array([value] * classes.num_rows, classes.schema.field(name).type)
        classes = classes.set_column(classes.schema.get_field_index(name), name, column)
    lemmas = pa.array([["zzz"]] * classes.num_rows, classes.schema.field("lemmas").type)
    classes = classes.set_column(classes.schema.get_field_index("lemmas"), "lemmas", lemmas)
    pq.write_table(classes, work / "classes.parquet")
    run_score(ScoreOptions(work=work))
    after = pq.read_table(work / "scores.parquet")
    assert np.array_equal(after["p_correct"].to_numpy(), before["p_correct"].to_numpy())  # the same model
    assert not np.allclose(after["class_similarity"].to_numpy(), before["class_similarity"].to_numpy())
    assert any(before["name_match"].to_pylist()) and not any(after["name_match"].to_pylist())


def test_a_moved_work_folder_keeps_its_ground_truth(trained, tmp_path, caplog):
    """A sample written inside the work folder (as the demo does) is recorded relative to it, so the
    report against its ground truth survives moving the folder; the missing truth is warned once."""
    from imagenet_multimodal.sample import truth_path

    work = _copy(trained, tmp_path)
    for name in ("sample.json", truth_path("sample.json").name):
        shutil.copy(trained.parent / name, work / name)
    stats = json.loads((work / "prepare_stats.json").read_text())
    (work / "prepare_stats.json").write_text(json.dumps({**stats, "captions_file": "sample.json"}))
    moved = tmp_path / "elsewhere" / "work"
    moved.parent.mkdir()
    work.rename(moved)
    run_score(ScoreOptions(work=moved))
    assert (moved / "score_report.json").exists()
    truth_path(moved / "sample.json").unlink()
    caplog.set_level("WARNING")
    run_score(ScoreOptions(work=moved, low=0.3))
    assert not (moved / "score_report.json").exists()
    assert caplog.text.count("ground truth") == 1


def test_no_model_and_wrong_label_count(trained, tmp_path):
    work = _copy(trained, tmp_path)
    shutil.rmtree(work / "model")
    with pytest.raises(InputError, match="no trained relevance model"):
        run_score(ScoreOptions(work=work))
    bad = tmp_path / "bad"
    model, tokenizer = load_model(trained / "model", device=torch.device("cpu"))
    model.config.id2label = {i: f"class {i}" for i in range(10)}
    model.config.label2id = {name: i for i, name in model.config.id2label.items()}
    model.classifier = torch.nn.Linear(model.classifier.in_features, 10)
    model.save_pretrained(bad)
    tokenizer.save_pretrained(bad)
    with pytest.raises(InputError, match="has 10 labels"):
        load_model(bad, device=torch.device("cpu"))


def test_bad_truth_is_refused_before_the_model_pass(trained, tmp_path):
    work = _copy(trained, tmp_path)
    truth = tmp_path / "truth.csv"
    for content, message in (("image_id,relevant\nn01440764_1,maybe\n", "expected image_id strings and relevant"),
                             ("image_id,other\nx,1\n", "expected columns image_id and relevant")):
        truth.write_text(content)
        with pytest.raises(InputError, match=message):
            run_score(ScoreOptions(work=work, truth=truth))
    broken = tmp_path / "truth.parquet"
    broken.write_bytes(b"not parquet")
    with pytest.raises(InputError, match=r"--truth .*truth\.parquet: cannot read it as parquet"):
        run_score(ScoreOptions(work=work, truth=broken))
    assert not (work / "score_cache").exists()  # no model pass was made


def test_bad_thresholds():
    with pytest.raises(InputError, match="exceeds"):
        ScoreOptions(work="w", low=0.9, high=0.5)
    with pytest.raises(InputError, match="needs --folds"):
        ScoreOptions(work="w", published="out-of-fold")


def test_two_cpu_processes_give_the_same_scores(trained, tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    work = _copy(trained, tmp_path)
    run_score(ScoreOptions(work=work, batch_size=5))
    single = pq.read_table(work / "scores.parquet")
    launcher = str(Path(sys.executable).parent / "accelerate")
    command = [launcher, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
               "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "imagenet_multimodal.score",
               "--work", str(work), "--batch-size", "5", "--force"]
    shutil.rmtree(work / "score_cache")  # the model pass itself must run distributed
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    double = pq.read_table(work / "scores.parquet")
    assert double["record"].to_pylist() == single["record"].to_pylist()  # every caption exactly once
    assert np.allclose(double["p_correct"].to_numpy(), single["p_correct"].to_numpy(), atol=1e-5)
    assert double["kept"].to_pylist() == single["kept"].to_pylist()


def test_each_train_caption_is_scored_by_the_model_that_left_it_out(trained, tmp_path):
    work = _copy(trained, tmp_path)
    run_score(ScoreOptions(work=work, folds=2))
    scores = pq.read_table(work / "scores.parquet")
    captions = eligible_captions(work)
    is_train = pc.equal(captions["role"], "train").to_numpy(zero_copy_only=False)
    folds = fold_of([fold_key(t, i) for t, i in zip(captions["text"].to_pylist(), captions["image_id"].to_pylist())],
                    folds=2, seed=TINY["seed"])
    labels = captions["label"].to_numpy()
    published = scores["p_correct"].to_numpy()
    for fold in range(2):
        model, tokenizer = load_model(work / "folds" / f"fold-{fold}", device=torch.device("cpu"))
        rows = np.flatnonzero(is_train & (folds == fold))
        enc = tokenizer([captions["text"][int(i)].as_py() for i in rows], truncation=True,
                        max_length=TINY["max_length"], padding=True, return_tensors="pt")
        with torch.inference_mode():
            probs = model.probabilities(model(**enc).logits).numpy()
        assert np.allclose(published[rows], probs[np.arange(len(rows)), labels[rows]], atol=1e-5)


def test_a_diverged_model_is_refused_not_published(trained, tmp_path, monkeypatch):
    """NaN probabilities would pass every threshold comparison: the stage stops, naming a record."""
    from imagenet_multimodal import scoring

    work = _copy(trained, tmp_path)
    real = scoring.score_texts

    def diverged(*args, **kwargs):
        result = real(*args, **kwargs)
        result["p_correct"][3:5] = np.nan
        return result

    monkeypatch.setattr(scoring, "score_texts", diverged)
    record = eligible_captions(work)["record"][3].as_py()
    with pytest.raises(InputError, match=rf"no finite probability for 2 of \d+ captions \(first: record {record}\)"):
        run_score(ScoreOptions(work=work))
    assert not (work / "scores.parquet").exists() and not list((work / "score_cache").glob("*.parquet"))


def test_folds_after_a_model_trained_in_another_precision(trained, tmp_path):
    """One process holds one mixed precision: the fold models train in the model pass's precision
    (score crashed when the main model had been trained in another one)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    work = _copy(trained, tmp_path)
    metrics = json.loads((work / "model" / "metrics.json").read_text())
    encoder = metrics["options"]["encoder"]
    cli = str(Path(sys.executable).parent / "imagenet-multimodal")
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    args = [f"--{k.replace('_', '-')}={v}" for k, v in TINY.items()]
    train = [cli, "train", "--work", str(work), "--encoder", encoder, *args, "--epochs", "1",
             "--mixed-precision", "bf16", "--force"]
    done = subprocess.run(train, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((work / "model" / "metrics.json").read_text())["mixed_precision"] == "bf16"
    done = subprocess.run([cli, "score", "--work", str(work), "--folds", "2"], capture_output=True, text=True,
                          timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    stats = json.loads((work / "score_stats.json").read_text())
    assert stats["mixed_precision"] == "no" and stats["method"] == "out-of-fold"  # a CPU scores in float32


def test_partial_truth_measures_the_published_filter(trained, tmp_path):
    """With ground truth for some captions only, the report measures the filter that is published:
    per-class thresholds over all captions, not over those with ground truth."""
    from imagenet_multimodal.sample import truth_path

    work = _copy(trained, tmp_path)
    truth = pq.read_table(truth_path(trained.parent / "sample.json"), columns=["image_id", "relevant"])
    part = truth.slice(0, truth.num_rows // 3)
    pq.write_table(part, tmp_path / "part.parquet")
    run_score(ScoreOptions(work=work, mode="calibrated", truth=tmp_path / "part.parquet"))
    scores = pq.read_table(work / "scores.parquet")
    flags = dict(zip(part["image_id"].to_pylist(), part["relevant"].to_pylist()))
    rows = [i for i, image_id in enumerate(scores["image_id"].to_pylist()) if image_id in flags]
    kept = np.array(scores["kept"].to_pylist())[rows]
    relevant = np.array([flags[scores["image_id"][i].as_py()] for i in rows])
    report = json.loads((work / "score_report.json").read_text())
    assert 0 < report["captions_with_truth"] == len(rows) < scores.num_rows
    assert report["methods"]["calibrated, in-sample"] == rules.precision_recall_f1(kept, relevant)
