"""What an engine does for the runner: read a source and fold it into profiles.

The runner decides *what* to profile (a ``ProfilePlan`` learned from the reference) and does
everything after profiles exist (checks, store, alerts); an engine only turns rows into profiles.
Two engines implement this: ``pandas`` (in-process, batch by batch, :class:`PandasEngine`) and
``spark`` (``monitor.engine.spark_engine``, the same profiles from Spark over Parquet, Delta or a
table). Everything that crosses this boundary is plain data (:class:`ReadJob`,
:class:`ChunkSpec`) so it can be shipped to Spark executors.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from checks.profiles import DatasetProfile
from monitor.engine.pandas_engine import (
    FirstPass,
    KeptBatches,
    ProfilePlan,
    fit_pass,
    profile_batches,
    profile_chunks,
    profile_kept_chunks,
    top_segment_values,
)
from monitor.sources import ReadReport, open_source
from monitor.windows import Window


@dataclass(frozen=True)
class ReadJob:
    """Rows to read: ``columns`` of ``spec`` (a source spec) inside ``window`` (None: all rows),
    ``timestamp`` the time column (None: the source has none, e.g. a training set)."""

    spec: Any
    base_dir: Path | None
    columns: tuple[str, ...]
    timestamp: str | None
    window: Window | None = None
    batch_rows: int = 131_072
    categories: tuple[str, ...] = ()  # columns only counted: read as dictionary codes where the format can
    keep_bytes: int = 0  # the reference: pass one may keep this much in memory so pass two need not read again


@dataclass(frozen=True)
class ChunkSpec:
    """How the reference is cut into its own windows (chunks): by time (``length_us``
    microseconds, on the epoch grid of the monitor's windows) or, without timestamps, in row
    order (``rows_per_chunk``)."""

    timestamp: str | None = None
    length_us: int | None = None
    rows_per_chunk: int | None = None

    def keys(self, frame: pd.DataFrame, offset: int) -> np.ndarray:
        """The chunk of each row of ``frame``, ``offset`` rows having come before it."""
        if self.length_us is not None and self.timestamp is not None:
            micros = frame[self.timestamp].to_numpy(dtype="datetime64[us]").astype(np.int64)
            return micros // self.length_us
        per_chunk = max(1, self.rows_per_chunk or 1)
        return (offset + np.arange(len(frame))) // per_chunk


@dataclass
class WindowRead:
    """A window's profiles (by segment) and what reading it found."""

    profiles: dict[str, DatasetProfile]
    report: ReadReport
    versions: dict[str, int] = field(default_factory=dict)  # rows per value of the model-version column


class Engine(Protocol):
    """Reads sources and profiles them; see the module docstring."""

    name: str

    def columns(self, job: ReadJob) -> dict[str, str]:
        """The source's columns and their kinds (``numeric``, ``string``, ``bool``, ``timestamp``, ``other``)."""
        ...

    def first_pass(
        self,
        job: ReadJob,
        numeric: list[str],
        categorical: list[str],
        *,
        bins: int,
        top_k: int,
        moments_of: list[str] | None,
        count_values: list[str] | None = None,
    ) -> FirstPass:
        """Binnings, row count, PCA moments and time span of the reference; the value counts of
        ``count_values`` (segment columns) when the engine counts them in the same pass (else
        ``FirstPass.value_counts`` is None and the runner asks :meth:`segment_values`)."""
        ...

    def segment_values(self, job: ReadJob, segments: list[str], k: int) -> dict[str, tuple[str, ...]]:
        """The ``k`` most frequent values of each segment column."""
        ...

    def reference_profiles(
        self, job: ReadJob, plan: ProfilePlan, chunks: ChunkSpec
    ) -> tuple[dict[str, DatasetProfile], list[dict[str, DatasetProfile]]]:
        """The reference's profile per segment and the same per chunk, in chunk order (pass two,
        after :meth:`first_pass` of the same job)."""
        ...

    def window_profiles(self, job: ReadJob, plan: ProfilePlan, version_column: str | None = None) -> WindowRead:
        """A window's profiles per segment, with its read report and model-version tally."""
        ...

    def release_reference(self) -> None:
        """Let go of anything :meth:`first_pass` kept for :meth:`reference_profiles`."""
        ...


# ------------------------------------------------------------------------------ pandas


class PandasEngine:
    """In-process: the source's batches folded one by one (memory bounded by the batch)."""

    name = "pandas"

    def __init__(self) -> None:
        self._kept: tuple[ReadJob, KeptBatches] | None = None  # pass one's batches, for pass two

    def columns(self, job: ReadJob) -> dict[str, str]:
        source = open_source(job.spec, job.base_dir)
        try:
            return source.columns()
        finally:
            source.close()

    def _batches(self, job: ReadJob, report: ReadReport | None = None) -> Iterator[pd.DataFrame]:
        source = open_source(job.spec, job.base_dir)
        try:
            if job.timestamp is None:
                yield from source.read_all(list(job.columns), batch_rows=job.batch_rows, categories=job.categories)
            else:
                yield from source.read(
                    list(job.columns), timestamp=job.timestamp, window=job.window, batch_rows=job.batch_rows,
                    report=report, categories=job.categories,
                )  # fmt: skip
        finally:
            source.close()

    def first_pass(
        self,
        job: ReadJob,
        numeric: list[str],
        categorical: list[str],
        *,
        bins: int,
        top_k: int,
        moments_of: list[str] | None,
        count_values: list[str] | None = None,
    ) -> FirstPass:
        self._kept = None
        keep = KeptBatches(job.keep_bytes)
        first = fit_pass(
            self._batches(job), numeric, categorical, bins=bins, top_k=top_k, moments_of=moments_of,
            timestamp=job.timestamp, count_values=count_values or (), keep=keep,
        )  # fmt: skip
        if keep.complete:
            self._kept = (job, keep)
        return first

    def segment_values(self, job: ReadJob, segments: list[str], k: int) -> dict[str, tuple[str, ...]]:
        return top_segment_values(self._batches(job), segments, k) if segments else {}

    def reference_profiles(
        self, job: ReadJob, plan: ProfilePlan, chunks: ChunkSpec
    ) -> tuple[dict[str, DatasetProfile], list[dict[str, DatasetProfile]]]:
        kept, self._kept = self._kept, None
        if kept is not None and kept[0] == job:
            return profile_kept_chunks(kept[1], plan, chunks.keys)
        return profile_chunks(self._batches(job), plan, chunks.keys)

    def release_reference(self) -> None:
        self._kept = None

    def window_profiles(self, job: ReadJob, plan: ProfilePlan, version_column: str | None = None) -> WindowRead:
        report = ReadReport()
        versions: dict[str, int] = {}
        batches = self._batches(job, report)
        if version_column:
            batches = _tally(batches, version_column, versions)
        profiles = profile_batches(batches, plan)
        return WindowRead(profiles, report, versions)


def _tally(batches: Iterator[pd.DataFrame], column: str, counts: dict[str, int]) -> Iterator[pd.DataFrame]:
    """Pass batches through, counting the values of ``column`` (e.g. the model version)."""
    for frame in batches:
        if column in frame:
            for value, n in frame[column].astype("string").value_counts(dropna=True).items():
                counts[str(value)] = counts.get(str(value), 0) + int(n)
        yield frame


def engine_named(name: str, options: dict[str, Any] | None = None) -> Engine:
    """The engine a monitor's ``engine:`` names (Spark imported only when asked for)."""
    if name == "pandas":
        return PandasEngine()
    if name == "spark":
        from monitor.engine.spark_engine import SparkEngine  # needs the [spark] extra

        return SparkEngine(**(options or {}))
    raise ValueError(f"unknown engine {name!r}; valid: pandas, spark")
