"""Drift methods against scipy or closed forms on the same binned data, and the registry's
generic properties (every registered method must pass them)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from checks import drift
from checks.drift import EPSILON, REGISTRY, EmptyProfileError, buckets, register
from checks.profiles import CategoricalBinning, CategoricalProfile, NumericBinning, NumericProfile
from checks.settings import DriftSettings

SETTINGS = DriftSettings()


# ------------------------------------------------------------------------------ helpers


def quantile_binning(values: np.ndarray, bins: int = 50) -> NumericBinning:
    """Exact quantile cuts (the engine uses a sketch; exact cuts make expectations exact)."""
    cuts = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1]))
    cuts = cuts[cuts > values.min()]
    return NumericBinning(cuts, float(values.min()), float(values.max()))


def numeric_pair(ref: np.ndarray, cur: np.ndarray, binning: NumericBinning | None = None) -> tuple[NumericProfile, NumericProfile]:
    binning = binning or quantile_binning(ref)
    return NumericProfile.from_values(ref, binning), NumericProfile.from_values(cur, binning)


def categorical(counts: dict[str, int], binning: CategoricalBinning) -> CategoricalProfile:
    return CategoricalProfile.from_counts(counts, binning)


def categorical_pair(ref: dict[str, int], cur: dict[str, int], top_k: int = 50) -> tuple[CategoricalProfile, CategoricalProfile]:
    binning = CategoricalBinning.fit(ref, top_k=top_k)
    return categorical(ref, binning), categorical(cur, binning)


def interior_data(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, NumericBinning]:
    """Values at one point inside each bin of a hand-made binning (cuts 1..9), plus a few
    current values outside the reference's range."""
    binning = NumericBinning(np.arange(1.0, 10.0), 0.5, 9.5)
    points = np.arange(10) + 0.5
    ref = np.repeat(points, rng.multinomial(3000, np.full(10, 0.1)))
    cur = np.repeat(points, rng.multinomial(2000, rng.dirichlet(np.full(10, 5.0))))
    cur = np.concatenate([cur, [-3.0] * 7, [14.0] * 4])
    return ref, cur, binning


# ------------------------------------------------------------------------------- buckets


def test_numeric_buckets_split_out_of_range_values() -> None:
    binning = NumericBinning(np.array([1.0, 2.0]), 0.0, 3.0)
    ref, cur = numeric_pair(np.array([0.0, 0.5, 1.5, 2.5, 3.0]), np.array([-1.0, 0.5, 1.5, 4.0, 5.0]), binning)
    b = buckets(ref, cur)
    assert b.reference.tolist() == [0, 2, 1, 2, 0]
    assert b.current.tolist() == [1, 1, 1, 0, 2]
    assert b.low is not None and b.high is not None
    assert b.low.tolist() == [-1.0, 0.0, 1.0, 2.0, 3.0]  # outer buckets bounded by min / max
    assert b.high.tolist() == [0.0, 1.0, 2.0, 3.0, 5.0]


def test_coarsening_groups_fine_bins_into_equal_reference_mass() -> None:
    rng = np.random.default_rng(1)
    values = rng.normal(size=10_000)
    ref, cur = numeric_pair(values, values[:3000])
    b = buckets(ref, cur, bins=10)
    inner = b.reference[1:-1] / b.reference.sum()
    assert len(inner) == 10
    np.testing.assert_allclose(inner, 0.1, atol=0.005)
    assert b.reference[0] == b.reference[-1] == 0  # the reference is never out of its own range
    # Deterministic and reference-only: the same grouping for any window.
    other = NumericProfile.from_values(rng.normal(3, 1, 500), ref.binning)
    moved = buckets(ref, other, bins=10)
    assert np.array_equal(moved.low[1:-1], b.low[1:-1]) and np.array_equal(moved.reference, b.reference)


def test_buckets_refuse_profiles_on_different_binnings() -> None:
    a = NumericProfile.from_values(np.arange(10.0), NumericBinning(np.array([5.0]), 0, 9))
    b = NumericProfile.from_values(np.arange(10.0), NumericBinning(np.array([4.0]), 0, 9))
    with pytest.raises(ValueError, match="binning"):
        buckets(a, b)


