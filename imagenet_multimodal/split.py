"""The train/test split of eligible captions (pure: numpy in, numpy out).

The paper splits 389,598 eligible captions into exactly 300,000 train and 89,598 test. At full scale
(the whole ImageNet-Captions file) we take exactly 300,000 too, whatever our cleaning counts as
eligible; on a smaller input we keep the paper's fraction. We stratify by class (each class gets
its share, rounded so that the total is exact), and guarantee that a class with at most 100
eligible captions has at least half of them in train and at least 20% (rounded up) in test. A
class with a single caption cannot have both; it goes to train, since a class without training
captions cannot be learned.
"""

from __future__ import annotations

import numpy as np

from .io import InputError

PAPER_RECORDS = 463_622  # records in ImageNet-Captions' imagenet_captions.json
PAPER_ELIGIBLE = 389_598
PAPER_TRAIN = 300_000
SMALL_CLASS = 100


def default_train_size(num_eligible: int, *, num_records: int = 0) -> int:
    """Exactly 300,000 at full scale (``num_records`` of at least the file's 463,622; at most all the
    eligible); the paper's fraction, 300,000 / 389,598 of the eligible, rounded, on a smaller input."""
    if num_records >= PAPER_RECORDS:
        return min(PAPER_TRAIN, num_eligible)
    return round(num_eligible * PAPER_TRAIN / PAPER_ELIGIBLE)


def train_bounds(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per class, the least and most captions that may go to train.

    Parameters
    ----------
    counts : np.ndarray of int, shape (num_classes,)
        Eligible captions per class.
    """
    counts = np.asarray(counts, dtype=np.int64)
    small = counts <= SMALL_CLASS
    low = np.where(small, (counts + 1) // 2, 0)
    high = np.where(small, counts - np.ceil(counts * 0.2).astype(np.int64), counts)
    high = np.maximum(high, low)  # a class of one: all in train
    return low, high


def allocate_train(counts: np.ndarray, total: int, *, rng: np.random.Generator) -> np.ndarray:
    """How many captions of each class go to train, summing to exactly ``total``.

    Each class starts at its proportional share (floored, clipped to its bounds); the remainder
    goes one caption at a time to the classes furthest from their share, ties broken at random.
    """
    counts = np.asarray(counts, dtype=np.int64)
    low, high = train_bounds(counts)
    if not low.sum() <= total <= high.sum():
        raise InputError(
            f"train size {total} cannot be met: the per-class guarantees allow "
            f"{low.sum()} to {high.sum()} train captions for {counts.sum()} eligible captions"
        )
    ideal = counts * (total / max(counts.sum(), 1))
    train = np.clip(np.floor(ideal).astype(np.int64), low, high)
    while (missing := total - int(train.sum())) != 0:
        step = 1 if missing > 0 else -1
        room = train < high if step > 0 else train > low
        candidates = np.flatnonzero(room)
        gap = (ideal - train)[candidates] * step  # how far below (or above) its share
        order = np.lexsort((rng.random(len(candidates)), -gap))
        train[candidates[order[: abs(missing)]]] += step
    return train


def split_train(labels: np.ndarray, *, train_size: int, seed: int, num_classes: int) -> np.ndarray:
    """Choose the train captions.

    Parameters
    ----------
    labels : np.ndarray of int, shape (n,)
        Class label of each eligible caption.
    train_size : int
        Exact number of train captions.
    seed : int
        Seed of the random choice; the same inputs and seed give the same split.
    num_classes : int
        Number of classes (labels lie in ``[0, num_classes)``).

    Returns
    -------
    np.ndarray of bool, shape (n,)
        True for train captions, False for test captions.
    """
    labels = np.asarray(labels, dtype=np.int64)
    rng = np.random.default_rng(seed)
    counts = np.bincount(labels, minlength=num_classes)
    per_class = allocate_train(counts, train_size, rng=rng)
    order = rng.permutation(len(labels))
    order = order[np.argsort(labels[order], kind="stable")]  # grouped by class, random within
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rank = np.arange(len(labels)) - starts[labels[order]]
    is_train = np.zeros(len(labels), dtype=bool)
    is_train[order] = rank < per_class[labels[order]]
    return is_train
