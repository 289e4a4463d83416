"""The keep rule, the relevance curves and the measures, on hand-computed vectors."""

import numpy as np
import pytest

from imagenet_multimodal import relevance as rules
from imagenet_multimodal.relevance import (
    DROP_REASONS,
    calibrated_rule,
    check_thresholds,
    class_thresholds,
    informativeness,
    keep_rule,
    name_matcher,
    precision_recall_f1,
    relevance_curve,
    roc_auc,
)


def test_keep_rule_reasons():
    p = np.array([0.95, 0.60, 0.40, 0.02, 0.55])
    mean = np.array([0.01, 0.01, 0.01, 0.05, 0.60])
    keep, reason = keep_rule(p, mean, low=0.5)
    assert reason.tolist() == ["", "", "below_low", "below_mean", "below_mean"]
    assert keep.tolist() == [True, True, False, False, False] and set(reason) - {""} <= set(DROP_REASONS)


def test_keep_rule_thresholds_inclusive_and_all_dropped():
    p = np.array([0.5, 0.49999])
    assert keep_rule(p, np.zeros(2), low=0.5)[1].tolist() == ["", "below_low"]
    assert set(keep_rule(np.full(3, 0.1), np.zeros(3), low=0.5)[1]) == {"below_low"}


def test_linear_curve_matches_the_paper_by_hand():
    p = np.array([0.95, 0.5, 0.7])  # a = [1.0, 0.6, 0.8] -> rescaled over [0.6, 1.0]
    assert np.allclose(relevance_curve(p, high=0.9), [1.0, 0.0, 0.5])


def test_linear_curve_single_and_all_above_high():
    assert relevance_curve(np.array([0.7])).tolist() == [1.0]
    assert relevance_curve(np.array([0.95, 0.99])).tolist() == [1.0, 1.0]
    assert relevance_curve(np.array([])).tolist() == []


def test_thresholds_equal():
    p = np.array([0.8, 0.6, 0.61])
    assert keep_rule(p, np.zeros(3), low=0.6)[1].tolist() == ["", "", ""]
    assert np.allclose(relevance_curve(p, low=0.6, high=0.6), [1.0, 0.0, 1.0])
    assert relevance_curve(p, low=0.6, high=0.6, curve="smooth").tolist() == [1.0, 1.0, 1.0]
    check_thresholds(0.6, 0.6)
    with pytest.raises(ValueError, match="exceeds"):
        check_thresholds(0.9, 0.5)


def test_rank_curve_spreads_uniformly_with_ties():
    assert np.allclose(relevance_curve(np.array([0.9, 0.6, 0.6, 0.99]), curve="rank"), [0.6, 0, 0, 1])
    assert np.allclose(relevance_curve(np.array([0.3, 0.1, 0.2]), curve="rank"), [1, 0, 0.5])


def test_smooth_curve_is_monotone_and_bounded():
    p = np.linspace(0.4, 1.0, 61)
    r = relevance_curve(p, low=0.5, high=0.9, curve="smooth")
    assert r[0] == 0 and r[-1] == 1 and np.all(np.diff(r) >= 0)
    assert np.isclose(relevance_curve(np.array([0.7]), low=0.5, high=0.9, curve="smooth")[0], 0.5)
    with pytest.raises(ValueError, match="unknown curve"):
        relevance_curve(p, curve="cubic")


def test_calibrated_thresholds_are_class_means():
    p = np.array([0.2, 0.4, 0.9, 0.1])
    labels = np.array([0, 0, 1, 2])
    t = class_thresholds(p, labels, num_classes=4)
    assert np.allclose(t[:3], [0.3, 0.9, 0.1]) and np.isnan(t[3])
    keep, reasons = calibrated_rule(p, np.full(4, 0.15), labels, num_classes=4)
    assert reasons.tolist() == ["below_class_threshold", "", "", "below_mean"]
    assert keep.tolist() == [False, True, True, False] and set(reasons) - {""} <= set(DROP_REASONS)


@pytest.mark.parametrize(("value", "count"), [(0.1, 3), (0.7, 7), (0.7, 10)])
def test_a_class_of_equal_scores_is_not_dropped_by_rounding(value, count):
    """The mean of n copies of 0.1 is not exactly 0.1 in floating point; the class stays."""
    p = np.full(count, value)
    assert class_thresholds(p, np.zeros(count, int), num_classes=1)[0] > value  # the rounding guarded against
    assert calibrated_rule(p, np.zeros(count), np.zeros(count, int), num_classes=2)[1].tolist() == [""] * count
    below = np.float64(np.float32(value) - np.spacing(np.float32(value)))  # one float32 step lower
    assert calibrated_rule(np.array([value, below, value]), np.zeros(3), np.zeros(3, int),
                           num_classes=1)[1].tolist() == ["", "below_class_threshold", ""]


def test_roc_auc_by_hand():
    assert roc_auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == 0.75
    assert roc_auc(np.array([0.5, 0.5]), np.array([0, 1])) == 0.5
    assert np.isnan(roc_auc(np.array([0.1, 0.2]), np.array([1, 1])))


def test_precision_recall_f1():
    out = precision_recall_f1(np.array([1, 1, 0, 0], bool), np.array([1, 0, 1, 0], bool))
    assert out == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "kept": 2}
    assert precision_recall_f1(np.zeros(3, bool), np.ones(3, bool))["f1"] == 0.0


def test_name_matcher_word_boundaries():
    pattern = name_matcher(["tench", "Tinca tinca"])
    assert pattern.search("A big TENCH caught today")
    assert pattern.search("tinca tinca!")
    assert not pattern.search("stench of the lake")
    assert not name_matcher(["ant"]).search("an elephant")


def test_informativeness():
    assert np.allclose(informativeness(np.array([[0.9, 0.05], [0.4, 0.4], [0.0, 0.0]])), [0.85 / 0.95, 0.0, 0.0])


def test_linear_curve_is_monotone_for_any_upper_threshold():
    p = np.linspace(0.5, 1.0, 101)
    for high in (0.6, 0.9, 0.93, 0.95, 0.99):
        relevance = rules.relevance_curve(p, low=0.5, high=high)
        assert np.all(np.diff(relevance) >= 0), high
    # unchanged at the paper's 0.9: p + 0.1 never exceeds 1 below the knee
    paper = rules.relevance_curve(np.array([0.6, 0.8, 0.95]), high=0.9)
    assert np.allclose(paper, [0.0, 0.2 / 0.3, 1.0])


def test_rules_refuse_non_finite_probabilities():
    nan = float("nan")
    with pytest.raises(ValueError, match=r"p_correct: 1 of 4 values are not finite \(first at position 3\)"):
        rules.keep_rule(np.array([0.95, 0.7, 0.6, nan]), np.full(4, 0.001))
    with pytest.raises(ValueError, match="p_mean"):
        rules.calibrated_rule(np.array([0.9, 0.8]), np.array([0.1, np.inf]), np.array([0, 0]), num_classes=2)
    with pytest.raises(ValueError, match="not finite"):
        rules.relevance_curve(np.array([0.7, nan]))
