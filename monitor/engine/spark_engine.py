"""The Spark engine: the pandas engine's profiles, computed by Spark over Parquet, Delta or a table.

Results equal the pandas engine's **by construction**: Spark only reads rows and moves small
partial results around; every number is computed by the pandas engine's own code.

* **Driver, planning** (no row is read): the same file listing, hive-partition pruning, Parquet
  footers, row-group statistics and column bookkeeping as ``FileSource`` / ``DeltaSource`` (their
  own functions are called), so the read report (files, rows scanned, missing columns, warnings)
  is theirs, and the driver knows which row groups of which file the pandas engine would read.
  Delta tables contribute only their current files (``DeltaTable`` through delta-rs), so deleted
  and updated rows are never read.
* **Executors, reading**: ``spark.read.parquet(files)`` (files grouped by their physical schema,
  so logs whose types changed between files keep each file's own types, as in pandas), with the
  window pushed into Spark as ``ts >= start AND ts < end`` (plus the rows the pandas engine would
  count as bad timestamps), or ``spark.table(...)`` for a ``spark_table`` source.
* **Executors, profiling** (``DataFrame.mapInArrow``): each partition's Arrow batches are typed
  back to the file's own Arrow schema, given their hive partition values, parsed, filtered and
  converted to pandas by the pandas source's own ``_Job.emit_arrow``, then folded by the pandas
  engine's own functions (``profile_batches``, ``profile_chunks``; for pass one the pieces
  ``fit_pass`` keeps, from ``numeric_values``, ``QuantileSketch``, ``category_counts`` and
  ``numeric_matrix``): one JSON partial per partition (per chunk for the reference), plus the
  hashes of request ids and the partition's read counters.
* **Executors, merging**: partials are merged in groups (``groupBy(...).applyInArrow``: at most
  ``FAN_IN`` per chunk survive), duplicate request ids are counted per hash bucket.
* **Driver, result**: the last few partials are merged and turned into the pandas engine's
  result types (binnings are fitted from the merged sketch exactly as ``fit_pass`` does).

Profiles merge by adding, so counts, histograms, sketches and binnings are identical; sums,
means and variances differ from the pandas engine's by floating-point rounding of a different
merge order only (as they do between two pandas runs with different ``batch_rows``). Sources
Spark cannot read natively here (CSV, JSON lines, SQL, inference tables) are profiled by the
pandas engine on the driver, so switching engines never needs a source change.

Limits: Parquet paths are local (or mounted, e.g. ``/Volumes``, ``/dbfs``) files as for
``FileSource``; the driver reads every footer of a window's files (as the pandas source does);
Delta tables whose reader features the pyarrow dataset cannot apply (deletion vectors, column
mapping) are refused with a ``SourceError``; a file whose footer reads but whose data is corrupt
fails the Spark job (the pandas source skips the rest of it with a warning); ``reference_profiles`` ignores ``plan.id_column`` (the runner
never passes one). Executors need driftline installed (cloudpickle ships the functions by
reference).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial, reduce
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from checks.multivariate import Moments
from checks.profiles import DatasetProfile
from checks.results import ALL
from checks.sketch import QuantileSketch
from monitor.engine.base import ChunkSpec, PandasEngine, ReadJob, WindowRead, _tally
from monitor.engine.pandas_engine import (
    FirstPass,
    ProfilePlan,
    _FitState,
    _merge_segments,
    add_counts,
    category_counts,
    finish_first_pass,
    most_frequent,
    numeric_matrix,
    numeric_values,
    profile_batches,
    profile_chunks,
)
from monitor.sources import (
    DeltaSourceSpec,
    FileSourceSpec,
    ReadReport,
    SourceError,
    open_source,
)
from monitor.sources._columns import ColumnTracker, kind_of_arrow, wanted_columns
from monitor.sources._timestamps import (
    MICROS_PER_UNIT,
    TimestampParser,
    epoch_bounds,
    micros,
)
from monitor.sources.files import FileSource, LogFile, _constant_column, _Job, _Parquet
from monitor.sources.partitions import may_overlap, partition_span
from monitor.sources.spark_specs import SparkTableSpec
from monitor.windows import Window

log = logging.getLogger("driftline.engine.spark")

FAN_IN = 64
"""Partials of one chunk merged on executors into at most this many before reaching the driver."""
HASH_BUCKETS = 256
"""Request-id hashes are counted for duplicates in this many groups (all copies of a hash meet in one)."""
MAX_CHUNKS = 400  # as profile_chunks: past this many reference chunks, runs of them are merged

_FILE = "__driftline_file"
_ROW = "__driftline_row"
_INDEX = "__driftline_index"  # a row's position in the source, for row-order chunks
_OUT = "kind int, key long, bucket int, text string, hash long, n long"
_OUT_ARROW = pa.schema(
    [("kind", pa.int32()), ("key", pa.int64()), ("bucket", pa.int32()), ("text", pa.string()), ("hash", pa.int64()), ("n", pa.int64())]
)
_PROFILE, _HASH, _ERROR, _REPORT = 0, 1, 2, 3  # kinds of partial rows

# Instants a Python datetime can hold, in microseconds: numeric epochs outside are bad timestamps
# for the pandas source, so the Spark pre-filter must let them through.
_FIRST_US = micros(datetime(1, 1, 1, tzinfo=UTC))
_LAST_US = micros(datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC))
_NS_LIMIT = 2**63 - 1


# ----------------------------------------------------------------------------- the session


def _session(master: str | None, conf: Mapping[str, str]) -> Any:
    """The active session (Databricks, a notebook, a test's), else a new one."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:  # pragma: no cover - depends on the installation
        raise SourceError("engine: spark needs pyspark and Java 17: pip install 'driftline[spark]'") from None
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    settings = {
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.legacy.parquet.nanosAsLong": "true",
    }
    settings.update({str(k): str(v) for k, v in conf.items()})
    master = master or "local[*]"
    if master.startswith("local") and "spark.pyspark.python" not in settings:
        # Local workers must run this interpreter (the one with numpy, pandas and driftline).
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.master(master).appName("driftline")
    for key, value in settings.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


# ------------------------------------------------------------------------------ the plan


@dataclass(frozen=True)
class _FileInfo:
    """What executors need to know of one file the pandas source would open."""

    name: str  # as the pandas source names the file in messages
    schema: pa.Schema  # the Arrow types the pandas source gives the columns read from the file
    constants: tuple[tuple[str, pa.Scalar], ...] = ()  # partition values, typed as the pandas source types them
    ranges: tuple[tuple[int, int], ...] | None = None  # row ranges of the row groups read; None: every row
    offset: int = 0  # rows of the source before this file, in the pandas source's order (row-order chunks)


@dataclass(frozen=True)
class _Scan:
    """How executors turn Spark's Arrow batches into the pandas source's frames."""

    wanted: tuple[str, ...]
    timestamp: str | None
    window: Window | None
    unit: str | None
    batch_rows: int
    description: str
    files: Mapping[str, _FileInfo] | None = None  # by path key; None: a table (no files)
    partition_offsets: Mapping[int, int] | None = None  # a table's row order: rows before each partition


@dataclass
class _Read:
    """A planned read: Spark DataFrames to profile, how, and what the driver already knows."""

    scan: _Scan
    frames: list[Any]
    report: ReadReport


def _path_key(path: str) -> str:
    """One spelling of a file's location for the driver and for Spark's ``_metadata.file_path``
    (``file:/a%20b`` and ``/a b`` agree; ``s3://`` and ``s3a://`` too)."""
    if "://" in path or path.startswith("file:"):
        parsed = urlparse(path)
        return unquote(parsed.netloc + parsed.path)
    return os.path.abspath(path)


def _spark_path(path: str) -> str:
    """What to hand ``spark.read.parquet``: local files explicitly on the local file system, and
    glob characters escaped (Spark globs every path it is given)."""
    if "://" not in path and not path.startswith("file:"):
        path = "file:" + os.path.abspath(path)
    return "".join("\\" + c if c in "*?[]{}" else c for c in path)


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _ranges(fragment: Any, groups: list[int]) -> tuple[tuple[int, int], ...] | None:
    """Row ranges of ``groups`` of a Parquet file (None when they are all of it)."""
    metadata = fragment.metadata
    starts = np.concatenate([[0], np.cumsum([metadata.row_group(g).num_rows for g in range(metadata.num_row_groups)])])
    if len(groups) == metadata.num_row_groups:
        return None
    return tuple((int(starts[g]), int(starts[g + 1])) for g in groups)


def _rows_in(fragment: Any, ranges: tuple[tuple[int, int], ...] | None) -> int:
    return fragment.metadata.num_rows if ranges is None else sum(hi - lo for lo, hi in ranges)


def _prefilter(functions: Any, column: str, kind: pa.DataType, spark_long_nanos: bool, job: _Job) -> Any:
    """A Spark filter keeping at least every row the pandas source keeps or counts as a bad
    timestamp, for a timestamp stored as ``kind`` (None: no filter can be pushed)."""
    window = job.window
    if window is None:
        return None
    F = functions
    ts = F.col(_quote(column))
    if pa.types.is_timestamp(kind) and spark_long_nanos:
        low, high = micros(window.start) * 1000, micros(window.end) * 1000
        return ((ts >= F.lit(low)) & (ts < F.lit(high))) | ts.isNull()
    if pa.types.is_timestamp(kind):
        if kind.tz is None:  # timestamp_ntz: naive values are UTC
            def literal(moment: datetime) -> Any:
                return F.lit(moment.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")).cast("timestamp_ntz")
        else:
            def literal(moment: datetime) -> Any:
                return F.lit(moment)
        return ((ts >= literal(window.start)) & (ts < literal(window.end))) | ts.isNull()
    if pa.types.is_date(kind):
        last = (window.end - timedelta(microseconds=1)).date()
        return ((ts >= F.lit(window.start.date())) & (ts <= F.lit(last))) | ts.isNull()
    unit = job.parser.unit
    if unit is not None and (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
        low, high = epoch_bounds(window, unit)
        if unit == "ns":
            valid_low, valid_high = -_NS_LIMIT, _NS_LIMIT
        else:
            per = MICROS_PER_UNIT[unit]
            valid_low, valid_high = -(-_FIRST_US // per), _LAST_US // per
        # One unit of slack each way: float epochs round when parsed. NaN compares above every
        # number in Spark, so NOT(in range) keeps NaN and +-inf, which pandas counts as bad.
        inside = (ts >= F.lit(low - 1)) & (ts < F.lit(high + 1))
        valid = (ts >= F.lit(valid_low + 1)) & (ts <= F.lit(valid_high - 1))
        return inside | ts.isNull() | ~valid
    return None


# --------------------------------------------------------------------- executors: frames


def _rebatch(batches: Iterable[pa.RecordBatch], rows: int) -> Iterator[pa.Table]:
    """Spark's Arrow batches (10,000 rows by default) regrouped into the pandas engine's batch size."""
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        if batch.num_rows == 0:
            continue
        pending.append(batch)
        count += batch.num_rows
        if count >= rows:
            yield pa.Table.from_batches(pending)
            pending, count = [], 0
    if pending:
        yield pa.Table.from_batches(pending)


def _conform(table: pa.Table, info: _FileInfo) -> pa.Table:
    """The file's columns with the types the pandas source gives them (Spark reads some types as
    others: nanosecond timestamps as longs, dictionaries as strings), plus its partition values."""
    arrays, names = [], []
    for item in info.schema:
        if item.name in table.column_names:
            array = table.column(item.name)
            if array.type != item.type:
                try:
                    array = pc.cast(array, item.type)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                    pass  # Spark's type it is: the values are the same, the engine coerces
        else:  # a Delta file written before the column existed: nulls of the table's type
            array = pa.nulls(table.num_rows, item.type)
        arrays.append(array)
        names.append(item.name)
    for name, value in info.constants:
        arrays.append(pa.nulls(table.num_rows, value.type) if not value.is_valid else pa.repeat(value, table.num_rows))
        names.append(name)
    return pa.Table.from_arrays(arrays, names=names)


def _frames(scan: _Scan, batches: Iterable[pa.RecordBatch], report: ReadReport, partition: int) -> Iterator[tuple[pd.DataFrame, np.ndarray | None]]:
    """The pandas source's frames for one Spark partition, each with the source-order index of its
    rows when the read has no timestamps (row-order chunks), else None."""
    parser = TimestampParser(scan.timestamp or "", scan.unit)
    job = _Job(
        wanted=list(scan.wanted),
        timestamp=scan.timestamp,
        window=scan.window,
        batch_rows=scan.batch_rows,
        report=report,
        parser=parser,
        tracker=ColumnTracker(list(scan.wanted), scan.timestamp),
        partition_types={},
    )
    position = (scan.partition_offsets or {}).get(partition, 0)
    try:
        for table in _rebatch(batches, scan.batch_rows):
            if scan.files is None:  # a table: rows are what Spark gives
                report.rows_scanned += table.num_rows
                index = position + np.arange(table.num_rows)
                position += table.num_rows
                yield from _emit(job, table, LogFile(Path(scan.description), scan.description), index)
                continue
            paths = table.column(_FILE)
            keys = pc.unique(paths).to_pylist()
            for key in keys:
                part = table if len(keys) == 1 else table.filter(pc.equal(paths, key))
                info = scan.files[_path_key(key)]
                rows = part.column(_ROW).to_numpy()
                if info.ranges is not None:
                    keep = np.zeros(len(rows), dtype=bool)
                    for low, high in info.ranges:
                        keep |= (rows >= low) & (rows < high)
                    if not keep.all():
                        part, rows = part.filter(pa.array(keep)), rows[keep]
                if part.num_rows == 0:
                    continue
                part = _conform(part.drop_columns([_FILE, _ROW]), info)
                yield from _emit(job, part, LogFile(Path(info.name), info.name), info.offset + rows)
    finally:
        report.warnings.extend(note for note in parser.notes if note not in report.warnings)


def _emit(job: _Job, table: pa.Table, file: LogFile, index: np.ndarray) -> Iterator[tuple[pd.DataFrame, np.ndarray | None]]:
    # The pandas source's own parse, window filter and conversion. Without a timestamp it neither
    # drops nor reorders rows, so its frames are consecutive slices and carry their row indices.
    done = 0
    for frame in job.emit_arrow(table, file):
        if job.timestamp is None:
            yield frame, index[done : done + len(frame)]
            done += len(frame)
        else:
            yield frame, None


# ---------------------------------------------------------------------- partial results


def _profile_json(profile: DatasetProfile) -> dict[str, Any]:
    data = profile.to_dict()
    data.pop("binnings")  # every partial has the plan's: shipped once, in the task
    return data


class _Task:
    """What executors compute from a partition's frames, and how partials merge."""

    def fold(self, frames: Iterator[tuple[pd.DataFrame, np.ndarray | None]]) -> tuple[list[tuple[int, dict[str, Any]]], list[np.ndarray]]:
        """``([(key, partial)], [request-id hashes])`` of one partition."""
        raise NotImplementedError

    def merge(self, parts: list[dict[str, Any]]) -> dict[str, Any]:
        raise NotImplementedError


class _ProfilesTask(_Task):
    """Profiles per segment (the window: ``profile_batches``), or per chunk and segment (the
    reference: ``profile_chunks``), of one partition's frames."""

    def __init__(self, plan: ProfilePlan, *, version_column: str | None = None, id_column: str | None = None, chunks: ChunkSpec | None = None) -> None:
        self.plan = replace(plan, id_column=None)  # duplicates are counted across partitions, not in them
        self.version_column = version_column
        self.id_column = id_column
        self.chunks = chunks

    def fold(self, frames):  # type: ignore[no-untyped-def]
        versions: dict[str, int] = {}
        hashes: list[np.ndarray] = []

        def watched() -> Iterator[pd.DataFrame]:
            for frame, index in frames:
                if self.id_column and self.id_column in frame:
                    # profile_batches' duplicate-id hashes, counted across partitions by the driver.
                    ids = frame[self.id_column].dropna()
                    hashes.append(pd.util.hash_pandas_object(ids.astype("string"), index=False).to_numpy())
                if index is not None and self.chunks is not None:
                    frame = frame.assign(**{_INDEX: index})
                yield frame

        batches: Iterator[pd.DataFrame] = watched()
        if self.version_column:
            batches = _tally(batches, self.version_column, versions)
        if self.chunks is None:
            profiles = profile_batches(batches, self.plan)
            return [(0, {"profiles": {s: _profile_json(p) for s, p in profiles.items()}, "versions": versions})], hashes
        chunks = self.chunks
        seen: set[int] = set()

        def chunk_key(frame: pd.DataFrame, offset: int) -> np.ndarray:
            if _INDEX in frame:  # ChunkSpec.keys' row-order formula, on the rows' positions in the whole source
                keys = frame[_INDEX].to_numpy() // max(1, chunks.rows_per_chunk or 1)
            else:
                keys = np.asarray(chunks.keys(frame, offset))
            seen.update(int(k) for k in np.unique(keys))
            return keys

        # The partition's chunks are not all chunks: none is merged into runs here, and the
        # chunks come back in the order of their keys, which the driver needs.
        _, ordered = profile_chunks(batches, self.plan, chunk_key, max_chunks=2**62)
        if len(ordered) != len(seen):  # profile_chunks keeps one chunk per key it was given
            raise RuntimeError(f"profile_chunks returned {len(ordered)} chunks for {len(seen)} keys")
        return [
            (key, {"profiles": {s: _profile_json(p) for s, p in chunk.items()}, "versions": {}})
            for key, chunk in zip(sorted(seen), ordered)
        ], hashes

    def profiles(self, parts: list[dict[str, Any]]) -> dict[str, DatasetProfile]:
        merged: dict[str, DatasetProfile] = {}
        for part in parts:
            for segment, data in part["profiles"].items():
                profile = DatasetProfile.from_dict(data, self.plan.binnings)
                merged[segment] = profile if segment not in merged else merged[segment].merge(profile)
        return merged

    def merge(self, parts):  # type: ignore[no-untyped-def]
        versions: dict[str, int] = {}
        for part in parts:
            add_counts(versions, part.get("versions", {}))
        return {"profiles": {s: _profile_json(p) for s, p in self.profiles(parts).items()}, "versions": versions}


class _FitTask(_Task):
    """Pass one over the reference: the pieces fit_pass keeps (sketches, ranges, category counts,
    moments, time span), from the same coercion functions."""

    def __init__(self, numeric: list[str], categorical: list[str], moments_of: list[str] | None, timestamp: str | None) -> None:
        self.numeric, self.categorical, self.moments_of, self.timestamp = numeric, categorical, moments_of, timestamp

    def fold(self, frames):  # type: ignore[no-untyped-def]
        state = _FitState()
        for frame, _ in frames:
            state.rows += len(frame)
            for name in self.numeric:
                if name in frame:
                    values, _ = numeric_values(frame[name])
                    finite = values[np.isfinite(values)]
                    sketch = QuantileSketch.from_values(finite)
                    state.sketches[name] = state.sketches[name].merge(sketch) if name in state.sketches else sketch
                    if finite.size:
                        state.low[name] = min(state.low.get(name, np.inf), float(finite.min()))
                        state.high[name] = max(state.high.get(name, -np.inf), float(finite.max()))
            for name in self.categorical:
                if name in frame:
                    add_counts(state.categories.setdefault(name, {}), category_counts(frame[name])[0])
            if self.moments_of:
                part = Moments.from_array(numeric_matrix(frame, self.moments_of))
                state.moments = part if state.moments is None else state.moments.merge(part)
            if self.timestamp and self.timestamp in frame and len(frame):
                low, high = frame[self.timestamp].min(), frame[self.timestamp].max()
                state.first = low if state.first is None or low < state.first else state.first
                state.last = high if state.last is None or high > state.last else state.last
        return [(0, self._dump(state))], []

    @staticmethod
    def _dump(state: _FitState) -> dict[str, Any]:
        def instant(value: Any) -> int | None:
            return None if value is None else micros(pd.Timestamp(value))

        return {
            "rows": state.rows,
            "sketches": {name: sketch.to_dict() for name, sketch in state.sketches.items()},
            "low": state.low,
            "high": state.high,
            "categories": state.categories,
            "moments": None if state.moments is None else state.moments.to_dict(),
            "first": instant(state.first),
            "last": instant(state.last),
        }

    @staticmethod
    def state(parts: list[dict[str, Any]]) -> _FitState:
        state = _FitState()
        first: list[int] = []
        last: list[int] = []
        for part in parts:
            state.rows += int(part["rows"])
            for name, data in part["sketches"].items():
                sketch = QuantileSketch.from_dict(data)
                state.sketches[name] = state.sketches[name].merge(sketch) if name in state.sketches else sketch
            for name, value in part["low"].items():
                state.low[name] = min(state.low.get(name, np.inf), float(value))
            for name, value in part["high"].items():
                state.high[name] = max(state.high.get(name, -np.inf), float(value))
            for name, counts in part["categories"].items():
                add_counts(state.categories.setdefault(name, {}), counts)
            if part["moments"] is not None:
                moments = Moments.from_dict(part["moments"])
                state.moments = moments if state.moments is None else state.moments.merge(moments)
            if part["first"] is not None:
                first.append(int(part["first"]))
                last.append(int(part["last"]))
        if first:
            state.first = pd.Timestamp(min(first), unit="us", tz="UTC")
            state.last = pd.Timestamp(max(last), unit="us", tz="UTC")
        return state

    def merge(self, parts):  # type: ignore[no-untyped-def]
        return self._dump(self.state(parts))


class _SegmentTask(_Task):
    """Value counts of the segment columns (top_segment_values before its cut)."""

    def __init__(self, columns: list[str]) -> None:
        self.columns = columns

    def fold(self, frames):  # type: ignore[no-untyped-def]
        counts: dict[str, dict[str, int]] = {c: {} for c in self.columns}
        for frame, _ in frames:
            for column in self.columns:
                if column in frame:
                    add_counts(counts[column], category_counts(frame[column])[0])
        return [(0, {"counts": counts})], []

    def merge(self, parts):  # type: ignore[no-untyped-def]
        counts: dict[str, dict[str, int]] = {c: {} for c in self.columns}
        for part in parts:
            for column, values in part["counts"].items():
                add_counts(counts.setdefault(column, {}), values)
        return {"counts": counts}


def _merge_reports(parts: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    total: dict[str, Any] = {"rows": 0, "rows_scanned": 0, "bad_timestamps": 0, "warnings": []}
    for part in parts:
        for key in ("rows", "rows_scanned", "bad_timestamps"):
            total[key] += int(part[key])
        total["warnings"].extend(w for w in part["warnings"] if w not in total["warnings"])
    return total


def _dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"))


def _partials(scan: _Scan, task: _Task, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """``mapInArrow``: one Spark partition -> its partial results, rows of ``_OUT``: partials
    (JSON, by chunk key), the read counters, an error to raise, or request-id hashes."""
    from pyspark import TaskContext

    context = TaskContext.get()
    partition = context.partitionId() if context is not None else 0
    report = ReadReport()
    columns: dict[str, list[Any]] = {name: [] for name in _OUT_ARROW.names}

    def add(kind: int, key: int, text: str) -> None:
        for name, value in zip(_OUT_ARROW.names, (kind, key, partition % FAN_IN, text, 0, 0)):
            columns[name].append(value)

    hashes: pa.RecordBatch | None = None
    try:
        parts, id_hashes = task.fold(_frames(scan, batches, report, partition))
        for key, data in parts:
            add(_PROFILE, key, _dumps(data))
        if id_hashes:
            # Each distinct hash once, with its count here; copies in other partitions meet it in
            # its bucket (see _combine).
            unique, counts = np.unique(np.concatenate(id_hashes).view(np.int64), return_counts=True)
            size = len(unique)
            hashes = pa.RecordBatch.from_arrays(
                [
                    pa.array(np.full(size, _HASH, dtype=np.int32)),
                    pa.array(np.zeros(size, dtype=np.int64)),
                    pa.array((unique % HASH_BUCKETS).astype(np.int32)),
                    pa.nulls(size, pa.string()),
                    pa.array(unique),
                    pa.array(counts.astype(np.int64)),
                ],
                schema=_OUT_ARROW,
            )
    except SourceError as error:  # e.g. numeric timestamps without timestamp_unit: the run fails with this text
        for values in columns.values():
            values.clear()
        hashes = None
        add(_ERROR, 0, str(error))
    summary = {"rows": report.rows, "rows_scanned": report.rows_scanned, "bad_timestamps": report.bad_timestamps, "warnings": report.warnings}
    add(_REPORT, 0, _dumps(summary))
    yield pa.RecordBatch.from_pydict(columns, schema=_OUT_ARROW)
    if hashes is not None:
        yield hashes


def _combine(task: _Task, table: pa.Table) -> pa.Table:
    """``applyInArrow`` on one (kind, key, bucket) group: its partials merged into one row."""
    kind = table.column("kind")[0].as_py()
    key = table.column("key")[0].as_py()
    bucket = table.column("bucket")[0].as_py()
    text: str | None = None
    n = 0
    if kind == _PROFILE:
        text = _dumps(task.merge([json.loads(t) for t in table.column("text").to_pylist()]))
    elif kind == _REPORT:
        text = _dumps(_merge_reports(json.loads(t) for t in table.column("text").to_pylist()))
    elif kind == _ERROR:
        text = table.column("text")[0].as_py()
    else:  # request-id hashes: every copy of a hash is in this group
        hashes = table.column("hash").to_numpy()
        n = int(table.column("n").to_numpy().sum()) - int(np.unique(hashes).size)
    return pa.Table.from_pydict(
        {"kind": [kind], "key": [key], "bucket": [bucket], "text": [text], "hash": [0], "n": [n]}, schema=_OUT_ARROW
    )


@dataclass
class _Outcome:
    parts: dict[int, list[dict[str, Any]]]  # by key
    duplicates: int
    report: ReadReport


# ----------------------------------------------------------------------------- the engine


class SparkEngine:
    """Profiles with Spark; see the module docstring. ``master``/``conf`` apply to a session this
    engine creates; an active session (Databricks, a notebook) is used as it is."""

    name = "spark"

    def __init__(self, master: str | None = None, conf: Mapping[str, str] | None = None) -> None:
        self.master = master
        self.conf = dict(conf or {})
        self._spark: Any = None
        self._pandas = PandasEngine()

    @property
    def spark(self) -> Any:
        if self._spark is None:
            spark = _session(self.master, self.conf)
            try:
                # pandas < 3 wrote nanosecond timestamps, which Spark refuses to read unless as
                # longs; the executors type them back to timestamps from the file's own schema.
                spark.conf.set("spark.sql.legacy.parquet.nanosAsLong", "true")
            except Exception as error:  # a locked-down session (serverless) may refuse the setting
                log.warning("engine spark: cannot set spark.sql.legacy.parquet.nanosAsLong (%s): Parquet files with "
                            "nanosecond timestamps will fail to read", error)
            self._spark = spark
        return self._spark

    # -- which sources Spark reads -------------------------------------------------------------

    @staticmethod
    def _native(spec: Any) -> bool:
        if isinstance(spec, SparkTableSpec):
            return True
        if getattr(spec, "inference_table", None) is not None:
            return False  # JSON requests unpacked by the pandas source's adapter
        return (isinstance(spec, FileSourceSpec) and spec.type == "parquet") or isinstance(spec, DeltaSourceSpec)

    def _delegate(self, job: ReadJob) -> bool:
        if self._native(job.spec):
            return False
        log.debug("engine spark: %s is profiled in-process by the pandas engine", type(job.spec).__name__)
        return True

    # -- planning ------------------------------------------------------------------------------

    def _read(self, job: ReadJob, *, row_order: bool = False) -> _Read:
        if isinstance(job.spec, SparkTableSpec):
            return self._plan_table(job, row_order)
        if isinstance(job.spec, DeltaSourceSpec):
            return self._plan_delta(job)
        return self._plan_parquet(job)

    def _group_frames(self, groups: Mapping[tuple, list[str]], columns_of: Mapping[tuple, list[str]], filters: Mapping[tuple, Any]) -> list[Any]:
        from pyspark.sql import functions as F

        frames = []
        for key, paths in groups.items():
            df = self.spark.read.option("recursiveFileLookup", "true").parquet(*(_spark_path(p) for p in paths))
            df = df.select(
                *(F.col(_quote(c)) for c in columns_of[key]),
                F.col("_metadata.file_path").alias(_FILE),
                F.col("_metadata.row_index").alias(_ROW),
            )
            if filters.get(key) is not None:
                df = df.where(filters[key])
            frames.append(df)
        return frames

    def _plan_parquet(self, job: ReadJob) -> _Read:
        """FileSource._read and _Parquet.read up to the first decoded row, file by file."""
        from pyspark.sql import functions as F

        source = FileSource(job.spec, job.base_dir)
        files = source.files()  # SourceError when the path names nothing
        report = ReadReport()
        wanted = wanted_columns(list(job.columns), job.timestamp)
        fjob = source._job(wanted, job.timestamp, job.window, job.batch_rows, report, files)
        parquet = _Parquet()
        infos: dict[str, _FileInfo] = {}
        groups: dict[tuple, list[str]] = {}
        columns_of: dict[tuple, list[str]] = {}
        filters: dict[tuple, Any] = {}
        offset = 0
        ts = job.timestamp
        for file in files:
            if job.window is not None and not may_overlap(partition_span(file.partitions), job.window):
                continue
            try:
                fragment, schema = parquet._open(file)
                total = fragment.metadata.num_rows
            except (pa.ArrowException, OSError) as error:
                fjob.unreadable(file, error)
                continue
            report.files += 1
            names = set(schema.names)
            constants = fjob.constants(file, names)
            fjob.tracker.file_columns(file.name, names | constants.keys())
            for column in wanted:
                if column in names:
                    fjob.tracker.kind(file.name, column, kind_of_arrow(schema.field(column).type))
            if ts is not None and ts not in names and ts not in constants:
                fjob.no_timestamp(file, total)
                continue
            ranges = None
            if job.window is not None and ts in names:
                kept = parquet._row_groups(fragment, schema.field(ts), fjob)
                if kept is not None:
                    if not kept:
                        continue
                    ranges = _ranges(fragment, kept)
            report.rows_scanned += _rows_in(fragment, ranges)
            columns = [c for c in wanted if c in names]
            target = pa.schema([schema.field(c) for c in columns])
            typed = tuple(
                (name, pa.scalar(None, pa.int64() if fjob.partition_types[name] is int else pa.string()))
                if value is None
                else (name, _constant_column(value, fjob.partition_types[name], 1)[0])
                for name, value in constants.items()
            )
            path = str(file.path)
            infos[_path_key(path)] = _FileInfo(file.name, target, typed, ranges, offset)
            offset += total
            ts_type = schema.field(ts).type if ts in names else None
            key = (tuple((f.name, str(f.type)) for f in target), str(ts_type))
            groups.setdefault(key, []).append(path)
            columns_of[key] = columns
            if key not in filters:
                nanos = ts_type is not None and pa.types.is_timestamp(ts_type) and ts_type.unit == "ns"
                filters[key] = None if ts_type is None else _prefilter(F, ts, ts_type, nanos, fjob)
        if ts is not None and not fjob.tracker.timestamp_found:
            fjob.tracker.finish(report)
            raise source._missing_timestamp(ts, fjob)
        fjob.tracker.finish(report)
        scan = _Scan(tuple(wanted), ts, job.window, job.spec.timestamp_unit, job.batch_rows, source.description, infos)
        return _Read(scan, self._group_frames(groups, columns_of, filters) if groups else [], report)

    def _plan_delta(self, job: ReadJob) -> _Read:
        """DeltaSource._read_files up to the first decoded row: the same files (the table's current
        ones, skipped by their statistics and partitions), the same row groups."""
        import pyarrow.dataset as ds
        from pyspark.sql import functions as F

        from monitor.sources.delta import _PARQUET, DeltaSource, fragment_file

        source = DeltaSource(job.spec, job.base_dir)
        table = source._table()
        dataset = source._dataset(table)
        if dataset is None:
            raise SourceError(
                f"{source.description}: the table uses Delta reader features (e.g. deletion vectors) that engine: spark "
                "cannot apply when reading its Parquet files; use engine: pandas for this source, or purge them "
                "(REORG TABLE ... APPLY (PURGE))"
            )
        schema = dataset.schema
        ts = job.timestamp
        if ts is not None:
            source._check_timestamp(schema, ts)
        report = ReadReport()
        wanted = wanted_columns(list(job.columns), ts)
        report.missing_columns.update(c for c in wanted if c not in schema.names)
        fjob = _Job(
            wanted=wanted,
            timestamp=ts,
            window=job.window,
            batch_rows=job.batch_rows,
            report=report,
            parser=TimestampParser(ts or "", job.spec.timestamp_unit),
            tracker=ColumnTracker(wanted, ts),
            partition_types={},
        )
        present = [c for c in wanted if c in schema.names]
        partitions = set(table.metadata().partition_columns)
        uris = {_path_key(u): u for u in table.file_uris()}
        by_suffix = {k.rsplit("/", 1)[-1]: u for k, u in uris.items()}
        expression = source._window_filter(schema, fjob)
        fragments = dataset.get_fragments(filter=expression) if expression is not None else dataset.get_fragments()
        ts_field = schema.field(ts) if ts is not None else None
        infos: dict[str, _FileInfo] = {}
        groups: dict[tuple, list[str]] = {}
        columns_of: dict[tuple, list[str]] = {}
        filters: dict[tuple, Any] = {}
        offset = 0
        for fragment in fragments:
            file = fragment_file(fragment, partitions, job.window)
            if file is None:
                continue
            keys = ds.get_partition_keys(fragment.partition_expression)
            try:
                total = fragment.metadata.num_rows
                physical = fragment.physical_schema
                ranges = None
                if job.window is not None and ts_field is not None and ts not in partitions:
                    kept = _PARQUET._row_groups(fragment, ts_field, fjob)
                    report.files += 1
                    if kept is not None:
                        if not kept:
                            continue
                        ranges = _ranges(fragment, kept)
                else:
                    report.files += 1
            except (pa.ArrowException, OSError) as error:
                fjob.unreadable(file, error, partial=True)
                continue
            report.rows_scanned += _rows_in(fragment, ranges)
            stored = [c for c in present if c not in partitions]
            columns = [c for c in stored if c in physical.names]
            target = pa.schema([schema.field(c) for c in stored])
            typed = tuple((c, pa.scalar(keys.get(c), schema.field(c).type)) for c in present if c in partitions)
            uri = uris.get(_path_key(fragment.path)) or by_suffix.get(fragment.path.rsplit("/", 1)[-1]) or fragment.path
            infos[_path_key(uri)] = _FileInfo(fragment.path, target, typed, ranges, offset)
            offset += total
            ts_type = physical.field(ts).type if ts is not None and ts in physical.names and ts not in partitions else None
            key = (tuple((c, str(physical.field(c).type)) for c in columns), str(ts_type))
            groups.setdefault(key, []).append(uri)
            columns_of[key] = columns
            if key not in filters:
                nanos = ts_type is not None and pa.types.is_timestamp(ts_type) and ts_type.unit == "ns"
                filters[key] = None if ts_type is None else _prefilter(F, ts, ts_type, nanos, fjob)
        fjob.tracker.finish(report)
        scan = _Scan(tuple(wanted), ts, job.window, job.spec.timestamp_unit, job.batch_rows, source.description, infos)
        return _Read(scan, self._group_frames(groups, columns_of, filters) if groups else [], report)

    def _table(self, spec: SparkTableSpec) -> Any:
        from pyspark.errors import AnalysisException

        try:
            df = self.spark.table(spec.table)
            df.schema  # resolves the name (lazily planned sessions, e.g. Spark Connect)
        except AnalysisException as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise SourceError(f"spark table {spec.table!r} cannot be read: {first}; check `table` in the source config") from None
        return df

    def _plan_table(self, job: ReadJob, row_order: bool) -> _Read:
        """Like the SQL source: the window pushed into Spark, NULL timestamps outside every window."""
        from pyspark.sql import functions as F

        spec: SparkTableSpec = job.spec
        df = self._table(spec)
        names = list(df.columns)
        report = ReadReport(files=1)
        wanted = wanted_columns(list(job.columns), job.timestamp)
        report.missing_columns.update(c for c in wanted if c not in names)
        ts = job.timestamp
        description = f"spark table {spec.table}"
        if ts is not None and ts not in names:
            raise SourceError(
                f"timestamp column {ts!r} not found in {description}; columns there: {', '.join(names) or 'none'}. "
                "Set the monitor's timestamp column to one of them"
            )
        df = df.select(*(F.col(_quote(c)) for c in wanted if c in names))
        if ts is not None and job.window is not None:
            where = self._table_window(F, df, ts, job.window, spec.timestamp_unit)
            if where is None:
                report.warnings.append(f"timestamp column {ts!r} of {description} is text: every row is read and parsed to find the window's")
            else:
                df = df.where(where)
        offsets = None
        if row_order:
            # Rows have no order in a table: the row-order chunks follow Spark's partitions, each in
            # its own order (a count per partition first, so every row has a position).
            counted = df.groupBy(F.spark_partition_id().alias("p")).count().collect()
            offsets, total = {}, 0
            for row in sorted(counted, key=lambda r: r["p"]):
                offsets[int(row["p"])] = total
                total += int(row["count"])
        scan = _Scan(tuple(wanted), ts, job.window, spec.timestamp_unit, job.batch_rows, description, None, offsets)
        return _Read(scan, [df], report)

    @staticmethod
    def _table_window(F: Any, df: Any, ts: str, window: Window, unit: str | None) -> Any:
        from pyspark.sql import types as T

        kind = df.schema[ts].dataType
        column = F.col(_quote(ts))
        if isinstance(kind, T.TimestampType):
            return (column >= F.lit(window.start)) & (column < F.lit(window.end))
        if isinstance(kind, T.TimestampNTZType):
            def naive(moment: datetime) -> Any:
                return F.lit(moment.replace(tzinfo=None).isoformat(sep=" ")).cast("timestamp_ntz")

            return (column >= naive(window.start)) & (column < naive(window.end))
        if isinstance(kind, T.DateType):
            last = (window.end - timedelta(microseconds=1)).date()
            return (column >= F.lit(window.start.date())) & (column <= F.lit(last))
        if unit is not None and isinstance(kind, T.NumericType):
            low, high = epoch_bounds(window, unit)
            return (column >= F.lit(low)) & (column < F.lit(high))
        return None  # text (parsed after reading) or numbers without a unit (the parser says to set one)

    # -- running -------------------------------------------------------------------------------

    def _run(self, read: _Read, task: _Task) -> _Outcome:
        report = read.report
        if not read.frames:
            return _Outcome({}, 0, report)
        mapped = [df.mapInArrow(partial(_partials, read.scan, task), _OUT) for df in read.frames]
        out = reduce(lambda a, b: a.union(b), mapped)

        def combine(table: pa.Table) -> pa.Table:  # type hints: how applyInArrow tells a table API from an iterator one
            return _combine(task, table)

        rows = out.groupBy("kind", "key", "bucket").applyInArrow(combine, _OUT).collect()
        errors = [r["text"] for r in rows if r["kind"] == _ERROR]
        if errors:
            raise SourceError(errors[0])
        parts: dict[int, list[dict[str, Any]]] = {}
        for row in rows:
            if row["kind"] == _PROFILE:
                parts.setdefault(int(row["key"]), []).append(json.loads(row["text"]))
        counters = _merge_reports(json.loads(r["text"]) for r in rows if r["kind"] == _REPORT)
        report.rows += counters["rows"]
        report.rows_scanned += counters["rows_scanned"]
        report.bad_timestamps += counters["bad_timestamps"]
        report.warnings.extend(w for w in counters["warnings"] if w not in report.warnings)
        duplicates = sum(int(r["n"]) for r in rows if r["kind"] == _HASH)
        return _Outcome(parts, duplicates, report)

    # -- the Engine protocol -------------------------------------------------------------------

    def columns(self, job: ReadJob) -> dict[str, str]:
        if isinstance(job.spec, SparkTableSpec):
            return {f.name: _kind(f.dataType) for f in self._table(job.spec).schema.fields}
        # Files and Delta: the pandas source's own answer, from footers and the log (no rows read).
        source = open_source(job.spec, job.base_dir)
        try:
            return source.columns()
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
        if self._delegate(job):
            return self._pandas.first_pass(
                job, numeric, categorical, bins=bins, top_k=top_k, moments_of=moments_of, count_values=count_values
            )  # (segments are counted by segment_values, a pass of their own, on Spark)
        outcome = self._run(self._read(job), _FitTask(numeric, categorical, moments_of, job.timestamp))
        state = _FitTask.state(outcome.parts.get(0, []))
        return finish_first_pass(state, numeric, categorical, bins=bins, top_k=top_k)

    def release_reference(self) -> None:
        self._pandas.release_reference()

    def segment_values(self, job: ReadJob, segments: list[str], k: int) -> dict[str, tuple[str, ...]]:
        if not segments:
            return {}
        if self._delegate(job):
            return self._pandas.segment_values(job, segments, k)
        outcome = self._run(self._read(job), _SegmentTask(list(segments)))
        counts = _SegmentTask(list(segments)).merge(outcome.parts.get(0, []))["counts"]
        return most_frequent(counts, segments, k)

    def reference_profiles(
        self, job: ReadJob, plan: ProfilePlan, chunks: ChunkSpec
    ) -> tuple[dict[str, DatasetProfile], list[dict[str, DatasetProfile]]]:
        if self._delegate(job):
            return self._pandas.reference_profiles(job, plan, chunks)
        task = _ProfilesTask(plan, chunks=chunks)
        row_order = chunks.length_us is None or chunks.timestamp is None
        outcome = self._run(self._read(job, row_order=row_order), task)
        # profile_chunks' ending: chunks in order, runs of them past MAX_CHUNKS, totals their merge.
        ordered = [task.profiles(outcome.parts[key]) for key in sorted(outcome.parts)]
        if len(ordered) > MAX_CHUNKS:
            run = -(-len(ordered) // MAX_CHUNKS)
            ordered = [_merge_segments(ordered[i : i + run]) for i in range(0, len(ordered), run)]
        if not ordered:
            return profile_batches([], plan), []
        return _merge_segments(ordered), ordered

    def window_profiles(self, job: ReadJob, plan: ProfilePlan, version_column: str | None = None) -> WindowRead:
        if self._delegate(job):
            return self._pandas.window_profiles(job, plan, version_column)
        task = _ProfilesTask(plan, version_column=version_column, id_column=plan.id_column)
        outcome = self._run(self._read(job), task)
        parts = outcome.parts.get(0, [])
        profiles = profile_batches([], plan)  # every segment present, as profile_batches leaves them
        merged = task.profiles(parts)
        profiles.update({segment: profiles[segment].merge(p) if segment in profiles else p for segment, p in merged.items()})
        if plan.id_column:
            profiles[ALL] = profiles[ALL].with_counters(duplicate_ids=outcome.duplicates)
        versions: dict[str, int] = {}
        for part in parts:
            add_counts(versions, part.get("versions", {}))
        return WindowRead(profiles, outcome.report, versions)


def _kind(dtype: Any) -> str:
    """A Spark SQL type's column kind (as ``kind_of_arrow`` sorts Arrow types)."""
    from pyspark.sql import types as T

    if isinstance(dtype, T.BooleanType):
        return "bool"
    if isinstance(dtype, T.NumericType):
        return "numeric"
    if isinstance(dtype, (T.StringType, T.VarcharType, T.CharType)):
        return "string"
    if isinstance(dtype, (T.TimestampType, T.TimestampNTZType, T.DateType)):
        return "timestamp"
    return "other"

