"""How sure the numbers are: intervals, tests and verdicts for a study of several seeds on the same reviews.

Two things were sampled: the training seeds of each method and the test reviews. The review-only tools
(`mean_interval`, `mcnemar_exact`, `paired_difference`) resample or pair
reviews only, so they ignore how much a result moves from seed to seed. The two-level tools resample both:
`two_level_interval` and `two_level_difference` bootstrap seeds and then reviews (reviews shared between the
two methods, since both were evaluated on the same ones); `variance_components` splits the variance of the
mean accuracy into a seed, a review and a residual part; `holm` adjusts the p-values of several methods
compared with one reference; `verdict` applies the equivalence/difference rules fixed before the data; and
`detectable_difference` says how large a gap the design can see. Per-review correctness comes from the stored
predictions (results/predictions/<key>.npz), so nothing here re-trains anything.
"""

from __future__ import annotations

from collections.abc import Sequence
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


def _percentile_interval(data: tuple, statistic, value: float, seed: int, resamples: int) -> Interval:
    result = stats.bootstrap(data, statistic, paired=True, vectorized=True, n_resamples=resamples,
                             confidence_level=LEVEL, method="percentile", random_state=seed)
    return Interval(float(value), float(result.confidence_interval.low), float(result.confidence_interval.high))


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


# Two levels: training seeds and test reviews.

TOST_LEVEL = 0.90  # two one-sided tests at 5% each read off a 90% interval


def _as_matrix(correct: np.ndarray) -> np.ndarray:
    """Correctness as a float (seeds, reviews) matrix; one run's (reviews,) vector is one seed."""
    matrix = np.atleast_2d(np.asarray(correct, dtype=float))
    if matrix.ndim != 2 or matrix.size == 0:
        raise ValueError("correctness must be a non-empty (seeds, reviews) matrix")
    return matrix


def _counts(rng: np.random.Generator, units: int, resamples: int) -> np.ndarray:
    """Bootstrap counts, (resamples, units): how often each unit is drawn in each resample of `units` draws."""
    draws = rng.integers(0, units, size=(resamples, units)) + units * np.arange(resamples)[:, None]
    return np.bincount(draws.ravel(), minlength=resamples * units).reshape(resamples, units).astype(float)


def _two_level_means(rng: np.random.Generator, matrices: list[np.ndarray], resamples: int) -> list[np.ndarray]:
    """Bootstrap means of each (seeds, reviews) matrix: seeds drawn per matrix, one review draw shared by all.

    The mean of the matrix indexed by drawn seeds S and drawn reviews R equals
    sum_ij n_i m_j x_ij / (|S| |R|), with n_i, m_j the draw counts, so only the counts are materialised
    (einsum rather than BLAS: the seed axis is thin and BLAS threads only add overhead there).
    """
    per_review = [np.einsum("bs,sr->br", _counts(rng, m.shape[0], resamples), m) / m.shape[0] for m in matrices]
    reviews = _counts(rng, matrices[0].shape[1], resamples) / matrices[0].shape[1]
    return [np.einsum("br,br->b", p, reviews) for p in per_review]


def _quantile_interval(value: float, draws: np.ndarray, level: float) -> Interval:
    low, high = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2])
    return Interval(float(value), float(low), float(high))


def two_level_interval(correct: np.ndarray, level: float = LEVEL, seed: int = 0,
                       resamples: int = RESAMPLES) -> Interval:
    """Mean accuracy of (seeds, reviews) correctness with a two-level (seeds, then reviews) percentile bootstrap.

    Each resample draws the seeds (rows) with replacement and the reviews (columns) with replacement and takes
    the mean of the drawn matrix, so the interval carries both seed-to-seed and review sampling variance.
    Seeds and reviews are crossed (every run sees every review) and no bootstrap of a crossed design is
    exact (McCullagh 2000). This one (Owen's 2007 "pigeonhole" bootstrap) errs two ways, in terms of the
    components of `VarianceComponents`: it counts the seed-by-review residual about 1 + 2(n - 1)/n times
    instead of once, which widens the interval (conservative), and with n seeds it sees only (n - 1)/n of the
    seed variance with normal-like tails where t tails with n - 1 degrees of freedom belong, which narrows it
    when seed variance dominates and seeds are few. With one seed it is a review-only interval.
    """
    matrix = _as_matrix(correct)
    (means,) = _two_level_means(np.random.default_rng(seed), [matrix], resamples)
    return _quantile_interval(float(matrix.mean()), means, level)


