"""Latency of the latency column in milliseconds (check ``latency``): mean and max exactly from
the profile's moments, p50/p95/p99 from its quantile sketch (0.5% relative error), each against
an absolute limit and a multiple of the reference's value; the tighter limit decides."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from checks.bounds import Bound, judge_bounds, tightest_ceiling
from checks.profiles import ColumnProfile, NumericProfile
from checks.results import ALL, MetricResult, Status

if TYPE_CHECKING:
    from checks.settings import LatencySettings

CHECK = "latency"
QUANTILES = {"p50": 0.50, "p95": 0.95, "p99": 0.99}
STATS = ("mean", "p50", "p95", "p99", "max")


def latency_stat(profile: NumericProfile, stat: str) -> float:
    if profile.count == 0:
        return float("nan")
    if stat == "mean":
        return profile.mean
    if stat == "max":
        return profile.max
    return profile.quantile(QUANTILES[stat])


def latency_results(
    column: str, reference: ColumnProfile | None, current: ColumnProfile | None, settings: LatencySettings, *, segment: str = ALL
) -> list[MetricResult]:
    if current is not None and not isinstance(current, NumericProfile):
        raise ValueError(f"latency column {column!r} must be numeric, its profile is {current.kind}")
    ref = reference if isinstance(reference, NumericProfile) and reference.count else None
    results = []
    for stat in STATS:
        absolute, ratio = settings.limits(stat)
        details: dict[str, Any] = {"unit": "ms"}
        if current is None or current.count == 0:
            details["reason"] = "no latency values in the window"
            results.append(MetricResult(CHECK, column, stat, None, Status.NO_DATA, absolute, None, segment, details))
            continue
        if current.sketch is None and stat in QUANTILES:
            details["approximation"] = "histogram interpolation (the profile kept no sketch)"
        value = latency_stat(current, stat)
        ceilings = [Bound(absolute, f"{stat}_max_ms") if absolute is not None else None]
        reference_value = latency_stat(ref, stat) if ref is not None else float("nan")
        if math.isfinite(reference_value):
            details["reference"] = reference_value
            if reference_value > 0:
                details["ratio"] = value / reference_value
                if ratio is not None:
                    ceilings.append(Bound(reference_value * ratio, f"{stat}_max_ratio"))
        elif ratio is not None:
            details["note"] = f"{stat}_max_ratio needs latency values in the reference"
        status, threshold, direction, extra = judge_bounds(value, None, tightest_ceiling(ceilings))
        results.append(MetricResult(CHECK, column, stat, value, status, threshold, direction, segment, {**details, **extra}))
    return results
