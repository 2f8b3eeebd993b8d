"""Quality, latency and prediction summaries."""

from __future__ import annotations

import numpy as np
import pytest

from checks.latency import latency_results
from checks.predictions import prediction_results, share_at_least
from checks.profiles import CategoricalBinning, CategoricalProfile, DatasetProfile, NumericBinning, NumericProfile
from checks.quality import quality_results
from checks.results import Direction, Status
from checks.settings import LatencySettings, QualitySettings
from checks.sketch import DEFAULT_ALPHA, QuantileSketch

BINNING = NumericBinning(np.array([1.0, 2.0, 3.0]), 0.0, 4.0)
CATEGORIES = CategoricalBinning(("a", "b"))


def rows_by(results):
    return {(r.column, r.metric): r for r in results}


def test_quality_shares_and_thresholds() -> None:
    ref = DatasetProfile(
        rows=100,
        columns={
            "x": NumericProfile.from_values(np.r_[np.linspace(0, 4, 90), [np.nan] * 10], BINNING),
            "c": CategoricalProfile.from_counts({"a": 50, "b": 50}, CATEGORIES),
        },
    )
    x = np.r_[np.linspace(0, 4, 60), [-1.0, 9.0, 9.5, 10.0], [np.nan] * 30, [np.inf]]
    cur = DatasetProfile(
        rows=95,
        columns={
            "x": NumericProfile.from_values(x, BINNING, invalid=1),
            "c": CategoricalProfile.from_counts({"a": 40, "b": 40, "z": 2}, CATEGORIES, missing=13),
            "y": NumericProfile.from_values(np.r_[[np.nan] * 90, [1.0] * 5], BINNING),
        },
        duplicate_ids=1,
        bad_timestamps=5,
        missing_columns=("gone",),
    )
    results = quality_results(ref, cur, ["x", "c", "y"], QualitySettings(), unlabelled=["y"], segment="eu")
    r = rows_by(results)
    assert r[("", "row_count")].value == 95 and r[("", "row_count")].status is Status.INFO
    missing = r[("x", "missing_share")]
    assert missing.value == pytest.approx(29 / 95) and missing.threshold == pytest.approx(0.15)  # 0.10 + 0.05
    assert missing.status is Status.BREACH and missing.details["reference"] == pytest.approx(0.1)
    assert r[("x", "invalid_share")].value == pytest.approx(2 / 95) and r[("x", "invalid_share")].status is Status.BREACH
    out = r[("x", "out_of_range_share")]
    assert out.value == pytest.approx(4 / 64) and out.status is Status.BREACH and (out.details["below"], out.details["above"]) == (1, 3)
    unseen = r[("c", "unseen_share")]
    assert unseen.value == pytest.approx(2 / 82) and unseen.status is Status.BREACH and unseen.details["top_unseen"] == {"z": 2}
    assert r[("c", "missing_share")].threshold == pytest.approx(0.05)
    assert ("y", "missing_share") not in r  # the target's labels arrive late
    assert r[("", "duplicate_id_share")].value == pytest.approx(1 / 95) and r[("", "duplicate_id_share")].status is Status.BREACH
    assert r[("", "bad_timestamp_share")].value == pytest.approx(5 / 100) and r[("", "bad_timestamp_share")].status is Status.BREACH
    gone = r[("gone", "column_missing")]
    assert gone.status is Status.BREACH
    assert {x.segment for x in results} == {"eu"}


def test_quality_min_rows_and_empty_window() -> None:
    settings = QualitySettings(min_rows=50, missing_share_max=0.2)
    small = quality_results(DatasetProfile(10, {}), DatasetProfile(rows=20, columns={}), [], settings)
    assert rows_by(small)[("", "row_count")].status is Status.BREACH
    assert rows_by(small)[("", "row_count")].direction is Direction.MIN
    empty = quality_results(DatasetProfile(10, {}), DatasetProfile(rows=0, columns={}), ["x"], settings)
    assert all(r.status is Status.NO_DATA for r in empty)
    assert rows_by(empty)[("", "row_count")].value == 0.0


# ------------------------------------------------------------------------------- latency


def latency(values: np.ndarray) -> NumericProfile:
    binning = NumericBinning(np.quantile(values, [0.25, 0.5, 0.75]), values.min(), values.max())
    return NumericProfile.from_values(values, binning, sketch=True)


