"""Calibrated drift thresholds: null distributions, the reference's own variation, and the
run-level verdict, checked against fresh simulated windows, scipy and closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from checks import calibration
from checks.calibration import ReferenceVariation, benjamini_hochberg, chunk_excess, null_distribution, null_from_counts
from checks.drift import REGISTRY, Geometry
from checks.evaluate import dataset_verdict, drift_column
from checks.profiles import CategoricalBinning, CategoricalProfile, NumericBinning, NumericProfile
from checks.results import Status
from checks.settings import DriftSettings

SETTINGS = DriftSettings()
W = REGISTRY["wasserstein"]
JS = REGISTRY["jensen_shannon"]


def binning_of(values: np.ndarray) -> NumericBinning:
    return NumericBinning(np.quantile(values, np.linspace(0, 1, 51)[1:-1]), float(values.min()), float(values.max()))


def numeric(values: np.ndarray, binning: NumericBinning) -> NumericProfile:
    return NumericProfile.from_values(values, binning)


@pytest.fixture(scope="module")
def normal_reference() -> tuple[NumericProfile, NumericBinning]:
    values = np.random.default_rng(100).normal(0, 1, 50_000)
    binning = binning_of(values)
    return numeric(values, binning), binning


# ----------------------------------------------------------------------- null distribution


@pytest.mark.parametrize("rows", [200, 2_000])
def test_null_quantile_holds_the_false_alarm_rate_on_fresh_windows(normal_reference, rows: int) -> None:
    """600 healthy windows: breaches of the 95% quantile stay near 5% (binomial bounds), and of
    the 99% quantile at or below ~1%."""
    ref, binning = normal_reference
    null = null_distribution(W, ref, rows, SETTINGS)
    rng = np.random.default_rng(rows)
    values = np.array([W.compute(ref, numeric(rng.normal(0, 1, rows), binning), SETTINGS).statistic for _ in range(600)])
    at95 = (values > null.quantile(0.95)).mean()
    at99 = (values > null.quantile(0.99)).mean()
    assert 0.015 <= at95 <= 0.075
    assert at99 <= 0.025
    # The quantile is a sampling noise scale: it shrinks like 1 / sqrt(rows).
    assert null_distribution(W, ref, 4 * rows, SETTINGS).quantile(0.99) < 0.62 * null.quantile(0.99)


def test_null_is_deterministic_cached_and_rounded_to_a_grid(normal_reference) -> None:
    ref, _ = normal_reference
    calibration._NULLS.clear()
    a = null_distribution(W, ref, 1234, SETTINGS)
    calibration._NULLS.clear()
    b = null_distribution(W, ref, 1234, SETTINGS)
    assert np.array_equal(a.sample, b.sample)
    assert null_distribution(W, ref, 1200, SETTINGS) is b  # within the 5% grid: the same null
    assert calibration._quantised(1234) <= 1234 and calibration._quantised(1234) > 1234 / 1.05
    assert null_distribution(W, ref, 5000, SETTINGS) is not b


def test_sf_is_monotone_and_agrees_with_the_draws(normal_reference) -> None:
    ref, _ = normal_reference
    null = null_distribution(W, ref, 1000, SETTINGS)
    grid = np.linspace(0, 3 * null.sample[-1], 200)
    p = np.array([null.sf(x) for x in grid])
    assert np.all(np.diff(p) <= 1e-12) and p[0] == 1.0 and 0 < p[-1] < 1e-3
    for level in (0.5, 0.9):
        x = float(np.quantile(null.sample, level))
        assert 1 - level - 0.01 <= null.sf(x) <= 1 - level + 0.05  # never below the draws' share


def test_satterthwaite_fit_matches_a_scaled_chi_squared() -> None:
    """Draws that are exactly sqrt(c * chi2(nu)) are fitted back to (c, nu)."""
    sample = np.sqrt(0.3 * np.random.default_rng(1).chisquare(7.0, 200_000))
    c, nu = calibration._satterthwaite(sample)
    assert c == pytest.approx(0.3, rel=0.03) and nu == pytest.approx(7.0, rel=0.03)


def test_categorical_null_and_unseen_values() -> None:
    binning = CategoricalBinning.fit({"a": 600, "b": 300, "c": 100}, top_k=5)
    ref = CategoricalProfile.from_counts({"a": 6000, "b": 3000, "c": 1000}, binning)
    null = null_distribution(JS, ref, 500, SETTINGS)
    rng = np.random.default_rng(3)
    values = [
        JS.compute(ref, CategoricalProfile.from_counts(dict(zip("abc", rng.multinomial(500, [0.6, 0.3, 0.1]).tolist())), binning), SETTINGS).statistic
        for _ in range(400)
    ]
    assert np.mean(np.array(values) > null.quantile(0.99)) <= 0.025
    # A new category at 5% is far beyond the null at 10,000 rows.
    shifted = CategoricalProfile.from_counts({"a": 5700, "b": 2850, "c": 950, "new": 500}, binning)
    assert JS.compute(ref, shifted, SETTINGS).statistic > null_distribution(JS, ref, 10_000, SETTINGS).quantile(0.99)


def test_outer_buckets_get_the_chance_of_a_new_extreme() -> None:
    """A numeric window's draws put 1/(n+1) beyond each end of the reference's range."""
    counts = np.array([0, 50, 50, 0], dtype=float)
    geo = Geometry(np.array([-1.0, 0.0, 1.0, 2.0]), 1.0)
    null = null_from_counts(W, counts, geo, 100_000, outer=True, draws=400)
    # 100,000 rows against 100: ~1000 land outside the range, at the outer positions.
    assert null.sample.mean() > null_from_counts(W, counts, geo, 100_000, outer=False, draws=400).sample.mean()


# ------------------------------------------------------------------------ reference variation


def test_stationary_chunks_learn_no_excess() -> None:
    """No real variation: no more chunks pass their 99% null quantile than noise explains."""
    rng = np.random.default_rng(5)
    values = rng.normal(0, 1, 30 * 1000)
    binning = binning_of(values)
    ref = numeric(values, binning)
    chunks = [numeric(part, binning) for part in np.split(values, 30)]
    null = null_distribution(W, ref, 1000, SETTINGS)
    excess = chunk_excess(W, ref, chunks, SETTINGS)
    assert excess == 0.0 and null.quantile(0.99) > 0


def test_a_cycle_in_the_reference_is_learned_and_widens_the_threshold() -> None:
    rng = np.random.default_rng(6)
    hours = [rng.normal(0.5 * math.sin(2 * math.pi * h / 24), 1, 2000) for h in range(24 * 7)]
    values = np.concatenate(hours)
    binning = binning_of(values)
    ref = numeric(values, binning)
    chunks = [numeric(h, binning) for h in hours]
    excess = chunk_excess(W, ref, chunks, SETTINGS)
    assert excess is not None and 0.15 < excess < 0.6  # the cycle's amplitude in std units, less noise
    peak = numeric(rng.normal(0.4, 1, 2000), binning)  # a window near the cycle's peak: nothing new
    widened = drift_column("drift", "x", "numeric_feature", ref, peak, SETTINGS, excess=excess)[0]
    plain = drift_column("drift", "x", "numeric_feature", ref, peak, SETTINGS)[0]
    assert widened.status is Status.OK and plain.status is Status.BREACH
    assert widened.threshold == pytest.approx(plain.details["null_quantile"] + excess) and widened.details["excess_learned"]
    typical = null_distribution(W, ref, 2000, SETTINGS).sample.mean()
    assert excess == pytest.approx(max(W.compute(ref, h, SETTINGS).statistic for h in chunks) - typical, abs=0.02)
    shifted = numeric(rng.normal(1.6, 1, 2000), binning)  # far beyond the cycle: still caught
    assert drift_column("drift", "x", "numeric_feature", ref, shifted, SETTINGS, excess=excess)[0].status is Status.BREACH


def test_too_few_chunks_learn_nothing(normal_reference) -> None:
    ref, binning = normal_reference
    one = numeric(np.random.default_rng(7).normal(0, 1, 500), binning)
    assert chunk_excess(W, ref, [one], SETTINGS) is None
    assert chunk_excess(W, ref, [], SETTINGS) is None


def test_variation_round_trips_through_json() -> None:
    variation = ReferenceVariation(12, {"income": {"wasserstein": 0.05}})
    again = ReferenceVariation.from_dict(variation.to_dict())
    assert again == variation and again.excess_for("income", "wasserstein") == 0.05
    assert again.excess_for("income", "psi") is None and again.excess_for("age", "wasserstein") is None


# ------------------------------------------------------------------------- thresholds


def test_minimum_effect_holds_back_negligible_shifts_on_huge_windows(normal_reference) -> None:
    ref, binning = normal_reference
    rng = np.random.default_rng(8)
    tiny = numeric(rng.normal(0.03, 1, 1_000_000), binning)
    verdict = drift_column("drift", "x", "numeric_feature", ref, tiny, SETTINGS)[0]
    assert verdict.details["p_value"] < 1e-6  # detectable...
    assert verdict.status is Status.OK and verdict.threshold == 0.1  # ...but too small to matter
    real = numeric(rng.normal(0.25, 1, 10_000), binning)
    assert drift_column("drift", "x", "numeric_feature", ref, real, SETTINGS)[0].status is Status.BREACH
    lowered = DriftSettings.model_validate({"min_effect": {"wasserstein": 0.01}})
    assert drift_column("drift", "x", "numeric_feature", ref, tiny, lowered)[0].status is Status.BREACH


def test_small_windows_catch_a_one_standard_deviation_shift(normal_reference) -> None:
    ref, binning = normal_reference
    rng = np.random.default_rng(9)
    caught = [drift_column("drift", "x", "numeric_feature", ref, numeric(rng.normal(1.0, 1, 200), binning), SETTINGS)[0].status for _ in range(50)]
    assert caught.count(Status.BREACH) == 50


def test_fixed_threshold_and_rate_validation() -> None:
    with pytest.raises(ValueError, match="false_alarm_rate"):
        DriftSettings.model_validate({"false_alarm_rate": 0.5})
    with pytest.raises(ValueError, match="did you mean 'wasserstein'"):
        DriftSettings.model_validate({"min_effect": {"wasserstien": 0.1}})
    with pytest.raises(ValueError, match="effect-size method"):
        DriftSettings.model_validate({"min_effect": {"ks": 0.1}})


# ---------------------------------------------------------------------------- many columns


def test_benjamini_hochberg_equals_scipy() -> None:
    p = np.random.default_rng(10).uniform(0, 0.2, 40)
    assert np.allclose(benjamini_hochberg(p), stats.false_discovery_control(p, method="bh"))
    with_nan = benjamini_hochberg([0.01, float("nan"), 0.02])
    assert math.isnan(with_nan[1]) and with_nan[0] == pytest.approx(0.02)


def test_the_run_level_verdict_holds_its_rate_over_many_columns(normal_reference) -> None:
    """25 healthy columns per window, 150 windows: the dataset-level verdict (BH at 1%) fires in
    at most a few windows, while per-column verdicts at 1% each would fire in ~22% of them."""
    ref, binning = normal_reference
    rng = np.random.default_rng(11)
    fired = 0
    for _ in range(150):
        rows = [drift_column("drift", f"c{i}", "numeric_feature", ref, numeric(rng.normal(0, 1, 300), binning), SETTINGS)[0] for i in range(25)]
        (verdict,) = dataset_verdict(rows, SETTINGS)
        fired += verdict.status is Status.BREACH
    assert fired <= 5
    shifted = rows[:-1] + drift_column("drift", "moved", "numeric_feature", ref, numeric(rng.normal(0.8, 1, 300), binning), SETTINGS)
    (verdict,) = dataset_verdict(shifted, SETTINGS)
    assert verdict.status is Status.BREACH and verdict.details["drifted"] == ["moved"]
    assert verdict.details["ranking"][0]["column"] == "moved" and verdict.value == pytest.approx(1 / 25)


def test_reference_variation_mapped_on_a_thread_pool_learns_the_serial_excess() -> None:
    """Columns learned on a pool (caches cleared before each side) equal those learned one by one."""
    from concurrent.futures import ThreadPoolExecutor

    from checks.calibration import reference_variation
    from checks.profiles import DatasetProfile
    from checks.roles import Roles

    rng = np.random.default_rng(8)
    hours = [rng.normal(0.5 * math.sin(2 * math.pi * h / 24), 1, 500) for h in range(48)]
    flat = [rng.normal(0, 1, 500) for _ in range(48)]
    profiles = []
    for values in (np.concatenate(hours), np.concatenate(flat)):
        binning = binning_of(values)
        profiles.append((numeric(values, binning), binning))
    (cyc, cyc_bins), (flt, flt_bins) = profiles
    reference = DatasetProfile(rows=24_000, columns={"cycle": cyc, "flat": flt})
    chunks = [
        DatasetProfile(rows=500, columns={"cycle": numeric(h, cyc_bins), "flat": numeric(f, flt_bins)}) for h, f in zip(hours, flat)
    ]
    roles = Roles(numeric=("cycle", "flat"))

    def learn(**kwargs):
        calibration._NULLS.clear()
        calibration._REFERENCE_DRAWS.clear()
        return reference_variation(reference, chunks, roles, SETTINGS, **kwargs)

    serial = learn()
    mapped: list[str] = []
    with ThreadPoolExecutor(2) as pool:

        def mapper(fn, items):
            items = list(items)
            mapped.extend(item[0] for item in items)
            return pool.map(fn, items)

        parallel = learn(mapper=mapper)
    assert parallel == serial and mapped == ["cycle", "flat"]
    assert serial.excess_for("cycle", "wasserstein") > 0.1 and serial.excess_for("flat", "wasserstein") == 0.0