@dataclass(frozen=True)
class TwoLevelDifference:
    """Method minus reference accuracy on the same reviews, bootstrapped over seeds and reviews."""

    value: float
    ci95: Interval
    ci90: Interval
    p_value: float
    seeds_a: int
    seeds_b: int


def two_level_difference(a: np.ndarray, b: np.ndarray, seed: int = 0,
                         resamples: int = RESAMPLES) -> TwoLevelDifference:
    """Accuracy of method `a` minus reference `b`, each (seeds, reviews) on the same reviews, two-level bootstrap.

    Each resample draws the seeds of each method independently (they were trained independently) and one set
    of reviews used for both (paired), and records d* = mean(A*) - mean(B*). The 95% and 90% intervals are
    percentiles of d*. The p-value of "no difference" is the bootstrap p
    p = min(1, 2 * min(1 + #{d* <= 0}, 1 + #{d* >= 0}) / (resamples + 1)),
    the smallest two-sided level whose percentile interval reaches 0 (with the +1 correction, so it is never
    0), so it carries both seed and review variance and agrees with the intervals. Its resolution is
    2 / (resamples + 1). `seed` seeds the random numbers, so the result is deterministic. The biases of
    `two_level_interval` apply: conservative when the residual dominates the difference, somewhat liberal
    when the seed variance dominates and each method has only 2-3 seeds.
    """
    a, b = _as_matrix(a), _as_matrix(b)
    if a.shape[1] != b.shape[1]:
        raise ValueError("a paired comparison needs predictions on the same reviews")
    mean_a, mean_b = _two_level_means(np.random.default_rng(seed), [a, b], resamples)
    draws = mean_a - mean_b
    tail = min(np.sum(draws <= 0), np.sum(draws >= 0))
    p = min(1.0, 2 * (1 + tail) / (resamples + 1))
    value = float(a.mean() - b.mean())
    return TwoLevelDifference(value, _quantile_interval(value, draws, LEVEL),
                              _quantile_interval(value, draws, TOST_LEVEL), float(p), a.shape[0], b.shape[0])


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the order given (monotone in the raw p, capped at 1)."""
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p, kind="stable")
    scaled = p[order] * (len(p) - np.arange(len(p)))
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return adjusted.tolist()


def tost(interval90: Interval, margin: float) -> bool:
    """Two one-sided tests at 5%: True when the 90% interval of the difference lies strictly inside ±margin."""
    return -margin < interval90.low and interval90.high < margin


def verdict(difference: TwoLevelDifference, margin: float = 0.01, holm_p: float | None = None,
            alpha: float = 0.05) -> str:
    """A method's verdict against the reference by rules fixed in advance: equivalent, worse, better or inconclusive.

    equivalent: `tost(difference.ci90, margin)` (|true difference| < margin, two one-sided tests at 5%).
    worse / better: the 95% interval excludes 0 on that side and the Holm-adjusted p (over all methods
    compared with the reference; the raw p when `holm_p` is None, i.e. a single comparison) is below alpha.
    inconclusive: neither. Equivalence is checked first: a difference that is significant but surely smaller
    than the margin is, by the margin's definition, too small to matter, so it is called equivalent.
    """
    if tost(difference.ci90, margin):
        return "equivalent"
    p = difference.p_value if holm_p is None else holm_p
    if p < alpha and difference.ci95.high < 0:
        return "worse"
    if p < alpha and difference.ci95.low > 0:
        return "better"
    return "inconclusive"


def _standard_error(seed_var: float, review_var: float, residual_var: float, seeds: int, reviews: int) -> float:
    return float(np.sqrt(seed_var / seeds + review_var / reviews + residual_var / (seeds * reviews)))


@dataclass(frozen=True)
class VarianceComponents:
    """Seed, review and residual variance of per-review correctness, and the standard error they imply.

    Model: x_sj = mu + a_s + b_j + e_sj for seed s and review j, with var(a) = seed_var, var(b) = review_var,
    var(e) = residual_var. The mean of n seeds x m reviews then has variance
    seed_var / n + review_var / m + residual_var / (n m); `standard_error` is its root for the design observed,
    the uncertainty of the mean as an estimate for new seeds and new reviews alike.
    """

    seed_var: float
    review_var: float
    residual_var: float
    standard_error: float


def variance_components(correct: np.ndarray) -> VarianceComponents:
    """Seed, review and residual variance components of (seeds, reviews) correctness (two-way ANOVA moments).

    With n seeds, m reviews, seed means x_s., review means x_.j and grand mean x_..:
    MS_seed = m var(x_s.), MS_review = n var(x_.j) (both with ddof 1) and
    MS_resid = sum (x_sj - x_s. - x_.j + x_..)^2 / ((n - 1)(m - 1)). Their expectations give the
    method-of-moments estimates seed_var = max(0, (MS_seed - MS_resid) / m) (between-seed variance of the
    per-seed accuracies minus its review-sampling part), review_var = max(0, (MS_review - MS_resid) / n)
    and residual_var = MS_resid. Needs at least two seeds and two reviews.
    """
    x = _as_matrix(correct)
    n, m = x.shape
    if n < 2 or m < 2:
        raise ValueError("variance components need at least two seeds and two reviews")
    seed_means, review_means = x.mean(axis=1), x.mean(axis=0)
    residual = x - seed_means[:, None] - review_means[None, :] + x.mean()
    ms_resid = float(np.sum(residual ** 2) / ((n - 1) * (m - 1)))
    seed_var = max(0.0, (m * np.var(seed_means, ddof=1) - ms_resid) / m)
    review_var = max(0.0, (n * np.var(review_means, ddof=1) - ms_resid) / n)
    return VarianceComponents(float(seed_var), float(review_var), ms_resid,
                              _standard_error(seed_var, review_var, ms_resid, n, m))


def difference_components(a: np.ndarray, b: np.ndarray) -> VarianceComponents:
    """Variance components of the accuracy difference a - b of two (seeds, reviews) matrices on the same reviews.

    Seeds are independent between methods, so seed_var and residual_var are the sums of the two methods'.
    Reviews are shared, so the review part is that of the per-review difference: with d_j the difference of
    the seed-averaged correctness of review j, var(d_j) estimates review_var + res_a / n_a + res_b / n_b,
    giving review_var = max(0, var(d_j) - res_a / n_a - res_b / n_b); reviews both methods find hard cancel.
    """
    a, b = _as_matrix(a), _as_matrix(b)
    if a.shape[1] != b.shape[1]:
        raise ValueError("a paired comparison needs predictions on the same reviews")
    (n_a, m), n_b = a.shape, b.shape[0]
    ca, cb = variance_components(a), variance_components(b)
    per_review = a.mean(axis=0) - b.mean(axis=0)
    review_var = max(0.0, float(np.var(per_review, ddof=1)) - ca.residual_var / n_a - cb.residual_var / n_b)
    se = np.sqrt(ca.seed_var / n_a + cb.seed_var / n_b + review_var / m
                 + (ca.residual_var / n_a + cb.residual_var / n_b) / m)
    return VarianceComponents(ca.seed_var + cb.seed_var, review_var, ca.residual_var + cb.residual_var, float(se))


def detectable_difference(seed_var: float, review_var: float, seeds: int, reviews: int, alpha: float = 0.05,
                          power: float = 0.8, residual_var: float = 0.0) -> float:
    """Smallest true accuracy difference a two-sided test at `alpha` detects with `power` (normal approximation).

    The arguments are the variance components of the *difference* of two methods, each run with `seeds`
    seeds on the same `reviews` reviews: seed_var and residual_var summed over the two methods, review_var the
    paired review component (see `difference_components`). Returns (z_{1-alpha/2} + z_power) * SE with
    SE^2 = seed_var / seeds + review_var / reviews + residual_var / (seeds * reviews). Passing the sum of the
    two methods' own review components instead treats the reviews as unpaired, which is conservative when
    the methods find the same reviews hard (the usual case). This is the power of a test that knows the true
    standard error; `two_level_difference`, being conservative in the residual, has less power when the
    residual dominates.
    """
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    return float(z * _standard_error(seed_var, review_var, residual_var, seeds, reviews))


def detectable_difference_from(a: np.ndarray, b: np.ndarray, alpha: float = 0.05, power: float = 0.8,
                               seeds: int | None = None, reviews: int | None = None) -> float:
    """`detectable_difference` with the paired components estimated from two (seeds, reviews) matrices.

    The design defaults to the one observed (the smaller seed count of the two, all reviews); pass `seeds`
    or `reviews` to ask what another design would detect.
    """
    a, b = _as_matrix(a), _as_matrix(b)
    c = difference_components(a, b)
    return detectable_difference(c.seed_var, c.review_var, seeds or min(a.shape[0], b.shape[0]),
                                 reviews or a.shape[1], alpha, power, c.residual_var)