def test_latency_percentiles_match_numpy_within_the_sketch_error() -> None:
    values = np.random.default_rng(0).lognormal(3, 0.6, 50_000)
    results = {r.metric: r for r in latency_results("ms", None, latency(values), LatencySettings())}
    for stat, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        assert results[stat].value == pytest.approx(np.quantile(values, q), rel=DEFAULT_ALPHA * 1.05)
        assert results[stat].status is Status.INFO
    assert results["mean"].value == pytest.approx(values.mean())
    assert results["max"].value == values.max()


def test_latency_absolute_and_ratio_limits_take_the_tighter() -> None:
    rng = np.random.default_rng(1)
    ref = latency(rng.lognormal(3, 0.5, 20_000))
    cur = latency(rng.lognormal(3.3, 0.5, 5_000))
    settings = LatencySettings(p95_max_ms=1000, p95_max_ratio=1.2, p50_max_ms=10, max_max_ms=1e6, mean_max_ratio=2.0)
    r = {x.metric: x for x in latency_results("ms", ref, cur, settings)}
    p95 = r["p95"]
    assert p95.status is Status.BREACH and p95.details["bound"] == "p95_max_ratio"
    assert p95.threshold == pytest.approx(ref.quantile(0.95) * 1.2)
    assert p95.details["ratio"] == pytest.approx(cur.quantile(0.95) / ref.quantile(0.95))
    assert r["p50"].status is Status.BREACH and r["p50"].details["bound"] == "p50_max_ms"
    assert r["mean"].status is Status.OK and r["max"].status is Status.OK
    assert r["p99"].status is Status.INFO


def test_latency_without_values_or_reference() -> None:
    empty = NumericProfile.from_values(np.array([np.nan]), BINNING)
    assert {r.status for r in latency_results("ms", None, empty, LatencySettings(p95_max_ms=5))} == {Status.NO_DATA}
    r = {x.metric: x for x in latency_results("ms", None, latency(np.arange(1.0, 100)), LatencySettings(p95_max_ratio=1.5))}
    assert r["p95"].status is Status.INFO and "needs latency values in the reference" in r["p95"].details["note"]


# --------------------------------------------------------------------------- predictions


def test_probability_summaries() -> None:
    scores = np.random.default_rng(2).beta(2, 5, 20_000)
    profile = latency(scores)
    r = {x.metric: x for x in prediction_results("p", profile, "probability", decision_threshold=0.4)}
    assert set(r) == {"mean", "p10", "p50", "p90", "positive_share"}
    assert r["mean"].value == pytest.approx(scores.mean())
    assert r["p90"].value == pytest.approx(np.quantile(scores, 0.9), rel=0.006)
    assert r["positive_share"].value == pytest.approx((scores >= 0.4).mean(), abs=0.005)
    assert all(x.status is Status.INFO for x in r.values())


def test_share_at_least_without_a_sketch_interpolates_the_histogram() -> None:
    values = np.random.default_rng(3).random(10_000)
    binning = NumericBinning(np.linspace(0.1, 0.9, 9), values.min(), values.max())
    profile = NumericProfile.from_values(values, binning)
    assert share_at_least(profile, 0.55) == pytest.approx((values >= 0.55).mean(), abs=0.01)
    assert share_at_least(profile, -1) == 1.0 and share_at_least(profile, 2) == 0.0


def test_class_prediction_shares() -> None:
    profile = CategoricalProfile.from_counts({"a": 30, "b": 60, "new": 10}, CATEGORIES)
    r = {x.metric: x for x in prediction_results("p", profile, "class")}
    assert r["share:a"].value == 0.3 and r["share:b"].value == 0.6 and r["share:__unseen__"].value == 0.1
    assert "share:__other__" not in r
    assert prediction_results("p", None, "class")[0].status is Status.NO_DATA
    assert {x.status for x in prediction_results("p", None, "regression")} == {Status.NO_DATA}


def test_sketch_quantiles_are_relative_to_the_data() -> None:
    values = np.random.default_rng(4).exponential(50, 5000)
    sketch = QuantileSketch.from_values(values)
    for q in (0.1, 0.5, 0.99):
        assert sketch.quantile(q) == pytest.approx(np.quantile(values, q, method="lower"), rel=DEFAULT_ALPHA * (1 + 1e-9))
