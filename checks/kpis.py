"""Custom KPIs: a column, an optional condition on its value, and an aggregate.

``where`` is parsed, never evaluated: an operator and one literal read by ``ast.literal_eval``
(numbers, quoted text, or a list of them for ``in``/``not in``), so a condition cannot run code.

>>> import numpy as np
>>> spec = KpiSpec(name="approval_rate", column="decision", agg="share", where="== 'approved'")
>>> p = kpi_profile(np.array(["approved", "denied", None, "approved"], dtype=object), spec)
>>> (p.matched, p.total, kpi_value(p, spec))
(2, 3, 0.6666666666666666)
"""

from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from checks.bounds import Bound, judge_bounds
from checks.profiles import DatasetProfile, KpiProfile
from checks.results import ALL, MetricResult, Status, error_result
from checks.sketch import QuantileSketch

CHECK = "kpi"
Agg = Literal["mean", "sum", "count", "share", "quantile"]

ORDER_OPS = ("<=", ">=", "<", ">")
EQUALITY_OPS = ("==", "!=")
MEMBERSHIP_OPS = ("not in", "in")
_CONDITION = re.compile(r"^\s*(<=|>=|==|!=|<|>|not\s+in\b|in\b)\s*(.+?)\s*$", re.DOTALL)


@dataclass(frozen=True)
class Condition:
    """A parsed ``where``: ``op`` is one of <, <=, >, >=, ==, !=, in, not in."""

    op: str
    value: Any  # float, str, or a tuple of them for in / not in

    @property
    def numeric(self) -> bool:
        values = self.value if isinstance(self.value, tuple) else (self.value,)
        return all(isinstance(v, float) for v in values)


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise ValueError(f"{text!r} is not a number, a quoted text or a list of them") from None


def _scalar(value: Any, where: str) -> float | str:
    if isinstance(value, bool) or value is None:
        raise ValueError(f"where {where!r}: compare with a number or a quoted text, not {value!r}")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ValueError(f"where {where!r}: the number must be finite")
        return float(value)
    if isinstance(value, str):
        return value
    raise ValueError(f"where {where!r}: compare with a number or a quoted text, not {type(value).__name__}")


def parse_condition(where: str) -> Condition:
    """Parse ``"< 0.5"``, ``">= 100"``, ``"== 'approved'"``, ``"!= 'web'"``, ``"in ['a', 'b']"``,
    ``"not in [1, 2]"``; ``ValueError`` with what is expected otherwise."""
    match = _CONDITION.match(where)
    if match is None:
        raise ValueError(
            f"where {where!r} must be an operator (<, <=, >, >=, ==, !=, in, not in) followed by a value, e.g. \"< 0.5\" or \"in ['a', 'b']\""
        )
    op = re.sub(r"\s+", " ", match.group(1))
    value = _literal(match.group(2))
    if op in MEMBERSHIP_OPS:
        if not isinstance(value, (list, tuple, set)) or not value:
            raise ValueError(f"where {where!r}: {op} needs a non-empty list, e.g. in ['a', 'b']")
        items = tuple(_scalar(v, where) for v in value)
        if len({type(v) for v in items}) > 1:
            raise ValueError(f"where {where!r}: the list mixes numbers and text")
        return Condition(op, items)
    scalar = _scalar(value, where)
    if op in ORDER_OPS and not isinstance(scalar, float):
        raise ValueError(f"where {where!r}: {op} compares numbers; use == or in for text")
    return Condition(op, scalar)


