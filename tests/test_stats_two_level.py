"""Two-level statistics against simulated studies whose truth is known: coverage, verdicts, Holm, power."""

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.stats import norm

from peft_imdb.stats import (Interval, TwoLevelDifference, detectable_difference, detectable_difference_from,
                             difference_components, holm, mean_interval, tost, two_level_difference,
                             two_level_interval, variance_components, verdict)


def runs(rng: np.random.Generator, accuracies: list[np.ndarray], reviews: int, shared: float) -> list[np.ndarray]:
    """(seeds, reviews) correctness per method; method k's seed s has true accuracy accuracies[k][s].

    Run s gets review j right when Phi(sqrt(shared) z_j + sqrt(1 - shared) e_sj) < accuracy_s. The review
    difficulty z_j is shared by every run of every method, so correctness is correlated across seeds and
    methods; Phi(...) is uniform, so a run's expected accuracy over reviews is exactly its accuracy_s and a
    method's population accuracy is the mean of the distribution its accuracies are drawn from.
    """
    z = np.sqrt(shared) * rng.standard_normal(reviews)
    return [norm.cdf(z + np.sqrt(1 - shared) * rng.standard_normal((len(p), reviews))) < np.asarray(p)[:, None]
            for p in accuracies]


def seed_accuracies(rng: np.random.Generator, mean: float, sd: float, seeds: int) -> np.ndarray:
    return np.clip(rng.normal(mean, sd, seeds), 0, 1)


def test_two_level_interval_covers_the_truth_that_a_review_only_interval_misses():
    # Seed sd 2 points, 5 seeds x 1000 reviews: the seed part of the variance exceeds the review part.
    rng, truth, studies = np.random.default_rng(1), 0.85, 150
    two_level = review_only = 0
    means, standard_errors = [], []
    for i in range(studies):
        (correct,) = runs(rng, [seed_accuracies(rng, truth, 0.02, 5)], 1000, shared=0.15)
        two_level += two_level_interval(correct, seed=i, resamples=400).contains(truth)
        review_only += mean_interval(correct.mean(axis=0), seed=i, resamples=400).contains(truth)
        means.append(correct.mean())
        standard_errors.append(variance_components(correct).standard_error)
    assert two_level / studies >= 0.90
    assert review_only / studies <= 0.80
    # The standard error the components imply is the spread of the mean across studies.
    assert np.median(standard_errors) == pytest.approx(np.std(means, ddof=1), rel=0.2)


def test_two_level_interval_of_identical_seeds_is_the_review_interval_and_is_deterministic():
    rng = np.random.default_rng(4)
    row = rng.random(3000) < 0.8
    interval = two_level_interval(np.tile(row, (4, 1)), seed=3)
    assert interval == two_level_interval(np.tile(row, (4, 1)), seed=3)
    assert interval.value == pytest.approx(row.mean())
    half_width = 1.96 * np.sqrt(row.mean() * (1 - row.mean()) / row.size)
    assert (interval.high - interval.low) / 2 == pytest.approx(half_width, rel=0.15)


def test_two_level_difference_is_deterministic_and_refuses_different_reviews():
    rng = np.random.default_rng(5)
    a, b = runs(rng, [seed_accuracies(rng, 0.85, 0.01, 3), seed_accuracies(rng, 0.84, 0.01, 4)], 500, 0.5)
    first, second = two_level_difference(a, b, seed=7, resamples=300), two_level_difference(a, b, seed=7,
                                                                                            resamples=300)
    assert first == second and (first.seeds_a, first.seeds_b) == (3, 4)
    assert first.value == pytest.approx(a.mean() - b.mean())
    assert first.ci95.low <= first.ci90.low <= first.value <= first.ci90.high <= first.ci95.high
    assert two_level_difference(a, a, resamples=300).p_value == 1.0
    with pytest.raises(ValueError):
        two_level_difference(a, b[:, :400])


def test_verdicts_on_studies_with_known_answers():
    rng = np.random.default_rng(6)
    # Same true accuracy, 10 seeds x 20000 reviews: equivalent within one point.
    a, b = runs(rng, [seed_accuracies(rng, 0.85, 0.003, 10), seed_accuracies(rng, 0.85, 0.003, 10)], 20000, 0.5)
    same = two_level_difference(a, b, resamples=1000)
    assert verdict(same, margin=0.01) == "equivalent"
    # A 5-point gap, 5 seeds x 2000 reviews, among three methods compared with the reference.
    reference, gap, near = runs(rng, [seed_accuracies(rng, m, 0.005, 5) for m in (0.85, 0.80, 0.85)], 2000, 0.5)
    worse, other = two_level_difference(gap, reference), two_level_difference(near, reference)
    adjusted = holm([worse.p_value, other.p_value, 0.5])
    assert adjusted[0] < 0.01
    assert verdict(worse, margin=0.01, holm_p=adjusted[0]) == "worse"
    assert verdict(two_level_difference(reference, gap), margin=0.01, holm_p=adjusted[0]) == "better"
    # A 0.5-point gap seen with 2 seeds x 100 reviews: no claim either way.
    tiny_a, tiny_b = runs(rng, [seed_accuracies(rng, m, 0.01, 2) for m in (0.845, 0.85)], 100, 0.5)
    assert verdict(two_level_difference(tiny_a, tiny_b), margin=0.01) == "inconclusive"


