#!/usr/bin/env bash
# Throughput of the relevance model's training loop on one GPU: roberta-base shape (built from
# RobertaConfig(), random weights, no download), bf16, max length 128, a few hundred steps over
# random-word pairs of log-normal token lengths (median 48, sigma 0.35, cut at 128): an assumed shape
# of caption + one class sentence, not measured on the real pairs (that needs the ImageNet-Captions
# file; a training run records the real percentiles in metrics.json's token_lengths), at each batch
# size of BATCHES (32 is the paper's), each in its own process.
# Prints examples/s, tokens/s, model FLOP utilisation (6 * non-embedding params * real tokens /
# time / peak; attention's own FLOPs left out, small at ~50 tokens), peak GPU memory allocated and
# the hours the paper's 120 epochs (~117M pair passes) would take; one JSON line per run goes to
# RESULTS as soon as the run ends (a sweep cut short keeps what finished). The batch sizes of
# COMPILED run once more with the model compiled (torch.compile through Accelerate:
# ACCELERATE_DYNAMO_BACKEND=inductor, dynamic shapes, which `accelerate launch --dynamo_backend
# inductor --dynamo_use_dynamic` sets too), after 50 warm-up steps, last. Each run has RUN_TIMEOUT
# seconds (COMPILED_TIMEOUT compiled); a run that fails or runs out (say, out of memory) is named at
# the end and the others go on.
#
#   bash bench/gpu_train.sh                    # STEPS=200 BATCHES="32 128 512" COMPILED="128" PEAK_TFLOPS=auto
#   RESULTS=$OUT/gpu_train.jsonl bash bench/gpu_train.sh
#   SMOKE=1 bash bench/gpu_train.sh            # tiny model, a few steps: checks the script on a CPU
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # the package from this tree, installed or not
export STEPS="${STEPS:-200}" PEAK_TFLOPS="${PEAK_TFLOPS:-auto}" SMOKE="${SMOKE:-0}"
export RESULTS="${RESULTS:-bench/results/gpu_train.jsonl}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1  # nothing is downloaded (the device reaches no network)
RUN_TIMEOUT="${RUN_TIMEOUT:-150}" COMPILED_TIMEOUT="${COMPILED_TIMEOUT:-200}"
SCRIPT="$(mktemp --suffix .py)"
trap 'rm -f "$SCRIPT"' EXIT
mkdir -p "$(dirname "$RESULTS")"
: > "$RESULTS"
cat > "$SCRIPT" <<'EOF'
import json, os, tempfile, time
from pathlib import Path

import numpy as np, pyarrow as pa, pyarrow.parquet as pq, torch
from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerFast, RobertaConfig, RobertaModel

from imagenet_multimodal import train

steps, batch, smoke = int(os.environ["STEPS"]), int(os.environ["BATCH"]), os.environ["SMOKE"] == "1"
if torch.cuda.is_available():
    torch.cuda.reset_peak_memory_stats()
