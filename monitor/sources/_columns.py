"""Column kinds, and the bookkeeping that turns differing file schemas into report entries."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Collection, Iterable, Sequence

import pandas as pd
import pyarrow as pa
from pandas.api import types as ptypes

from monitor.sources.base import ColumnKind, ReadReport

_EXAMPLES = 3  # file names quoted per warning; logs can have thousands of files


def kind_of_arrow(dtype: pa.DataType) -> ColumnKind | None:
    """The kind of an Arrow type; None for the null type (a column with no values says nothing)."""
    if pa.types.is_dictionary(dtype):
        return kind_of_arrow(dtype.value_type)
    if pa.types.is_null(dtype):
        return None
    if pa.types.is_boolean(dtype):
        return "bool"
    if pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype):
        return "numeric"
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype) or pa.types.is_string_view(dtype):
        return "string"
    if pa.types.is_timestamp(dtype) or pa.types.is_date(dtype):
        return "timestamp"
    return "other"


_INFERRED: dict[str, ColumnKind] = {
    "string": "string",
    "integer": "numeric",
    "floating": "numeric",
    "mixed-integer-float": "numeric",
    "decimal": "numeric",
    "boolean": "bool",
    "datetime": "timestamp",
    "datetime64": "timestamp",
    "date": "timestamp",
    "mixed-integer": "string",  # numbers and strings: text with junk in it, or junk in a number
    "mixed": "other",
}


def kind_of_series(values: pd.Series, *, detect_dates: bool = False) -> ColumnKind | None:
    """The kind of a pandas column; object columns are judged by their values. None when empty.

    With ``detect_dates``, text that is all ISO 8601 (``2026-01-01T12:00:00Z``) is a timestamp, as
    Arrow's inference would have it; for samples, since it parses every value.
    """
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return kind_of_series(pd.Series(dtype.categories), detect_dates=detect_dates)
    if ptypes.is_bool_dtype(dtype):
        return "bool"
    if ptypes.is_numeric_dtype(dtype):
        return "numeric" if values.notna().any() else None
    if ptypes.is_datetime64_any_dtype(dtype):
        return "timestamp"
    inferred = ptypes.infer_dtype(values, skipna=True)
    if inferred == "empty":
        return None
    kind = _INFERRED.get(inferred, "other")
    if kind == "string" and detect_dates and inferred == "string":
        text = values.dropna()
        if pd.to_datetime(text, format="ISO8601", errors="coerce", utc=True).notna().all():
            return "timestamp"
    return kind


def majority_kind(observed: Iterable[ColumnKind]) -> ColumnKind:
    """The kind most files agree on; ties go to the kind seen first (files are read in path order)."""
    counts = Counter(observed)
    return max(counts, key=counts.__getitem__) if counts else "other"


def _names(files: Sequence[str]) -> str:
    shown = ", ".join(files[:_EXAMPLES])
    return shown + (f" and {len(files) - _EXAMPLES} more" if len(files) > _EXAMPLES else "")


class ColumnTracker:
    """Collects, across the files of one read, which requested columns each file lacks and which
    kinds each holds, then writes ``missing_columns`` and one warning per problem (not per file)."""

    def __init__(self, wanted: Sequence[str], timestamp: str | None) -> None:
        self._wanted = [column for column in wanted if column != timestamp]
        self._timestamp = timestamp
        self.files = 0
        self.seen: set[str] = set()
        self._lacking: dict[str, list[str]] = defaultdict(list)
        self._kinds: dict[str, dict[ColumnKind, list[str]]] = defaultdict(lambda: defaultdict(list))
        self._without_timestamp: dict[str, int] = {}  # file -> its rows (counted as bad timestamps)
        self._notes: list[str] = []

    def file_columns(self, name: str, columns: Collection[str]) -> None:
        """File ``name`` was opened and has ``columns`` (including its partition keys)."""
        self.files += 1
        self.seen.update(columns)
        for column in self._wanted:
            if column not in columns:
                self._lacking[column].append(name)
        if self._timestamp is not None and self._timestamp not in columns:
            self._without_timestamp[name] = 0

    def no_timestamp_rows(self, name: str, rows: int) -> None:
        """How many rows a file without the timestamp column held (the caller counted them as bad)."""
        self._without_timestamp[name] = rows

    def kind(self, name: str, column: str, kind: ColumnKind | None) -> None:
        if kind is None or column not in self._wanted:
            return
        files = self._kinds[column][kind]
        if not files or files[-1] != name:
            files.append(name)

    def note(self, message: str) -> None:
        if message not in self._notes:
            self._notes.append(message)

    @property
    def timestamp_found(self) -> bool:
        """Whether some file read had the timestamp column (trivially true when none was read)."""
        return self.files == 0 or len(self._without_timestamp) < self.files

    def finish(self, report: ReadReport) -> None:
        for column, files in self._lacking.items():
            report.missing_columns.add(column)
            if len(files) < self.files:
                report.warnings.append(
                    f"column {column!r} is missing from {len(files)} of {self.files} files read: {_names(files)}"
                )
        for column, kinds in self._kinds.items():
            if len(kinds) > 1:
                ranked = sorted(kinds.items(), key=lambda item: -len(item[1]))
                parts = "; ".join(
                    f"{kind} in {len(files)} file{'s' if len(files) > 1 else ''} ({_names(files)})"
                    for kind, files in ranked
                )
                report.warnings.append(f"column {column!r} has different types in different files: {parts}")
        if self._without_timestamp and self.timestamp_found:
            files = list(self._without_timestamp)
            rows = sum(self._without_timestamp.values())
            report.warnings.append(
                f"timestamp column {self._timestamp!r} is missing from {len(files)} of {self.files} files read "
                f"({_names(files)}); their {rows} rows belong to no window and were counted as bad timestamps"
            )
        report.warnings.extend(self._notes)


def wanted_columns(columns: Sequence[str], timestamp: str | None) -> list[str]:
    """Requested columns without duplicates, in order, with the timestamp column added if absent."""
    if isinstance(columns, str):
        raise TypeError("columns must be a sequence of column names, not one string")
    return list(dict.fromkeys([*columns, *([timestamp] if timestamp is not None else [])]))
