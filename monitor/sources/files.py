"""Inference logs in files: Parquet, CSV and JSON lines, from a file, folders or globs.

Each file is read on its own, with its own physical schema, so logs written by different
versions of a service (a column added, a type changed) never break a read: the differences go
to the read report, and type coercion is left to the engine.

How a window is read, cheapest first:

1. **Partition pruning**: files whose hive partition labels prove they hold no row of the
   window are not opened (rules in ``monitor.sources.partitions``).
2. **Row-group statistics** (Parquet, timestamp stored as a timestamp, date or, with
   ``timestamp_unit``, a number): row groups whose min/max cannot overlap the window are not
   decoded. A row group whose timestamps are all null is read, so its rows are counted as bad
   timestamps.
3. **Projection**: only the requested columns are decoded (Parquet and CSV; JSON must be
   parsed whole).
4. **Exact filter** after parsing the timestamps, for every format.

CSV cells are read as text, then each batch's columns are typed when every value fits
(integer, float, true/false, ISO 8601 timestamp), so one stray ``"n/a"`` turns a batch's column into
text instead of failing the file; the engine coerces and counts type errors.
"""

from __future__ import annotations

import abc
import csv
import glob
import io
import json
import os
import queue
import re
import threading
from dataclasses import dataclass, field
from functools import partial
from datetime import datetime
from pathlib import Path
from typing import Callable, Collection, Iterator, Sequence, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.json as pajson
import pyarrow.parquet as pq

from monitor.sources._columns import ColumnTracker, kind_of_arrow, kind_of_series, majority_kind, wanted_columns
from monitor.sources._timestamps import MICROS_PER_UNIT, TimestampParser, micros, window_mask
from monitor.sources.base import BatchSource, ColumnKind, ReadReport, SourceError
from monitor.sources.partitions import latest_possible, may_overlap, parse_hive, partition_span, value_types
from monitor.sources.specs import FileSourceSpec
from monitor.windows import Window

_EXTENSIONS = {
    "parquet": (".parquet", ".parq", ".pq"),
    "csv": (".csv",),
    "jsonl": (".jsonl", ".ndjson", ".json"),
}
_COMPRESSIONS = ("", ".gz", ".bz2", ".zst", ".lz4")  # what pyarrow.input_stream decompresses by name
_GLOB = re.compile(r"[*?[]")
_HIDDEN = (".", "_")  # _SUCCESS, _delta_log, .crc files: bookkeeping of writers, not logs
_LOCAL = pafs.LocalFileSystem()
_CSV_BLOCK = 4 << 20  # bytes per CSV block; a block is the unit pyarrow parses at once
_JSON_BLOCK = 8 << 20  # bytes of JSON lines parsed at once: bounds memory whatever the line length
_SAMPLE_BLOCK = 1 << 20  # bytes read to sample a text file's columns or header
# What a CSV column of text becomes when every value of a batch fits, tried in order; timestamps
# with an offset become UTC, like Arrow's own CSV and JSON inference does.
_CSV_TYPES = (pa.int64(), pa.float64(), pa.bool_(), pa.timestamp("us"), pa.timestamp("us", "UTC"))
_UTC_TYPE = pa.timestamp("us", "UTC")
# Arrow timestamp types whose values the timestamp parser keeps as they are (naive is UTC).
_UTC_MICROS = {str(pa.timestamp("us")): True, str(_UTC_TYPE): True, str(pa.timestamp("us", "Etc/UTC")): True}


@dataclass(frozen=True)
class LogFile:
    """One file of a source, with the hive partition values of the folders above it."""

    path: Path
    name: str  # relative to the folder or glob root it was found under: short, for messages
    partitions: dict[str, str | None] = field(default_factory=dict)


def _has_extension(name: str, file_type: str) -> bool:
    lower = name.lower()
    suffixes = _COMPRESSIONS if file_type != "parquet" else ("",)
    return any(lower.endswith(ext + comp) for ext in _EXTENSIONS[file_type] for comp in suffixes)


def _walk(folder: Path, file_type: str) -> list[Path]:
    """Log files under ``folder``: those with the format's extension; for Parquet, failing that, files
    with no extension at all (Hive writes ``000000_0``)."""
    known: list[Path] = []
    bare: list[Path] = []
    for root, folders, names in os.walk(folder):
        folders[:] = [name for name in folders if not name.startswith(_HIDDEN)]
        for name in names:
            if name.startswith(_HIDDEN):
                continue
            if _has_extension(name, file_type):
                known.append(Path(root, name))
            elif file_type == "parquet" and "." not in name:
                bare.append(Path(root, name))
    return sorted(known or bare)


