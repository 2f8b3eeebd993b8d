"""The result of a check: one metric of one column in one window and segment."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Any


class Status(str, enum.Enum):
    """What a metric says about a window.

    ``ok`` and ``breach`` come from comparing a value with its threshold; ``info`` is a value
    with no threshold (a summary); ``no_data`` means the window had nothing to measure;
    ``error`` means the check itself failed and ``details["error"]`` says why.
    """

    OK = "ok"
    BREACH = "breach"
    INFO = "info"
    NO_DATA = "no_data"
    ERROR = "error"


class Direction(str, enum.Enum):
    """Which side of its threshold a value must stay on to be healthy."""

    MAX = "max"  # breach when value > threshold
    MIN = "min"  # breach when value < threshold


ALL = "*"
"""The segment name of the whole population of a window."""


@dataclass(frozen=True)
class MetricResult:
    """One row of the narrow results table.

    ``check`` is the family (drift, quality, latency, performance, kpi, prediction), ``column``
    the column it is about (empty for dataset-level metrics), ``metric`` the measure (``psi``,
    ``missing_share``, ``p95``...).
    """

    check: str
    column: str
    metric: str
    value: float | None
    status: Status
    threshold: float | None = None
    direction: Direction | None = None
    segment: str = ALL
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.value is not None and not isinstance(self.value, float):
            object.__setattr__(self, "value", float(self.value))
        if self.value is not None and not math.isfinite(self.value):
            # Stores and JSON cannot carry NaN/inf faithfully: keep them in details instead.
            object.__setattr__(self, "details", {**self.details, "raw_value": repr(self.value)})
            object.__setattr__(self, "value", None)

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.check, self.column, self.segment, self.metric)

    def with_segment(self, segment: str) -> MetricResult:
        from dataclasses import replace

        return replace(self, segment=segment)


def judge(value: float | None, threshold: float | None, direction: Direction) -> Status:
    """Status of ``value`` against ``threshold``: ``info`` without a threshold, ``no_data``
    without a value."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return Status.NO_DATA
    if threshold is None:
        return Status.INFO
    if direction is Direction.MAX:
        return Status.BREACH if value > threshold else Status.OK
    return Status.BREACH if value < threshold else Status.OK


def error_result(check: str, column: str, metric: str, exc: BaseException, segment: str = ALL) -> MetricResult:
    """A check that raised: recorded with its message so the run goes on."""
    return MetricResult(
        check=check,
        column=column,
        metric=metric,
        value=None,
        status=Status.ERROR,
        segment=segment,
        details={"error": f"{type(exc).__name__}: {exc}"},
    )
