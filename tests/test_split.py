"""The train/test split: exact size, small-class guarantees, determinism (property-based)."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imagenet_multimodal.io import InputError
from imagenet_multimodal.split import allocate_train, default_train_size, split_train, train_bounds


def test_paper_sizes():
    assert default_train_size(389_598) == 300_000
    assert default_train_size(3_896) == 3_000
    # the whole file gives exactly 300,000 train whatever the cleaning counts as eligible
    for eligible in (389_598, 389_700, 389_450):
        assert default_train_size(eligible, num_records=463_622) == 300_000
    assert default_train_size(389_700) == 300_079  # a smaller input keeps the fraction


@st.composite
def class_sizes_and_train(draw):
    sizes = draw(st.lists(st.integers(min_value=0, max_value=300), min_size=1, max_size=30))
    sizes[0] = max(sizes[0], 1)
    low, high = train_bounds(np.array(sizes))
    train = draw(st.integers(min_value=int(low.sum()), max_value=int(high.sum())))
    return sizes, train


@settings(max_examples=200, deadline=None)
@given(class_sizes_and_train(), st.integers(min_value=0, max_value=2**32 - 1))
def test_split_guarantees(case, seed):
    sizes, train_size = case
    labels = np.repeat(np.arange(len(sizes)), sizes)
    np.random.default_rng(seed).shuffle(labels)
    is_train = split_train(labels, train_size=train_size, seed=seed, num_classes=len(sizes))
    assert is_train.sum() == train_size
    for label, n in enumerate(sizes):
        in_train = int(is_train[labels == label].sum())
        if n == 1:
            assert in_train == 1
        elif 0 < n <= 100:
            assert in_train >= math.ceil(n / 2)
            assert n - in_train >= math.ceil(0.2 * n)
    again = split_train(labels, train_size=train_size, seed=seed, num_classes=len(sizes))
    assert np.array_equal(is_train, again)


@pytest.mark.parametrize(("sizes", "expected"), [([1], [1]), ([2], [1]), ([3], [2]), ([1, 2], [1, 1])])
def test_tiny_classes(sizes, expected):
    train = allocate_train(np.array(sizes), sum(expected), rng=np.random.default_rng(0))
    assert train.tolist() == expected


def test_large_classes_get_their_share():
    sizes = np.array([1000, 3000, 6000])
    train = allocate_train(sizes, 7700, rng=np.random.default_rng(0))
    assert train.sum() == 7700
    assert np.all(np.abs(train - sizes * 0.77) <= 1)


def test_different_seeds_choose_different_captions():
    labels = np.repeat(np.arange(5), 200)
    first = split_train(labels, train_size=770, seed=1, num_classes=5)
    second = split_train(labels, train_size=770, seed=2, num_classes=5)
    assert first.sum() == second.sum() == 770
    assert not np.array_equal(first, second)


def test_infeasible_train_size_names_the_bounds():
    with pytest.raises(InputError, match="allow 5 to 8"):
        allocate_train(np.array([10]), 9, rng=np.random.default_rng(0))
