"""Evaluate one window against its reference: every check family, each failure isolated.

Check names: ``drift`` (features), ``prediction_drift``, ``target_drift``, ``prediction``,
``quality``, ``latency``, ``performance``, ``kpi``. A family or a column that raises becomes an
``error`` row and everything else is still returned; a window without rows yields ``no_data``
rows, never errors or silence.

Drift decision per column (one *verdict* row, metric = the deciding method):

* an effect size with no explicit ``threshold`` (the default) is **calibrated**
  (:mod:`checks.calibration`): it breaches above ``max(min_effect, null quantile at 1 -
  false_alarm_rate for the window's size + the reference's own window-to-window excess)``;
* a test (ks, chi2, z_test, anderson_darling, cramer_von_mises) breaches when its p-value is below
  its ``threshold``, by default ``false_alarm_rate``;
* an explicit ``threshold`` on an effect size is fixed: it breaches above it;
* with ``p_value`` set, a breach also needs the column's test (KS for numeric, chi-squared for
  categorical) below it.

Each verdict carries the column's p-value (the calibrated null's for effect sizes) and its
``rank`` among the features by severity (value / threshold). The *run-level verdict* is one more
row, ``drift/dataset_drift`` on column ``""`` (no one column, like quality's row_count): Benjamini-Hochberg over the features' p-values at
false-discovery rate ``false_alarm_rate``; the dataset drifts when some feature is a discovery *and*
past its minimum effect (or fixed threshold). When no feature changed, this is Simes' global test,
so a healthy window raises it with probability at most ``false_alarm_rate`` however many columns
are tested. Further methods in ``report`` are stored as ``info`` rows beside the verdict.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from checks import drift as drift_methods
from checks.calibration import Mapper, ReferenceVariation, benjamini_hochberg, null_distribution
from checks.drift import CATEGORICAL, NUMERIC, DriftMethod, DriftScore, EmptyProfileError
from checks.kpis import KpiSpec, kpi_results
from checks.multivariate import EmptyWindowError, multivariate_drift
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
MULTIVARIATE_DRIFT = "multivariate_drift"
CHECKS = (DRIFT, PREDICTION_DRIFT, TARGET_DRIFT, MULTIVARIATE_DRIFT, "prediction", "quality", "latency", "performance", "kpi")
DATASET_COLUMN = ""
"""Run-level rows (the dataset verdict, multivariate drift) are about no one column, like quality's row_count."""


def evaluate(
    reference: DatasetProfile,
    current: DatasetProfile,
    roles: Roles,
    settings: ChecksSettings,
    kpis: Sequence[KpiSpec] = (),
    *,
    segment: str = ALL,
    variation: ReferenceVariation | None = None,
    mapper: Mapper = map,
) -> list[MetricResult]:
    """Every enabled check of ``current`` against ``reference``; all rows carry ``segment``.
    ``variation``: what the reference's own windows showed (widens calibrated drift thresholds).
    ``mapper``: how drift's columns are mapped (a thread pool's ``map`` calibrates them in
    parallel; see :data:`checks.calibration.Mapper`)."""
    families: list[tuple[str, Callable[[], list[MetricResult]]]] = []
    if settings.quality.enabled:
        unlabelled = (roles.target,) if roles.target else ()
        families.append(("quality", lambda: quality_results(reference, current, roles.columns(), settings.quality, unlabelled=unlabelled, segment=segment)))
    if settings.drift.enabled:
        families.append((DRIFT, lambda: drift_results(reference, current, roles, settings.drift, segment=segment, variation=variation, mapper=mapper)))
    if settings.multivariate.enabled and reference.multivariate is not None:
        families.append((MULTIVARIATE_DRIFT, lambda: multivariate_results(reference, current, settings, variation, segment)))
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


# --------------------------------------------------------------------------- multivariate

MULTIVARIATE_METRIC = "pca_reconstruction_error"


