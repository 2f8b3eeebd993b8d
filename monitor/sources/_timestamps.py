"""Turning whatever a log calls a timestamp into ``datetime64[us, UTC]``, and window bounds.

Every source funnels its timestamp column through ``TimestampParser`` after reading, so all
formats agree on what an instant is: naive values are UTC, aware values are converted, text is
parsed (ISO 8601 first, then any format pandas recognises), numbers are Unix epochs in the
configured unit. Microseconds are the common resolution: fine enough for logs, and unlike
nanoseconds it does not overflow for sentinel dates such as 9999-12-31.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timezone

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from monitor.sources.base import SourceError
from monitor.windows import EPOCH, Window

UTC_DTYPE = pd.DatetimeTZDtype(unit="us", tz="UTC")

MICROS_PER_UNIT = {"s": 1_000_000, "ms": 1_000, "us": 1}
"""Microseconds in one unit; ``ns`` is the one unit finer than a microsecond."""

# Instants a Python datetime can hold: anything outside is garbage in a log, and letting it through
# would break the first caller that converts it (max_timestamp, the store).
_FIRST = pd.Timestamp(datetime.min.replace(tzinfo=timezone.utc)).as_unit("us")
_LAST = pd.Timestamp(datetime.max.replace(tzinfo=timezone.utc)).as_unit("us")


def micros(moment: datetime | date) -> int:
    """Exact microseconds since the Unix epoch; naive datetimes are UTC, dates are midnight UTC.

    Sub-microsecond parts (pandas nanoseconds) are floored, which keeps ``a <= b`` true after
    conversion for any microsecond-aligned ``b``.
    """
    if isinstance(moment, pd.Timestamp):
        moment = moment.floor("us").to_pydatetime()
    elif not isinstance(moment, datetime):
        moment = datetime(moment.year, moment.month, moment.day)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def epoch_bounds(window: Window, unit: str) -> tuple[int, int]:
    """Integer bounds ``[low, high)`` in ``unit`` that contain every instant of ``window``.

    They may hold a little more (the start is floored, the end ceiled to whole units), which is
    fine for a database or statistics pre-filter: the exact filter runs after parsing.
    """
    start, end = micros(window.start), micros(window.end)
    if unit == "ns":
        return start * 1_000, end * 1_000
    per = MICROS_PER_UNIT[unit]
    return start // per, -(-end // per)


def guess_unit(value: float) -> str:
    """The epoch unit that puts ``value`` between 1973 and 5138, for an error message's hint."""
    size = abs(value)
    if size < 1e11:
        return "s"
    if size < 1e14:
        return "ms"
    if size < 1e17:
        return "us"
    return "ns"


