"""Helpers for tests: a tiny RoBERTa encoder and a word-level tokenizer trained in a second,
and small pairs/captions files in the prepare stage's format."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast, RobertaConfig, RobertaModel

SPECIAL = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # RoBERTa's ids: bos 0, pad 1, eos 2

# five toy classes, each with distinctive words; captions mix them with shared filler words
TOY_WORDS = {
    3: ["tench", "fish", "river", "angler"],
    17: ["jay", "bird", "feather", "branch"],
    250: ["husky", "sled", "snow", "dog"],
    604: ["hourglass", "sand", "timer", "glass"],
    999: ["tissue", "roll", "paper", "bathroom"],
}
FILLER = ["photo", "my", "the", "a", "trip", "day", "nice", "canon", "img", "summer", "with", "of"]


def make_tokenizer(texts: Sequence[str]) -> PreTrainedTokenizerFast:
    """A word-level tokenizer over ``texts`` that adds ``<s> ... </s>`` like RoBERTa's."""
    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(texts, trainers.WordLevelTrainer(special_tokens=SPECIAL))
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
        unk_token="<unk>", mask_token="<mask>", model_max_length=512,
    )


def make_encoder_folder(folder: Path, texts: Sequence[str], *, seed: int = 0) -> Path:
    """Save a tiny random RoBERTa (hidden 32, 2 layers) and its tokenizer into ``folder``."""
    import torch

    tokenizer = make_tokenizer(texts)
    config = RobertaConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=160, pad_token_id=1, bos_token_id=0,
        eos_token_id=2,
    )
    torch.manual_seed(seed)
    RobertaModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def toy_caption(rng: np.random.Generator, label: int) -> str:
    """A caption for ``label``: two of its words among three to eight filler words."""
    words = list(rng.choice(TOY_WORDS[label], size=2)) + list(rng.choice(FILLER, size=rng.integers(3, 9)))
    rng.shuffle(words)
    return " ".join(words)


def class_sentences(label: int) -> list[str]:
    """Two toy class sentences for ``label``."""
    first, second, *_ = TOY_WORDS[label]
    return [f"the {first} is a thing of the {second} .", f"a {second} often seen with a {first} ."]


def write_toy_work(work: Path, *, captions_per_class: int = 24, seed: int = 0) -> Path:
    """Write ``WORK/pairs/{train,test}-*.parquet`` and ``WORK/captions.parquet`` for the toy task.

    Two thirds of each class's captions are train, the rest test; each caption pairs with both
    class sentences (train split in two files, to test multi-file reading).
    """
    rng = np.random.default_rng(seed)
    work.mkdir(parents=True, exist_ok=True)
    captions, pairs = [], {"train": [], "test": []}
    for label in TOY_WORDS:
        for k in range(captions_per_class):
            image_id = f"n{label:08d}_{k}"
            text = toy_caption(rng, label)
            role = "train" if k % 3 else "test"
            captions.append(
                {"image_id": image_id, "label": label, "text": text, "eligible": True, "role": role}
            )
            for index, sentence in enumerate(class_sentences(label)):
                pairs[role].append(
                    {"text": f"{text} {sentence}", "label": label, "image_id": image_id,
                     "sentence_index": index}
                )
    captions.append({"image_id": "x_0", "label": None, "text": "", "eligible": False, "role": "excluded"})
    pq.write_table(pa.Table.from_pylist(captions), work / "captions.parquet")
    schema = pa.schema(
        [("text", pa.string()), ("label", pa.int64()), ("image_id", pa.string()),
         ("sentence_index", pa.int32())]
    )
    (work / "pairs").mkdir(parents=True, exist_ok=True)
    train = pairs["train"]
    half = len(train) // 2
    for name, rows in [("train-00000-of-00002", train[:half]), ("train-00001-of-00002", train[half:]),
                       ("test-00000-of-00001", pairs["test"])]:
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), work / "pairs" / f"{name}.parquet")
    return work


def toy_texts() -> list[str]:
    """Every word of the toy task, for training the tokenizer."""
    words = [w for ws in TOY_WORDS.values() for w in ws] + FILLER
    sentences = [s for label in TOY_WORDS for s in class_sentences(label)]
    return [" ".join(words), *sentences]