# ---------------------------------------------------------------------------- KS


def test_ks_equals_scipy_on_data_inside_bins() -> None:
    ref_v, cur_v, binning = interior_data(np.random.default_rng(2))
    score = REGISTRY["ks"].compute(*numeric_pair(ref_v, cur_v, binning), SETTINGS)
    expected = stats.ks_2samp(ref_v, cur_v, method="asymp")
    assert score.statistic == pytest.approx(expected.statistic, abs=1e-12)
    assert score.p_value == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)


def test_ks_within_bin_resolution_on_continuous_data() -> None:
    rng = np.random.default_rng(3)
    ref_v, cur_v = rng.normal(0, 1, 20_000), rng.normal(0.05, 1.1, 8_000)
    ref, cur = numeric_pair(ref_v, cur_v)
    score = REGISTRY["ks"].compute(ref, cur, SETTINGS)
    exact = stats.ks_2samp(ref_v, cur_v, method="asymp").statistic
    b = buckets(ref, cur)
    resolution = (b.reference / b.n_reference).max() + (b.current / b.n_current).max()
    assert score.statistic <= exact + 1e-12
    assert exact - score.statistic <= resolution
    en = round(20_000 * 8_000 / 28_000)
    assert score.p_value == pytest.approx(stats.kstwo.sf(score.statistic, en))


# -------------------------------------------------------------------------- chi2


def test_chi2_equals_scipy_contingency_on_categories() -> None:
    ref, cur = categorical_pair({"a": 500, "b": 300, "c": 200, "d": 0}, {"a": 420, "b": 330, "c": 230, "z": 20}, top_k=2)
    score = REGISTRY["chi2"].compute(ref, cur, SETTINGS)
    # categories a, b; other = c; unseen = z.
    table = np.array([[500, 300, 200, 0], [420, 330, 230, 20]])
    expected = stats.chi2_contingency(table, correction=False)
    assert score.statistic == pytest.approx(expected.statistic)
    assert score.p_value == pytest.approx(expected.pvalue)
    assert score.details["dof"] == expected.dof


def test_chi2_equals_scipy_on_coarsened_numeric_bins_and_drops_empty_columns() -> None:
    rng = np.random.default_rng(4)
    ref, cur = numeric_pair(rng.normal(size=5000), rng.normal(0.1, 1, 3000))
    b = buckets(ref, cur, bins=SETTINGS.bins)
    table = np.vstack([b.reference, b.current])
    table = table[:, table.sum(axis=0) > 0]
    expected = stats.chi2_contingency(table, correction=False)
    score = REGISTRY["chi2"].compute(ref, cur, SETTINGS)
    assert score.statistic == pytest.approx(expected.statistic)
    assert score.p_value == pytest.approx(expected.pvalue)


def test_chi2_with_one_bucket_is_no_evidence() -> None:
    ref, cur = categorical_pair({"a": 10}, {"a": 3})
    score = REGISTRY["chi2"].compute(ref, cur, SETTINGS)
    assert (score.statistic, score.p_value) == (0.0, 1.0)


# -------------------------------------------------------------- divergences and distances

REF = {"a": 500, "b": 300, "c": 200}
CUR = {"a": 300, "b": 300, "c": 350, "new": 50}