warm, n_test = int(os.environ.get("WARM", "20")), 64
rng = np.random.default_rng(0)
words = np.array([f"w{i}" for i in range(5000)])  # an array: rng.choice converts a list on every call
lengths = np.clip(rng.lognormal(np.log(48), 0.35, size=(steps + warm) * batch + n_test), 8, 200).astype(int)
texts = [" ".join(rng.choice(words, size=n - 2)) for n in lengths]  # + <s> and </s>
with tempfile.TemporaryDirectory() as tmp:
    work, encoder = Path(tmp) / "work", Path(tmp) / "encoder"
    (work / "pairs").mkdir(parents=True)
    labels = rng.integers(0, 1000, size=len(texts))
    table = pa.table({"text": texts, "label": labels, "image_id": [f"i{k // 3}" for k in range(len(texts))]})
    pq.write_table(table.slice(n_test), work / "pairs" / "train-00000-of-00001.parquet")
    pq.write_table(table.slice(0, n_test), work / "pairs" / "test-00000-of-00001.parquet")
    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.train_from_iterator([" ".join(words)], trainers.WordLevelTrainer(
        special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"]))
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                            unk_token="<unk>", mask_token="<mask>").save_pretrained(encoder)
    shape = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128) if smoke else {}
    RobertaModel(RobertaConfig(**shape), add_pooling_layer=False).save_pretrained(encoder)  # RobertaConfig() = roberta-base
    options = train.TrainOptions(
        work=work, encoder=str(encoder), output=Path(tmp) / "model", epochs=1, epoch_fraction=1.0,
        batch_size=batch, max_length=128, eval_captions=False, checkpoint_steps=0, resume="no",
        mixed_precision="bf16" if torch.cuda.is_available() else "no", pad_to_multiple_of=8)
    job = train.setup(options)
    params = sum(p.numel() for p in job.model.parameters())
    embedding = sum(m.weight.numel() for m in job.model.modules() if isinstance(m, torch.nn.Embedding))
    state, loader = train.initial_state(options), job.loaders["train"]
    loader.set_epoch(0); job.sampler.set_epoch(0)
    real = sum(int(b["attention_mask"].sum()) for b in loader) / len(loader)  # real tokens per batch
    padded = sum(b["attention_mask"].numel() for b in loader) / len(loader)
    options.stop_after_steps, options.checkpoint_steps = warm, 10**9  # warm-up, then time the rest
    train.save_checkpoint = lambda *args, **kwargs: None  # the warm-up's stop would save ~1.5 GB of state
    train.train_epoch(job, state, tqdm(disable=True))
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    started, done = time.perf_counter(), state["global_step"]
    options.stop_after_steps = 0
    train.train_epoch(job, state, tqdm(disable=True))
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    seconds, timed = time.perf_counter() - started, state["global_step"] - done
name = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
peak = os.environ["PEAK_TFLOPS"]
if peak == "auto":  # bf16 dense tensor-core peaks, TFLOPS
    peaks = (("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("H100", 989.0), ("H200", 989.0), ("A100", 312.0))
    peak = next((value for key, value in peaks if key in name), None)
else:
    peak = float(peak)
tokens_s = timed * real / seconds
row = {"device": name, "params": params, "batch": batch,
       "compiled": os.environ.get("ACCELERATE_DYNAMO_BACKEND", "no").lower() not in ("no", ""), "timed_steps": timed, "seconds": seconds,
       "examples_per_s": timed * batch / seconds, "real_tokens_per_s": tokens_s,
       "padded_tokens_per_s": timed * padded / seconds, "padding_efficiency": real / padded,
       "flop_params": params - embedding,
       "mfu": 6 * (params - embedding) * tokens_s / (peak * 1e12) if peak else None, "peak_tflops": peak,
       "peak_gpu_memory_allocated_gb": torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None,
       "hours_for_117M_pair_passes": 117e6 / (timed * batch / seconds) / 3600}
with open(os.environ["RESULTS"], "a") as out:
    out.write(json.dumps(row) + "\n")
print(f"device {name}, {params / 1e6:.1f}M parameters, batch {batch}, {timed} timed steps, {seconds:.1f} s")
EOF
failed=""
for BATCH in ${BATCHES-32 128 512}; do  # a failed run (say, out of memory) does not stop the others
    BATCH="$BATCH" timeout "$RUN_TIMEOUT" "$PYTHON" "$SCRIPT" || failed="$failed $BATCH"
done
for BATCH in ${COMPILED-128}; do
    BATCH="$BATCH" WARM=50 ACCELERATE_DYNAMO_BACKEND=inductor ACCELERATE_DYNAMO_USE_DYNAMIC=true \
        timeout "$COMPILED_TIMEOUT" "$PYTHON" "$SCRIPT" || failed="$failed compiled-$BATCH"
done
"$PYTHON" - <<'EOF'
import json, os
rows = [json.loads(line) for line in open(os.environ["RESULTS"])]
if not rows:
    raise SystemExit("no run finished")
print(f"\n{rows[0]['device']}, {rows[0]['params'] / 1e6:.1f}M parameters, bf16 where available, max length 128")
print(f"{'batch':>6} {'compiled':>9} {'examples/s':>11} {'real tok/s':>11} {'pad eff':>8} {'MFU':>7}"
      f" {'GPU GB alloc':>13} {'h/117M':>8}")
for r in rows:
    mem = r["peak_gpu_memory_allocated_gb"]
    mem, mfu = f"{mem:.1f}" if mem is not None else "-", f"{r['mfu']:.1%}" if r["mfu"] is not None else "-"
    print(f"{r['batch']:>6} {'yes' if r['compiled'] else 'no':>9} {r['examples_per_s']:>11,.0f}"
          f" {r['real_tokens_per_s']:>11,.0f} {r['padding_efficiency']:>8.3f} {mfu:>7} {mem:>13}"
          f" {r['hours_for_117M_pair_passes']:>8.2f}")
print(f"results: {os.environ['RESULTS']}")
EOF
if [ -n "$failed" ]; then echo "FAILED runs:$failed" >&2; exit 1; fi
