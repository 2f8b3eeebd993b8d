"""checks.rank_tests against scipy, which computes the same tests from expanded rows.

Cramér-von Mises is compared with scipy only on tie-free data (every occupied bucket holds one
pooled value): with ties its CDF-form statistic deliberately differs from scipy's average-rank
formula, and there it is compared with a naive reference written here (:func:`_naive_cvm`)."""

from __future__ import annotations

import ast
import dataclasses
import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy import stats

from checks import rank_tests
from checks.rank_tests import TestResult, anderson_darling, cramer_von_mises, z_test_proportions

# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _rows(positions, ref, cur):
    positions = np.asarray(positions, dtype=float)
    return np.repeat(positions, ref), np.repeat(positions, cur)


def _scipy_ad(positions, ref, cur):
    x, y = _rows(positions, ref, cur)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "p-value capped/floored"
        return stats.anderson_ksamp([x, y], variant="midrank")


def _scipy_cvm(positions, ref, cur):
    x, y = _rows(positions, ref, cur)
    return stats.cramervonmises_2samp(x, y, method="asymptotic")


def _assert_ad_matches(positions, ref, cur):
    ours = anderson_darling(positions, ref, cur)
    theirs = _scipy_ad(positions, ref, cur)
    np.testing.assert_allclose(ours.statistic, theirs.statistic, rtol=1e-9, atol=1e-12)
    if ours.details["p_value_capped"]:
        assert ours.p_value == theirs.pvalue  # a cap is a cap: exactly 0.25 or 0.001
        assert ours.p_value in (0.25, 0.001)
    else:
        np.testing.assert_allclose(ours.p_value, theirs.pvalue, rtol=1e-11)
        assert 0.001 <= ours.p_value <= 0.25 + 1e-9
    return ours, theirs


def _naive_cvm(positions, ref, cur):
    """Anderson's T = n m / N^2 * sum over the pooled values of (F_n - G_m)^2, from expanded rows
    in O(N): both empirical CDFs evaluated at every pooled value (ties count up to and including
    the value: side="right")."""
    x, y = _rows(positions, ref, cur)
    x, y = np.sort(x), np.sort(y)
    n, m = x.size, y.size
    pooled = np.concatenate([x, y])
    f = np.searchsorted(x, pooled, side="right") / n
    g = np.searchsorted(y, pooled, side="right") / m
    return n * m / (n + m) ** 2 * float(np.sum((f - g) ** 2))


def _assert_cvm_matches_reference(positions, ref, cur):
    """Any data, ties allowed: statistic equal to the naive reference, p-value a probability."""
    ours = cramer_von_mises(positions, ref, cur)
    np.testing.assert_allclose(
        ours.statistic, _naive_cvm(positions, ref, cur), rtol=1e-9, atol=1e-12
    )
    assert 0.0 <= ours.p_value <= 1.0
    assert ours.details["n_reference"] == sum(ref) and ours.details["n_current"] == sum(cur)
    return ours


def _assert_tie_free(ref, cur):
    pooled = np.asarray(ref) + np.asarray(cur)
    assert pooled.max() == 1, "not tie-free: a bucket holds more than one pooled value"


def _tie_free(ref_values, cur_values):
    """Distinct values as a profile: positions are the sorted pooled values, counts 0/1."""
    pooled = np.concatenate([ref_values, cur_values])
    order = np.argsort(pooled, kind="stable")
    positions = pooled[order]
    assert np.all(np.diff(positions) > 0), "values are not distinct"
    from_ref = (np.arange(pooled.size) < len(ref_values))[order]
    return positions, from_ref.astype(int), (~from_ref).astype(int)


def _assert_cvm_matches_scipy(positions, ref, cur):
    """Tie-free data only: statistic and p-value equal to scipy's (and to the naive reference)."""
    _assert_tie_free(ref, cur)
    ours = _assert_cvm_matches_reference(positions, ref, cur)
    theirs = _scipy_cvm(positions, ref, cur)
    np.testing.assert_allclose(ours.statistic, theirs.statistic, rtol=1e-9, atol=1e-12)
    if ours.details["normalized_statistic"] <= 50:
        assert abs(ours.p_value - theirs.pvalue) <= 1e-6
    else:
        # scipy stops its series at terms below 1e-7, which leaves 1 - V(tn) at ~1e-8..1e-5 for
        # huge tn; the series summed to double precision gives 0 there
        assert ours.p_value == 0.0
        assert theirs.pvalue < 1e-4
    return ours, theirs


