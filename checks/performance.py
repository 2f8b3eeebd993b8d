"""Model performance from mergeable performance profiles: one pure function + one registration
per metric, then the ``performance`` check.

Class-model precision, recall and F1 are macro averages over every class seen as a label or a
prediction; a class never predicted (or never true) scores 0 there, as scikit-learn's
``zero_division=0`` does.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from checks.bounds import Bound, judge_bounds, tightest_ceiling, tightest_floor
from checks.profiles import BinaryPerformance, ClassPerformance, DatasetProfile, Performance, RegressionPerformance
from checks.results import ALL, MetricResult, Status, error_result
from checks.roles import Roles

if TYPE_CHECKING:
    from checks.settings import PerformanceSettings

CHECK = "performance"
Kind = Literal["binary", "class", "regression"]
Better = Literal["higher", "lower", "neither"]


@dataclass(frozen=True)
class PerformanceMetric:
    name: str
    kind: Kind  # the Performance profile it reads
    compute: Callable[[Any], float]
    better: Better
    lower_limit: float
    upper_limit: float
    description: str


METRICS: dict[tuple[str, str], PerformanceMetric] = {}


def register_metric(
    name: str, kind: Kind, compute: Callable[[Any], float], *, better: Better, lower_limit: float, upper_limit: float, description: str
) -> PerformanceMetric:
    if (kind, name) in METRICS:
        raise ValueError(f"performance metric {name!r} for {kind} models is already registered")
    metric = PerformanceMetric(name, kind, compute, better, lower_limit, upper_limit, description)
    METRICS[(kind, name)] = metric
    return metric


def metrics_for(kind: str) -> list[PerformanceMetric]:
    return [m for (k, _), m in METRICS.items() if k == kind]


def metric_names(better: Better | None = None) -> list[str]:
    """Every registered metric name (of any model kind), optionally only those where
    ``better`` is higher or lower."""
    return sorted({m.name for m in METRICS.values() if better is None or m.better == better})


def metric_limits(name: str) -> tuple[float, float]:
    found = [(m.lower_limit, m.upper_limit) for m in METRICS.values() if m.name == name]
    return min(lo for lo, _ in found), max(hi for _, hi in found)


def _ratio(numerator: float, denominator: float, empty: float = float("nan")) -> float:
    return numerator / denominator if denominator else empty


# ------------------------------------------------------------------- probability models


def binary_accuracy(p: BinaryPerformance) -> float:
    return _ratio(p.tp + p.tn, p.n)


def binary_precision(p: BinaryPerformance) -> float:
    return _ratio(p.tp, p.tp + p.fp, 0.0) if p.n else float("nan")


def binary_recall(p: BinaryPerformance) -> float:
    return _ratio(p.tp, p.tp + p.fn, 0.0) if p.n else float("nan")


def binary_f1(p: BinaryPerformance) -> float:
    return _ratio(2 * p.tp, 2 * p.tp + p.fp + p.fn, 0.0) if p.n else float("nan")


def roc_auc(p: BinaryPerformance) -> float:
    """P(score of a positive > score of a negative) + half the ties, from the score histograms:
    exact when scores lie on the grid, else pairs within one grid bin count as ties."""
    pos = p.positive_hist.astype(np.float64)
    neg = p.negative_hist.astype(np.float64)
    n_pos, n_neg = pos.sum(), neg.sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")  # undefined with one class only
    below = np.cumsum(neg) - neg
    return float(np.sum(pos * (below + neg / 2.0)) / (n_pos * n_neg))


def log_loss(p: BinaryPerformance) -> float:
    return _ratio(p.log_loss_sum, p.n)


def brier(p: BinaryPerformance) -> float:
    return _ratio(p.brier_sum, p.n)


register_metric("accuracy", "binary", binary_accuracy, better="higher", lower_limit=0, upper_limit=1, description="Share of labels predicted right at the decision threshold.")
register_metric("precision", "binary", binary_precision, better="higher", lower_limit=0, upper_limit=1, description="Share of predicted positives that are positive.")
register_metric("recall", "binary", binary_recall, better="higher", lower_limit=0, upper_limit=1, description="Share of positives predicted positive.")
register_metric("f1", "binary", binary_f1, better="higher", lower_limit=0, upper_limit=1, description="Harmonic mean of precision and recall.")
register_metric("roc_auc", "binary", roc_auc, better="higher", lower_limit=0, upper_limit=1, description="Area under the ROC curve (threshold-free ranking quality).")
register_metric("log_loss", "binary", log_loss, better="lower", lower_limit=0, upper_limit=math.inf, description="Mean negative log-likelihood of the labels (scores clipped to [1e-15, 1 - 1e-15]).")
register_metric("brier", "binary", brier, better="lower", lower_limit=0, upper_limit=1, description="Mean squared error of the probabilities.")


# ------------------------------------------------------------------------ class models


def _confusion(p: ClassPerformance) -> np.ndarray:
    labels = sorted({t for t, _ in p.confusion} | {q for _, q in p.confusion})
    index = {label: i for i, label in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), dtype=np.float64)
    for (true, predicted), n in p.confusion.items():  # O(classes**2), not per row
        matrix[index[true], index[predicted]] += n
    return matrix


def class_accuracy(p: ClassPerformance) -> float:
    m = _confusion(p)
    return _ratio(float(np.trace(m)), float(m.sum()))


def _per_class(p: ClassPerformance) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    m = _confusion(p)
    return np.diag(m), m.sum(axis=0), m.sum(axis=1)  # true positives, predicted, true


def _macro(numerator: np.ndarray, denominator: np.ndarray) -> float:
    if numerator.size == 0:
        return float("nan")
    per_class = np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0)
    return float(per_class.mean())


def class_precision(p: ClassPerformance) -> float:
    tp, predicted, _ = _per_class(p)
    return _macro(tp, predicted)


def class_recall(p: ClassPerformance) -> float:
    tp, _, true = _per_class(p)
    return _macro(tp, true)


def class_f1(p: ClassPerformance) -> float:
    tp, predicted, true = _per_class(p)
    return _macro(2 * tp, predicted + true)


register_metric("accuracy", "class", class_accuracy, better="higher", lower_limit=0, upper_limit=1, description="Share of labels predicted right.")
register_metric("precision", "class", class_precision, better="higher", lower_limit=0, upper_limit=1, description="Macro-averaged precision over classes.")
register_metric("recall", "class", class_recall, better="higher", lower_limit=0, upper_limit=1, description="Macro-averaged recall over classes.")
register_metric("f1", "class", class_f1, better="higher", lower_limit=0, upper_limit=1, description="Macro-averaged F1 over classes.")


# ------------------------------------------------------------------- regression models


def mae(p: RegressionPerformance) -> float:
    return _ratio(p.sum_abs_error, p.n)


def rmse(p: RegressionPerformance) -> float:
    return math.sqrt(p.sum_sq_error / p.n) if p.n else float("nan")


def r2(p: RegressionPerformance) -> float:
    """1 - SSE/SST; undefined (NaN, reported as no_data) when the targets are constant."""
    if p.n == 0:
        return float("nan")
    sst = p.sum_y2 - p.sum_y * p.sum_y / p.n
    if sst <= 1e-12 * max(p.sum_y2, 1e-300):
        return float("nan")
    return 1.0 - p.sum_sq_error / sst


def bias(p: RegressionPerformance) -> float:
    return _ratio(p.sum_error, p.n)


register_metric("mae", "regression", mae, better="lower", lower_limit=0, upper_limit=math.inf, description="Mean absolute error.")
register_metric("rmse", "regression", rmse, better="lower", lower_limit=0, upper_limit=math.inf, description="Root mean squared error.")
register_metric("r2", "regression", r2, better="higher", lower_limit=-math.inf, upper_limit=1, description="Coefficient of determination.")
register_metric("bias", "regression", bias, better="neither", lower_limit=-math.inf, upper_limit=math.inf, description="Mean of prediction - target (positive: over-predicting).")


# ---------------------------------------------------------------------------- the check

KIND_OF_PREDICTION = {"probability": "binary", "class": "class", "regression": "regression"}


def auc_standard_error(auc: float, n_pos: int, n_neg: int) -> float:
    """Hanley & McNeil (1982): the standard error of an empirical ROC AUC.

    >>> round(auc_standard_error(0.75, 100, 400), 4)
    0.03
    """
    q1 = auc / (2.0 - auc)
    q2 = 2.0 * auc * auc / (1.0 + auc)
    variance = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc * auc) + (n_neg - 1) * (q2 - auc * auc)) / (n_pos * n_neg)
    return math.sqrt(max(variance, 0.0))


def _standard_error(name: str, perf: Performance, value: float) -> float | None:
    """Hanley-McNeil for ROC AUC; binomial for a share of known size (accuracy, and for binary
    models precision and recall). Macro averages of class models have none here."""
    if isinstance(perf, BinaryPerformance):
        if name == "roc_auc":
            n_pos, n_neg = int(perf.positive_hist.sum()), int(perf.negative_hist.sum())
            return auc_standard_error(value, n_pos, n_neg) if n_pos and n_neg else None
        n = {"accuracy": perf.n, "precision": perf.tp + perf.fp, "recall": perf.tp + perf.fn}.get(name, 0)
    elif isinstance(perf, ClassPerformance) and name == "accuracy":
        n = perf.n
    else:
        return None
    return math.sqrt(value * (1 - value) / n) if n and 0.0 <= value <= 1.0 else None


def change_p_value(name: str, perf: Performance, ref_perf: Performance | None, value: float, reference_value: float | None) -> float | None:
    """One-sided p-value that the window is worse than the reference by chance alone (a z-test
    on the two standard errors); None for metrics without a standard error here."""
    if ref_perf is None or reference_value is None:
        return None
    se = _standard_error(name, perf, value)
    se_ref = _standard_error(name, ref_perf, reference_value)
    if se is None or se_ref is None or se + se_ref == 0:
        return None
    z = abs(reference_value - value) / math.sqrt(se * se + se_ref * se_ref)
    return float(0.5 * math.erfc(z / math.sqrt(2.0)))


def default_max_drop(kind: str) -> dict[str, float]:
    return {"binary": {"roc_auc": 0.05}, "class": {"accuracy": 0.05}}.get(kind, {})


def default_max_increase_ratio(kind: str) -> dict[str, float]:
    return {"rmse": 0.2} if kind == "regression" else {}


def _kind(roles: Roles, reference: DatasetProfile, current: DatasetProfile) -> str | None:
    if roles.prediction_kind is not None:
        return KIND_OF_PREDICTION[roles.prediction_kind]
    for profile in (current, reference):
        if profile.performance is not None:
            return profile.performance.kind
    return None


def performance_results(
    reference: DatasetProfile, current: DatasetProfile, roles: Roles, settings: PerformanceSettings, *, segment: str = ALL
) -> list[MetricResult]:
    """``label_coverage`` (info) and each metric of the model's kind, judged against the absolute
    ``min``/``max`` and against the reference's value of the same metric (``max_drop`` for
    higher-is-better metrics, ``max_increase_ratio`` for errors). The reference's value is used
    only when the reference has at least ``min_labels`` labelled rows."""
    column = roles.target or ""
    kind = _kind(roles, reference, current)
    perf: Performance | None = current.performance
    labelled = perf.n if perf is not None else 0
    coverage = labelled / current.rows if current.rows else None
    results = [
        MetricResult(
            CHECK,
            column,
            "label_coverage",
            coverage,
            Status.INFO if coverage is not None else Status.NO_DATA,
            segment=segment,
            details={"labelled": labelled, "rows": current.rows} if coverage is not None else {"reason": "the window is empty"},
        )
    ]
    if kind is None:
        return results
    if perf is not None and perf.kind != kind:
        raise ValueError(f"the window's performance profile is {perf.kind!r} but the prediction kind is {kind!r}")
    ref_perf = reference.performance if reference.performance is not None and reference.performance.kind == kind else None
    ref_usable = ref_perf is not None and ref_perf.n >= settings.min_labels
    max_drop = settings.max_drop if settings.max_drop is not None else default_max_drop(kind)
    max_increase = settings.max_increase_ratio if settings.max_increase_ratio is not None else default_max_increase_ratio(kind)
    enough = perf is not None and labelled >= settings.min_labels
    for metric in metrics_for(kind):
        try:
            results.append(
                _judge_metric(metric, perf if enough else None, ref_perf if ref_usable else None, settings, max_drop, max_increase, column, segment, labelled)
            )
        except Exception as exc:  # one metric failing leaves the others
            results.append(error_result(CHECK, column, metric.name, exc, segment))
    return results


def _judge_metric(
    metric: PerformanceMetric,
    perf: Performance | None,
    ref_perf: Performance | None,
    settings: PerformanceSettings,
    max_drop: dict[str, float],
    max_increase: dict[str, float],
    column: str,
    segment: str,
    labelled: int,
) -> MetricResult:
    details: dict[str, Any] = {"labelled": labelled}
    if perf is None:
        details["reason"] = f"fewer than min_labels={settings.min_labels} labelled rows"
        return MetricResult(CHECK, column, metric.name, None, Status.NO_DATA, segment=segment, details=details)
    value = metric.compute(perf)
    if isinstance(perf, BinaryPerformance):
        details["decision_threshold"] = perf.threshold
    if isinstance(perf, ClassPerformance) and metric.name != "accuracy":
        details["average"] = "macro"
    reference_value = metric.compute(ref_perf) if ref_perf is not None else None
    if reference_value is not None and math.isfinite(reference_value):
        details["reference"] = reference_value
    else:
        reference_value = None
    floors = [Bound(settings.min[metric.name], "min") if metric.name in settings.min else None]
    ceilings = [Bound(settings.max[metric.name], "max") if metric.name in settings.max else None]
    if reference_value is not None and metric.name in max_drop:
        floors.append(Bound(reference_value - max_drop[metric.name], "max_drop"))
    if reference_value is not None and metric.name in max_increase:
        ceilings.append(Bound(reference_value * (1.0 + max_increase[metric.name]), "max_increase_ratio"))
    bounds = {b.source: b.value for b in (*floors, *ceilings) if b is not None}
    if bounds:
        details["bounds"] = bounds
    status, threshold, direction, extra = judge_bounds(value, tightest_floor(floors), tightest_ceiling(ceilings))
    if status is Status.BREACH and extra.get("bound") in ("max_drop", "max_increase_ratio") and settings.p_value is not None:
        # A window of a few hundred labels moves ROC AUC by several points by chance alone: a
        # breach relative to the reference must also be a change the labels can support.
        p_value = change_p_value(metric.name, perf, ref_perf, value, reference_value)
        if p_value is not None:
            extra["p_value"] = p_value
            extra["significant"] = p_value < settings.p_value
            if not extra["significant"]:
                status = Status.OK
    if status is Status.NO_DATA:
        extra["reason"] = f"{metric.name} is undefined on this window (e.g. labels of one class only)"
    return MetricResult(CHECK, column, metric.name, value, status, threshold, direction, segment, {**details, **extra})
