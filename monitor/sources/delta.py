"""Inference logs in a Delta Lake table, read with delta-rs (``deltalake``), without Spark.

A Delta table is a folder of Parquet files plus a transaction log (``_delta_log/``) saying which
files make up each version. Reading the folder as plain Parquet returns rows that were deleted or
updated since (the old files stay until a vacuum); this source reads only the files of the table's
current version, or of ``version`` (time travel).

How a window is read, cheapest first, mirroring ``FileSource``:

1. **File skipping** (``DeltaTable.to_pyarrow_dataset()``): every file carries an expression built
   from its partition values and the min/max/null-count statistics in the log; a file is opened
   only when that expression may overlap the window (timestamp stored as a timestamp, a date or,
   with ``timestamp_unit``, a number), or when it has null timestamps (counted as bad).
2. **Partition labels**: files whose hive partition values prove they hold no row of the window
   are skipped (``monitor.sources.partitions`` rules: ``date=2026-01-05`` and friends).
3. **Row-group statistics** and **projection**: inside a file, ``FileSource``'s own Parquet rules:
   only row groups that may overlap the window, only the requested columns.
4. **Exact filter** after parsing the timestamps (``TimestampParser``), as for every source.

Tables whose protocol the pyarrow dataset cannot read (deletion vectors, which Databricks enables
by default) are read through delta-rs' DataFusion query engine instead, with the window as a
``WHERE`` clause and the columns as its ``SELECT``: deletion vectors are honoured there too.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Iterator, Sequence

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from monitor.sources._columns import ColumnTracker, kind_of_arrow, wanted_columns
from monitor.sources._timestamps import TimestampParser, epoch_bounds
from monitor.sources.base import BatchSource, ColumnKind, ReadReport, SourceError
from monitor.sources.files import (
    LogFile,
    _first_line,
    _Job,
    _Parquet,
    _statistic_micros,
)
from monitor.sources.partitions import may_overlap, partition_span
from monitor.sources.specs import DeltaSourceSpec
from monitor.windows import Window

try:  # optional: only a config with `type: delta` needs it
    import deltalake
    from deltalake.exceptions import DeltaError, DeltaProtocolError, TableNotFoundError
except ImportError:  # pragma: no cover - exercised only without the package
    deltalake = None  # type: ignore[assignment]

_PARQUET = _Parquet()
_QUERY_TABLE = "driftline_source"


def _quote(name: str) -> str:
    """A DataFusion identifier, case and all."""
    return '"' + name.replace('"', '""') + '"'


def fragment_file(fragment: ds.Fragment, partitions: set[str], window: Window | None) -> LogFile | None:
    """A Delta data file as a ``LogFile`` with its partition labels, or None when its partition
    cannot overlap ``window`` (the Delta source and the Spark engine both prune this way)."""
    keys = ds.get_partition_keys(fragment.partition_expression)
    labels = {key: _label(value) for key, value in keys.items() if key in partitions}
    if window is not None and not may_overlap(partition_span(labels), window):
        return None
    return LogFile(Path(fragment.path), fragment.path, labels)


def _label(value: object) -> str | None:
    """A partition value as the text a folder name would hold (for the hive label rules)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat()
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _window_bounds(field: pa.Field, window: Window, unit: str | None) -> tuple[object, object, bool] | None:
    """``(low, high, high_inclusive)`` in the column's own type covering the window, or None when its
    values cannot be compared with time (text: filtered after parsing only)."""
    kind = field.type
    if pa.types.is_timestamp(kind):
        start, end = window.start, window.end
        if kind.tz is None:  # timestamp_ntz: naive values are UTC
            start, end = start.replace(tzinfo=None), end.replace(tzinfo=None)
        return pa.scalar(start, kind), pa.scalar(end, kind), False
    if pa.types.is_date(kind):
        last = (window.end - timedelta(microseconds=1)).date()
        return pa.scalar(window.start.date(), kind), pa.scalar(last, kind), True
    if unit is not None and (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
        low, high = epoch_bounds(window, unit)
        if pa.types.is_floating(kind):
            return pa.scalar(float(low), kind), pa.scalar(float(high), kind), False
        return pa.scalar(low, pa.int64()), pa.scalar(high, pa.int64()), False
    return None


class DeltaSource(BatchSource):
    """A Delta Lake table; see the module docstring for how a window is read."""

    def __init__(self, spec: DeltaSourceSpec, base_dir: Path | None = None) -> None:
        self.spec = spec
        self.base_dir = Path(base_dir).resolve() if base_dir is not None else Path.cwd()
        text = spec.path.strip()
        if "://" in text:
            self.uri, self._local = text, None
            where = ""
        else:
            expanded = os.path.expanduser(text)
            self._local = Path(expanded) if os.path.isabs(expanded) else self.base_dir / expanded
            self.uri = str(self._local)
            where = "" if os.path.isabs(expanded) else f" (relative to {self.base_dir})"
        version = f" at version {spec.version}" if spec.version is not None else ""
        self.description = f"delta table {spec.path}{where}{version}"

    def __enter__(self) -> DeltaSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the table --------------------------------------------------------------------------

    def _table(self) -> deltalake.DeltaTable:
        """The table at its latest (or configured) version: loaded at each call, logs keep arriving."""
        if deltalake is None:
            raise SourceError(f"{self.description}: reading Delta tables needs the `deltalake` package: install `driftline[delta]`")
        hint = " (relative paths are resolved against the config file's folder)" if self._local is not None else ""
        if self._local is not None and not self._local.exists():
            raise SourceError(f"{self.spec.path!r} does not exist (looked for {self._local}); check `path` in the source config{hint}")
        try:
            return deltalake.DeltaTable(self.uri, version=self.spec.version)
        except TableNotFoundError as error:
            if self._local is not None and not (self._local / "_delta_log").is_dir():
                raise SourceError(
                    f"{self.uri} is not a Delta table (it has no _delta_log folder); for plain Parquet files use "
                    "`type: parquet`"
                ) from None
            raise SourceError(f"{self.uri} is not a readable Delta table: {_first_line(error)}") from None
        except DeltaError as error:
            if self.spec.version is not None:
                raise SourceError(
                    f"{self.uri}: cannot load version {self.spec.version} ({_first_line(error)}); check `version` in "
                    "the source config (the table's history may have been vacuumed)"
                ) from None
            raise SourceError(f"{self.uri}: cannot read the Delta table: {_first_line(error)}") from None
        except (OSError, ValueError) as error:
            raise SourceError(f"{self.uri}: cannot read the Delta table: {_first_line(error)}") from None

    @staticmethod
    def _dataset(table: deltalake.DeltaTable) -> ds.FileSystemDataset | None:
        """The table's files as a pyarrow dataset; None when its protocol needs the query engine."""
        try:
            return table.to_pyarrow_dataset()
        except DeltaProtocolError:
            return None

    @staticmethod
    def _schema(table: deltalake.DeltaTable) -> pa.Schema:
        return pa.schema(table.schema().to_arrow())

    def _check_timestamp(self, schema: pa.Schema, timestamp: str) -> None:
        if timestamp not in schema.names:
            raise SourceError(
                f"timestamp column {timestamp!r} not found in {self.description}; columns there: "
                f"{', '.join(schema.names) or 'none'}. Set the monitor's timestamp column to one of them"
            )

    # -- the Source protocol ----------------------------------------------------------------

    def columns(self) -> dict[str, ColumnKind]:
        return {item.name: kind_of_arrow(item.type) or "other" for item in self._schema(self._table())}

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
        table = self._table()
        dataset = self._dataset(table)
        schema = dataset.schema if dataset is not None else self._schema(table)
        if timestamp is not None:
            self._check_timestamp(schema, timestamp)
        # One schema for the whole table: a column it lacks is missing from every file (files written
        # before a column was added give nulls, like any other null).
        report.missing_columns.update(column for column in wanted if column not in schema.names)
        job = _Job(
            wanted=wanted,
            timestamp=timestamp,
            window=window,
            batch_rows=batch_rows,
            report=report,
            parser=TimestampParser(timestamp or "", self.spec.timestamp_unit),
            tracker=ColumnTracker(wanted, timestamp),
            partition_types={},
        )
        present = [column for column in wanted if column in schema.names]
        try:
            if dataset is not None:
                partitions = set(table.metadata().partition_columns)
                yield from self._read_files(dataset, partitions, present, job)
            else:
                yield from self._read_query(table, schema, present, job)
        finally:
            job.tracker.finish(report)
            report.warnings.extend(note for note in job.parser.notes if note not in report.warnings)

    def _window_filter(self, schema: pa.Schema, job: _Job) -> ds.Expression | None:
        """What a file must satisfy to hold a row of the window, or a null timestamp (counted as bad)."""
        if job.window is None or job.timestamp is None:
            return None
        bounds = _window_bounds(schema.field(job.timestamp), job.window, job.parser.unit)
        if bounds is None:
            return None
        low, high, inclusive = bounds
        column = ds.field(job.timestamp)
        inside = (column >= low) & ((column <= high) if inclusive else (column < high))
        return inside | column.is_null()

    def _read_files(
        self, dataset: ds.FileSystemDataset, partitions: set[str], present: list[str], job: _Job
    ) -> Iterator[pd.DataFrame]:
        schema = dataset.schema
        expression = self._window_filter(schema, job)
        fragments = dataset.get_fragments(filter=expression) if expression is not None else dataset.get_fragments()
        fragments = sorted(fragments, key=lambda fragment: fragment.path)  # path order, like FileSource
        timestamp_field = schema.field(job.timestamp) if job.timestamp is not None else None
        for fragment in fragments:
            file = fragment_file(fragment, partitions, job.window)
            if file is None:
                continue
            try:
                if job.window is not None and timestamp_field is not None and job.timestamp not in partitions:
                    groups = _PARQUET._row_groups(fragment, timestamp_field, job)
                    job.report.files += 1
                    if groups is not None:
                        if not groups:
                            continue
                        fragment = fragment.subset(row_group_ids=groups)
                else:
                    job.report.files += 1
                for batch in fragment.to_batches(
                    schema=schema,
                    columns=present,
                    batch_size=job.batch_rows,
                    batch_readahead=2,  # as FileSource: memory bounded by the batch, not the window
                    fragment_readahead=1,
                ):
                    job.report.rows_scanned += batch.num_rows
                    yield from job.emit_arrow(pa.Table.from_batches([batch], schema=batch.schema), file)
            except (pa.ArrowException, OSError) as error:
                # A file the log lists but storage lost (a vacuum racing the read) must not sink the run.
                job.unreadable(file, error, partial=True)

    def _read_query(
        self, table: deltalake.DeltaTable, schema: pa.Schema, present: list[str], job: _Job
    ) -> Iterator[pd.DataFrame]:
        """Deletion vectors and other reader features: delta-rs' DataFusion engine applies them."""
        where = ""
        if job.window is not None and job.timestamp is not None:
            bounds = _window_bounds(schema.field(job.timestamp), job.window, job.parser.unit)
            if bounds is not None:
                low, high, inclusive = bounds
                column = _quote(job.timestamp)
                where = (
                    f" WHERE ({column} >= {_sql_literal(low)} AND {column} {'<=' if inclusive else '<'} "
                    f"{_sql_literal(high)}) OR {column} IS NULL"
                )
        select = ", ".join(_quote(column) for column in present) or "1"
        query = deltalake.QueryBuilder().register(_QUERY_TABLE, table)
        file = LogFile(Path(self.uri), self.spec.path)
        try:
            reader = pa.RecordBatchReader.from_stream(query.execute(f"SELECT {select} FROM {_QUERY_TABLE}{where}"))
        except (DeltaError, pa.ArrowException, OSError) as error:
            raise SourceError(f"{self.description}: reading failed: {_first_line(error)}") from None
        job.report.files += 1
        # DataFusion hands out string views, which many Arrow kernels (filter, take) cannot process yet.
        plain = pa.schema([item.with_type(_without_views(item.type)) for item in reader.schema])
        pending: list[pa.RecordBatch] = []
        rows = 0

        def flush() -> Iterator[pd.DataFrame]:
            part = pa.Table.from_batches(pending, schema=reader.schema)
            if plain != reader.schema:
                part = part.cast(plain)
            job.report.rows_scanned += part.num_rows
            yield from job.emit_arrow(part, file)

        try:
            for batch in reader:
                pending.append(batch)
                rows += batch.num_rows
                if rows >= job.batch_rows:
                    yield from flush()
                    pending, rows = [], 0
            if pending:
                yield from flush()
        except (DeltaError, pa.ArrowException, OSError) as error:
            raise SourceError(f"{self.description}: reading failed: {_first_line(error)}") from None

    def max_timestamp(self, timestamp: str) -> datetime | None:
        table = self._table()
        dataset = self._dataset(table)
        schema = dataset.schema if dataset is not None else self._schema(table)
        self._check_timestamp(schema, timestamp)
        parser = TimestampParser(timestamp, self.spec.timestamp_unit)
        field = schema.field(timestamp)
        candidates: ds.Expression | None = None
        if dataset is not None and _statistic_micros(field.type, parser.unit) is not None:
            # The log's statistics name the newest file(s); only those are read, for the exact value
            # (Delta truncates timestamp statistics to milliseconds).
            newest = self._newest_statistic(table, timestamp)
            if newest is _NO_ROWS:
                return None
            if isinstance(newest, pa.Scalar) and not pd.isna(parser.parse(pd.Series([newest.as_py()]), self.description).iloc[0]):
                candidates = ds.field(timestamp) >= newest
            # else: no statistics, or the largest is garbage (an absurd epoch): read every file
        best = self._newest(table, dataset, timestamp, candidates, parser)
        if best is None and candidates is not None:
            best = self._newest(table, dataset, timestamp, None, parser)  # the newest file held only garbage
        return None if best is None else best.to_pydatetime()

    def _newest(
        self,
        table: deltalake.DeltaTable,
        dataset: ds.FileSystemDataset | None,
        timestamp: str,
        candidates: ds.Expression | None,
        parser: TimestampParser,
    ) -> pd.Timestamp | None:
        best: pd.Timestamp | None = None
        for values in self._timestamp_batches(table, dataset, timestamp, candidates):
            newest_here = parser.parse(values, self.description).max()
            if not pd.isna(newest_here) and (best is None or newest_here > best):
                best = newest_here
        return best

    def _newest_statistic(self, table: deltalake.DeltaTable, timestamp: str) -> pa.Scalar | None | object:
        """The largest per-file maximum of ``timestamp`` in the log, ``_NO_ROWS`` when every file's
        values are null, None when some file has rows but no statistics (every file must be read)."""
        try:
            actions = pa.table(table.get_add_actions(flatten=True))
        except (DeltaError, pa.ArrowException, TypeError, ValueError):
            return None
        name = f"max.{timestamp}"
        if actions.num_rows == 0:
            return _NO_ROWS
        if name not in actions.column_names or "num_records" not in actions.column_names:
            return None
        maxima = actions.column(name)
        records = actions.column("num_records")
        nulls = actions.column(f"null_count.{timestamp}") if f"null_count.{timestamp}" in actions.column_names else None
        # A file without a maximum is fine only when the statistics say all its values are null.
        all_null = pc.equal(nulls, records) if nulls is not None else pa.repeat(False, actions.num_rows)
        unknown = pc.and_(pc.is_null(maxima), pc.invert(pc.fill_null(all_null, False)))
        unknown = pc.and_(unknown, pc.greater(pc.fill_null(records, 1), 0))
        if pc.any(unknown).as_py():
            return None
        newest = pc.max(maxima)
        return _NO_ROWS if not newest.is_valid else newest

    def _timestamp_batches(
        self,
        table: deltalake.DeltaTable,
        dataset: ds.FileSystemDataset | None,
        timestamp: str,
        candidates: ds.Expression | None,
    ) -> Iterator[pd.Series]:
        if dataset is not None:
            fragments = dataset.get_fragments(filter=candidates) if candidates is not None else dataset.get_fragments()
            for fragment in fragments:
                for batch in fragment.to_batches(schema=dataset.schema, columns=[timestamp], batch_size=1 << 20):
                    yield batch.column(0).to_pandas()
            return
        query = deltalake.QueryBuilder().register(_QUERY_TABLE, table)
        try:
            reader = pa.RecordBatchReader.from_stream(
                query.execute(f"SELECT {_quote(timestamp)} FROM {_QUERY_TABLE}")
            )
            for batch in reader:
                yield batch.column(0).cast(_without_views(batch.schema.field(0).type)).to_pandas()
        except (DeltaError, pa.ArrowException, OSError) as error:
            raise SourceError(f"{self.description}: reading timestamps failed: {_first_line(error)}") from None

    def close(self) -> None:
        """Nothing to release: the table is loaded per read."""


class _NoRows:
    """The timestamp column holds no value at all."""


_NO_ROWS = _NoRows()


def _without_views(dtype: pa.DataType) -> pa.DataType:
    if pa.types.is_string_view(dtype):
        return pa.string()
    if pa.types.is_binary_view(dtype):
        return pa.binary()
    if pa.types.is_struct(dtype):
        return pa.struct([item.with_type(_without_views(item.type)) for item in dtype])
    if pa.types.is_list(dtype) or pa.types.is_large_list(dtype) or pa.types.is_list_view(dtype):
        return pa.list_(dtype.value_field.with_type(_without_views(dtype.value_type)))
    return dtype


def _sql_literal(value: pa.Scalar) -> str:
    """A DataFusion literal of the column's type for a window bound."""
    kind = value.type
    python = value.as_py()
    if pa.types.is_timestamp(kind):
        text = python.isoformat()
        cast = f"Timestamp(Microsecond, Some(\"{kind.tz}\"))" if kind.tz else "Timestamp(Microsecond, None)"
        return f"arrow_cast('{text}', '{cast}')"
    if pa.types.is_date(kind):
        return f"DATE '{python.isoformat()}'"
    return repr(python)

