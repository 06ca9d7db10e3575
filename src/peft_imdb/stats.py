"""How sure the numbers are: bootstrap intervals, McNemar's exact test and a paired test across seeds.

All tests resample or pair *test reviews*, the unit that was sampled. Per-review correctness comes
from the stored predictions (results/predictions/<key>.npz), so nothing here re-trains anything.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

LEVEL = 0.95
RESAMPLES = 2000


@dataclass(frozen=True)
class Interval:
    """A point estimate with its confidence interval."""

    value: float
    low: float
    high: float

    def contains(self, x: float) -> bool:
        """True when x lies inside the interval (ends included)."""
        return self.low <= x <= self.high


def _f1(labels: np.ndarray, predicted: np.ndarray, axis: int = -1) -> np.ndarray:
    """Binary F1 of the positive class, vectorised over resamples (0 when undefined)."""
    tp = np.sum((labels == 1) & (predicted == 1), axis=axis)
    fp = np.sum((labels == 0) & (predicted == 1), axis=axis)
    fn = np.sum((labels == 1) & (predicted == 0), axis=axis)
    denominator = 2 * tp + fp + fn
    return np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 0.0)


def _percentile_interval(data: tuple, statistic, value: float, seed: int, resamples: int) -> Interval:
    result = stats.bootstrap(data, statistic, paired=True, vectorized=True, n_resamples=resamples,
                             confidence_level=LEVEL, method="percentile", random_state=seed)
    return Interval(float(value), float(result.confidence_interval.low), float(result.confidence_interval.high))


def accuracy_interval(labels: np.ndarray, predicted: np.ndarray, seed: int = 0,
                      resamples: int = RESAMPLES) -> Interval:
    """Accuracy with a 95% percentile bootstrap interval over test reviews."""
    correct = (np.asarray(labels) == np.asarray(predicted)).astype(float)
    return mean_interval(correct, seed, resamples)


def f1_interval(labels: np.ndarray, predicted: np.ndarray, seed: int = 0, resamples: int = RESAMPLES) -> Interval:
    """F1 (positive class) with a 95% paired percentile bootstrap interval over test reviews."""
    labels, predicted = np.asarray(labels), np.asarray(predicted)
    return _percentile_interval((labels, predicted), lambda y, p, axis=-1: _f1(y, p, axis),
                                float(_f1(labels, predicted)), seed, resamples)


def mean_interval(values: np.ndarray, seed: int = 0, resamples: int = RESAMPLES) -> Interval:
    """Mean of per-review values (e.g. correctness averaged over seeds) with a 95% bootstrap interval."""
    values = np.asarray(values, dtype=float)
    return _percentile_interval((values,), lambda v, axis=-1: np.mean(v, axis=axis), float(values.mean()),
                                seed, resamples)


@dataclass(frozen=True)
class McNemar:
    """McNemar's exact test on paired predictions: b = only A right, c = only B right."""

    a_only: int
    b_only: int
    p_value: float


def mcnemar_exact(a_correct: np.ndarray, b_correct: np.ndarray) -> McNemar:
    """Exact (binomial) McNemar test of two classifiers on the same reviews."""
    a_correct, b_correct = np.asarray(a_correct, bool), np.asarray(b_correct, bool)
    if a_correct.shape != b_correct.shape:
        raise ValueError("McNemar needs predictions on the same reviews")
    b = int(np.sum(a_correct & ~b_correct))
    c = int(np.sum(~a_correct & b_correct))
    p = 1.0 if b + c == 0 else float(stats.binomtest(b, b + c, 0.5).pvalue)
    return McNemar(b, c, p)


@dataclass(frozen=True)
class PairedComparison:
    """Method minus reference on the same reviews: the accuracy difference, its interval and p-value."""

    difference: Interval
    p_value: float
    seeds: int


def paired_difference(method_correct: np.ndarray, reference_correct: np.ndarray, seed: int = 0,
                      resamples: int = RESAMPLES) -> PairedComparison:
    """Compare two methods on the same reviews; each argument is (seeds, reviews) or (reviews,) correctness.

    Per review, correctness is averaged over each method's seeds. The difference of the means gets a 95%
    paired bootstrap interval over reviews; the p-value is a paired sign-flip permutation test of
    "no difference" (with one seed per method it is McNemar's test, computed exactly).
    """
    method = np.atleast_2d(np.asarray(method_correct, dtype=float))
    reference = np.atleast_2d(np.asarray(reference_correct, dtype=float))
    if method.shape[1] != reference.shape[1]:
        raise ValueError("a paired comparison needs predictions on the same reviews")
    per_review = method.mean(axis=0) - reference.mean(axis=0)
    interval = mean_interval(per_review, seed, resamples)
    if method.shape[0] == reference.shape[0] == 1:
        p = mcnemar_exact(method[0].astype(bool), reference[0].astype(bool)).p_value
    else:
        nonzero = per_review[per_review != 0]
        if len(nonzero) < 2:  # one flip of one difference is as extreme as the data: nothing to tell apart
            p = 1.0
        else:
            test = stats.permutation_test((nonzero,), lambda d, axis=-1: np.mean(d, axis=axis),
                                          permutation_type="samples", n_resamples=9999,
                                          alternative="two-sided", random_state=seed)
            p = float(test.pvalue)
    return PairedComparison(interval, p, int(min(method.shape[0], reference.shape[0])))