def test_verdict_rules_on_hand_built_differences():
    def diff(low95, low90, high90, high95, p):
        value = (low90 + high90) / 2
        return TwoLevelDifference(value, Interval(value, low95, high95), Interval(value, low90, high90), p, 3, 3)

    small_but_sure = diff(0.001, 0.0015, 0.0045, 0.005, p=0.001)
    assert verdict(small_but_sure, margin=0.01) == "equivalent"  # equivalence takes precedence
    assert verdict(small_but_sure, margin=0.002) == "better"
    assert verdict(small_but_sure, margin=0.002, holm_p=0.2) == "inconclusive"  # Holm p decides
    assert verdict(diff(-0.03, -0.028, -0.012, -0.01, p=0.001), margin=0.01) == "worse"
    assert verdict(diff(-0.03, -0.028, 0.005, 0.007, p=0.2), margin=0.01) == "inconclusive"
    assert tost(Interval(0, -0.009, 0.009), 0.01) and not tost(Interval(0, -0.011, 0.009), 0.01)
    assert not tost(Interval(0, -0.01, 0.005), 0.01)  # the margin itself is not inside


def test_holm_against_hand_worked_examples():
    # Sorted 0.01, 0.03, 0.04 times 3, 2, 1 = 0.03, 0.06, 0.04 -> running max 0.03, 0.06, 0.06.
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.01, 0.02, 0.03, 0.04]) == pytest.approx([0.04, 0.06, 0.06, 0.06])
    assert holm([0.5, 0.6]) == [1.0, 1.0]
    assert holm([0.02]) == [0.02] and holm([]) == []


def test_variance_components_recover_a_known_seed_variance():
    rng = np.random.default_rng(7)
    accuracies = seed_accuracies(rng, 0.85, 0.02, 100)
    (correct,) = runs(rng, [accuracies], 4000, shared=0.5)
    components = variance_components(correct)
    assert components.seed_var == pytest.approx(np.var(accuracies, ddof=1), rel=0.2)
    # Review effect: P(correct | z) = Phi((Phi^-1(p) - sqrt(r) z) / sqrt(1 - r)); its variance over z, and the rest
    # of p (1 - p), are the true review and residual components.
    given_z = lambda z: norm.cdf((norm.ppf(0.85) - np.sqrt(0.5) * z) / np.sqrt(0.5))
    review_var = quad(lambda z: given_z(z) ** 2 * norm.pdf(z), -10, 10)[0] - 0.85 ** 2
    assert components.review_var == pytest.approx(review_var, rel=0.1)
    assert components.residual_var == pytest.approx(0.85 * 0.15 - review_var, rel=0.05)
    # No seed effect and no review difficulty: everything is residual, p (1 - p).
    (iid,) = runs(rng, [np.full(20, 0.8)], 4000, shared=0.0)
    flat = variance_components(iid)
    assert flat.residual_var == pytest.approx(0.16, rel=0.05)
    assert flat.seed_var < 2e-5 and flat.review_var < 2e-3


def test_variance_components_of_identical_seeds_have_no_seed_part():
    row = np.random.default_rng(8).random(1000) < 0.85
    components = variance_components(np.tile(row, (5, 1)))
    assert components.seed_var == pytest.approx(0, abs=1e-12) and components.residual_var == pytest.approx(0, abs=1e-12)
    assert components.standard_error == pytest.approx(np.std(row, ddof=1) / np.sqrt(row.size))
    with pytest.raises(ValueError):
        variance_components(row)


def test_detectable_difference_shrinks_with_the_design_and_is_about_a_point():
    assert detectable_difference(0, 1, seeds=1, reviews=1) == pytest.approx(norm.ppf(0.975) + norm.ppf(0.8))
    rng = np.random.default_rng(9)
    a, b = runs(rng, [seed_accuracies(rng, 0.85, 0.01, 3), seed_accuracies(rng, 0.85, 0.01, 3)], 2000, 0.5)
    observed = detectable_difference_from(a, b)
    assert detectable_difference_from(a, b, seeds=6) < observed
    assert detectable_difference_from(a, b, reviews=8000) < observed
    # Pairing the reviews cancels their shared difficulty; treating them as unpaired cannot detect less.
    paired = difference_components(a, b)
    unpaired = variance_components(a).review_var + variance_components(b).review_var
    assert paired.review_var < unpaired / 10
    for seed_sd in (0.003, 0.015):
        d = detectable_difference(2 * seed_sd ** 2, paired.review_var, 3, 2000, residual_var=paired.residual_var)
        assert 0.005 < d < 0.05
        assert d < detectable_difference(2 * seed_sd ** 2, unpaired, 3, 2000, residual_var=paired.residual_var)


def test_a_difference_of_the_detectable_size_is_detected_about_80_percent_of_the_time():
    # 3 seeds x 2000 reviews, seed sd 1.5 points. Where the residual dominates instead, the two-level test is
    # conservative (its power falls below the nominal 80%); where seeds dominate it is slightly liberal.
    rng, seed_sd, designs = np.random.default_rng(10), 0.015, 80
    # Review and residual parts from a large pilot (no seed effect); the seed part is known.
    pilot = difference_components(*runs(rng, [np.full(3, 0.85), np.full(3, 0.85)], 40000, 0.5))
    gap = detectable_difference(2 * seed_sd ** 2, pilot.review_var, 3, 2000, residual_var=pilot.residual_var)
    detected = 0
    for i in range(designs):
        a, b = runs(rng, [seed_accuracies(rng, 0.85 - gap, seed_sd, 3), seed_accuracies(rng, 0.85, seed_sd, 3)],
                    2000, 0.5)
        detected += two_level_difference(a, b, seed=i, resamples=400).p_value < 0.05
    assert 0.65 <= detected / designs <= 0.95
