"""Performance metrics against scikit-learn, and the performance check's thresholds."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as sk

from checks import performance as perf
from checks.profiles import BinaryPerformance, ClassPerformance, DatasetProfile, RegressionPerformance
from checks.results import Direction, Status
from checks.roles import Roles
from checks.settings import PerformanceSettings

BINARY_ROLES = Roles(prediction="p", prediction_kind="probability", target="y")


def grid_scores(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores on the 1000-bin grid (k / 1000), labels correlated with them."""
    scores = rng.integers(1, 1000, n) / 1000
    labels = (rng.random(n) < scores).astype(np.float64)
    return scores, labels


def test_binary_metrics_equal_sklearn() -> None:
    scores, labels = grid_scores(np.random.default_rng(0), 3000)
    p = BinaryPerformance.from_arrays(scores, labels, threshold=0.5)
    predicted = (scores >= 0.5).astype(int)
    assert perf.binary_accuracy(p) == pytest.approx(sk.accuracy_score(labels, predicted))
    assert perf.binary_precision(p) == pytest.approx(sk.precision_score(labels, predicted))
    assert perf.binary_recall(p) == pytest.approx(sk.recall_score(labels, predicted))
    assert perf.binary_f1(p) == pytest.approx(sk.f1_score(labels, predicted))
    assert perf.roc_auc(p) == pytest.approx(sk.roc_auc_score(labels, scores), rel=1e-12)  # exact on the grid
    assert perf.log_loss(p) == pytest.approx(sk.log_loss(labels, scores))
    assert perf.brier(p) == pytest.approx(sk.brier_score_loss(labels, scores))


def test_roc_auc_off_the_grid_is_within_the_tie_share() -> None:
    rng = np.random.default_rng(1)
    scores = rng.random(5000)
    labels = (rng.random(5000) < scores).astype(float)
    assert perf.roc_auc(BinaryPerformance.from_arrays(scores, labels)) == pytest.approx(sk.roc_auc_score(labels, scores), abs=2e-3)


def test_binary_edge_cases_follow_sklearn_zero_division() -> None:
    p = BinaryPerformance.from_arrays(np.array([0.1, 0.2, 0.3]), np.array([0.0, 1.0, 0.0]))
    assert perf.binary_precision(p) == sk.precision_score([0, 1, 0], [0, 0, 0], zero_division=0) == 0.0
    assert np.isnan(perf.roc_auc(BinaryPerformance.from_arrays(np.array([0.4, 0.6]), np.array([1.0, 1.0]))))


def test_class_metrics_equal_sklearn_macro() -> None:
    rng = np.random.default_rng(2)
    true = rng.choice(["a", "b", "c", "d"], 2000, p=[0.4, 0.3, 0.2, 0.1])
    predicted = np.where(rng.random(2000) < 0.7, true, rng.choice(["a", "b", "c", "e"], 2000))
    pairs: dict[tuple[str, str], int] = {}
    for t, q in zip(true, predicted):
        pairs[(t, q)] = pairs.get((t, q), 0) + 1
    p = ClassPerformance.from_pairs(pairs)
    assert perf.class_accuracy(p) == pytest.approx(sk.accuracy_score(true, predicted))
    assert perf.class_precision(p) == pytest.approx(sk.precision_score(true, predicted, average="macro", zero_division=0))
    assert perf.class_recall(p) == pytest.approx(sk.recall_score(true, predicted, average="macro", zero_division=0))
    assert perf.class_f1(p) == pytest.approx(sk.f1_score(true, predicted, average="macro", zero_division=0))


def test_regression_metrics_equal_sklearn() -> None:
    rng = np.random.default_rng(3)
    y = rng.normal(50, 10, 1000)
    pred = y + rng.normal(1, 5, 1000)
    p = RegressionPerformance.from_arrays(pred, y)
    assert perf.mae(p) == pytest.approx(sk.mean_absolute_error(y, pred))
    assert perf.rmse(p) == pytest.approx(np.sqrt(sk.mean_squared_error(y, pred)))
    assert perf.r2(p) == pytest.approx(sk.r2_score(y, pred), rel=1e-9)
    assert perf.bias(p) == pytest.approx(np.mean(pred - y))
    assert np.isnan(perf.r2(RegressionPerformance.from_arrays(np.array([1.0, 2.0]), np.array([3.0, 3.0]))))


