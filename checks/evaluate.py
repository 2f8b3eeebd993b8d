"""Evaluate one window against its reference: every check family, each failure isolated.

Check names: ``drift`` (features), ``prediction_drift``, ``target_drift``, ``prediction``,
``quality``, ``latency``, ``performance``, ``kpi``. A family or a column that raises becomes an
``error`` row and everything else is still returned; a window without rows yields ``no_data``
rows, never errors or silence.

Drift decision per column (one *verdict* row, metric = the deciding method):

    breach  <=>  effect beyond threshold  AND  (p_value gate off  OR  test p < p_value)

where the test is KS for columns treated as numeric and chi-squared for categorical ones. Large
windows make every p-value tiny, so the effect size is what decides there; small windows make
effect sizes noisy, so the test keeps noise from breaching there. Further methods in
``report`` are stored as ``info`` rows beside the verdict.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from checks import drift as drift_methods
from checks.drift import CATEGORICAL, NUMERIC, DriftMethod, DriftScore, EmptyProfileError
from checks.kpis import KpiSpec, kpi_results
from checks.latency import latency_results
from checks.performance import performance_results
from checks.predictions import prediction_results
from checks.profiles import ColumnProfile, DatasetProfile
from checks.quality import quality_results
from checks.results import ALL, Direction, MetricResult, Status, error_result
from checks.roles import Roles
from checks.settings import ChecksSettings, DriftSettings

DRIFT = "drift"
PREDICTION_DRIFT = "prediction_drift"
TARGET_DRIFT = "target_drift"
CHECKS = (DRIFT, PREDICTION_DRIFT, TARGET_DRIFT, "prediction", "quality", "latency", "performance", "kpi")


def evaluate(
    reference: DatasetProfile,
    current: DatasetProfile,
    roles: Roles,
    settings: ChecksSettings,
    kpis: Sequence[KpiSpec] = (),
    *,
    segment: str = ALL,
) -> list[MetricResult]:
    """Every enabled check of ``current`` against ``reference``; all rows carry ``segment``."""
    families: list[tuple[str, Callable[[], list[MetricResult]]]] = []
    if settings.quality.enabled:
        unlabelled = (roles.target,) if roles.target else ()
        families.append(("quality", lambda: quality_results(reference, current, roles.columns(), settings.quality, unlabelled=unlabelled, segment=segment)))
    if settings.drift.enabled:
        families.append((DRIFT, lambda: drift_results(reference, current, roles, settings.drift, segment=segment)))
    if roles.prediction:
        families.append(("prediction", lambda: _prediction(reference, current, roles, settings, segment)))
    if settings.latency.enabled and roles.latency:
        latency = roles.latency
        families.append(
            ("latency", lambda: latency_results(latency, reference.columns.get(latency), current.columns.get(latency), settings.latency, segment=segment))
        )
    if settings.performance.enabled and roles.prediction and roles.target:
        families.append(("performance", lambda: performance_results(reference, current, roles, settings.performance, segment=segment)))
    if kpis:
        families.append(("kpi", lambda: kpi_results(reference, current, tuple(kpis), segment=segment)))

    results: list[MetricResult] = []
    for family, run in families:
        try:
            results.extend(run())
        except Exception as exc:  # one broken family must not cost the others
            results.append(error_result(family, "", "", exc, segment))
    return [_json_safe(r if r.segment == segment else r.with_segment(segment)) for r in results]


def _json_safe(result: MetricResult) -> MetricResult:
    """Details go to a JSON column: numpy scalars become Python numbers, NaN/inf become None."""

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, float) and not math.isfinite(value):
            return None
        return value

    return replace(result, details=clean(result.details))


def _prediction(reference: DatasetProfile, current: DatasetProfile, roles: Roles, settings: ChecksSettings, segment: str) -> list[MetricResult]:
    assert roles.prediction is not None
    return prediction_results(
        roles.prediction,
        current.columns.get(roles.prediction),
        roles.prediction_kind,
        decision_threshold=settings.performance.threshold,
        segment=segment,
    )


# ---------------------------------------------------------------------------------- drift


def drift_results(
    reference: DatasetProfile, current: DatasetProfile, roles: Roles, settings: DriftSettings, *, segment: str = ALL
) -> list[MetricResult]:
    """Verdict and report rows of every feature, the prediction and the target, each column
    isolated; the feature verdicts ranked by how far past their threshold they moved."""
    columns: list[tuple[str, str, str, str | None]] = []  # (check, column, role, treat as)
    columns += [(DRIFT, c, "numeric_feature", None) for c in roles.numeric]
    columns += [(DRIFT, c, "categorical_feature", None) for c in roles.categorical]
    if roles.prediction:
        columns.append((PREDICTION_DRIFT, roles.prediction, "prediction", None))
    if roles.target:
        # Labels of probability and class models are classes, whatever type the column has.
        treat = None if roles.prediction_kind is None else (NUMERIC if roles.prediction_kind == "regression" else CATEGORICAL)
        columns.append((TARGET_DRIFT, roles.target, "target", treat))
    results: list[MetricResult] = []
    for check, column, role, treat in columns:
        try:
            results.extend(drift_column(check, column, role, reference.columns.get(column), current.columns.get(column), settings, treat_as=treat, segment=segment))
        except Exception as exc:
            results.append(error_result(check, column, _method_name(settings, column, reference.columns.get(column), treat), exc, segment))
    return rank(results)


def _method_name(settings: DriftSettings, column: str, reference: ColumnProfile | None, treat_as: str | None) -> str:
    """The deciding method's name for an error row, when it can be told."""
    if column in settings.columns:
        return settings.columns[column].method
    if reference is None:
        return ""
    kind = treat_as if treat_as and reference.kind == NUMERIC else reference.kind
    return settings.choice_for(column, kind).method


