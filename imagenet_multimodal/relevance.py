"""The relevance rules as pure functions on probability arrays (no model, no I/O).

The paper's rule: a caption is dropped when p_correct < mean(p) (``below_mean``) or
p_correct < low (``below_low``); a kept caption gets a = 1 if p_correct > high else
min(p_correct + 0.1, 1), rescaled linearly onto [0, 1] over the kept captions (the cap changes
nothing at the paper's high = 0.9 and keeps the curve monotone above it). The rules take finite
probabilities only: a NaN would be kept by every comparison, so it is a ValueError. Thresholds and the curve
are options (``linear``, ``rank``, ``smooth``), and a calibrated mode takes per-class thresholds
from the probabilities themselves, as confident learning does (cleanlab: t_j = mean p_j over the
captions labelled j).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

CURVES = ("linear", "rank", "smooth")
MODES = ("fixed", "calibrated")
DROP_REASONS = ("below_mean", "below_low", "below_class_threshold")  # what the rules below give as reason


def check_thresholds(low: float, high: float) -> None:
    """Both in [0, 1] and low <= high, else ValueError saying which."""
    if not (0.0 <= low <= 1.0 and 0.0 <= high <= 1.0):
        raise ValueError(f"thresholds must lie in [0, 1], got low={low}, high={high}")
    if low > high:
        raise ValueError(f"the lower threshold {low} exceeds the upper threshold {high}")


def keep_rule(p_correct: np.ndarray, p_mean: np.ndarray, *, low: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """The paper's filter. Returns ``(keep, reason)`` per caption: bool, and one of
    :data:`DROP_REASONS` ('' when kept).

    Parameters
    ----------
    p_correct, p_mean : np.ndarray of float, shape (n,)
        Probability of the true class, and the mean probability over all classes.
    low : float
        Lower threshold.
    """
    p_correct, p_mean = _finite(p_correct, "p_correct"), _finite(p_mean, "p_mean")
    reason = np.full(p_correct.shape, "", dtype=object)
    reason[p_correct < low] = "below_low"
    reason[p_correct < p_mean] = "below_mean"  # listed first in the paper, so it wins
    return reason == "", reason


def _finite(values, name: str) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        raise ValueError(f"{name}: {int(bad.sum())} of {values.size} values are not finite "
                         f"(first at position {int(np.flatnonzero(bad)[0])})")
    return values


def class_thresholds(p_correct: np.ndarray, labels: np.ndarray, *, num_classes: int) -> np.ndarray:
    """Per-class thresholds t_j = mean p_correct over the captions labelled j (NaN for absent classes).

    With out-of-fold probabilities this is confident learning's threshold (cleanlab's
    ``compute_confident_joint``): the expected self-confidence of class j.
    """
    labels = np.asarray(labels)
    sums = np.bincount(labels, weights=np.asarray(p_correct, dtype=np.float64), minlength=num_classes)
    counts = np.bincount(labels, minlength=num_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / counts, np.nan)


def calibrated_rule(p_correct: np.ndarray, p_mean: np.ndarray, labels: np.ndarray, *,
                    num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Drop a caption below its class's threshold (``below_class_threshold``) or below the mean;
    returns ``(keep, reason)`` as :func:`keep_rule` does."""
    p_correct, p_mean = _finite(p_correct, "p_correct"), _finite(p_mean, "p_mean")
    thresholds = class_thresholds(p_correct, labels, num_classes=num_classes)
    reason = np.full(p_correct.shape, "", dtype=object)
    own = thresholds[np.asarray(labels)]
    # a mean of equal values can round to just above them: a class whose captions all share one p
    # is not dropped whole by that rounding
    reason[(p_correct < own) & ~np.isclose(p_correct, own, rtol=1e-9, atol=0.0)] = "below_class_threshold"
    reason[p_correct < p_mean] = "below_mean"
    return reason == "", reason


def _rescale(values: np.ndarray) -> np.ndarray:
    """Linearly onto [0, 1]; all-equal values (one caption, or all above high) become 1."""
    if values.size == 0:
        return values
    lo, hi = values.min(), values.max()
    return np.ones_like(values) if hi == lo else (values - lo) / (hi - lo)


def relevance_curve(p_kept: np.ndarray, *, low: float = 0.5, high: float = 0.9, curve: str = "linear") -> np.ndarray:
    """Relevance in [0, 1] of the kept captions from their p_correct.

    ``linear`` (the paper): a = 1 above ``high`` else min(p + 0.1, 1), rescaled over the kept captions;
    ``rank``: the captions' rank among the kept, spread uniformly (ties share their mean rank);
    ``smooth``: smoothstep from ``low`` (0) to ``high`` (1), a continuous version of the paper's knee.
    """
    p = _finite(p_kept, "p_correct")
    if curve == "linear":
        return _rescale(np.where(p > high, 1.0, np.minimum(p + 0.1, 1.0)))
    if curve == "rank":
        order = p.argsort(kind="stable")
        ranks = np.empty(len(p))
        ranks[order] = np.arange(len(p))
        _, inverse = np.unique(p, return_inverse=True)  # ties: mean rank
        ranks = (np.bincount(inverse, weights=ranks) / np.bincount(inverse))[inverse]
        return _rescale(ranks)
    if curve == "smooth":
        t = np.clip((p - low) / (high - low), 0.0, 1.0) if high > low else (p >= high).astype(float)
        return t * t * (3.0 - 2.0 * t)
    raise ValueError(f"unknown curve {curve!r}; expected one of {CURVES}")


def informativeness(top_probs: np.ndarray) -> np.ndarray:
    """Class-agnostic informativeness: how peaked the prediction is, whatever the class.

    Parameters
    ----------
    top_probs : np.ndarray, shape (n, k)
        Each caption's k largest class probabilities, in decreasing order.

    Returns the margin between the top two normalised probabilities, in [0, 1].
    """
    top = np.asarray(top_probs, dtype=np.float64)
    total = top.sum(axis=1, keepdims=True)
    share = np.divide(top, total, out=np.zeros_like(top), where=total > 0)
    return share[:, 0] - (share[:, 1] if top.shape[1] > 1 else 0.0)


def name_matcher(lemmas: Sequence[str]) -> re.Pattern:
    """A case-insensitive, word-bounded pattern for any of a class's lemmas."""
    names = sorted({lemma.strip() for lemma in lemmas if lemma.strip()}, key=len, reverse=True)
    return re.compile(r"(?<!\w)(?:" + "|".join(re.escape(n) for n in names) + r")(?!\w)", re.IGNORECASE)


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U, ties counted half); NaN with one class only."""
    scores, positive = np.asarray(scores, dtype=np.float64), np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = scores.argsort(kind="stable")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    _, inverse = np.unique(scores, return_inverse=True)
    ranks = (np.bincount(inverse, weights=ranks) / np.bincount(inverse))[inverse]
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def precision_recall_f1(kept: np.ndarray, relevant: np.ndarray) -> dict[str, float]:
    """Precision, recall and F1 of ``kept`` as a predictor of ``relevant``."""
    kept, relevant = np.asarray(kept, dtype=bool), np.asarray(relevant, dtype=bool)
    tp = int((kept & relevant).sum())
    precision = tp / kept.sum() if kept.sum() else 0.0
    recall = tp / relevant.sum() if relevant.sum() else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": float(precision), "recall": float(recall), "f1": float(f1), "kept": int(kept.sum())}
