"""From per-window flags to the benchmark's numbers, and their markdown cells.

A *column-window* is one feature in one window. Each is either *null* (nothing a detector should
report: flagged = false alarm) or *drifted* (flagged = detected), as its :class:`WindowSpec` says.

- false-alarm rate: flagged null column-windows / null column-windows;
- detection rate: flagged drifted column-windows / drifted column-windows (all ``post`` windows);
- first-window detection: the same over the first window after the change only;
- delay: per (repetition, drifted column), how many windows after the change the first flag
  came (0 = the first window), or ``None`` when it never came.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from detection.scenarios import Case, WindowSpec


@dataclass(frozen=True)
class Rate:
    hits: int = 0
    total: int = 0

    @property
    def value(self) -> float:
        return self.hits / self.total if self.total else math.nan

    def __add__(self, other: Rate) -> Rate:
        return Rate(self.hits + other.hits, self.total + other.total)

    def cell(self) -> str:
        if not self.total:
            return "–"
        return f"{_percent(self.value)} ({self.hits}/{self.total})"


def _percent(value: float) -> str:
    if value == 0 or value == 1:
        return f"{value:.0%}"
    if value < 0.1:
        return f"{value:.1%}"
    return f"{value:.0%}"


@dataclass
class Score:
    windows: int = 0
    false_alarms: Rate = Rate()
    detection: Rate = Rate()
    first_window: Rate = Rate()
    delays: list[int | None] = field(default_factory=list)
    flagged_by_column: dict[str, int] = field(default_factory=dict)  # null column-windows flagged, per column

    def to_dict(self) -> dict:
        out = asdict(self)
        out["false_alarm_rate"] = _nan_none(self.false_alarms.value)
        out["detection_rate"] = _nan_none(self.detection.value)
        out["first_window_rate"] = _nan_none(self.first_window.value)
        return out


def _nan_none(value: float) -> float | None:
    return None if math.isnan(value) else value


def score(windows: Sequence[WindowSpec], flags: Sequence[dict[str, bool]], columns: Sequence[str]) -> Score:
    """Score ``flags`` (one dict per window, in order; missing columns count as not flagged)
    against what each window should have shown. ``flags`` may cover only the first windows."""
    if len(flags) > len(windows):
        raise ValueError(f"{len(flags)} flag sets for {len(windows)} windows")
    s = Score(windows=len(flags))
    first_flag: dict[tuple[int, str], int | None] = {}
    for spec, flagged in zip(windows, flags):
        for column in columns:
            hit = bool(flagged.get(column, False))
            if column in spec.drifted:
                s.detection += Rate(int(hit), 1)
                if spec.phase == "post" and spec.index == 0:
                    s.first_window += Rate(int(hit), 1)
                key = (spec.rep, column)
                if key not in first_flag:
                    first_flag[key] = None
                if hit and first_flag[key] is None:
                    first_flag[key] = spec.index
            else:
                s.false_alarms += Rate(int(hit), 1)
                if hit:
                    s.flagged_by_column[column] = s.flagged_by_column.get(column, 0) + 1
    s.delays = [first_flag[k] for k in sorted(first_flag)]
    return s


def delay_cell(delays: Sequence[int | None], shift_at=None) -> str:
    """``median / max`` windows until the first flag over the drifted columns, with how many were
    never flagged; ``shift_at(index)`` adds what the change had reached by the median delay."""
    if not delays:
        return "–"
    never = sum(d is None for d in delays)
    ordered = sorted(math.inf if d is None else d for d in delays)
    median = statistics.median_low(ordered)
    worst = ordered[-1]

    def show(d: float) -> str:
        return "never" if math.isinf(d) else str(int(d))

    notes = []
    if shift_at is not None and not math.isinf(median):
        notes.append(f"median at +{shift_at(int(median)):.3g} std")
    if never:
        notes.append(f"{never}/{len(delays)} never flagged")
    return f"{show(median)} / {show(worst)}" + (f" ({'; '.join(notes)})" if notes else "")


def median_delay(delays: Sequence[int | None]) -> float:
    if not delays:
        return math.nan
    return statistics.median_low(sorted(math.inf if d is None else d for d in delays))


# ------------------------------------------------------------------------------- targets

FAR_TARGET = 0.01


@dataclass(frozen=True)
class Row:
    """One line of the table: a metric of a case, with its target."""

    metric: str
    target: str
    check: object  # callable(Score) -> bool | None (None: no target)
    cell: object  # callable(Score) -> str


def rows_for(case: Case) -> list[Row]:
    """The table rows of a case and the targets of the benchmark's issue."""
    if case.scenario in ("stationary", "seasonal"):
        return [Row("false alarms", "≤ 1%", lambda s: s.false_alarms.value <= FAR_TARGET, lambda s: s.false_alarms.cell())]
    if case.scenario == "negligible":
        return [Row("false alarms (must not flag)", "0", lambda s: s.false_alarms.hits == 0, lambda s: s.false_alarms.cell())]
    if case.scenario == "sudden":
        must = case.size >= 10_000 or case.label == "mean +1 std"  # the targets
        yes = (lambda s: s.first_window.value == 1.0) if must else None
        zero = (lambda s: median_delay(s.delays) == 0 and all(d == 0 for d in s.delays)) if must else None
        return [
            Row("detected in 1st window after change", "100%" if must else "", yes, lambda s: s.first_window.cell()),
            Row("detected, all windows after change", "", None, lambda s: s.detection.cell()),
            Row("delay, windows: median / max", "0 / 0" if must else "", zero, lambda s: delay_cell(s.delays)),
            Row("false alarms before change / unchanged columns", "≤ 1%", lambda s: s.false_alarms.value <= FAR_TARGET, lambda s: s.false_alarms.cell()),
        ]
    if case.scenario == "gradual":
        from detection.scenarios import gradual_shift

        return [Row("delay, windows: median / max", "", None, lambda s: delay_cell(s.delays, gradual_shift))]
    raise ValueError(f"unknown scenario {case.scenario!r}")


def mark(row: Row, s: Score) -> str:
    """The cell, with ✗ when it misses the row's target."""
    text = row.cell(s)
    if row.check is not None and text != "–":
        ok = row.check(s)
        if ok is False:
            text += " ✗"
    return text