def _assert_p_monotone_in_statistic(results):
    """Results for one pair of sample sizes: a larger statistic never has a larger p-value (up to
    1e-14: p = 1 - V(tn) is formed by subtraction, so p-values below that are rounding noise)."""
    assert len({(r.details["n_reference"], r.details["n_current"]) for r in results}) == 1
    ordered = sorted(results, key=lambda r: r.statistic)
    for lo, hi in zip(ordered, ordered[1:]):
        assert 0.0 <= hi.p_value <= 1.0
        if hi.statistic > lo.statistic:
            assert hi.p_value <= lo.p_value + 1e-14
        else:
            assert hi.p_value == lo.p_value


def _bucketed(ref_values, cur_values, bins):
    """Driftline-style profile: quantile edges of the reference, plus outer edges wide enough for
    both samples; positions are the bucket midpoints (the values "rounded" to them)."""
    inner = np.quantile(ref_values, np.linspace(0, 1, bins + 1)[1:-1])
    low = min(ref_values.min(), cur_values.min()) - 1e-9
    high = max(ref_values.max(), cur_values.max()) + 1e-9
    edges = np.unique(np.concatenate([[low], inner, [high]]))
    ref, _ = np.histogram(ref_values, edges)
    cur, _ = np.histogram(cur_values, edges)
    return (edges[:-1] + edges[1:]) / 2, ref, cur


# --------------------------------------------------------------------------------------------
# agreement with scipy on named cases
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seed", "shift", "scale", "n_ref", "n_cur", "bins"),
    [
        (0, 0.0, 1.0, 2000, 1500, 50),
        (1, 0.05, 1.0, 3000, 3000, 50),
        (2, 0.3, 1.0, 1000, 4000, 20),
        (3, 0.0, 1.4, 2500, 800, 30),
        (4, 1.5, 0.5, 500, 600, 10),
        (5, 0.1, 1.0, 400, 300, 5),
    ],
)
def test_bucketed_continuous_data_matches_scipy(seed, shift, scale, n_ref, n_cur, bins):
    rng = np.random.default_rng(seed)
    ref_values, cur_values = rng.normal(size=n_ref), rng.normal(shift, scale, size=n_cur)
    positions, ref, cur = _bucketed(ref_values, cur_values, bins)
    _assert_ad_matches(positions, ref, cur)
    bucketed = _assert_cvm_matches_reference(positions, ref, cur)
    # the unbucketed values are tie-free: there CvM is scipy's
    raw, _ = _assert_cvm_matches_scipy(*_tie_free(ref_values, cur_values))
    assert raw.details["buckets_used"] == n_ref + n_cur
    assert bucketed.details["buckets_used"] <= bins


def test_heavy_ties_match_scipy():
    positions = [1.0, 2.0, 3.0]
    for ref, cur in [
        ([4000, 3000, 3000], [3500, 3300, 3200]),
        ([5000, 10, 5000], [4900, 200, 4900]),
        ([1, 9000, 1], [2, 8000, 3]),
    ]:
        _assert_ad_matches(positions, ref, cur)
        _assert_cvm_matches_reference(positions, ref, cur)


def test_very_unequal_sizes_match_scipy():
    rng = np.random.default_rng(7)
    positions = np.linspace(-3, 3, 25)
    ref = rng.multinomial(100_000, np.full(25, 1 / 25))
    cur = rng.multinomial(50, np.full(25, 1 / 25))
    ad, _ = _assert_ad_matches(positions, ref, cur)
    cvm = _assert_cvm_matches_reference(positions, ref, cur)
    _assert_ad_matches(positions, cur, ref)  # and the other way round
    swapped = _assert_cvm_matches_reference(positions, cur, ref)
    # T and its null moments are symmetric in the two samples
    assert swapped.statistic == pytest.approx(cvm.statistic, rel=1e-12)
    assert swapped.p_value == pytest.approx(cvm.p_value, rel=1e-12)
    # both samples come from one distribution: neither test calls it drift (scipy's CvM, with its
    # average-rank tie terms, would: see test_cvm_identical_shares_with_unequal_sizes_give_no_alarm)
    assert ad.p_value == 0.25
    assert cvm.p_value > 0.01


def test_identical_samples():
    positions = np.arange(6.0)
    counts = [5, 40, 100, 100, 40, 5]
    ad, _ = _assert_ad_matches(positions, counts, counts)
    assert ad.p_value == 0.25
    assert ad.details["p_value_capped"] and ad.details["p_value_bound"] == "upper"
    cvm = _assert_cvm_matches_reference(positions, counts, counts)
    assert cvm.statistic == 0.0  # exact integer arithmetic: no rounding residue
    assert cvm.p_value == 1.0


