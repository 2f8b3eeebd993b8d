"""Inference-log sources: where a monitor's rows come from.

``open_source(spec)`` gives a ``Source`` for a ``FileSourceSpec`` (Parquet, CSV, JSON lines) or a
``SqlSourceSpec`` (a table or query through SQLAlchemy). A source reads the rows of a window, in
bounded batches, with the timestamp as tz-aware UTC, and reports in a ``ReadReport`` what it could
not read (bad timestamps, missing columns, differing schemas); it computes no statistics.

>>> from monitor.sources import FileSourceSpec
>>> FileSourceSpec(type="parquet", path="logs/*.parquet").partitioning
'hive'
"""

from __future__ import annotations

from pathlib import Path

from monitor.sources.base import ColumnKind, ReadReport, Source, SourceError
from monitor.sources.files import FileSource
from monitor.sources.specs import FileSourceSpec, SourceSpec, SqlSourceSpec, TimestampUnit
from monitor.sources.sql import SqlSource, redact_url

__all__ = [
    "ColumnKind",
    "FileSource",
    "FileSourceSpec",
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


def open_source(spec: FileSourceSpec | SqlSourceSpec, base_dir: Path | None = None) -> Source:
    """The source a spec describes. Relative file paths (and relative SQLite paths) resolve against
    ``base_dir``, the config file's folder, defaulting to the working directory.

    No file is listed and no connection made here: files are listed at each read (logs keep
    arriving), so a missing path or an unreachable database raises ``SourceError`` on first use.
    A URL SQLAlchemy cannot parse raises at once.
    """
    if isinstance(spec, FileSourceSpec):
        return FileSource(spec, base_dir)
    if isinstance(spec, SqlSourceSpec):
        return SqlSource(spec, base_dir)
    raise TypeError(f"not a source spec: {type(spec).__name__}")
