"""Summaries of the prediction column (check ``prediction``, status info): mean, p10, p50, p90
(and ``positive_share`` at the decision threshold) for probabilities and numbers,
``share:<class>`` for class predictions."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from checks.profiles import OTHER, UNSEEN, CategoricalProfile, ColumnProfile, NumericProfile
from checks.results import ALL, MetricResult, Status
from checks.sketch import QuantileSketch

CHECK = "prediction"
QUANTILES = {"p10": 0.10, "p50": 0.50, "p90": 0.90}


def share_at_least(profile: NumericProfile, threshold: float) -> float:
    """Share of values >= ``threshold``: from the sketch when kept (within the one bucket holding
    the threshold, 0.5% wide), else interpolated within the histogram bin holding it."""
    if profile.count == 0:
        return float("nan")
    if profile.sketch is not None and profile.sketch.count:
        return _sketch_share_at_least(profile.sketch, threshold)
    edges = np.clip(np.concatenate([[profile.min], profile.binning.cuts, [profile.max]]), profile.min, profile.max)
    below = np.concatenate([[0.0], np.cumsum(profile.counts)]) / profile.count
    if threshold <= profile.min:
        return 1.0
    if threshold > profile.max:
        return 0.0
    return float(1.0 - np.interp(threshold, edges, below))


def _sketch_share_at_least(sketch: QuantileSketch, threshold: float) -> float:
    gamma = (1 + sketch.alpha) / (1 - sketch.alpha)
    # A bucket counts as >= threshold when its representative value is.
    pos = 2.0 * np.power(gamma, sketch.pos_keys.astype(np.float64)) / (gamma + 1.0)
    neg = -2.0 * np.power(gamma, sketch.neg_keys.astype(np.float64)) / (gamma + 1.0)
    at_least = sketch.pos_counts[pos >= threshold].sum() + sketch.neg_counts[neg >= threshold].sum()
    at_least += sketch.zeros if threshold <= 0 else 0
    return float(at_least / sketch.count)


def prediction_results(
    column: str, profile: ColumnProfile | None, kind: str | None, *, decision_threshold: float = 0.5, segment: str = ALL
) -> list[MetricResult]:
    def row(metric: str, value: float | None, **details: Any) -> MetricResult:
        ok = value is not None and math.isfinite(value)
        if not ok:
            details.setdefault("reason", "no predictions in the window")
        return MetricResult(CHECK, column, metric, value if ok else None, Status.INFO if ok else Status.NO_DATA, segment=segment, details=details)

    if isinstance(profile, CategoricalProfile) or (profile is None and kind == "class"):
        if profile is None or profile.count == 0:
            return [row("share", None)]
        counts = profile.frequencies()
        labels = profile.binning.labels
        return [
            row(f"share:{label}", n / profile.count, count=int(n))
            for label, n in zip(labels, counts)
            if label not in (OTHER, UNSEEN) or n > 0
        ]
    numeric = profile if isinstance(profile, NumericProfile) and profile.count else None
    metrics = ["mean", *QUANTILES] + (["positive_share"] if kind == "probability" else [])
    if numeric is None:
        return [row(m, None) for m in metrics]
    results = [row("mean", numeric.mean)]
    results += [row(name, numeric.quantile(q), source="sketch" if numeric.sketch is not None else "histogram") for name, q in QUANTILES.items()]
    if kind == "probability":
        results.append(row("positive_share", share_at_least(numeric, decision_threshold), threshold=decision_threshold))
    return results