def test_disjoint_samples():
    positions = np.arange(8.0)
    ref = [30, 30, 30, 30, 0, 0, 0, 0]
    cur = [0, 0, 0, 0, 25, 25, 25, 25]
    ad, _ = _assert_ad_matches(positions, ref, cur)
    assert ad.p_value == 0.001
    assert ad.details["p_value_capped"] and ad.details["p_value_bound"] == "lower"
    cvm = _assert_cvm_matches_reference(positions, ref, cur)
    assert cvm.p_value < 1e-6
    # disjoint without ties: every pooled value its own bucket, and CvM is scipy's
    positions = np.arange(10.0)
    ref, cur = [1, 1, 1, 1, 1, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]
    ours, _ = _assert_cvm_matches_scipy(positions, ref, cur)
    # F - G is 0.2, 0.4, ..., 1.0, 0.8, ..., 0.2, 0.0: sum of squares 3.4, times 5 * 5 / 10^2
    assert ours.statistic == pytest.approx(0.85, rel=1e-12)


def test_buckets_empty_in_one_sample_match_scipy():
    positions = np.linspace(0, 1, 7)
    ref = [10, 0, 30, 0, 25, 5, 0]
    cur = [0, 12, 28, 3, 0, 7, 9]
    _assert_ad_matches(positions, ref, cur)
    _assert_cvm_matches_reference(positions, ref, cur)


def test_buckets_empty_in_both_are_dropped():
    positions = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    ref = [0, 10, 0, 20, 15, 0]
    cur = [0, 14, 0, 12, 25, 0]
    keep = [1, 3, 4]
    for test in (anderson_darling, cramer_von_mises):
        full = test(positions, ref, cur)
        dropped = test(positions[keep], [ref[i] for i in keep], [cur[i] for i in keep])
        assert full.statistic == dropped.statistic
        assert full.p_value == dropped.p_value
        assert full.details["buckets_used"] == 3
    _assert_ad_matches(positions, ref, cur)
    _assert_cvm_matches_reference(positions, ref, cur)
    # tie-free, with buckets empty in both samples: CvM is scipy's
    positions = np.arange(9.0)
    ref = [0, 1, 0, 1, 0, 0, 1, 1, 0]
    cur = [0, 0, 1, 0, 0, 1, 0, 0, 1]
    ours, _ = _assert_cvm_matches_scipy(positions, ref, cur)
    assert ours.details["buckets_used"] == 7


def test_only_order_of_positions_matters():
    ref, cur = [10, 20, 30, 5], [12, 15, 25, 30]
    a = anderson_darling([0.0, 1.0, 2.0, 3.0], ref, cur)
    b = anderson_darling([-100.0, 0.5, 0.51, 1e6], ref, cur)
    assert (a.statistic, a.p_value) == (b.statistic, b.p_value)
    c = cramer_von_mises([0.0, 1.0, 2.0, 3.0], ref, cur)
    d = cramer_von_mises([-100.0, 0.5, 0.51, 1e6], ref, cur)
    assert (c.statistic, c.p_value) == (d.statistic, d.p_value)


def test_ad_p_value_between_caps_is_interpolated():
    # 30:40:30 against 20:40:40 sits between the 5% and 2.5% critical values
    ours, _ = _assert_ad_matches([0.0, 1.0, 2.0], [30, 40, 30], [20, 40, 40])
    assert not ours.details["p_value_capped"]
    assert ours.details["p_value_bound"] == "none"
    assert 0.025 < ours.p_value < 0.05


def test_ad_matches_scipy_default_midrank_call():
    positions, ref, cur = [0.0, 1.0, 2.0, 3.0], [10, 20, 30, 5], [12, 15, 25, 30]
    x, y = _rows(positions, ref, cur)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        default = stats.anderson_ksamp([x, y])  # midrank=True is scipy's default
    ours = anderson_darling(positions, ref, cur)
    np.testing.assert_allclose(ours.statistic, default.statistic, rtol=1e-12)
    np.testing.assert_allclose(ours.p_value, default.pvalue, rtol=1e-12)


