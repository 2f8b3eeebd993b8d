"""Inference-log sources: where a monitor's rows come from.

``open_source(spec)`` gives a ``Source`` for a ``FileSourceSpec`` (Parquet, CSV, JSON lines), a
``SqlSourceSpec`` (a table or query through SQLAlchemy) or a ``DeltaSourceSpec`` (a Delta Lake table
through delta-rs); any of them with ``inference_table:`` is wrapped in an ``InferenceTableSource``
that unpacks Databricks Model Serving requests. A source reads the rows of a window, in
bounded batches, with the timestamp as tz-aware UTC, and reports in a ``ReadReport`` what it could
not read (bad timestamps, missing columns, differing schemas); it computes no statistics.

>>> from monitor.sources import FileSourceSpec
>>> FileSourceSpec(type="parquet", path="logs/*.parquet").partitioning
'hive'
"""

from __future__ import annotations

from pathlib import Path

from monitor.sources.base import ColumnKind, ReadReport, Source, SourceError
from monitor.sources.delta import DeltaSource
from monitor.sources.files import FileSource
from monitor.sources.inference_table import InferenceTableSource
from monitor.sources.specs import (
    DeltaSourceSpec,
    FileSourceSpec,
    InferenceTableSpec,
    SourceSpec,
    SqlSourceSpec,
    TimestampUnit,
)
from monitor.sources.spark_specs import SparkTableSpec
from monitor.sources.sql import SqlSource, redact_url

__all__ = [
    "ColumnKind",
    "DeltaSource",
    "DeltaSourceSpec",
    "FileSource",
    "FileSourceSpec",
    "InferenceTableSource",
    "InferenceTableSpec",
    "ReadReport",
    "Source",
    "SourceError",
    "SourceSpec",
    "SqlSource",
    "SqlSourceSpec",
    "TimestampUnit",
    "open_source",
    "redact_url",
]


def open_source(spec: FileSourceSpec | SqlSourceSpec | DeltaSourceSpec, base_dir: Path | None = None) -> Source:
    """The source a spec describes. Relative file paths (and relative SQLite paths, and Delta table
    folders) resolve against ``base_dir``, the config file's folder, defaulting to the working directory.

    No file is listed and no connection made here: files are listed (and Delta tables loaded) at each
    read (logs keep arriving), so a missing path or an unreachable database raises ``SourceError`` on
    first use. A URL SQLAlchemy cannot parse raises at once.
    """
    adapter = getattr(spec, "inference_table", None)
    if adapter is not None:
        # The adapter reads the table's own columns through the plain source; the request time is
        # numeric in legacy tables, so the adapter's unit applies unless the source sets one.
        inner = spec.model_copy(
            update={"inference_table": None, "timestamp_unit": spec.timestamp_unit or adapter.timestamp_unit}
        )
        return InferenceTableSource(open_source(inner, base_dir), adapter)
    if isinstance(spec, FileSourceSpec):
        return FileSource(spec, base_dir)
    if isinstance(spec, SqlSourceSpec):
        return SqlSource(spec, base_dir)
    if isinstance(spec, DeltaSourceSpec):
        return DeltaSource(spec, base_dir)
    if isinstance(spec, SparkTableSpec):
        raise SourceError(
            f"spark_table sources need engine: spark (table {spec.table!r} exists only inside a Spark session); "
            "set `engine: spark` on the monitor"
        )
    raise TypeError(f"not a source spec: {type(spec).__name__}")