class TimestampParser:
    """Parses one timestamp column, batch after batch, into ``datetime64[us, UTC]`` with NaT for
    values that are null or cannot be read. Hints for the user (e.g. epochs written as text while
    no unit is set) collect in ``notes``, once each."""

    def __init__(self, column: str, unit: str | None) -> None:
        self.column = column
        self.unit = unit
        self.notes: list[str] = []

    def parse(self, values: pd.Series, where: str) -> pd.Series:
        """``values`` (any dtype) -> a Series on a fresh RangeIndex. ``where`` names the file or
        table in error messages."""
        values = values.reset_index(drop=True)
        dtype = values.dtype
        if isinstance(dtype, pd.CategoricalDtype):
            values = values.astype(object)
            dtype = values.dtype
        if isinstance(dtype, pd.DatetimeTZDtype):
            out = values.dt.tz_convert("UTC")
        elif ptypes.is_datetime64_dtype(dtype):
            out = values.dt.tz_localize("UTC")
        elif ptypes.is_bool_dtype(dtype) or ptypes.is_timedelta64_dtype(dtype):
            raise SourceError(
                f"timestamp column {self.column!r} in {where} holds {dtype} values, not timestamps; "
                "set `timestamp` to the column with the time of each prediction"
            )
        elif ptypes.is_numeric_dtype(dtype):
            out = self._epochs(values, where)
        else:
            out = self._objects(values, where)
        return _in_range(out)

    def _epochs(self, numbers: pd.Series, where: str) -> pd.Series:
        if self.unit is None:
            example = numbers.dropna()
            hint = ""
            if len(example):
                first = example.iloc[0]
                hint = f" (e.g. {first}, which looks like {guess_unit(float(first))})"
            raise SourceError(
                f"timestamp column {self.column!r} in {where} holds numbers{hint}; set `timestamp_unit` "
                "in the source config to s, ms, us or ns to read them as Unix epochs"
            )
        if ptypes.is_float_dtype(numbers.dtype):
            # inf is garbage; pandas 3 coerces it, but pyproject allows pandas 2.2, so drop it here.
            finite = np.isfinite(numbers.to_numpy(dtype="float64", na_value=np.nan))
            numbers = numbers.where(finite)
        try:
            out = pd.to_datetime(numbers, unit=self.unit, utc=True, errors="coerce")
        except (OverflowError, ValueError, pd.errors.OutOfBoundsDatetime):
            # Defensive, for pandas versions that raise on an out-of-range value instead of coercing
            # it: element-wise, so only that value is lost.
            out = pd.Series(
                [_one_epoch(value, self.unit) for value in numbers], index=numbers.index, dtype=UTC_DTYPE
            )
        return out

    def _objects(self, values: pd.Series, where: str) -> pd.Series:
        inferred = ptypes.infer_dtype(values, skipna=True)
        if inferred == "empty":
            return pd.Series(pd.NaT, index=values.index, dtype=UTC_DTYPE)
        if inferred in ("integer", "floating", "mixed-integer-float", "decimal"):
            return self._epochs(pd.to_numeric(values, errors="coerce"), where)
        if inferred == "string":
            return self._text(values, where)
        if inferred in ("datetime", "datetime64", "date"):
            return _as_us(pd.to_datetime(values, utc=True, errors="coerce", format="mixed"))
        # A mix (JSON lines where some writers sent numbers and others strings): numbers are epochs,
        # everything else goes through the text parser, which also accepts datetime objects.
        is_number = values.map(lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)).astype(bool)
        out = pd.Series(pd.NaT, index=values.index, dtype=UTC_DTYPE)
        if is_number.any():
            numbers = pd.to_numeric(values[is_number], errors="coerce")
            if self.unit is None:
                self._note_epochs(numbers.iloc[0])
            else:
                out[is_number] = _as_us(self._epochs(numbers, where))
        rest = values[~is_number]
        if len(rest):
            out[~is_number] = _as_us(self._text(rest.astype(object), where))
        return out

    def _text(self, text: pd.Series, where: str) -> pd.Series:
        out = pd.Series(pd.NaT, index=text.index, dtype=UTC_DTYPE)
        todo = text.notna()
        if self.unit is not None:
            # With a unit set, digits are epochs, even ones ISO 8601 would also accept (20260101).
            numbers = pd.to_numeric(text.where(todo), errors="coerce")
            is_number = numbers.notna()
            if is_number.any():
                out[is_number] = _as_us(self._epochs(numbers[is_number], where))
                todo &= ~is_number
        if not todo.any():
            return out
        pending = text[todo]
        parsed = _as_us(pd.to_datetime(pending, utc=True, errors="coerce", format="ISO8601"))
        failed = parsed.isna()
        if failed.any():
            # The slow path, per element, only for what the fast ISO 8601 parser could not read.
            retry = pending[failed]
            if self.unit is None:
                numbers = pd.to_numeric(retry, errors="coerce").dropna()
                if len(numbers):
                    self._note_epochs(numbers.iloc[0])
            parsed[failed] = _as_us(pd.to_datetime(retry, utc=True, errors="coerce", format="mixed"))
        out[todo] = parsed
        return out

    def _note_epochs(self, example: float) -> None:
        note = (
            f"timestamp column {self.column!r} holds some numbers (e.g. {example}) among dates; they were "
            f"counted as bad timestamps: set `timestamp_unit` (probably {guess_unit(float(example))}) to read them"
        )
        if note not in self.notes:
            self.notes.append(note)


def _one_epoch(value: object, unit: str) -> pd.Timestamp:
    try:
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            return pd.NaT
        return pd.Timestamp(value, unit=unit, tz="UTC")
    except (OverflowError, ValueError, pd.errors.OutOfBoundsDatetime):
        return pd.NaT


def _as_us(values: pd.Series) -> pd.Series:
    return values.astype(UTC_DTYPE) if values.dtype != UTC_DTYPE else values


def _in_range(values: pd.Series) -> pd.Series:
    values = _as_us(values)
    outside = (values < _FIRST) | (values > _LAST)
    return values.mask(outside) if outside.any() else values


def window_mask(instants: pd.Series, window: Window | None) -> np.ndarray:
    """True where the instant is valid and, given a window, inside it (half-open)."""
    if window is None:
        return instants.notna().to_numpy()
    start, end = pd.Timestamp(window.start), pd.Timestamp(window.end)
    return ((instants >= start) & (instants < end)).to_numpy()