def multivariate_results(
    reference: DatasetProfile, current: DatasetProfile, settings: ChecksSettings, variation: ReferenceVariation | None, segment: str
) -> list[MetricResult]:
    """The PCA reconstruction error of the window against the reference's (one row, column ``""``)."""
    assert reference.multivariate is not None
    mv = settings.multivariate

    def row(value: float | None, status: Status, threshold: float | None, details: dict[str, Any]) -> list[MetricResult]:
        return [MetricResult(MULTIVARIATE_DRIFT, DATASET_COLUMN, MULTIVARIATE_METRIC, value, status, threshold, Direction.MAX, segment, details)]

    if current.multivariate is None or current.multivariate.count == 0:
        return row(None, Status.NO_DATA, None, {"reason": "the window has no rows to reconstruct"})
    chunks = variation.multivariate_chunks if variation is not None else ()
    try:
        verdict = multivariate_drift(
            reference.multivariate, chunks, current.multivariate, false_alarm_rate=mv.false_alarm_rate, min_effect=mv.min_effect
        )
    except EmptyWindowError as exc:
        return row(None, Status.NO_DATA, None, {"reason": str(exc)})
    details = {**verdict.details, "severity": verdict.value / verdict.threshold if verdict.threshold else None}
    return row(verdict.value, Status.BREACH if verdict.breach else Status.OK, verdict.threshold, details)


# ---------------------------------------------------------------------------------- drift


def drift_results(
    reference: DatasetProfile,
    current: DatasetProfile,
    roles: Roles,
    settings: DriftSettings,
    *,
    segment: str = ALL,
    variation: ReferenceVariation | None = None,
    mapper: Mapper = map,
) -> list[MetricResult]:
    """Verdict and report rows of every feature, the prediction and the target, each column
    isolated; the feature verdicts ranked by how far past their threshold they moved, and the
    run-level verdict over the features. ``mapper`` maps the columns (see :func:`evaluate`)."""
    columns: list[tuple[str, str, str, str | None]] = []  # (check, column, role, treat as)
    columns += [(DRIFT, c, "numeric_feature", None) for c in roles.numeric]
    columns += [(DRIFT, c, "categorical_feature", None) for c in roles.categorical]
    if roles.prediction:
        columns.append((PREDICTION_DRIFT, roles.prediction, "prediction", None))
    if roles.target:
        # Labels of probability and class models are classes, whatever type the column has.
        treat = None if roles.prediction_kind is None else (NUMERIC if roles.prediction_kind == "regression" else CATEGORICAL)
        columns.append((TARGET_DRIFT, roles.target, "target", treat))

    def one(item: tuple[str, str, str, str | None]) -> list[MetricResult]:
        check, column, role, treat = item
        method = _method_name(settings, column, reference.columns.get(column), treat)
        excess = variation.excess_for(column, method) if variation is not None else None
        try:
            return drift_column(
                check, column, role, reference.columns.get(column), current.columns.get(column), settings,
                treat_as=treat, segment=segment, excess=excess,
            )  # fmt: skip
        except Exception as exc:
            return [error_result(check, column, method, exc, segment)]

    results = [row for rows in mapper(one, columns) for row in rows]
    ranked = rank(results)
    return [*ranked, *dataset_verdict(ranked, settings, segment=segment)]


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
    excess: float | None = None,
) -> list[MetricResult]:
    """The verdict row of one column plus one info row per further ``report`` method.
    ``excess``: the reference's own window-to-window excess for the deciding method (None: not
    learned, e.g. a reference of one window)."""
    if reference is None:
        raise ValueError(f"the reference has no profile of column {column!r}")
    kind = treat_as or reference.kind
    if kind == NUMERIC and reference.kind != NUMERIC:
        kind = CATEGORICAL  # a categorical profile can only be compared as categories
    choice = settings.choice_for(column, kind)
    method = choice.spec
    if not method.supports(reference.kind):
        raise ValueError(f"{method.name} does not apply to the {reference.kind} column {column!r}")
    calibrated = choice.threshold is None and method.calibratable
    fixed = choice.threshold if choice.threshold is not None else (settings.false_alarm_rate if method.is_test else method.default_threshold)
    base: dict[str, Any] = {"role": role, "kind": kind}

    def no_data(reason: str) -> list[MetricResult]:
        return [MetricResult(check, column, method.name, None, Status.NO_DATA, None if calibrated else fixed, method.direction, segment, {**base, "reason": reason})]

    if current is None:
        return no_data("the window has no profile of this column")
    try:
        score = method.compute(reference, current, settings)
    except EmptyProfileError as exc:
        return no_data(str(exc))

    scores: dict[str, DriftScore] = {method.name: score}
    test_name = drift_methods.significance_test(kind)

    def test_p() -> float | None:
        if test_name not in scores:
            scores[test_name] = drift_methods.REGISTRY[test_name].compute(reference, current, settings)
        return scores[test_name].p_value

    value = method.value(score)
    details: dict[str, Any] = {**score.details, **base, "statistic": score.statistic}
    if calibrated:
        null = null_distribution(method, reference, current.count, settings)
        widen = excess or 0.0
        null_quantile = null.quantile(1.0 - settings.false_alarm_rate)
        min_effect = settings.min_effect_for(method.name)
        threshold = max(min_effect, null_quantile + widen)
        p_value = null.sf(value - widen) if value > widen else 1.0
        details |= {
            "threshold_mode": "calibrated",
            "null_quantile": null_quantile,
            "excess": widen,
            "excess_learned": excess is not None,
            "min_effect": min_effect,
            "false_alarm_rate": settings.false_alarm_rate,
            "p_value": p_value,
            "test": "null",
        }
    else:
        threshold = fixed
        if method.is_test:
            details |= {"threshold_mode": "fixed", "p_value": score.p_value, "test": method.name}
        else:
            details |= {"threshold_mode": "fixed", "p_value": test_p(), "test": test_name}
    beyond = _beyond(value, threshold, method.direction)
    gate = settings.p_value
    gate_p = test_p() if gate is not None else None
    significant = gate is None or (gate_p is not None and gate_p < gate)
    details |= {
        "p_value_max": gate,
        "gate_p_value": gate_p,
        "beyond_threshold": beyond,
        "significant": significant,
        "severity": severity(value, threshold, method.direction),
    }
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