def _glob_root(pattern: Path) -> Path:
    """The deepest folder of ``pattern`` without wildcards: where partition folders start."""
    parts: list[str] = []
    for part in pattern.parts[:-1]:
        if _GLOB.search(part):
            break
        parts.append(part)
    return Path(*parts) if parts else Path(pattern.anchor or ".")


def discover(spec: FileSourceSpec, base_dir: Path) -> list[LogFile]:
    """The files ``spec.path`` names now, in path order; SourceError when an entry names nothing."""
    found: dict[Path, LogFile] = {}
    for entry in spec.paths:
        text = os.path.expanduser(entry.strip())
        target = Path(text) if os.path.isabs(text) else base_dir / text
        relative_hint = "" if os.path.isabs(text) else f"; relative paths are resolved against {base_dir}"
        if _GLOB.search(text):
            root = _glob_root(target)
            paths: list[Path] = []
            for match in sorted(glob.glob(str(target), recursive=True)):
                path = Path(match)
                if path.name.startswith(_HIDDEN):
                    continue
                if path.is_dir():
                    paths.extend(_walk(path, spec.type))
                elif path.is_file():
                    paths.append(path)
            if not paths:
                where = f"looked in {root}" if root.is_dir() else f"folder {root} does not exist"
                raise SourceError(
                    f"no files match {entry!r} ({where}); check `path` in the source config{relative_hint}"
                )
        elif target.is_file():
            root, paths = target.parent, [target]
        elif target.is_dir():
            root, paths = target, _walk(target, spec.type)
            if not paths:
                names = ", ".join(f"*{ext}" for ext in _EXTENSIONS[spec.type])
                raise SourceError(
                    f"folder {target} holds no {spec.type} files (looked for {names}, skipping names that start "
                    "with . or _); check `path` and `type` in the source config"
                )
        else:
            raise SourceError(
                f"{entry!r} does not exist (looked for {target}); check `path` in the source config{relative_hint}"
            )
        for path in paths:
            relative = path.relative_to(root)
            partitions = parse_hive(relative.parts[:-1]) if spec.partitioning == "hive" else {}
            found.setdefault(path, LogFile(path, relative.as_posix(), partitions))
    return list(found.values())


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _constant_column(value: object, python_type: type, rows: int) -> pa.Array:
    arrow_type = pa.int64() if python_type is int else pa.string()
    if value is None:
        return pa.nulls(rows, arrow_type)
    return pa.repeat(pa.scalar(int(value) if python_type is int else str(value), arrow_type), rows)


