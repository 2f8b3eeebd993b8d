"""evaluate(): planted drift is found where it was planted and nowhere else, failures stay
isolated, empty windows give no_data, segments propagate, drift is ranked."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace

import numpy as np
import pytest

from checks import drift, evaluate as evaluate_module
from checks.drift import DriftMethod
from checks.evaluate import CHECKS, MULTIVARIATE_DRIFT, evaluate
from checks.kpis import KpiSpec, kpi_profile
from checks.profiles import (
    BinaryPerformance,
    CategoricalBinning,
    CategoricalProfile,
    DatasetProfile,
    NumericBinning,
    NumericProfile,
    RegressionPerformance,
)
from checks.results import Status
from checks.roles import Roles
from checks.settings import ChecksSettings
from checks.sketch import QuantileSketch

NUMERIC = ("normal", "skewed", "heavy", "count", "flag", "uniform")
CATEGORICAL = ("country", "device", "plan")
ROLES = Roles(numeric=NUMERIC, categorical=CATEGORICAL, prediction="score", prediction_kind="probability", target="label", latency="latency_ms")
KPIS = (KpiSpec(name="approval", column="score", agg="share", where=">= 0.5", max=0.9),)
SETTINGS = ChecksSettings()


def generate(rng: np.random.Generator, n: int, shifts: Mapping[str, float] | None = None, device_p=(0.6, 0.3, 0.1)) -> dict[str, np.ndarray]:
    s = dict(shifts or {})
    score = rng.beta(2, 5, n)
    label = (rng.random(n) < score).astype(float)
    label[rng.random(n) < 0.3] = np.nan  # labels arrive late for some rows
    return {
        "normal": rng.normal(50, 10, n) + 10 * s.get("normal", 0),
        "skewed": rng.exponential(3, n) + 3 * s.get("skewed", 0),
        "heavy": rng.standard_t(4, n) * 2 + np.sqrt(2) * 2 * s.get("heavy", 0),
        "count": rng.poisson(4, n).astype(float),
        "flag": (rng.random(n) < 0.2 + s.get("flag", 0)).astype(float),
        "uniform": rng.random(n) + s.get("uniform", 0) / np.sqrt(12),
        "country": rng.choice(["de", "fr", "it", "es"], n, p=[0.4, 0.3, 0.2, 0.1]),
        "device": rng.choice(["web", "ios", "android"], n, p=device_p),
        "plan": rng.choice(["free", "pro"], n, p=[0.8, 0.2]),
        "score": score,
        "label": label,
        "latency_ms": rng.lognormal(3, 0.5, n),
    }


def fit(data: Mapping[str, np.ndarray]) -> dict[str, object]:
    binnings: dict[str, object] = {}
    for name, values in data.items():
        if values.dtype.kind == "f":
            v = values[np.isfinite(values)]
            binnings[name] = NumericBinning.fit(QuantileSketch.from_values(v), v.min(), v.max())
        else:
            names, counts = np.unique(values, return_counts=True)
            binnings[name] = CategoricalBinning.fit(dict(zip(names.tolist(), counts.tolist())))
    return binnings


def profile(data: Mapping[str, np.ndarray], binnings: Mapping[str, object], kind: str = "probability") -> DatasetProfile:
    columns = {}
    for name, values in data.items():
        if values.dtype.kind == "f":
            columns[name] = NumericProfile.from_values(values, binnings[name], sketch=name in ("latency_ms", "score"))
        else:
            names, counts = np.unique(values, return_counts=True)
            columns[name] = CategoricalProfile.from_counts(dict(zip(names.tolist(), counts.tolist())), binnings[name])
    labelled = np.isfinite(data["label"])
    if kind == "probability":
        performance = BinaryPerformance.from_arrays(data["score"][labelled], data["label"][labelled])
    else:
        performance = RegressionPerformance.from_arrays(data["score"][labelled], data["label"][labelled])
    kpis = {k.name: kpi_profile(data[k.column], k) for k in KPIS}
    return DatasetProfile(rows=len(data["score"]), columns=columns, performance=performance, kpis=kpis)


@pytest.fixture(scope="module")
def reference() -> tuple[DatasetProfile, dict[str, object]]:
    data = generate(np.random.default_rng(2024), 20_000)
    binnings = fit(data)
    return profile(data, binnings), binnings


def window(binnings, seed: int, n: int = 5000, **kwargs) -> DatasetProfile:
    return profile(generate(np.random.default_rng(seed), n, **kwargs), binnings)


def assert_json_safe(results) -> None:
    for r in results:
        json.dumps(r.details, allow_nan=False)
        assert r.value is None or isinstance(r.value, float)


def breaches(results, check: str | None = None) -> set[tuple[str, str]]:
    return {(r.check, r.column) for r in results if r.status is Status.BREACH and (check is None or r.check == check)}


def verdicts(results, check: str = "drift") -> dict[str, object]:
    """The deciding row of each column (not the report rows, not the run-level row)."""
    return {r.column: r for r in results if r.check == check and r.status not in (Status.INFO, Status.ERROR) and r.metric != "dataset_drift"}


# --------------------------------------------------------------------------- detection


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_stationary_windows_raise_nothing(reference, seed: int) -> None:
    ref, binnings = reference
    results = evaluate(ref, window(binnings, seed), ROLES, SETTINGS, KPIS)
    assert breaches(results) == set()
    assert not [r for r in results if r.status is Status.ERROR]
    assert_json_safe(results)
    assert {r.check for r in results} == set(CHECKS) - {MULTIVARIATE_DRIFT}  # these profiles carry no PCA errors


def test_planted_shift_breaches_exactly_the_shifted_columns(reference) -> None:
    ref, binnings = reference
    cur = window(binnings, 11, shifts={"normal": 0.3, "heavy": 0.5, "flag": 0.1}, device_p=(0.4, 0.4, 0.2))
    results = evaluate(ref, cur, ROLES, SETTINGS, KPIS)
    assert breaches(results) == {("drift", "normal"), ("drift", "heavy"), ("drift", "flag"), ("drift", "device"), ("drift", "")}
    assert_json_safe(results)
    v = verdicts(results)
    assert v["normal"].metric == "wasserstein" and v["normal"].value == pytest.approx(0.3, rel=0.15)
    assert v["device"].metric == "jensen_shannon"
    assert v["normal"].details["threshold_mode"] == v["device"].details["threshold_mode"] == "calibrated"
    assert v["normal"].details["p_value"] < 0.01 and v["normal"].details["role"] == "numeric_feature"
    dataset = next(r for r in results if r.metric == "dataset_drift")
    assert set(dataset.details["drifted"]) == {"normal", "heavy", "flag", "device"}
    assert dataset.value == pytest.approx(4 / (len(NUMERIC) + len(CATEGORICAL)))
    assert {v[c].details["rank"] for c in ("normal", "heavy", "flag", "device")} == {1, 2, 3, 4}


def test_rank_follows_the_size_of_the_move(reference) -> None:
    ref, binnings = reference
    cur = window(binnings, 12, shifts={"normal": 0.2, "skewed": 0.6, "uniform": 1.2})
    v = verdicts(evaluate(ref, cur, ROLES, SETTINGS))
    assert [v[c].details["rank"] for c in ("uniform", "skewed", "normal")] == [1, 2, 3]
    ranks = sorted(r.details["rank"] for r in v.values())
    assert ranks == list(range(1, len(NUMERIC) + len(CATEGORICAL) + 1))
    assert all("rank" not in r.details for r in evaluate(ref, cur, ROLES, SETTINGS) if r.check != "drift" or r.threshold is None)


def test_report_rows_beside_each_verdict_without_duplicates(reference) -> None:
    ref, binnings = reference
    settings = ChecksSettings.model_validate({"drift": {"numeric": "psi", "report": ["ks", "psi", "chi2", "hellinger"]}})
    results = [r for r in evaluate(ref, window(binnings, 13), ROLES, settings) if r.check == "drift" and r.column != ""]
    normal = [r.metric for r in results if r.column == "normal"]
    assert normal == ["psi", "ks", "chi2", "hellinger"]
    device = [r.metric for r in results if r.column == "device"]
    assert device == ["jensen_shannon", "psi", "chi2", "hellinger"]  # ks does not apply to categories
    assert all(r.status is Status.INFO for r in results if r.threshold is None)


def test_small_windows_get_wider_calibrated_thresholds_and_fixed_ones_can_be_gated(reference) -> None:
    ref, binnings = reference
    cur = window(binnings, 14, n=40, shifts={"normal": 0.15})
    calibrated = verdicts(evaluate(ref, cur, ROLES, SETTINGS))["normal"]
    assert calibrated.threshold > 0.15 and calibrated.status is Status.OK  # 40 rows: noise alone moves it this far
    big = verdicts(evaluate(ref, window(binnings, 14, n=5000), ROLES, SETTINGS))["normal"]
    assert big.threshold < calibrated.threshold and big.threshold == pytest.approx(0.1)  # the minimum effect rules there
    fixed = {"drift": {"numeric": {"method": "wasserstein", "threshold": 0.1}}}
    ungated = verdicts(evaluate(ref, cur, ROLES, ChecksSettings.model_validate(fixed)))["normal"]
    assert ungated.status is Status.BREACH and ungated.threshold == 0.1 and ungated.details["threshold_mode"] == "fixed"
    gated = verdicts(evaluate(ref, cur, ROLES, ChecksSettings.model_validate({"drift": {**fixed["drift"], "p_value": 0.01}})))["normal"]
    assert gated.details["beyond_threshold"] and not gated.details["significant"] and gated.status is Status.OK


def test_prediction_and_target_drift_use_the_right_treatment(reference) -> None:
    ref, binnings = reference
    results = evaluate(ref, window(binnings, 15), ROLES, SETTINGS)
    prediction = verdicts(results, "prediction_drift")["score"]
    target = verdicts(results, "target_drift")["label"]
    assert prediction.metric == "wasserstein" and prediction.details["role"] == "prediction"
    assert target.metric == "jensen_shannon" and target.details["threshold_mode"] == "calibrated" and target.details["kind"] == "categorical"
    assert target.details["n_current"] < 5000  # labelled rows only
    assert "ks" not in {r.metric for r in results if r.check == "target_drift"}
    regression = replace(ROLES, prediction_kind="regression")
    target = verdicts(evaluate(ref, window(binnings, 15), regression, ChecksSettings.model_validate({"performance": {"enabled": False}})), "target_drift")["label"]
    assert target.metric == "wasserstein" and target.details["kind"] == "numeric"


def test_other_families_report(reference) -> None:
    ref, binnings = reference
    results = evaluate(ref, window(binnings, 16), ROLES, SETTINGS, KPIS)
    metrics = {(r.check, r.metric) for r in results}
    assert {("latency", m) for m in ("mean", "p50", "p95", "p99", "max")} <= metrics
    assert {("prediction", m) for m in ("mean", "p10", "p50", "p90", "positive_share")} <= metrics
    assert {("performance", m) for m in ("label_coverage", "roc_auc", "accuracy", "log_loss")} <= metrics
    assert ("kpi", "share") in metrics
    assert not [r for r in results if r.check == "quality" and r.column == "label" and r.metric == "missing_share"]
    coverage = next(r for r in results if r.metric == "label_coverage")
    assert coverage.value == pytest.approx(0.7, abs=0.03)


# ----------------------------------------------------------------------------- failures


def _boom(reference, current, settings):
    raise RuntimeError("method exploded")


def test_a_failing_method_becomes_an_error_row_and_the_rest_survives(reference, monkeypatch) -> None:
    ref, binnings = reference
    broken = DriftMethod("boom", frozenset({"numeric", "categorical"}), _boom, 0.1, 0.0, 1.0, True, False, "always fails")
    monkeypatch.setitem(drift.REGISTRY, "boom", broken)
    settings = ChecksSettings.model_validate({"drift": {"columns": {"normal": "boom"}, "report": ["ks", "boom"]}})
    results = evaluate(ref, window(binnings, 17), ROLES, settings)
    errors = [r for r in results if r.status is Status.ERROR]
    assert ("drift", "normal", "boom") in {(r.check, r.column, r.metric) for r in errors}
    assert all("method exploded" in r.details["error"] for r in errors)
    assert_json_safe(results)
    v = verdicts(results)
    assert set(v) == set(NUMERIC + CATEGORICAL) - {"normal"}  # every other verdict is there
    assert all(r.status is Status.OK for r in v.values())
    # the reported extra method failed for every column but left its verdict standing
    assert {r.column for r in errors if r.metric == "boom"} >= set(NUMERIC + CATEGORICAL) - {"normal"}


def test_a_failing_family_becomes_one_error_row(reference, monkeypatch) -> None:
    ref, binnings = reference

    def broken(*args, **kwargs):
        raise ValueError("latency broke")

    monkeypatch.setattr(evaluate_module, "latency_results", broken)
    results = evaluate(ref, window(binnings, 18), ROLES, SETTINGS, KPIS)
    errors = [r for r in results if r.status is Status.ERROR]
    assert [(r.check, r.details["error"]) for r in errors] == [("latency", "ValueError: latency broke")]
    assert {r.check for r in results} == set(CHECKS) - {MULTIVARIATE_DRIFT}  # these profiles carry no PCA errors


def test_a_column_on_a_foreign_binning_is_an_error_for_that_column_only(reference) -> None:
    ref, binnings = reference
    cur = window(binnings, 19)
    foreign = NumericProfile.from_values(np.arange(10.0), NumericBinning(np.array([5.0]), 0, 9))
    cur = replace(cur, columns={**cur.columns, "normal": foreign})
    results = evaluate(ref, cur, ROLES, SETTINGS)
    errors = {(r.check, r.column, r.metric) for r in results if r.status is Status.ERROR}
    assert errors == {("drift", "normal", "wasserstein")}


# ------------------------------------------------------------------------------ no data


def test_an_empty_window_gives_no_data_in_every_family(reference) -> None:
    ref, _ = reference
    results = evaluate(ref, DatasetProfile(rows=0, columns={}), ROLES, SETTINGS, KPIS, segment="eu")
    assert {r.check for r in results} == set(CHECKS) - {MULTIVARIATE_DRIFT}  # these profiles carry no PCA errors
    assert {r.status for r in results} == {Status.NO_DATA}
    assert_json_safe(results)
    assert next(r for r in results if r.metric == "row_count").value == 0.0
    assert {r.segment for r in results} == {"eu"}


def test_a_window_of_empty_profiles_gives_no_data_not_errors(reference) -> None:
    ref, binnings = reference
    nothing = {k: (np.full(3, np.nan) if v.dtype.kind == "f" else np.array([], dtype=str)) for k, v in generate(np.random.default_rng(0), 3).items()}
    results = evaluate(ref, replace(profile(nothing, binnings), rows=3), ROLES, SETTINGS, KPIS)
    assert not [r for r in results if r.status is Status.ERROR]
    assert {r.status for r in results if r.check.endswith("drift")} == {Status.NO_DATA}


def test_missing_columns_are_quality_breaches_and_drift_no_data(reference) -> None:
    ref, binnings = reference
    cur = window(binnings, 20)
    cur = replace(cur, columns={k: v for k, v in cur.columns.items() if k != "plan"}, missing_columns=("plan",))
    results = evaluate(ref, cur, ROLES, SETTINGS)
    assert breaches(results) == {("quality", "plan")}
    assert verdicts(results)["plan"].status is Status.NO_DATA


def test_disabled_families_are_skipped(reference) -> None:
    ref, binnings = reference
    off = ChecksSettings.model_validate({name: {"enabled": False} for name in ("drift", "quality", "latency", "performance")})
    results = evaluate(ref, window(binnings, 21), ROLES, off)
    assert {r.check for r in results} == {"prediction"}


@pytest.mark.parametrize("segment", ["*", "country=de"])
def test_segment_propagates(reference, segment: str) -> None:
    ref, binnings = reference
    results = evaluate(ref, window(binnings, 22), ROLES, SETTINGS, KPIS, segment=segment)
    assert {r.segment for r in results} == {segment}


def test_columns_mapped_on_a_thread_pool_give_the_serial_rows(reference, monkeypatch) -> None:
    """``mapper``: drift's columns calibrated on a pool come back in the columns' order, each the
    same row as one after another, a failing column still an error row of its own; the nulls are
    drawn afresh on both sides (caches cleared) so the threads really draw them."""
    from concurrent.futures import ThreadPoolExecutor

    from checks import calibration

    ref, binnings = reference
    broken = DriftMethod("boom", frozenset({"numeric", "categorical"}), _boom, 0.1, 0.0, 1.0, True, False, "always fails")
    monkeypatch.setitem(drift.REGISTRY, "boom", broken)
    settings = ChecksSettings.model_validate({"drift": {"columns": {"heavy": "boom"}}})
    cur = window(binnings, 23, shifts={"normal": 0.3})
    calibration._NULLS.clear()
    calibration._REFERENCE_DRAWS.clear()
    serial = evaluate(ref, cur, ROLES, settings, KPIS)
    calibration._NULLS.clear()
    calibration._REFERENCE_DRAWS.clear()
    mapped: list[str] = []
    with ThreadPoolExecutor(4) as pool:

        def mapper(fn, items):
            items = list(items)
            mapped.extend(item[1] for item in items)
            return pool.map(fn, items)

        parallel = evaluate(ref, cur, ROLES, settings, KPIS, mapper=mapper)
    assert mapped == [*ROLES.numeric, *ROLES.categorical, ROLES.prediction, ROLES.target]
    assert [(r.check, r.column, r.metric, r.status, r.value, r.threshold, r.details) for r in parallel] == [
        (r.check, r.column, r.metric, r.status, r.value, r.threshold, r.details) for r in serial
    ]
    assert ("drift", "heavy", "boom") in {(r.check, r.column, r.metric) for r in parallel if r.status is Status.ERROR}
    assert ("drift", "normal") in breaches(parallel)