def test_ad_raw_a2_relates_to_statistic():
    ours, theirs = _assert_ad_matches([0.0, 1.0, 2.0], [30, 40, 30], [22, 40, 38])
    # the statistic is (A2akN - (k - 1)) / sigma with sigma > 0, so it is on A2's side of 1
    assert (ours.details["a2"] - 1) * ours.statistic > 0
    n = 200
    # sigma^2 computed as scipy does it, by the O(N) sums, for this small N
    hs = np.cumsum(1.0 / np.arange(n - 1, 1, -1))
    h, g = hs[-1] + 1, (hs / np.arange(2, n)).sum()
    big_h = 1 / 100 + 1 / 100
    a = (4 * g - 6) + (10 - 6 * g) * big_h
    b = (2 * g - 4) * 4 + 16 * h + (2 * g - 14 * h - 4) * big_h - 8 * h + 4 * g - 6
    c = (6 * h + 2 * g - 2) * 4 + (4 * h - 4 * g + 6) * 2 + (2 * h - 6) * big_h + 4 * h
    d = (2 * h + 6) * 4 - 8 * h
    sigma2 = (a * n**3 + b * n**2 + c * n + d) / ((n - 1) * (n - 2) * (n - 3))
    expected = (ours.details["a2"] - 1) / math.sqrt(sigma2)
    np.testing.assert_allclose(ours.statistic, expected, rtol=1e-12)
    assert theirs.statistic == pytest.approx(ours.statistic, rel=1e-12)


def test_binary_column():
    positions = [0.0, 1.0]
    for ref, cur in [([700, 300], [650, 350]), ([50, 50], [30, 70]), ([990, 10], [10, 990])]:
        _assert_ad_matches(positions, ref, cur)
        _assert_cvm_matches_reference(positions, ref, cur)
        z = z_test_proportions(ref, cur)
        chi2, p, _, _ = stats.chi2_contingency(np.array([ref, cur]), correction=False)
        np.testing.assert_allclose(z.statistic**2, chi2, rtol=1e-10)
        np.testing.assert_allclose(z.p_value, p, rtol=1e-9, atol=1e-300)
        assert z.details["bonferroni_factor"] == 1
        assert z.details["buckets"] == 2


# --------------------------------------------------------------------------------------------
# property tests against scipy
# --------------------------------------------------------------------------------------------


@st.composite
def _count_vectors(draw, max_count=15, max_k=8):
    k = draw(st.integers(2, max_k))
    gaps = draw(st.lists(st.floats(0.01, 10.0), min_size=k, max_size=k))
    positions = np.cumsum(gaps) - 5.0
    ref = draw(st.lists(st.integers(0, max_count), min_size=k, max_size=k))
    cur = draw(st.lists(st.integers(0, max_count), min_size=k, max_size=k))
    assume(len(np.unique(positions)) == k)
    assume(sum(ref) >= 2 and sum(cur) >= 2)  # scipy's CvM needs two values per sample
    assume(sum(1 for a, b in zip(ref, cur) if a + b) >= 2)  # scipy's AD needs two distinct values
    return positions, ref, cur


@st.composite
def _tie_free_vectors(draw, max_k=60):
    """Counts 0/1 with at most one pooled value per bucket: each bucket is empty, one reference
    value or one current value."""
    k = draw(st.integers(4, max_k))
    gaps = draw(st.lists(st.floats(0.01, 10.0), min_size=k, max_size=k))
    positions = np.cumsum(gaps) - 5.0
    owner = draw(st.lists(st.sampled_from([0, 1, 2]), min_size=k, max_size=k))
    ref = [int(o == 1) for o in owner]
    cur = [int(o == 2) for o in owner]
    assume(len(np.unique(positions)) == k)
    assume(sum(ref) >= 2 and sum(cur) >= 2)  # scipy's CvM needs two values per sample
    return positions, ref, cur


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(_count_vectors())
def test_property_small_counts_match_scipy(case):
    positions, ref, cur = case
    _assert_ad_matches(positions, ref, cur)
    _assert_cvm_matches_reference(positions, ref, cur)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(_count_vectors(max_count=3000, max_k=6))
def test_property_larger_counts_match_scipy(case):
    positions, ref, cur = case
    _assert_ad_matches(positions, ref, cur)
    _assert_cvm_matches_reference(positions, ref, cur)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(_tie_free_vectors())
def test_property_tie_free_cvm_matches_scipy(case):
    positions, ref, cur = case
    ours, theirs = _assert_cvm_matches_scipy(positions, ref, cur)
    # the reference itself agrees with scipy where there are no ties
    np.testing.assert_allclose(
        _naive_cvm(positions, ref, cur), theirs.statistic, rtol=1e-9, atol=1e-12
    )
    _assert_ad_matches(positions, ref, cur)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(0, 2**32 - 1),
    st.integers(2, 3000),
    st.integers(2, 3000),
    st.floats(-1.0, 1.0),
    st.floats(0.5, 2.0),
)
def test_property_tie_free_continuous_cvm_matches_scipy(seed, n_ref, n_cur, shift, scale):
    rng = np.random.default_rng(seed)
    ref_values, cur_values = rng.normal(size=n_ref), rng.normal(shift, scale, size=n_cur)
    assume(np.unique(np.concatenate([ref_values, cur_values])).size == n_ref + n_cur)
    _assert_cvm_matches_scipy(*_tie_free(ref_values, cur_values))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(_count_vectors(max_count=400), st.randoms(use_true_random=False))