def test_every_registered_metric_has_limits_and_a_direction() -> None:
    assert {m.name for m in perf.metrics_for("binary")} == {"accuracy", "precision", "recall", "f1", "roc_auc", "log_loss", "brier"}
    assert {m.name for m in perf.metrics_for("class")} == {"accuracy", "precision", "recall", "f1"}
    assert {m.name for m in perf.metrics_for("regression")} == {"mae", "rmse", "r2", "bias"}
    for metric in perf.METRICS.values():
        assert metric.lower_limit < metric.upper_limit and metric.description


# ------------------------------------------------------------------------------ the check


def dataset(performance, rows: int | None = None) -> DatasetProfile:
    return DatasetProfile(rows=rows if rows is not None else performance.n, columns={}, performance=performance)


def by_metric(results):
    return {r.metric: r for r in results}


def test_performance_check_drop_against_the_reference() -> None:
    rng = np.random.default_rng(4)
    ref = BinaryPerformance.from_arrays(*grid_scores(rng, 2000))
    noisy_scores, labels = grid_scores(rng, 2000)
    noisy = BinaryPerformance.from_arrays(np.where(rng.random(2000) < 0.5, rng.integers(0, 1000, 2000) / 1000, noisy_scores), labels)
    rows = by_metric(perf.performance_results(dataset(ref), dataset(noisy, rows=4000), BINARY_ROLES, PerformanceSettings()))
    auc = rows["roc_auc"]
    assert auc.status is Status.BREACH and auc.direction is Direction.MIN
    assert auc.threshold == pytest.approx(perf.roc_auc(ref) - 0.05)
    assert auc.details["bound"] == "max_drop" and auc.details["reference"] == pytest.approx(perf.roc_auc(ref))
    assert rows["label_coverage"].value == 0.5 and rows["label_coverage"].status is Status.INFO
    assert rows["accuracy"].status is Status.INFO  # no threshold by default


def test_performance_check_absolute_bounds_take_the_tightest() -> None:
    rng = np.random.default_rng(5)
    p = BinaryPerformance.from_arrays(*grid_scores(rng, 1000))
    settings = PerformanceSettings(min={"roc_auc": 0.99}, max={"log_loss": 10.0}, max_drop={})
    rows = by_metric(perf.performance_results(dataset(p), dataset(p), BINARY_ROLES, settings))
    assert rows["roc_auc"].status is Status.BREACH and rows["roc_auc"].details["bound"] == "min"
    assert rows["log_loss"].status is Status.OK and rows["log_loss"].threshold == 10.0


def test_regression_rmse_rise_ratio() -> None:
    rng = np.random.default_rng(6)
    y = rng.normal(size=500)
    ref = RegressionPerformance.from_arrays(y + rng.normal(0, 1, 500), y)
    cur = RegressionPerformance.from_arrays(y + rng.normal(0, 1.5, 500), y)
    roles = Roles(prediction="p", prediction_kind="regression", target="y")
    rows = by_metric(perf.performance_results(dataset(ref), dataset(cur), roles, PerformanceSettings()))
    assert rows["rmse"].status is Status.BREACH
    assert rows["rmse"].threshold == pytest.approx(perf.rmse(ref) * 1.2)
    assert rows["r2"].status is Status.INFO


def test_few_labels_give_no_data_and_a_thin_reference_is_not_used() -> None:
    rng = np.random.default_rng(7)
    small = BinaryPerformance.from_arrays(*grid_scores(rng, 50))
    big = BinaryPerformance.from_arrays(*grid_scores(rng, 500))
    rows = perf.performance_results(dataset(big), dataset(small, rows=1000), BINARY_ROLES, PerformanceSettings())
    assert {r.status for r in rows if r.metric != "label_coverage"} == {Status.NO_DATA}
    assert by_metric(rows)["label_coverage"].value == 0.05
    rows = by_metric(perf.performance_results(dataset(small), dataset(big), BINARY_ROLES, PerformanceSettings()))
    assert "reference" not in rows["roc_auc"].details and rows["roc_auc"].status is Status.INFO


def test_no_labels_yet() -> None:
    rows = perf.performance_results(DatasetProfile(10, {}), DatasetProfile(200, {}), BINARY_ROLES, PerformanceSettings())
    assert by_metric(rows)["label_coverage"].value == 0.0
    assert {r.status for r in rows if r.metric != "label_coverage"} == {Status.NO_DATA}
