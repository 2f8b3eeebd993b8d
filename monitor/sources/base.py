"""What every source shares: the protocol the engine calls, the read report and the one error type."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from datetime import datetime
from typing import Collection, Iterator, Literal, Protocol, Sequence, runtime_checkable

import pandas as pd

from monitor.windows import Window

ColumnKind = Literal["numeric", "string", "bool", "timestamp", "other"]
"""What a column holds, coarse enough to infer feature roles from: see ``Source.columns``."""


class SourceError(Exception):
    """A source cannot be read as configured.

    The message names the file, table or URL (passwords redacted) and says how to fix it, so the
    CLI can print it as is.
    """


@dataclass
class ReadReport:
    """What one ``Source.read`` call could and could not read; the engine turns it into
    data-quality results. ``read`` fills it in as it goes, so it is complete once the iterator
    is exhausted (or closed)."""

    files: int = 0
    """Files (Parquet, CSV, JSONL) or queries (SQL) actually opened: partition pruning shows here."""
    rows_scanned: int = 0
    """Rows materialised before the source's own filtering (window, bad timestamps)."""
    rows: int = 0
    """Rows yielded: inside the window, with a valid timestamp."""
    bad_timestamps: int = 0
    """Rows among ``rows_scanned`` whose timestamp was null or unparseable; they belong to no window."""
    missing_columns: set[str] = field(default_factory=set)
    """Requested columns that the source, or at least one file read, does not have."""
    warnings: list[str] = field(default_factory=list)
    """Human-readable notes on messy input: differing schemas, skipped files, malformed lines."""


@runtime_checkable
class Source(Protocol):
    """Where a monitor's inference logs live. A source reads rows and says what it could not read;
    it computes no statistics."""

    description: str
    """Human text naming the source, without secrets."""

    def columns(self) -> dict[str, ColumnKind]:
        """Every column name -> its kind (union over files), for inferring feature roles."""
        ...

    def read(
        self,
        columns: Sequence[str],
        *,
        timestamp: str,
        window: Window | None = None,
        batch_rows: int = 100_000,
        report: ReadReport | None = None,
        categories: Collection[str] = (),
    ) -> Iterator[pd.DataFrame]:
        """Frames of at most ``batch_rows`` rows holding the requested columns that exist plus
        ``timestamp`` as ``datetime64[us, UTC]``; only rows with ``window.start <= ts < window.end``
        when a window is given. ``categories`` names columns the caller only counts values of: a
        format that stores them dictionary-encoded (Parquet) may hand them over as pandas
        ``Categorical`` (the file's own codes, no text per row); others keep their usual type."""
        ...

    def read_all(
        self,
        columns: Sequence[str],
        *,
        batch_rows: int = 100_000,
        report: ReadReport | None = None,
        categories: Collection[str] = (),
    ) -> Iterator[pd.DataFrame]:
        """Every row, with no timestamp handling at all: for reference data that has no timestamp
        column (a training set). Same batches, columns and report as ``read``."""
        ...

    def max_timestamp(self, timestamp: str) -> datetime | None:
        """The newest valid timestamp (UTC), or None when there is none; for freshness checks."""
        ...

    def close(self) -> None:
        """Release connections; the source is not used afterwards."""
        ...


class BatchSource(abc.ABC):
    """``read`` and ``read_all`` of a concrete source, both served by its one ``_read``."""

    def read(
        self,
        columns: Sequence[str],
        *,
        timestamp: str,
        window: Window | None = None,
        batch_rows: int = 100_000,
        report: ReadReport | None = None,
        categories: Collection[str] = (),
    ) -> Iterator[pd.DataFrame]:
        report = report if report is not None else ReadReport()
        return self._read(columns, timestamp, window, _checked(batch_rows), report, frozenset(categories))

    def read_all(
        self,
        columns: Sequence[str],
        *,
        batch_rows: int = 100_000,
        report: ReadReport | None = None,
        categories: Collection[str] = (),
    ) -> Iterator[pd.DataFrame]:
        """Every row, with no timestamp: for reference data that has none (a training set)."""
        report = report if report is not None else ReadReport()
        return self._read(columns, None, None, _checked(batch_rows), report, frozenset(categories))

    @abc.abstractmethod
    def _read(
        self,
        columns: Sequence[str],
        timestamp: str | None,
        window: Window | None,
        batch_rows: int,
        report: ReadReport,
        categories: frozenset[str] = frozenset(),
    ) -> Iterator[pd.DataFrame]:
        """The rows; ``batch_rows`` is already checked and ``report`` given (``read`` does both)."""


def _checked(batch_rows: int) -> int:
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be at least 1, not {batch_rows}")
    return batch_rows