def test_property_cvm_p_value_monotone_in_statistic(case, random):
    # the same counts rearranged over the buckets keep both sample sizes, so the p-values of the
    # rearrangements are comparable: the larger T, the smaller (or equal) p
    positions, ref, cur = case
    results = [_assert_cvm_matches_reference(positions, ref, cur)]
    for _ in range(6):
        r, c = list(ref), list(cur)
        random.shuffle(r)
        random.shuffle(c)
        if sum(1 for a, b in zip(r, c) if a + b) >= 2:
            results.append(_assert_cvm_matches_reference(positions, r, c))
    _assert_p_monotone_in_statistic(results)


@settings(max_examples=150, deadline=None)
@given(
    st.integers(2, 8).flatmap(
        lambda k: st.tuples(
            st.lists(st.integers(0, 200), min_size=k, max_size=k),
            st.lists(st.integers(0, 200), min_size=k, max_size=k),
        )
    )
)
def test_property_z_test(counts):
    ref, cur = counts
    assume(sum(ref) > 0 and sum(cur) > 0)
    res = z_test_proportions(ref, cur)
    n_ref, n_cur = sum(ref), sum(cur)
    changes = [abs(c / n_cur - r / n_ref) for r, c in zip(ref, cur)]
    assert changes[res.details["bucket"]] == pytest.approx(max(changes), abs=1e-15)
    occupied = sum(1 for r, c in zip(ref, cur) if r + c)
    assert res.details["buckets"] == occupied
    b = res.details["bucket"]
    table = np.array([[ref[b], n_ref - ref[b]], [cur[b], n_cur - cur[b]]])
    if table.sum(axis=0).min() > 0:
        chi2, p, _, _ = stats.chi2_contingency(table, correction=False)
        np.testing.assert_allclose(res.statistic**2, chi2, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(res.p_value, min(1.0, max(occupied - 1, 1) * p), rtol=1e-9)
    else:
        assert res.statistic == 0.0 and res.p_value == 1.0
    assert 0.0 <= res.p_value <= 1.0


# --------------------------------------------------------------------------------------------
# Cramér-von Mises specifics
# --------------------------------------------------------------------------------------------


def test_cvm_limit_cdf_known_quantiles():
    # Anderson & Darling (1952): upper 10%, 5%, 1% points of the limiting W^2 distribution
    for x, upper in [(0.34730, 0.10), (0.46136, 0.05), (0.74346, 0.01)]:
        assert 1 - rank_tests._cvm_limit_cdf(x) == pytest.approx(upper, abs=2e-5)
    assert rank_tests._cvm_limit_cdf(0.0) == 0.0
    assert rank_tests._cvm_limit_cdf(1e-3) < 1e-30
    assert rank_tests._cvm_limit_cdf(60.0) == 1.0
    grid = np.linspace(0.01, 3.0, 60)
    values = [rank_tests._cvm_limit_cdf(x) for x in grid]
    assert np.all(np.diff(values) > 0)


def _rank_formula_cvm(positions, ref, cur):
    """scipy's average-rank formula for T (Anderson 1962, eq. 9), from expanded rows."""
    x, y = _rows(positions, ref, cur)
    ranks = stats.rankdata(np.concatenate([np.sort(x), np.sort(y)]))
    n, m = len(x), len(y)
    u = n * np.sum((ranks[:n] - np.arange(1, n + 1)) ** 2) + m * np.sum(
        (ranks[n:] - np.arange(1, m + 1)) ** 2
    )
    return u / (n * m * (n + m)) - (4 * m * n - 1) / (6 * (m + n))


def test_cvm_statistic_for_single_value_sample():
    # scipy returns NaN for a one-value sample; the statistic is still defined (Anderson 1962)
    positions, ref, cur = [0.0, 1.0, 2.0], [0, 1, 0], [4, 3, 5]
    x, y = _rows(positions, ref, cur)
    res = _assert_cvm_matches_reference(positions, ref, cur)
    # F - G after each bucket (4, 4, 5 pooled values): -4/12, 1 - 7/12, 0, so
    # T = 1 * 12 / 13^2 * (4 * 1/9 + 4 * 25/144) = 41/507
    assert res.statistic == pytest.approx(41 / 507, rel=1e-12)
    assert res.p_value == 1.0
    assert "single value" in res.details["reason"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SmallSampleWarning
        assert math.isnan(stats.cramervonmises_2samp(x, y, method="asymptotic").statistic)
    # tie-free, the rank formula scipy would use is the same statistic
    positions, ref, cur = np.arange(6.0), [0, 0, 1, 0, 0, 0], [1, 1, 0, 1, 1, 1]
    res = _assert_cvm_matches_reference(positions, ref, cur)
    assert res.statistic == pytest.approx(_rank_formula_cvm(positions, ref, cur), rel=1e-12)
    assert res.p_value == 1.0


def test_cvm_differs_from_scipy_only_with_ties():
    # with ties (3 buckets) the CDF form is not scipy's (nor the rank formula scipy uses)
    positions, ref, cur = [0.0, 1.0, 2.0], [3, 1, 2], [1, 2, 2]
    tied = _assert_cvm_matches_reference(positions, ref, cur)
    assert abs(tied.statistic - _scipy_cvm(positions, ref, cur).statistic) > 1e-3
    assert tied.statistic != pytest.approx(_rank_formula_cvm(positions, ref, cur), abs=1e-3)
    # the same values with each bucket spread to distinct positions (its reference values first):
    # no ties, and the naive reference, the rank formula, scipy and the module agree
    spread = np.arange(11.0)
    ref01 = [1, 1, 1, 0, 1, 0, 0, 1, 1, 0, 0]
    cur01 = [0, 0, 0, 1, 0, 1, 1, 0, 0, 1, 1]
    ours, theirs = _assert_cvm_matches_scipy(spread, ref01, cur01)
    assert ours.statistic == pytest.approx(_rank_formula_cvm(spread, ref01, cur01), rel=1e-12)


def test_cvm_identical_shares_with_unequal_sizes_give_no_alarm():
    """Identical bucket shares at unequal sizes (every Driftline window): the CDF form gives
    T = 0, where scipy's average-rank tie terms give T ~ 8249 and a p-value near 0."""
    positions = [0.0, 1.0, 2.0]
    ours = _assert_cvm_matches_reference(positions, [10, 20, 30], [1000, 2000, 3000])
    assert ours.statistic == pytest.approx(0.0, abs=1e-12)
    assert ours.p_value > 0.5
    assert _scipy_cvm(positions, [10, 20, 30], [1000, 2000, 3000]).statistic > 8000
    # either way round, and with equal sizes
    swapped = _assert_cvm_matches_reference(positions, [1000, 2000, 3000], [10, 20, 30])
    assert swapped.statistic == pytest.approx(0.0, abs=1e-12) and swapped.p_value > 0.5
    assert cramer_von_mises(positions, [10, 20, 30], [10, 20, 30]).statistic == 0.0
    # AD's midrank version agrees
    assert anderson_darling(positions, [10, 20, 30], [1000, 2000, 3000]).p_value == 0.25


def test_cvm_small_window_against_huge_reference():
    # 50 vs 100,000 draws into 25 quantile buckets of the reference
    rng = np.random.default_rng(0)
    ref_values = rng.normal(size=100_000)
    cur_values = rng.normal(size=50)
    same = _assert_cvm_matches_reference(*_bucketed(ref_values, cur_values, 25))
    assert same.p_value > 0.01
    # a real shift is still caught at these sizes. At 50 values a 0.5 std shift gives p < 1e-3
    # in only about half of the seeds (CvM's power there), so 1 std at 50 values and 0.5 std at
    # 200 values, both p < 1e-3 for every one of 300 seeds tried
    shifted = _assert_cvm_matches_reference(*_bucketed(ref_values, cur_values + 1.0, 25))
    assert shifted.p_value < 1e-3
    more = rng.normal(0.5, 1.0, size=200)
    shifted = _assert_cvm_matches_reference(*_bucketed(ref_values, more, 25))
    assert shifted.p_value < 1e-3


def test_cvm_p_value_monotone_in_statistic_at_fixed_sizes():
    # many windows of one size against one reference, drifting by different amounts
    rng = np.random.default_rng(11)
    positions = np.linspace(-3, 3, 15)
    base = np.exp(-(positions**2) / 2)
    ref = rng.multinomial(5000, base / base.sum())
    results = []
    for shift in np.linspace(0.0, 1.0, 30):
        probs = np.exp(-((positions - shift) ** 2) / 2)
        cur = rng.multinomial(400, probs / probs.sum())
        results.append(_assert_cvm_matches_reference(positions, ref, cur))
    _assert_p_monotone_in_statistic(results)
    stats_ = sorted(r.statistic for r in results)
    p_values = sorted(r.p_value for r in results)
    assert p_values[0] < 1e-6 < 0.05 < p_values[-1]  # the range covers both ends
    assert stats_[0] < stats_[-1]


# --------------------------------------------------------------------------------------------
# degenerate cases (documented deviations from scipy)
# --------------------------------------------------------------------------------------------


def test_single_occupied_bucket():
    positions, ref, cur = [0.0, 1.0, 2.0], [0, 7, 0], [0, 300, 0]
    x, y = _rows(positions, ref, cur)
    with pytest.raises(ValueError):  # scipy needs two distinct values
        stats.anderson_ksamp([x, y], variant="midrank")
    for test in (anderson_darling, cramer_von_mises):
        res = test(positions, ref, cur)
        assert (res.statistic, res.p_value) == (0.0, 1.0)
        assert "single bucket" in res.details["reason"]
        assert res.details["buckets_used"] == 1
    z = z_test_proportions(ref, cur)
    assert (z.statistic, z.p_value) == (0.0, 1.0)
    assert z.details["buckets"] == 1


def test_ad_fewer_than_four_values():
    res = anderson_darling([0.0, 1.0], [2, 0], [0, 1])
    assert (res.statistic, res.p_value) == (0.0, 1.0)
    assert "fewer than 4" in res.details["reason"]
    # N = 4 is the smallest size with a null variance; it agrees with scipy
    _assert_ad_matches([0.0, 1.0], [2, 0], [1, 1])


# --------------------------------------------------------------------------------------------
# O(k): counts standing for 10^8 rows are never expanded
# --------------------------------------------------------------------------------------------


def test_huge_counts_are_not_expanded():
    positions = [0.0, 1.0, 2.0, 3.0]
    same = [10_000_000, 15_000_000, 15_000_000, 10_000_000]  # 5 * 10^7 per side
    ad = anderson_darling(positions, same, same)
    assert ad.p_value == 0.25 and ad.details["n_reference"] == 50_000_000
    cvm = cramer_von_mises(positions, same, same)
    assert cvm.statistic == 0.0 and cvm.p_value == 1.0
    z = z_test_proportions(same, same)
    assert z.statistic == 0.0 and z.p_value == 1.0

    moved = [10_000_000 - 50_000, 15_000_000, 15_000_000, 10_000_000 + 50_000]
    ad = anderson_darling(positions, same, moved)
    assert ad.p_value == 0.001 and ad.details["p_value_bound"] == "lower"
    cvm = cramer_von_mises(positions, same, moved)
    assert cvm.p_value < 1e-6
    z = z_test_proportions(same, moved)
    assert z.details["bucket"] in (0, 3) and z.p_value < 1e-6


def test_ad_scaling_is_exact_at_huge_counts():
    # all counts times s: every bucket term of A2akN is homogeneous, so exactly
    # A2akN(s counts) / A2akN(counts) = (sN - 1) / (N - 1); N = 10^3 -> 10^8 here
    positions = [0.0, 1.0, 2.0]
    ref, cur, s = [300, 400, 300], [200, 400, 400], 10**5
    small = anderson_darling(positions, ref, cur)
    big = anderson_darling(positions, [s * v for v in ref], [s * v for v in cur])
    ratio = (s * 2000 - 1) / (2000 - 1)
    assert big.details["a2"] == pytest.approx(small.details["a2"] * ratio, rel=1e-12)


# --------------------------------------------------------------------------------------------
# z-test
# --------------------------------------------------------------------------------------------


def test_z_test_closed_form():
    ref, cur = [50, 50], [30, 70]
    res = z_test_proportions(ref, cur)
    pooled = 80 / 200
    z = (0.3 - 0.5) / math.sqrt(pooled * (1 - pooled) * (1 / 100 + 1 / 100))
    assert res.statistic == pytest.approx(abs(z), rel=1e-12)
    assert res.details["z"] == pytest.approx(z, rel=1e-12)
    assert res.p_value == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-12)
    assert res.details["bucket"] == 0  # both buckets moved by 0.2: the first wins
    assert res.details["reference_share"] == 0.5 and res.details["current_share"] == 0.3


def test_z_test_bonferroni_over_occupied_buckets():
    # categories + "other" + "unseen" (empty in the reference); the last bucket is empty in both
    ref = [400, 300, 200, 100, 0, 0]
    cur = [380, 290, 150, 100, 80, 0]
    res = z_test_proportions(ref, cur)
    assert res.details["bucket"] == 4
    assert res.details["buckets"] == 5
    assert res.details["bonferroni_factor"] == 4
    raw = 2 * stats.norm.sf(res.statistic)
    assert res.p_value == pytest.approx(min(1.0, 4 * raw), rel=1e-9)
    capped = z_test_proportions([100, 100, 100, 100], [101, 99, 100, 100])
    assert capped.p_value == 1.0


def test_z_test_scales_with_sqrt_of_counts():
    ref, cur = [120, 300, 80], [90, 330, 80]
    small = z_test_proportions(ref, cur)
    big = z_test_proportions([100 * v for v in ref], [100 * v for v in cur])
    assert big.statistic == pytest.approx(10 * small.statistic, rel=1e-12)
    assert big.details["bucket"] == small.details["bucket"]


# --------------------------------------------------------------------------------------------
# validation, result type, module hygiene
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("test", [anderson_darling, cramer_von_mises])
@pytest.mark.parametrize(
    ("positions", "ref", "cur", "message"),
    [
        ([0.0, 1.0], [1, 2, 3], [1, 2, 3], "one entry per bucket"),
        ([0.0, 1.0, 2.0], [1, 2, 3], [1, 2], "same length"),
        ([0.0, 1.0, 2.0], [1, -2, 3], [1, 2, 3], "reference_counts must be non-negative"),
        ([0.0, 1.0, 2.0], [1, 2, 3], [1, 2, -3], "current_counts must be non-negative"),
        ([0.0, 2.0, 1.0], [1, 2, 3], [1, 2, 3], "strictly increasing"),
        ([0.0, 1.0, 1.0], [1, 2, 3], [1, 2, 3], "strictly increasing"),
        ([0.0, np.nan, 2.0], [1, 2, 3], [1, 2, 3], "finite"),
        ([0.0, 1.0, 2.0], [1.5, 2, 3], [1, 2, 3], "whole numbers"),
        ([0.0, 1.0, 2.0], [[1, 2, 3]], [1, 2, 3], "one-dimensional"),
        ([0.0, 1.0, 2.0], [0, 0, 0], [1, 2, 3], "reference_counts holds no values"),
        ([0.0, 1.0, 2.0], [1, 2, 3], [0, 0, 0], "current_counts holds no values"),
        ([], [], [], "holds no values"),
    ],
)
def test_validation(test, positions, ref, cur, message):
    with pytest.raises(ValueError, match=message):
        test(positions, ref, cur)


@pytest.mark.parametrize(
    ("ref", "cur", "message"),
    [
        ([1, 2], [1, 2, 3], "same length"),
        ([1, -1], [1, 2], "non-negative"),
        ([0, 0], [1, 2], "reference_counts holds no values"),
        ([1, 2], [0, 0], "current_counts holds no values"),
        (["a", "b"], [1, 2], "integer counts"),
    ],
)
def test_z_test_validation(ref, cur, message):
    with pytest.raises(ValueError, match=message):
        z_test_proportions(ref, cur)


def test_results_are_frozen_and_json_safe():
    results = [
        anderson_darling([0.0, 1.0, 2.0], np.array([30, 40, 30]), np.array([20, 40, 40])),
        anderson_darling([0.0, 1.0], [2, 0], [0, 1]),
        cramer_von_mises(np.array([0.0, 1.0, 2.0]), np.array([30, 40, 30]), [20, 40, 40]),
        cramer_von_mises([0.0, 1.0], [1, 0], [0, 5]),
        z_test_proportions(np.array([50, 50]), np.array([30, 70])),
    ]
    for res in results:
        assert isinstance(res, TestResult)
        assert type(res.statistic) is float and type(res.p_value) is float
        assert 0.0 <= res.p_value <= 1.0
        for value in res.details.values():
            assert type(value) in (int, float, str, bool)
        json.dumps(res.details, allow_nan=False)
        with pytest.raises(dataclasses.FrozenInstanceError):
            res.p_value = 0.5  # type: ignore[misc]
        hash(res)


def test_module_imports_only_numpy_scipy_math():
    tree = ast.parse(Path(rank_tests.__file__).read_text())
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            roots.add((node.module or "").split(".")[0])
    assert roots <= {"__future__", "math", "dataclasses", "typing", "numpy", "scipy"}
    assert not roots & {"monitor", "alerts", "dashboards"}