@dataclass
class _Job:
    """The state of one ``read``: what to read, and where to report what could not be read."""

    wanted: list[str]
    timestamp: str | None  # None for read_all: rows are not tied to time
    window: Window | None
    batch_rows: int
    report: ReadReport
    parser: TimestampParser
    tracker: ColumnTracker
    partition_types: dict[str, type]
    categories: frozenset[str] = frozenset()  # columns the caller only counts values of

    def constants(self, file: LogFile, present: Collection[str]) -> dict[str, object]:
        """Requested partition values that the file's own columns do not shadow."""
        return {
            key: value
            for key, value in file.partitions.items()
            if key in self.wanted and key not in present
        }

    def with_constants(self, table: pa.Table, constants: dict[str, object]) -> pa.Table:
        for key, value in constants.items():
            table = table.append_column(key, _constant_column(value, self.partition_types[key], table.num_rows))
        return table

    def unreadable(self, file: LogFile, error: BaseException, *, partial: bool = False) -> None:
        how = "past a point and the rest was skipped" if partial else "and was skipped"
        self.tracker.note(f"file {file.name} could not be read {how}: {_first_line(error)}")

    def no_timestamp(self, file: LogFile, rows: int) -> None:
        self.report.rows_scanned += rows
        self.report.bad_timestamps += rows
        self.tracker.no_timestamp_rows(file.name, rows)

    def _keep(self, values: pd.Series, file: LogFile) -> tuple[np.ndarray, pd.Series]:
        instants = self.parser.parse(values, file.name)
        self.report.bad_timestamps += int(instants.isna().sum())
        return window_mask(instants, self.window), instants

    def emit_arrow(
        self, table: pa.Table, file: LogFile, refine: Callable[[pa.Table], pa.Table] | None = None
    ) -> Iterator[pd.DataFrame]:
        """Parse, filter and convert raw rows; ``refine`` types what is left (CSV)."""
        for offset in range(0, table.num_rows, self.batch_rows):
            part = table.slice(offset, self.batch_rows)
            if self.timestamp is not None:
                stamps = part.column(self.timestamp)
                position = part.schema.get_field_index(self.timestamp)
                if self._inside_window(stamps):
                    # Instants already, every one inside the window: nothing to parse or filter.
                    part = part.set_column(position, self.timestamp, stamps.cast(_UTC_TYPE))
                    yield self._frame(part, refine)
                    continue
                keep, instants = self._keep(stamps.to_pandas(), file)
                if not keep.any():
                    continue
                if _UTC_MICROS.get(str(stamps.type)) and int(instants.isna().sum()) == stamps.null_count:
                    # Already instants in microseconds and none was out of range: the parsed column
                    # holds the same values, so relabel it as UTC (no copy) instead of converting back.
                    part = part.set_column(position, self.timestamp, stamps.cast(_UTC_TYPE))
                    if not keep.all():
                        part = part.filter(pa.array(keep))
                else:
                    if not keep.all():
                        part = part.filter(pa.array(keep))
                    part = part.set_column(position, self.timestamp, pa.array(instants[keep], from_pandas=True))
            yield self._frame(part, refine)

    def _inside_window(self, stamps: pa.ChunkedArray) -> bool:
        """Microsecond instants with no null, all inside the window (checked with one min/max)."""
        if self.window is None or not _UTC_MICROS.get(str(stamps.type)) or stamps.null_count or not len(stamps):
            return False
        bounds = pc.min_max(stamps.cast(pa.int64()))
        return micros(self.window.start) <= bounds["min"].as_py() and bounds["max"].as_py() < micros(self.window.end)

    def _frame(self, part: pa.Table, refine: Callable[[pa.Table], pa.Table] | None) -> pd.DataFrame:
        if refine is not None:
            part = refine(part)
        order = [column for column in self.wanted if column in part.column_names]
        # split_blocks: each column its own block, so numbers without nulls are not copied.
        frame = part.select(order).replace_schema_metadata(None).to_pandas(split_blocks=True)
        self.report.rows += len(frame)
        return frame

    def emit_frame(self, frame: pd.DataFrame, file: LogFile) -> Iterator[pd.DataFrame]:
        for offset in range(0, len(frame), self.batch_rows):
            part = frame.iloc[offset : offset + self.batch_rows].reset_index(drop=True)
            if self.timestamp is not None:
                keep, instants = self._keep(part[self.timestamp], file)
                if not keep.any():
                    continue
                part = part[keep].reset_index(drop=True)
                part[self.timestamp] = instants[keep].reset_index(drop=True)
            part = part[[column for column in self.wanted if column in part.columns]]
            self.report.rows += len(part)
            yield part


_T = TypeVar("_T")
_END = object()


def _read_ahead(items: Iterator[_T]) -> Iterator[_T]:
    """``items``, produced one ahead in a thread of their own: the next batch is decoded while
    the caller works on this one. At most one item waits, so memory stays bounded by the batch.
    The producer's errors are raised here; closing this generator stops the producer."""
    ready: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()

    def offer(entry: tuple) -> bool:
        while not stop.is_set():
            try:
                ready.put(entry, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not offer((item, None)):
                    return
            offer((_END, None))
        except BaseException as error:  # handed to the consumer, raised there
            offer((_END, error))

    worker = threading.Thread(target=produce, name="driftline-read-ahead", daemon=True)
    worker.start()
    try:
        while True:
            item, error = ready.get()
            if item is _END:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        while worker.is_alive():
            try:
                ready.get(timeout=0.05)
            except queue.Empty:
                pass
        worker.join()


class _Format(abc.ABC):
    """Reads one file format; ``FileSource`` handles discovery, pruning and the report's totals."""

    @abc.abstractmethod
    def kinds(self, file: LogFile) -> dict[str, ColumnKind | None]:
        """Column name -> kind, from the file's schema or its first rows."""

    @abc.abstractmethod
    def read(self, file: LogFile, job: _Job) -> Iterator[pd.DataFrame]:
        """The file's frames for ``job``, counting what it opens and scans in ``job.report``."""

    def newest(self, file: LogFile, job: _Job) -> pd.Timestamp | None:
        """The newest valid timestamp in ``file``; by default by reading the timestamp column."""
        newest = None
        for frame in self.read(file, job):
            candidate = frame[job.timestamp].max()
            if newest is None or candidate > newest:
                newest = candidate
        return newest


def _statistic_micros(arrow_type: pa.DataType, unit: str | None) -> Callable[[object], float] | None:
    """How to turn a Parquet min/max of a timestamp column into microseconds since the epoch;
    None when statistics of that type say nothing about time (text)."""
    if pa.types.is_timestamp(arrow_type):
        return micros  # type: ignore[return-value]
    if pa.types.is_date(arrow_type):
        return micros  # type: ignore[return-value]
    if unit is not None and (pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type)):
        if unit == "ns":
            return lambda value: value // 1_000  # type: ignore[operator]
        per = MICROS_PER_UNIT[unit]
        return lambda value: value * per  # type: ignore[operator]
    return None