DATASET_METRIC = "dataset_drift"


def dataset_verdict(results: list[MetricResult], settings: DriftSettings, *, segment: str = ALL) -> list[MetricResult]:
    """The run-level drift decision over the features' verdict rows (see the module docstring):
    value = share of features that drifted; details list them, most moved first, with their
    Benjamini-Hochberg q-values. No row when no feature was judged."""
    judged = [r for r in results if r.check == DRIFT and r.status in (Status.OK, Status.BREACH) and r.threshold is not None]
    if not judged:
        return []
    p_values = [_finite(r.details.get("p_value")) for r in judged]
    q_values = benjamini_hochberg(p_values)
    rate = settings.false_alarm_rate
    drifted: list[dict[str, Any]] = []
    ranking: list[dict[str, Any]] = []
    for r, q in zip(judged, q_values):
        if r.details.get("threshold_mode") == "calibrated":  # significance is BH's to decide; size is not
            large = r.value is not None and r.value >= settings.min_effect_for(r.metric)
        else:
            large = bool(r.details.get("beyond_threshold"))
        discovered = bool(math.isfinite(q) and q <= rate)
        entry = {
            "column": r.column,
            "method": r.metric,
            "value": r.value,
            "threshold": r.threshold,
            "severity": r.details.get("severity"),
            "p_value": r.details.get("p_value"),
            "q_value": None if not math.isfinite(q) else float(q),
            "drifted": discovered and large,
        }
        ranking.append(entry)
        if entry["drifted"]:
            drifted.append(entry)
    ranking.sort(key=lambda e: (-(e["severity"] if e["severity"] is not None and math.isfinite(e["severity"]) else -math.inf), e["column"]))
    drifted.sort(key=lambda e: (-(e["severity"] or 0.0), e["column"]))
    details = {
        "correction": "benjamini_hochberg",
        "false_discovery_rate": rate,
        "tested": len(judged),
        "drifted": [e["column"] for e in drifted],
        "ranking": ranking[:20],
    }
    status = Status.BREACH if drifted else Status.OK
    share = len(drifted) / len(judged)
    return [MetricResult(DRIFT, DATASET_COLUMN, DATASET_METRIC, share, status, None, Direction.MAX, segment, details)]


def _finite(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    return number if math.isfinite(number) else math.nan