def shares(ref: dict[str, int], cur: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    b = buckets(*categorical_pair(ref, cur))
    return b.shares()


def test_jensen_shannon_equals_scipy_base_2() -> None:
    p, q = shares(REF, CUR)
    score = REGISTRY["jensen_shannon"].compute(*categorical_pair(REF, CUR), SETTINGS)
    assert score.statistic == pytest.approx(jensenshannon(p, q, base=2))
    assert REGISTRY["jensen_shannon"].compute(*categorical_pair({"a": 5}, {"b": 5}), SETTINGS).statistic == pytest.approx(1.0)


def test_jensen_shannon_equals_scipy_on_coarsened_numeric_bins() -> None:
    rng = np.random.default_rng(5)
    ref, cur = numeric_pair(rng.exponential(1, 4000), rng.exponential(1.3, 4000))
    p, q = buckets(ref, cur, bins=SETTINGS.bins).shares()
    assert REGISTRY["jensen_shannon"].compute(ref, cur, SETTINGS).statistic == pytest.approx(jensenshannon(p, q, base=2))


def test_kl_equals_scipy_entropy_of_window_from_reference() -> None:
    ref, cur = {"a": 500, "b": 300, "c": 200}, {"a": 300, "b": 350, "c": 350}
    p, q = shares(ref, cur)
    assert REGISTRY["kl_divergence"].compute(*categorical_pair(ref, cur), SETTINGS).statistic == pytest.approx(stats.entropy(q, p))


def test_kl_smooths_empty_buckets_with_epsilon() -> None:
    p, q = shares(REF, CUR)  # the reference has no "new" (unseen) values
    assert p[-1] == 0
    smooth = lambda s: np.where(s > 0, s, EPSILON) / np.where(s > 0, s, EPSILON).sum()  # noqa: E731
    expected = stats.entropy(smooth(q), smooth(p))
    assert REGISTRY["kl_divergence"].compute(*categorical_pair(REF, CUR), SETTINGS).statistic == pytest.approx(expected)


def test_psi_closed_form() -> None:
    # Shares (0.5, 0.5) -> (0.8, 0.2): 0.3 ln(1.6) - 0.3 ln(0.4) = 0.3 ln 4.
    score = REGISTRY["psi"].compute(*categorical_pair({"a": 50, "b": 50}, {"a": 80, "b": 20}), SETTINGS)
    assert score.statistic == pytest.approx(0.3 * math.log(4))


def test_psi_closed_form_with_an_empty_reference_bucket() -> None:
    # Reference (1, 0) smoothed to (1, eps) / (1 + eps); window (0.5, 0.5).
    score = REGISTRY["psi"].compute(*categorical_pair({"a": 10}, {"a": 5, "new": 5}), SETTINGS)
    r = np.array([1.0, EPSILON]) / (1 + EPSILON)
    c = np.array([0.5, 0.5])
    assert score.statistic == pytest.approx(float(np.sum((c - r) * np.log(c / r))))


def test_hellinger_closed_form() -> None:
    disjoint = REGISTRY["hellinger"].compute(*categorical_pair({"a": 5}, {"b": 5}), SETTINGS)
    assert disjoint.statistic == pytest.approx(1.0)
    half = REGISTRY["hellinger"].compute(*categorical_pair({"a": 5, "b": 5}, {"a": 10}), SETTINGS)
    assert half.statistic == pytest.approx(math.sqrt(1 - math.sqrt(0.5)))  # sqrt(1 - Bhattacharyya coefficient)


def test_total_variation_closed_form() -> None:
    p, q = shares(REF, CUR)
    score = REGISTRY["total_variation"].compute(*categorical_pair(REF, CUR), SETTINGS)
    assert score.statistic == pytest.approx(0.5 * np.abs(p - q).sum())
    assert score.statistic == pytest.approx(0.5 * (0.2 + 0 + 0.15 + 0.05))


# ---------------------------------------------------------------------------- Wasserstein


def test_wasserstein_exact_on_data_placed_where_the_method_assumes() -> None:
    rng = np.random.default_rng(6)
    # Bins [-5, 1) [1, 2) [2, 4) [4, 7) [7, 20]: inner bins at their midpoints; the outer ones as
    # wide as their neighbour next to the cut: [0, 1] and [7, 10].
    binning = NumericBinning(np.array([1.0, 2.0, 4.0, 7.0]), -5.0, 20.0)
    points = np.array([0.5, 1.5, 3.0, 5.5, 8.5])
    ref_v = np.concatenate([[-5.0, 20.0], np.repeat(points, rng.multinomial(4000, [0.1, 0.2, 0.3, 0.2, 0.2]))])
    cur_v = np.repeat(points, rng.multinomial(3000, [0.3, 0.3, 0.2, 0.1, 0.1]))
    ref, cur = numeric_pair(ref_v, cur_v, binning)
    placed = np.concatenate([[0.5, 8.5], ref_v[2:]])  # the extremes sit in the outer bins
    score = REGISTRY["wasserstein"].compute(ref, cur, SETTINGS)
    expected = stats.wasserstein_distance(placed, cur_v)
    assert score.details["w1"] == pytest.approx(expected, rel=1e-12)
    assert score.statistic == pytest.approx(expected / np.std(ref_v), rel=1e-12)


def test_wasserstein_exact_on_a_two_valued_column() -> None:
    rng = np.random.default_rng(12)
    ref_v, cur_v = (rng.random(5000) < 0.2).astype(float), (rng.random(3000) < 0.35).astype(float)
    binning = NumericBinning(np.array([0.99]), 0.0, 1.0)
    score = REGISTRY["wasserstein"].compute(*numeric_pair(ref_v, cur_v, binning), SETTINGS)
    assert score.statistic == pytest.approx(stats.wasserstein_distance(ref_v, cur_v) / np.std(ref_v), rel=1e-9)


def test_wasserstein_close_to_scipy_on_continuous_data() -> None:
    rng = np.random.default_rng(7)
    ref_v, cur_v = rng.normal(0, 1, 30_000), rng.normal(0.3, 1.2, 10_000)
    score = REGISTRY["wasserstein"].compute(*numeric_pair(ref_v, cur_v), SETTINGS)
    expected = stats.wasserstein_distance(ref_v, cur_v) / np.std(ref_v)
    # A change of spread partly hides inside the open-ended outer bins: the binned value is lower.
    assert expected * 0.9 <= score.statistic <= expected * 1.02


@pytest.mark.parametrize("shift", [0.05, 0.2, 1.0])
@pytest.mark.parametrize("shape", ["normal", "exponential", "lognormal"])
def test_wasserstein_of_a_pure_shift_is_shift_over_std(shift: float, shape: str) -> None:
    rng = np.random.default_rng(8)
    ref_v = {"normal": rng.normal(10, 2, 40_000), "exponential": rng.exponential(2, 40_000), "lognormal": rng.lognormal(0, 1, 40_000)}[shape]
    ref, cur = numeric_pair(ref_v, ref_v + shift * np.std(ref_v))
    assert REGISTRY["wasserstein"].compute(ref, cur, SETTINGS).statistic == pytest.approx(shift, rel=0.07)


def test_wasserstein_of_a_constant_reference_is_the_share_that_left_it() -> None:
    binning = NumericBinning(np.empty(0), 3.0, 3.0)
    ref, cur = numeric_pair(np.full(100, 3.0), np.array([3.0] * 90 + [2.0] * 4 + [7.0] * 6), binning)
    score = REGISTRY["wasserstein"].compute(ref, cur, SETTINGS)
    assert score.statistic == pytest.approx(0.10)
    assert score.details["normalisation"] == "constant_reference"
    same = REGISTRY["wasserstein"].compute(ref, NumericProfile.from_values(np.full(5, 3.0), binning), SETTINGS)
    assert same.statistic == 0.0


def test_constant_reference_gives_finite_values_for_every_method() -> None:
    binning = NumericBinning(np.empty(0), 3.0, 3.0)
    ref, cur = numeric_pair(np.full(100, 3.0), np.array([3.0] * 50 + [9.0] * 50), binning)
    for name, method in REGISTRY.items():
        if method.supports("numeric"):
            score = method.compute(ref, cur, SETTINGS)
            assert math.isfinite(score.statistic), name


# ----------------------------------------------------------------------------- the registry

BASELINE = {"ks", "chi2", "psi", "jensen_shannon", "wasserstein", "hellinger", "kl_divergence", "total_variation"}
# Every registered method must have a test above against scipy or a closed form: add it here
# with that test, or this file fails.
REFERENCE_TESTED = BASELINE | {"anderson_darling", "cramer_von_mises", "z_test"}


def _expanded(ref, cur):
    """The two profiles as data: every value of a bucket at the bucket's registered position."""
    from checks.drift import _positions_of

    b = buckets(ref, cur)
    at = _positions_of(ref, b)
    return np.repeat(at, b.reference), np.repeat(at, b.current)


@pytest.mark.parametrize("shift", [0.0, 0.1, 0.4])
def test_anderson_darling_equals_scipy_on_the_bucketed_data(shift: float) -> None:
    rng = np.random.default_rng(21)
    base = rng.normal(0, 1, 4000)
    binning = quantile_binning(base)
    ref, cur = numeric_pair(base, rng.normal(shift, 1, 900), binning)
    score = REGISTRY["anderson_darling"].compute(ref, cur, SETTINGS)
    expected = stats.anderson_ksamp(list(_expanded(ref, cur)), variant="midrank")
    assert score.details["standardized_statistic"] == pytest.approx(expected.statistic, rel=1e-9)
    assert score.p_value == pytest.approx(expected.pvalue, rel=1e-9)
    assert score.statistic >= 0.0


@pytest.mark.parametrize("shift", [0.0, 0.1, 0.4])
def test_cramer_von_mises_equals_andersons_definition_on_the_bucketed_data(shift: float) -> None:
    rng = np.random.default_rng(22)
    base = rng.normal(0, 1, 3000)
    ref, cur = numeric_pair(base, rng.normal(shift, 1, 700), quantile_binning(base))
    x, y = _expanded(ref, cur)
    pooled = np.concatenate([x, y])
    gaps = np.searchsorted(np.sort(x), pooled, side="right") / x.size - np.searchsorted(np.sort(y), pooled, side="right") / y.size
    expected = x.size * y.size / pooled.size**2 * float(np.sum(gaps**2))
    score = REGISTRY["cramer_von_mises"].compute(ref, cur, SETTINGS)
    assert score.statistic == pytest.approx(expected, rel=1e-9)
    assert (score.p_value < 0.01) == (shift >= 0.4)


def test_z_test_of_a_binary_column_is_the_two_proportion_test() -> None:
    binning = CategoricalBinning.fit({"yes": 300, "no": 700}, top_k=5)
    ref, cur = categorical({"yes": 300, "no": 700}, binning), categorical({"yes": 180, "no": 320}, binning)
    score = REGISTRY["z_test"].compute(ref, cur, SETTINGS)
    p1, p2, pooled = 300 / 1000, 180 / 500, 480 / 1500
    z = (p2 - p1) / math.sqrt(pooled * (1 - pooled) * (1 / 1000 + 1 / 500))
    assert score.statistic == pytest.approx(abs(z), rel=1e-12)
    assert score.p_value == pytest.approx(2 * stats.norm.sf(abs(z)), rel=1e-9)
    chi = stats.chi2_contingency(np.array([[300, 700], [180, 320]]), correction=False)
    assert score.statistic**2 == pytest.approx(chi.statistic, rel=1e-9) and score.p_value == pytest.approx(chi.pvalue, rel=1e-9)


def test_registry_holds_the_baseline_methods() -> None:
    assert BASELINE <= set(REGISTRY)
    assert REGISTRY["ks"].kinds == {"numeric"} and REGISTRY["wasserstein"].kinds == {"numeric"}
    assert all(REGISTRY[m].kinds == {"numeric", "categorical"} for m in BASELINE - {"ks", "wasserstein"})


def test_every_registered_method_has_a_reference_test() -> None:
    assert set(REGISTRY) <= REFERENCE_TESTED, f"add a scipy/closed-form test for {set(REGISTRY) - REFERENCE_TESTED}"


def pairs(kind: str) -> list[tuple[object, object]]:
    """Distinct pairs of profiles of one kind on a shared binning, including empty buckets."""
    rng = np.random.default_rng(9)
    if kind == "numeric":
        base = rng.normal(0, 1, 3000)
        binning = quantile_binning(base)
        windows = [rng.normal(0.3, 1.2, 500), rng.exponential(1, 800), rng.normal(-2, 0.1, 50), base[:100] * 3]
        ref = NumericProfile.from_values(base, binning)
        return [(ref, NumericProfile.from_values(w, binning)) for w in windows]
    binning = CategoricalBinning.fit({"a": 50, "b": 30, "c": 10, "d": 5, "e": 1}, top_k=3)
    ref = categorical({"a": 50, "b": 30, "c": 10, "d": 5, "e": 1}, binning)
    windows = [{"a": 10, "b": 10, "c": 10}, {"z": 4, "a": 1}, {"d": 7}, {"a": 500, "b": 290, "c": 120, "d": 40, "y": 1}]
    return [(ref, categorical(w, binning)) for w in windows]


CASES = [(name, kind) for name, m in sorted(REGISTRY.items()) for kind in sorted(m.kinds)]


@pytest.mark.parametrize("name,kind", CASES)
def test_identical_profiles_score_zero(name: str, kind: str) -> None:
    method = REGISTRY[name]
    for ref, cur in pairs(kind):
        for profile in (ref, cur):
            score = method.compute(profile, profile, SETTINGS)
            assert score.statistic == pytest.approx(0.0, abs=1e-12)
            if method.is_test:  # Anderson-Darling's p-value is capped to [0.001, 0.25], like scipy's
                assert score.p_value == pytest.approx(0.25 if name == "anderson_darling" else 1.0)


@pytest.mark.parametrize("name,kind", CASES)
def test_values_are_non_negative_within_limits_and_deterministic(name: str, kind: str) -> None:
    method = REGISTRY[name]
    for ref, cur in pairs(kind):
        score = method.compute(ref, cur, SETTINGS)
        again = method.compute(ref, cur, SETTINGS)
        assert score == again
        assert score.statistic >= 0.0
        assert method.lower_limit <= method.value(score) <= method.upper_limit
        if method.is_test:
            assert score.p_value is not None and 0.0 <= score.p_value <= 1.0


@pytest.mark.parametrize("name,kind", [c for c in CASES if REGISTRY[c[0]].symmetric])
def test_symmetric_methods_are_symmetric(name: str, kind: str) -> None:
    method = REGISTRY[name]
    fine = DriftSettings(bins=100)  # swapping changes whose mass coarsens bins; compare on fine bins
    for ref, cur in pairs(kind):
        forward, backward = method.compute(ref, cur, fine), method.compute(cur, ref, fine)
        assert forward.statistic == pytest.approx(backward.statistic, rel=1e-9, abs=1e-12)
        if method.is_test:
            assert forward.p_value == pytest.approx(backward.p_value, rel=1e-9, abs=1e-300)


def test_asymmetric_methods_say_so() -> None:
    ref, cur = pairs("numeric")[0]
    for name in ("wasserstein", "kl_divergence"):
        method = REGISTRY[name]
        assert not method.symmetric
        assert method.compute(ref, cur, SETTINGS).statistic != pytest.approx(method.compute(cur, ref, SETTINGS).statistic)


@pytest.mark.parametrize("name,kind", CASES)
def test_empty_input_raises(name: str, kind: str) -> None:
    method = REGISTRY[name]
    ref, cur = pairs(kind)[0]
    empty = NumericProfile.from_values(np.array([np.nan]), ref.binning) if kind == "numeric" else categorical({}, ref.binning)
    with pytest.raises(ValueError):
        method.compute(ref, empty, SETTINGS)
    with pytest.raises(EmptyProfileError):
        method.compute(empty, cur, SETTINGS)


@pytest.mark.parametrize("name,kind", CASES)
def test_a_complete_move_breaches_the_default_threshold(name: str, kind: str) -> None:
    method = REGISTRY[name]
    if kind == "numeric":
        ref, cur = numeric_pair(np.random.default_rng(10).normal(size=2000), np.random.default_rng(11).normal(5, 1, 2000))
    else:
        ref, cur = categorical_pair({"a": 900, "b": 100}, {"a": 100, "b": 900})
    value = method.value(method.compute(ref, cur, SETTINGS))
    assert value < method.default_threshold if method.is_test else value > method.default_threshold


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_registration_is_complete(name: str) -> None:
    method = REGISTRY[name]
    assert method.description.strip()
    assert method.lower_limit <= method.default_threshold <= method.upper_limit
    assert method.kinds and method.kinds <= drift.KINDS


def test_register_rejects_duplicates_and_thresholds_outside_limits() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register("psi", kinds={"numeric"}, compute=drift.psi, default_threshold=0.1, lower_limit=0, upper_limit=1, symmetric=True, description="x")
    with pytest.raises(ValueError, match="limits"):
        register("psi_bad", kinds={"numeric"}, compute=drift.psi, default_threshold=2.0, lower_limit=0, upper_limit=1, symmetric=True, description="x")
    assert "psi_bad" not in REGISTRY