def _row_group_runs(metadata: pq.FileMetaData, groups: list[int] | None, batch_rows: int) -> list[tuple[list[int], int]]:
    """How to read the row groups (all of them, or ``groups``): ``(row groups, batch size)`` runs
    whose batches follow the row groups' edges. A batch that straddles two row groups is stitched
    together from both, a copy of every column (on a 1M-row window of 131,072-row groups, peak
    memory of the check fell from 619 to 583 MiB, median of 8 runs). So a row group of at least
    ``batch_rows`` is read alone, in even batches of at most ``batch_rows``; smaller consecutive
    ones are read together while they fit one batch."""
    runs: list[tuple[list[int], int]] = []
    run: list[int] = []
    run_rows = 0
    for group in range(metadata.num_row_groups) if groups is None else groups:
        rows = metadata.row_group(group).num_rows
        if rows == 0:
            continue
        if run and run_rows + rows > batch_rows:
            runs.append((run, run_rows))
            run, run_rows = [], 0
        if rows >= batch_rows:
            pieces = -(-rows // batch_rows)
            runs.append(([group], -(-rows // pieces)))
        else:
            run.append(group)
            run_rows += rows
    if run:
        runs.append((run, run_rows))
    return runs


class _Parquet(_Format):
    # No pre-buffering: it fetches every column chunk of the selected row groups up front (a win
    # on object stores, not on local disks) and doubles peak memory on a large window.
    _format = ds.ParquetFileFormat(default_fragment_scan_options=ds.ParquetFragmentScanOptions(pre_buffer=False))

    def _open(self, file: LogFile) -> tuple[ds.ParquetFileFragment, pa.Schema]:
        fragment = self._format.make_fragment(str(file.path), filesystem=_LOCAL)
        return fragment, fragment.physical_schema

    def kinds(self, file: LogFile) -> dict[str, ColumnKind | None]:
        _, schema = self._open(file)
        return {item.name: kind_of_arrow(item.type) for item in schema}

    @staticmethod
    def _statistics(fragment: ds.ParquetFileFragment, column: str) -> Iterator[tuple[int, int, object]]:
        """``(row group, rows, statistics or None)`` of ``column`` for each non-empty row group."""
        metadata = fragment.metadata
        index = next((j for j in range(metadata.num_columns) if metadata.schema.column(j).path == column), None)
        for group in range(metadata.num_row_groups):
            row_group = metadata.row_group(group)
            if row_group.num_rows == 0:
                continue
            yield group, row_group.num_rows, None if index is None else row_group.column(index).statistics

    def _row_groups(self, fragment: ds.ParquetFileFragment, column: pa.Field, job: _Job) -> list[int] | None:
        """Row groups whose statistics may overlap the window; None to read the whole file."""
        assert job.window is not None
        to_micros = _statistic_micros(column.type, job.parser.unit)
        if to_micros is None:
            return None
        start, end = micros(job.window.start), micros(job.window.end)
        keep = []
        for group, _, stats in self._statistics(fragment, column.name):
            if stats is None or not stats.has_min_max:
                keep.append(group)  # no statistics, or only nulls: read it (nulls count as bad timestamps)
            elif to_micros(stats.max) >= start and to_micros(stats.min) < end:
                keep.append(group)
        return keep

    def read(self, file: LogFile, job: _Job) -> Iterator[pd.DataFrame]:
        try:
            fragment, schema = self._open(file)
        except (pa.ArrowException, OSError) as error:
            job.unreadable(file, error)
            return
        job.report.files += 1
        names = set(schema.names)
        constants = job.constants(file, names)
        job.tracker.file_columns(file.name, names | constants.keys())
        for column in job.wanted:
            if column in names:
                job.tracker.kind(file.name, column, kind_of_arrow(schema.field(column).type))
        if job.timestamp is not None and job.timestamp not in names and job.timestamp not in constants:
            job.no_timestamp(file, fragment.metadata.num_rows)
            return
        groups = None
        if job.window is not None and job.timestamp in names:
            groups = self._row_groups(fragment, schema.field(job.timestamp), job)
            if groups is not None and not groups:
                return
        columns = [column for column in job.wanted if column in names]
        reader: pq.ParquetFile | None = None
        batches: Iterator[pa.RecordBatch] | None = None
        try:
            # The file reader, not the dataset scanner: it streams each row group in batches of
            # ``batch_rows`` (memory bounded by the batch, not the row group or the window) with
            # none of the scanner's scheduling latency, and one thread decodes the next batch,
            # filters it to the window and converts it to pandas while the caller profiles this
            # one (single-threaded decoding, the read's first batch aside: the profiling pool
            # already has the cores; the conversion on the caller's thread held up the pool).
            # Text columns the caller only counts arrive as the file's own dictionary codes
            # (pandas Categorical): no string per row is built, hashed or compared.
            dictionary = [c for c in columns if c in job.categories and kind_of_arrow(schema.field(c).type) == "string"]
            reader = pq.ParquetFile(str(file.path), metadata=fragment.metadata, pre_buffer=False, read_dictionary=dictionary or None)
            runs = _row_group_runs(fragment.metadata, groups, job.batch_rows)
            first = job.report.rows_scanned == 0  # nothing read yet, so nothing is being profiled
            batches = _read_ahead(self._frames(job, file, self._batches(reader, runs, columns, first_in_parallel=first), constants))
            yield from batches
        except (pa.ArrowException, OSError) as error:
            job.unreadable(file, error, partial=True)
        finally:
            if batches is not None:
                batches.close()  # type: ignore[attr-defined]  # stops the decoding thread before the file closes
            if reader is not None:
                reader.close()

    @staticmethod
    def _frames(job: _Job, file: LogFile, batches: Iterator[pa.RecordBatch], constants: dict[str, object]) -> Iterator[pd.DataFrame]:
        """The window's frames of ``batches`` (on the read-ahead thread: the caller only profiles)."""
        for batch in batches:
            job.report.rows_scanned += batch.num_rows
            table = job.with_constants(pa.Table.from_batches([batch]), constants)
            yield from job.emit_arrow(table, file)

    @staticmethod
    def _batches(
        reader: pq.ParquetFile, runs: list[tuple[list[int], int]], columns: list[str], *, first_in_parallel: bool = False
    ) -> Iterator[pa.RecordBatch]:
        """The batches of ``runs``, decoded on one thread; with ``first_in_parallel``, the first
        run's columns are decoded on all cores: at the start of a read the caller has nothing to
        profile yet, so the cores would idle while one thread decodes (the first batch of a 1M-row
        window arrived 7-15 ms sooner of 20-55)."""
        for groups, size in runs:
            yield from reader.iter_batches(batch_size=size, row_groups=groups, columns=columns, use_threads=first_in_parallel)
            first_in_parallel = False

    def newest(self, file: LogFile, job: _Job) -> pd.Timestamp | None:
        # Statistics answer without decoding a row, when every row group has them.
        try:
            fragment, schema = self._open(file)
        except (pa.ArrowException, OSError):
            return super().newest(file, job)  # read() notes the file as unreadable
        if job.timestamp in schema.names:
            column = schema.field(job.timestamp)
            maxima = self._maxima(fragment, column, job.parser.unit)
            if maxima is not None:
                newest = job.parser.parse(pd.Series(maxima), file.name).max() if maxima else None
                if not maxima or not pd.isna(newest):
                    job.tracker.file_columns(file.name, set(schema.names))
                    return newest
                # Every maximum is garbage (e.g. an absurd epoch): the rows may still hold good ones.
        return super().newest(file, job)

    def _maxima(
        self, fragment: ds.ParquetFileFragment, column: pa.Field, unit: str | None
    ) -> list[object] | None:
        """Each row group's maximum timestamp, or None when some row group has rows but no statistics."""
        if _statistic_micros(column.type, unit) is None:
            return None
        maxima: list[object] = []
        for _, rows, stats in self._statistics(fragment, column.name):
            if stats is not None and stats.has_min_max:
                maxima.append(stats.max)
            elif not (stats is not None and stats.has_null_count and stats.null_count == rows):
                return None
        return maxima


class _Csv(_Format):
    @staticmethod
    def _header(path: Path) -> list[str] | None:
        with pa.input_stream(str(path)) as stream:  # decompresses by extension
            head = stream.read(_SAMPLE_BLOCK)
        return next(csv.reader(io.StringIO(head.decode("utf-8-sig", errors="replace"))), None)

    @staticmethod
    def _reader(
        path: Path, include: list[str], on_invalid: Callable[[object], str]
    ) -> pacsv.CSVStreamingReader:
        return pacsv.open_csv(
            pa.input_stream(str(path)),
            read_options=pacsv.ReadOptions(block_size=_CSV_BLOCK),
            parse_options=pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=on_invalid),
            # Text first, typed per batch later: type inference from the first block alone fails the
            # whole file when a later block holds "n/a" in a number column.
            convert_options=pacsv.ConvertOptions(
                include_columns=include,
                column_types={name: pa.string() for name in include},
                strings_can_be_null=True,
            ),
        )

    @staticmethod
    def _typed(column: pa.ChunkedArray, targets: Sequence[pa.DataType]) -> pa.ChunkedArray:
        if column.null_count == len(column):
            return column
        probe = column.slice(0, 256)
        for target in targets:
            try:
                # A failing cast of a whole column costs ten times a successful one: reject on a sample.
                pc.cast(probe, target)
                return pc.cast(column, target)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                continue
        return column

    def _infer(self, table: pa.Table, skip: Collection[str]) -> pa.Table:
        for position, item in enumerate(table.schema):
            if item.name not in skip and pa.types.is_string(item.type):
                typed = self._typed(table.column(position), _CSV_TYPES)
                table = table.set_column(position, item.name, typed)
        return table

    def kinds(self, file: LogFile) -> dict[str, ColumnKind | None]:
        header = self._header(file.path)
        if not header:
            return {}
        reader = self._reader(file.path, header, lambda row: "skip")
        try:
            table = self._infer(pa.Table.from_batches([reader.read_next_batch()]), ())
        except StopIteration:  # a header and no rows: names without kinds
            return {name: None for name in header}
        return {item.name: kind_of_arrow(item.type) for item in table.schema}

    def read(self, file: LogFile, job: _Job) -> Iterator[pd.DataFrame]:
        try:
            header = self._header(file.path)
        except (pa.ArrowException, OSError) as error:
            job.unreadable(file, error)
            return
        job.report.files += 1
        if not header:
            return  # an empty file: a rotated log that got nothing yet
        names = set(header)
        constants = job.constants(file, names)
        job.tracker.file_columns(file.name, names | constants.keys())
        invalid = [0]

        def skip_invalid(row: object) -> str:
            invalid[0] += 1
            return "skip"

        has_timestamp = job.timestamp is None or job.timestamp in names or job.timestamp in constants
        # Without a timestamp column the rows are only counted: read the narrowest thing there is. (An
        # empty include list would mean "every column" to pyarrow.)
        include = [column for column in job.wanted if column in names] if has_timestamp else []
        rows = 0
        try:
            for batch in self._reader(file.path, include or header[:1], skip_invalid):
                rows += batch.num_rows
                if not has_timestamp:
                    continue
                job.report.rows_scanned += batch.num_rows
                table = pa.Table.from_batches([batch])
                if job.timestamp in names:
                    # Epochs must be numbers to be read as epochs (and to ask for a unit when none is set).
                    position = table.schema.get_field_index(job.timestamp)
                    stamps = self._typed(table.column(position), (pa.int64(), pa.float64()))
                    table = table.set_column(position, job.timestamp, stamps)
                table = job.with_constants(table, constants)
                refine = partial(self._refine, file=file, job=job, constants=constants)
                yield from job.emit_arrow(table, file, refine=refine)
        except (pa.ArrowException, OSError) as error:
            job.unreadable(file, error, partial=True)
        finally:
            if invalid[0]:
                job.report.rows_scanned += invalid[0]
                job.report.bad_timestamps += invalid[0]
                job.tracker.note(
                    f"file {file.name}: {invalid[0]} rows have the wrong number of fields; they were skipped "
                    "and counted as bad timestamps"
                )
        if not has_timestamp:
            job.no_timestamp(file, rows)

    def _refine(self, table: pa.Table, file: LogFile, job: _Job, constants: Collection[str]) -> pa.Table:
        table = self._infer(table, {job.timestamp, *constants})
        for item in table.schema:
            if item.name != job.timestamp and item.name not in constants:
                job.tracker.kind(file.name, item.name, kind_of_arrow(item.type))
        return table


class _JsonLines(_Format):
    @staticmethod
    def _parse(data: bytes) -> tuple[pa.Table | pd.DataFrame, int]:
        """Lines -> a table (or a frame when Arrow cannot type them), and how many lines were not
        JSON objects."""
        try:
            # Arrow's parser is several times faster than pandas', but wants each field to keep one
            # JSON type within a block.
            return pajson.read_json(pa.BufferReader(data)), 0
        except pa.ArrowInvalid:
            pass
        try:
            # A field that is a number in one line and text in another: pandas keeps both as objects.
            # dtype=False: keep what JSON says ("00123" stays text; no guessing of date columns).
            return pd.read_json(io.BytesIO(data), lines=True, dtype=False), 0
        except ValueError:
            pass
        # A malformed line (a writer cut off mid-line) fails the whole block: parse it line by line so
        # only the bad lines are lost. Rare, so the Python loop is acceptable here.
        records: list[dict] = []
        bad = 0
        for line in data.splitlines():
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                bad += 1
                continue
            if isinstance(record, dict):
                records.append(record)
            else:
                bad += 1
        return pd.DataFrame.from_records(records) if records else pd.DataFrame(), bad

    def _chunks(self, stream: pa.NativeFile, block: int) -> Iterator[tuple[pa.Table | pd.DataFrame, int]]:
        """Parsed whole lines, ``block`` bytes at a time."""
        tail = b""
        while True:
            data = stream.read(block)
            if not data:
                break
            data = tail + data
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                tail = data  # one line longer than a block: keep reading
                continue
            tail = data[cut:]
            yield self._parse(data[:cut])
        if tail.strip():
            yield self._parse(tail)  # the last line, without its newline

    def kinds(self, file: LogFile) -> dict[str, ColumnKind | None]:
        with pa.input_stream(str(file.path)) as stream:
            head = stream.read(_SAMPLE_BLOCK)
        cut = head.rfind(b"\n") + 1
        parsed, _ = self._parse(head[:cut] if cut else head)
        if isinstance(parsed, pa.Table):
            return {item.name: kind_of_arrow(item.type) for item in parsed.schema}
        return {str(name): kind_of_series(parsed[name], detect_dates=True) for name in parsed.columns}

    def read(self, file: LogFile, job: _Job) -> Iterator[pd.DataFrame]:
        try:
            stream = pa.input_stream(str(file.path))  # decompresses by extension
        except (pa.ArrowException, OSError) as error:
            job.unreadable(file, error)
            return
        job.report.files += 1
        seen: set[str] = set()
        bad_lines = 0
        without_timestamp = 0
        try:
            for parsed, bad in self._chunks(stream, _JSON_BLOCK):
                is_table = isinstance(parsed, pa.Table)
                names = [str(name) for name in (parsed.column_names if is_table else parsed.columns)]
                rows = len(parsed)
                job.report.rows_scanned += rows + bad
                job.report.bad_timestamps += bad
                bad_lines += bad
                seen.update(names)
                constants = job.constants(file, names)
                if job.timestamp is not None and job.timestamp not in names and job.timestamp not in constants:
                    # A key absent from every line of a block is a null timestamp for each of them.
                    job.report.bad_timestamps += rows
                    without_timestamp += rows
                    continue
                present = [column for column in job.wanted if column in names]
                if is_table:
                    table = job.with_constants(parsed.select(present), constants)
                    for column in present:
                        job.tracker.kind(file.name, column, kind_of_arrow(table.schema.field(column).type))
                    yield from job.emit_arrow(table, file)
                else:
                    frame = parsed[present].copy()
                    for key, value in constants.items():
                        frame[key] = _constant_column(value, job.partition_types[key], rows).to_pandas()
                    for column in present:
                        job.tracker.kind(file.name, column, kind_of_series(frame[column]))
                    yield from job.emit_frame(frame, file)
        except (pa.ArrowException, OSError) as error:
            job.unreadable(file, error, partial=True)
        finally:
            stream.close()
        partition_keys = {key for key in file.partitions if key in job.wanted}
        job.tracker.file_columns(file.name, seen | partition_keys)
        if job.timestamp is not None and job.timestamp not in seen | partition_keys:
            job.tracker.no_timestamp_rows(file.name, without_timestamp)
        if bad_lines:
            job.tracker.note(
                f"file {file.name}: {bad_lines} lines are not JSON objects; they were skipped and counted as "
                "bad timestamps"
            )


_FORMATS: dict[str, type[_Format]] = {"parquet": _Parquet, "csv": _Csv, "jsonl": _JsonLines}


class FileSource(BatchSource):
    """Parquet, CSV or JSON-lines logs; see the module docstring for how a window is read."""

    def __init__(self, spec: FileSourceSpec, base_dir: Path | None = None) -> None:
        self.spec = spec
        self.base_dir = Path(base_dir).resolve() if base_dir is not None else Path.cwd()
        self._format = _FORMATS[spec.type]()
        relative = any(not os.path.isabs(os.path.expanduser(path)) for path in spec.paths)
        where = f" (relative to {self.base_dir})" if relative else ""
        self.description = f"{spec.type} files {', '.join(spec.paths)}{where}"

    def __enter__(self) -> FileSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def files(self) -> list[LogFile]:
        """The files the source holds right now (listed again at each call: logs keep arriving)."""
        return discover(self.spec, self.base_dir)

    def _job(
        self,
        wanted: list[str],
        timestamp: str | None,
        window: Window | None,
        batch_rows: int,
        report: ReadReport,
        files: Sequence[LogFile],
        categories: frozenset[str] = frozenset(),
    ) -> _Job:
        return _Job(
            wanted=wanted,
            timestamp=timestamp,
            window=window,
            batch_rows=batch_rows,
            report=report,
            parser=TimestampParser(timestamp or "", self.spec.timestamp_unit),
            tracker=ColumnTracker(wanted, timestamp),
            partition_types=value_types([file.partitions for file in files]),
            categories=categories - {timestamp},
        )

    def _missing_timestamp(self, timestamp: str, job: _Job) -> SourceError:
        available = ", ".join(sorted(job.tracker.seen)) or "none"
        return SourceError(
            f"timestamp column {timestamp!r} not found in {self.description} ({job.tracker.files} files read); "
            f"columns there: {available}. Set the monitor's timestamp column to one of them"
        )

    def columns(self) -> dict[str, ColumnKind]:
        files = self.files()
        observed: dict[str, list[ColumnKind]] = {}
        errors: list[str] = []
        for file in files:
            try:
                kinds = self._format.kinds(file)
            except (pa.ArrowException, OSError, ValueError) as error:
                errors.append(f"{file.name}: {_first_line(error)}")
                continue
            for name, kind in kinds.items():
                observed.setdefault(name, [])
                if kind is not None:
                    observed[name].append(kind)
        if errors and len(errors) == len(files):
            raise SourceError(f"none of the {len(files)} files of {self.description} could be read, e.g. {errors[0]}")
        result: dict[str, ColumnKind] = {name: majority_kind(kinds) for name, kinds in observed.items()}
        for key, python_type in value_types([file.partitions for file in files]).items():
            result.setdefault(key, "numeric" if python_type is int else "string")
        return result

    def _read(
        self,
        columns: Sequence[str],
        timestamp: str | None,
        window: Window | None,
        batch_rows: int,
        report: ReadReport,
        categories: frozenset[str] = frozenset(),
    ) -> Iterator[pd.DataFrame]:
        wanted = wanted_columns(columns, timestamp)
        files = self.files()
        job = self._job(wanted, timestamp, window, batch_rows, report, files, categories)
        try:
            for file in files:
                if window is not None and not may_overlap(partition_span(file.partitions), window):
                    continue
                yield from self._format.read(file, job)
            if timestamp is not None and not job.tracker.timestamp_found:
                raise self._missing_timestamp(timestamp, job)
        finally:
            job.tracker.finish(report)
            report.warnings.extend(note for note in job.parser.notes if note not in report.warnings)

    def max_timestamp(self, timestamp: str) -> datetime | None:
        files = self.files()
        job = self._job([timestamp], timestamp, None, 1 << 20, ReadReport(), files)

        def newest_first(file: LogFile) -> tuple[bool, float]:
            # Files whose partitions say nothing come first (they must all be read), then newest partitions.
            bound = latest_possible(partition_span(file.partitions))
            return (bound is not None, -bound.timestamp() if bound is not None else 0.0)

        best: pd.Timestamp | None = None
        for file in sorted(files, key=newest_first):
            bound = latest_possible(partition_span(file.partitions))
            if best is not None and bound is not None and bound <= best:
                break  # files are sorted by their partitions' end: none of the rest can hold anything newer
            newest = self._format.newest(file, job)
            if newest is not None and not pd.isna(newest) and (best is None or newest > best):
                best = newest
        if not job.tracker.timestamp_found:
            raise self._missing_timestamp(timestamp, job)
        return None if best is None else best.to_pydatetime()

    def close(self) -> None:
        """Nothing to release: files are opened and closed per read."""
