"""The model pass of the ``score`` stage: each caption scored on its text alone.

Captions are tokenised once, sorted by length (batches need little padding), sharded across
processes by Accelerate and run under ``torch.inference_mode``. Each batch is reduced as it comes:
no N x 1,000 probability matrix is ever held. Per caption we keep p_correct, p_mean, the rank of
the true class, the top-5 labels, the two largest probabilities and the cosine similarity between
the caption's and its class text's mean-pooled encoder embeddings.
"""

from __future__ import annotations

import numpy as np
import torch
from accelerate import Accelerator
from tqdm.auto import tqdm

from .model import RelevanceModel, masked_mean
from .pairs import PadCollator, TokenDataset, tokenize

FIELDS = ("p_correct", "p_mean", "rank", "top1", "top2", "top3", "top4", "top5", "prob1", "prob2",
          "similarity")


class _Indexed(torch.utils.data.Dataset):
    """A :class:`TokenDataset` whose items also carry their position, so results map back exactly."""

    def __init__(self, tokens: TokenDataset, order: np.ndarray) -> None:
        self.tokens, self.order = tokens, order

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, position: int) -> dict:
        index = int(self.order[position])
        return {**self.tokens[index], "index": index}


class _Collate:
    def __init__(self, pad_token_id: int) -> None:
        self.pad = PadCollator(pad_token_id)

    def __call__(self, items):
        batch = self.pad(items)
        batch["index"] = torch.tensor([item["index"] for item in items], dtype=torch.int64)
        return batch


def _pooled(model: RelevanceModel, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    hidden = model.encoder(input_ids=input_ids, attention_mask=attention_mask)[0]
    return masked_mean(hidden, attention_mask)


@torch.inference_mode()
def class_embeddings(model: RelevanceModel, tokenizer, texts: list[str], *, max_length: int,
                     batch_size: int = 64) -> torch.Tensor:
    """Unit-length mean-pooled encoder embeddings of the class texts, shape (num_classes, hidden)."""
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(texts), batch_size):
        enc = tokenizer(texts[start:start + batch_size], truncation=True, max_length=max_length, padding=True,
                        return_tensors="pt").to(device)
        out.append(_pooled(model, enc["input_ids"], enc["attention_mask"]))
    return torch.nn.functional.normalize(torch.cat(out), dim=-1)


def _reduce(model: RelevanceModel, batch: dict, classes: torch.Tensor) -> torch.Tensor:
    """One batch -> (batch, len(FIELDS) + 1) float64 rows: index first, then :data:`FIELDS`."""
    pooled = _pooled(model, batch["input_ids"], batch["attention_mask"])
    # the head and the probabilities in float32 whatever the encoder ran in: bf16 logits would move
    # p_correct by ~0.01 and flip keep decisions near the thresholds
    with torch.autocast(device_type=pooled.device.type, enabled=False):
        pooled = pooled.float()
        probs = model.probabilities(model.classifier(pooled.to(model.classifier.weight.dtype)).float())
        labels = batch["labels"]
        p_correct = probs.gather(1, labels[:, None])[:, 0]
        rank = (probs > p_correct[:, None]).sum(dim=1) + 1
        top = probs.topk(5, dim=1)
        similarity = (torch.nn.functional.normalize(pooled, dim=-1) * classes[labels].float()).sum(dim=1)
    columns = [batch["index"].double(), p_correct.double(), probs.mean(dim=1).double(), rank.double(),
               *top.indices.double().unbind(1), *top.values[:, :2].double().unbind(1), similarity.double()]
    return torch.stack(columns, dim=1)


@torch.inference_mode()
def score_texts(model: RelevanceModel, tokenizer, texts: list[str], labels: np.ndarray, *,
                accelerator: Accelerator, batch_size: int, max_length: int,
                classes: torch.Tensor, desc: str = "scoring") -> dict[str, np.ndarray]:
    """Score ``texts`` (each against its ``labels``) and return one array per field of :data:`FIELDS`.

    Parameters
    ----------
    texts : list of str, length n
    labels : np.ndarray of int, shape (n,)
    classes : torch.Tensor, shape (num_classes, hidden)
        Unit class-text embeddings (:func:`class_embeddings`) on the model's device.

    Returns
    -------
    dict of np.ndarray, each of shape (n,), in the order of ``texts`` (on every process).
    """
    ids, offsets = tokenize(texts, tokenizer, max_length=max_length)
    tokens = TokenDataset(ids, offsets, np.asarray(labels, dtype=np.int64))
    order = np.argsort(-tokens.lengths, kind="stable")  # longest first: little padding, early OOM
    loader = torch.utils.data.DataLoader(_Indexed(tokens, order), batch_size=batch_size, shuffle=False,
                                         collate_fn=_Collate(tokenizer.pad_token_id))
    loader = accelerator.prepare(loader)
    model.eval()
    rows = []
    for batch in tqdm(loader, desc=desc, unit="batch", disable=not accelerator.is_local_main_process,
                      leave=False):
        with accelerator.autocast():  # the encoder in the Accelerator's mixed precision (score --mixed-precision)
            reduced = _reduce(model, batch, classes)
        rows.append(accelerator.gather_for_metrics(reduced).cpu())
    table = torch.cat(rows).numpy() if rows else np.zeros((0, len(FIELDS) + 1))
    out = np.full((len(texts), len(FIELDS)), np.nan)
    out[table[:, 0].astype(np.int64)] = table[:, 1:]
    result = dict(zip(FIELDS, out.T))
    for name in ("rank", "top1", "top2", "top3", "top4", "top5"):
        result[name] = result[name].astype(np.int32)
    return result