class KpiSpec(BaseModel):
    """One KPI: ``agg`` of ``column`` over the rows meeting ``where``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Name of the KPI (the result's column).")
    column: str = Field(description="Column the KPI reads.")
    agg: Agg = Field(
        description="share: matching / non-null rows; count: matching rows; mean, sum, quantile: of the matching values."
    )
    where: str | None = Field(
        default=None,
        description="Condition on the column's value: \"< 0.5\", \">= 100\", \"== 'approved'\", \"!= 'web'\", \"in ['a', 'b']\". Empty: every non-null row.",
    )
    q: float | None = Field(default=None, description="Probability of the quantile, in [0, 1] (agg quantile only).")
    min: float | None = Field(default=None, description="Breach below this value.")
    max: float | None = Field(default=None, description="Breach above this value.")

    @field_validator("where")
    @classmethod
    def _where(cls, where: str | None) -> str | None:
        if where is not None:
            parse_condition(where)
        return where

    @model_validator(mode="after")
    def _consistent(self) -> KpiSpec:
        if self.agg == "quantile":
            if self.q is None or not 0.0 <= self.q <= 1.0:
                raise ValueError(f"KPI {self.name!r}: agg quantile needs q in [0, 1], got {self.q}")
        elif self.q is not None:
            raise ValueError(f"KPI {self.name!r}: q applies to agg quantile only")
        if self.agg == "share":
            for bound in (self.min, self.max):
                if bound is not None and not 0.0 <= bound <= 1.0:
                    raise ValueError(f"KPI {self.name!r}: a share lies in [0, 1], so min/max must too, got {bound}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"KPI {self.name!r}: min {self.min} is above max {self.max}")
        return self

    @property
    def condition(self) -> Condition | None:
        return None if self.where is None else parse_condition(self.where)


# ------------------------------------------------------------------------- profiling


def _present(values: np.ndarray) -> np.ndarray:
    """Non-null, and for numbers finite: None and NaN are nulls; +-inf are not counted."""
    if values.dtype.kind in "fiub":
        return np.isfinite(values.astype(np.float64))
    if values.dtype.kind in "US":
        return np.ones(values.shape, dtype=bool)
    obj = values.astype(object)
    present = np.asarray(obj != None, dtype=bool)  # noqa: E711 - elementwise test for None
    present &= np.asarray(obj == obj, dtype=bool)  # NaN is the one value unequal to itself
    return present


def _as_numbers(values: np.ndarray, what: str) -> np.ndarray:
    if values.dtype.kind in "fiub":
        return values.astype(np.float64)
    try:
        return values.astype(np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{what} needs numbers, but the column holds text") from None


def _matches(values: np.ndarray, condition: Condition, where: str) -> np.ndarray:
    if condition.numeric:
        x = _as_numbers(values, f"where {where!r}")
        if condition.op in MEMBERSHIP_OPS:
            inside = np.isin(x, np.asarray(condition.value, dtype=np.float64))
            return inside if condition.op == "in" else ~inside
        ops = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal, "==": np.equal, "!=": np.not_equal}
        return ops[condition.op](x, condition.value)
    if values.dtype.kind in "fiub":
        raise ValueError(f"where {where!r} compares text, but the column holds numbers")
    text = values.astype(object)
    items = condition.value if isinstance(condition.value, tuple) else (condition.value,)
    hit = np.zeros(text.shape, dtype=bool)
    for item in items:  # one pass per listed value, not per row
        hit |= np.asarray(text == item, dtype=bool)
    return ~hit if condition.op in ("!=", "not in") else hit


def kpi_profile(values: np.ndarray, spec: KpiSpec) -> KpiProfile:
    """The KPI's mergeable profile of one batch of its column (float with NaN for missing, or an
    object/str array with None/NaN). ``total``: non-null values; ``matched``: those meeting
    ``where``; ``sum``: of the matched values when the column holds numbers; a sketch only for
    quantile KPIs."""
    values = np.asarray(values)
    present = values[_present(values)]
    condition = spec.condition
    match = np.ones(present.shape, dtype=bool) if condition is None else _matches(present, condition, spec.where or "")
    matched = present[match]
    needs_numbers = spec.agg in ("mean", "sum", "quantile")
    numbers: np.ndarray | None = None
    if needs_numbers:
        numbers = _as_numbers(matched, f"KPI {spec.name!r} (agg {spec.agg})")
    elif matched.dtype.kind in "fiub":
        numbers = matched.astype(np.float64)
    total_sum = float(numbers.sum()) if numbers is not None and numbers.size else 0.0
    sketch = QuantileSketch.from_values(numbers) if spec.agg == "quantile" and numbers is not None else None
    return KpiProfile(total=int(present.size), matched=int(match.sum()), sum=total_sum, sketch=sketch)


def kpi_value(profile: KpiProfile, spec: KpiSpec) -> float:
    """The KPI's value; NaN when it is undefined (nothing matched, or no rows for a share)."""
    if spec.agg == "count":
        return float(profile.matched)
    if spec.agg == "sum":
        return profile.sum
    if spec.agg == "share":
        return profile.matched / profile.total if profile.total else float("nan")
    if spec.agg == "mean":
        return profile.sum / profile.matched if profile.matched else float("nan")
    if profile.sketch is None:
        raise ValueError(f"KPI {spec.name!r}: a quantile needs the profile's sketch, which this profile lacks")
    assert spec.q is not None
    return profile.sketch.quantile(spec.q)


# ---------------------------------------------------------------------------- the check


def kpi_results(
    reference: DatasetProfile, current: DatasetProfile, kpis: tuple[KpiSpec, ...] | list[KpiSpec], *, segment: str = ALL
) -> list[MetricResult]:
    """One row per KPI (check ``kpi``, column = KPI name, metric = agg), breached outside
    ``min``/``max`` with the bound in ``details["bound"]``; each KPI isolated from the others."""
    results = []
    for spec in kpis:
        try:
            results.append(_kpi_result(reference, current, spec, segment))
        except Exception as exc:
            results.append(error_result(CHECK, spec.name, spec.agg, exc, segment))
    return results


def _kpi_result(reference: DatasetProfile, current: DatasetProfile, spec: KpiSpec, segment: str) -> MetricResult:
    details: dict[str, Any] = {"source_column": spec.column, "where": spec.where}
    if spec.q is not None:
        details["q"] = spec.q
    profile = current.kpis.get(spec.name)
    if current.rows == 0 or profile is None:
        details["reason"] = "the window is empty" if current.rows == 0 else "the window has no profile of this KPI"
        return MetricResult(CHECK, spec.name, spec.agg, None, Status.NO_DATA, segment=segment, details=details)
    value = kpi_value(profile, spec)
    details.update(matched=profile.matched, total=profile.total)
    ref_profile = reference.kpis.get(spec.name)
    if ref_profile is not None:
        try:
            ref_value = kpi_value(ref_profile, spec)
            if math.isfinite(ref_value):
                details["reference"] = ref_value
        except ValueError:
            pass
    floor = Bound(spec.min, "min") if spec.min is not None else None
    ceiling = Bound(spec.max, "max") if spec.max is not None else None
    status, threshold, direction, extra = judge_bounds(value, floor, ceiling)
    if spec.min is not None and spec.max is not None:
        extra.update(min=spec.min, max=spec.max)
    if status is Status.NO_DATA:
        extra["reason"] = "no row matched the condition"
    return MetricResult(CHECK, spec.name, spec.agg, value, status, threshold, direction, segment, {**details, **extra})
