"""Judging a value against a floor and a ceiling at once (KPIs, performance, latency).

:func:`checks.results.judge` compares with one threshold; a metric may have several (an absolute
floor and a floor relative to the reference, or a KPI's ``min`` and ``max``). The tightest floor
and ceiling win, and the result row carries the bound that decided, named in ``details["bound"]``.

>>> judge_bounds(0.4, Bound(0.5, "min"), Bound(0.9, "max"))
(<Status.BREACH: 'breach'>, 0.5, <Direction.MIN: 'min'>, {'bound': 'min'})
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from checks.results import Direction, Status


@dataclass(frozen=True)
class Bound:
    value: float
    source: str  # the setting it came from: "min", "max", "max_drop", "p95_max_ratio"...


def tightest_floor(bounds: Iterable[Bound | None]) -> Bound | None:
    present = [b for b in bounds if b is not None]
    return max(present, key=lambda b: b.value) if present else None


def tightest_ceiling(bounds: Iterable[Bound | None]) -> Bound | None:
    present = [b for b in bounds if b is not None]
    return min(present, key=lambda b: b.value) if present else None


def judge_bounds(
    value: float | None, floor: Bound | None, ceiling: Bound | None
) -> tuple[Status, float | None, Direction | None, dict[str, Any]]:
    """(status, threshold, direction, details) of ``value`` against a floor and a ceiling.

    Breach below the floor or above the ceiling; the row's threshold is the bound breached, else
    the only bound, else the nearer one. ``no_data`` without a finite value, ``info`` without
    bounds.
    """
    if value is None or not math.isfinite(value):
        return Status.NO_DATA, None, None, {}
    if floor is not None and value < floor.value:
        return Status.BREACH, floor.value, Direction.MIN, {"bound": floor.source}
    if ceiling is not None and value > ceiling.value:
        return Status.BREACH, ceiling.value, Direction.MAX, {"bound": ceiling.source}
    if floor is None and ceiling is None:
        return Status.INFO, None, None, {}
    if ceiling is None or (floor is not None and value - floor.value <= ceiling.value - value):
        assert floor is not None
        return Status.OK, floor.value, Direction.MIN, {"bound": floor.source}
    return Status.OK, ceiling.value, Direction.MAX, {"bound": ceiling.source}
