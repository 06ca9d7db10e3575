"""Statistics against known cases: McNemar by hand, bootstrap coverage, paired tests."""

import numpy as np
import pytest
from scipy.stats import binom

from peft_imdb.stats import mcnemar_exact, mean_interval, paired_difference


def test_mcnemar_on_a_hand_built_table():
    # 10 reviews only A gets right, 2 only B, 50 both: exact two-sided p = 2 * P(X <= 2 | n=12, 1/2).
    a = np.r_[np.ones(10), np.zeros(2), np.ones(50)].astype(bool)
    b = np.r_[np.zeros(10), np.ones(2), np.ones(50)].astype(bool)
    result = mcnemar_exact(a, b)
    assert (result.a_only, result.b_only) == (10, 2)
    assert result.p_value == pytest.approx(2 * binom.cdf(2, 12, 0.5)) and result.p_value == pytest.approx(158 / 4096)
    assert mcnemar_exact(a, a).p_value == 1.0


def test_mcnemar_refuses_different_reviews():
    with pytest.raises(ValueError):
        mcnemar_exact(np.ones(3, bool), np.ones(4, bool))


def test_bootstrap_interval_covers_the_true_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(1)
    covered = sum(mean_interval(rng.random(400) < 0.8, seed=i, resamples=500).contains(0.8) for i in range(100))
    assert 88 <= covered <= 99


def test_an_accuracy_interval_has_the_binomial_width():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 2000)
    predicted = np.where(rng.random(2000) < 0.8, labels, 1 - labels)
    interval = mean_interval(labels == predicted)
    assert interval.value == pytest.approx(np.mean(labels == predicted))
    half_width = 1.96 * np.sqrt(0.8 * 0.2 / 2000)
    assert (interval.high - interval.low) / 2 == pytest.approx(half_width, rel=0.15)


def test_paired_difference_finds_a_real_gap_and_not_a_fake_one():
    rng = np.random.default_rng(2)
    better = rng.random((3, 2000)) < 0.85
    worse = rng.random((3, 2000)) < 0.75
    gap = paired_difference(better, worse)
    assert gap.difference.low > 0 and gap.p_value < 0.001 and gap.seeds == 3
    same = paired_difference(better, better)
    assert same.difference.value == 0 and same.p_value == 1.0


def test_one_seed_each_is_mcnemar():
    rng = np.random.default_rng(3)
    a, b = rng.random(500) < 0.8, rng.random(500) < 0.78
    assert paired_difference(a, b).p_value == mcnemar_exact(a, b).p_value


def test_a_single_differing_review_is_no_evidence():
    a = np.ones((2, 50), bool)
    b = a.copy()
    b[:, 0] = False
    assert paired_difference(a, b).p_value == 1.0