def drift_column(
    check: str,
    column: str,
    role: str,
    reference: ColumnProfile | None,
    current: ColumnProfile | None,
    settings: DriftSettings,
    *,
    treat_as: str | None = None,
    segment: str = ALL,
) -> list[MetricResult]:
    """The verdict row of one column plus one info row per further ``report`` method."""
    if reference is None:
        raise ValueError(f"the reference has no profile of column {column!r}")
    kind = treat_as or reference.kind
    if kind == NUMERIC and reference.kind != NUMERIC:
        kind = CATEGORICAL  # a categorical profile can only be compared as categories
    choice = settings.choice_for(column, kind)
    method = choice.spec
    if not method.supports(reference.kind):
        raise ValueError(f"{method.name} does not apply to the {reference.kind} column {column!r}")
    threshold = choice.effective_threshold
    base: dict[str, Any] = {"role": role, "kind": kind}

    def no_data(reason: str) -> list[MetricResult]:
        return [MetricResult(check, column, method.name, None, Status.NO_DATA, threshold, method.direction, segment, {**base, "reason": reason})]

    if current is None:
        return no_data("the window has no profile of this column")
    try:
        score = method.compute(reference, current, settings)
    except EmptyProfileError as exc:
        return no_data(str(exc))

    scores: dict[str, DriftScore] = {method.name: score}
    test_name = drift_methods.significance_test(kind)
    test_p: float | None = None
    if settings.p_value is not None:
        if test_name not in scores:
            scores[test_name] = drift_methods.REGISTRY[test_name].compute(reference, current, settings)
        test_p = scores[test_name].p_value

    value = method.value(score)
    beyond = _beyond(value, threshold, method.direction)
    significant = settings.p_value is None or (test_p is not None and test_p < settings.p_value)
    details = {
        **score.details,
        **base,
        "statistic": score.statistic,
        "test": test_name if settings.p_value is not None else None,
        "p_value": test_p,
        "p_value_max": settings.p_value,
        "beyond_threshold": beyond,
        "significant": significant,
        "severity": severity(value, threshold, method.direction),
    }
    if method.is_test:
        details["method_p_value"] = score.p_value
    status = Status.BREACH if beyond and significant else Status.OK
    results = [MetricResult(check, column, method.name, value, status, threshold, method.direction, segment, details)]

    for name in settings.report:
        extra = drift_methods.REGISTRY[name]
        if name == method.name or not (extra.supports(kind) and extra.supports(reference.kind)):
            continue
        try:
            extra_score = scores.get(name) or extra.compute(reference, current, settings)
            results.append(_info_row(check, column, extra, extra_score, segment, base))
        except Exception as exc:
            results.append(error_result(check, column, name, exc, segment))
    return results


def _info_row(check: str, column: str, method: DriftMethod, score: DriftScore, segment: str, base: dict[str, Any]) -> MetricResult:
    details = {**score.details, **base, "statistic": score.statistic, "p_value": score.p_value}
    value = method.value(score)
    status = Status.INFO if math.isfinite(value) else Status.NO_DATA
    return MetricResult(check, column, method.name, value, status, None, method.direction, segment, details)


def _beyond(value: float, threshold: float, direction: Direction) -> bool:
    if not math.isfinite(value):
        return False
    return value > threshold if direction is Direction.MAX else value < threshold


def severity(value: float, threshold: float, direction: Direction) -> float:
    """How far past its threshold a value is, comparable across methods: 1 at the threshold,
    above 1 beyond it. Effect sizes: value / threshold. p-values: log(p) / log(threshold)."""
    if not math.isfinite(value):
        return float("nan")
    if direction is Direction.MAX:
        return value / threshold if threshold > 0 else (math.inf if value > 0 else 0.0)
    tiny = 1e-300  # p-values underflow to 0 in huge windows
    return math.log(max(value, tiny)) / math.log(threshold) if 0 < threshold < 1 else float("nan")


def rank(results: list[MetricResult]) -> list[MetricResult]:
    """Give the ``drift`` check's verdict rows ``details["rank"]`` (1 = moved most), by severity,
    ties broken by column name."""
    verdicts = [
        (i, r)
        for i, r in enumerate(results)
        if r.check == DRIFT and r.threshold is not None and r.status in (Status.OK, Status.BREACH) and math.isfinite(r.details.get("severity", math.nan))
    ]
    ordered = sorted(verdicts, key=lambda ir: (-ir[1].details["severity"], ir[1].column))
    out = list(results)
    for position, (i, r) in enumerate(ordered, start=1):
        out[i] = replace(r, details={**r.details, "rank": position})
    return out
