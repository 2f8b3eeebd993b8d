"""Configuration of inference-log sources: the ``source:`` (and ``reference:``) block of a monitor.

These models are the configuration reference: their field descriptions are rendered into the
README. They only validate; ``monitor.sources.open_source`` turns one into a readable source.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

TimestampUnit = Literal["s", "ms", "us", "ns"]

_TIMESTAMP_UNIT = (
    "Unit of numeric (Unix epoch) timestamps: `s`, `ms`, `us` or `ns`. Required when the timestamp "
    "column holds numbers, e.g. `ms` for Databricks' `timestamp_ms`; ignored for real timestamp "
    "columns and for date strings."
)


class FileSourceSpec(BaseModel):
    """Logs in files: Parquet, CSV or JSON lines, one file, a folder or globs."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["parquet", "csv", "jsonl"] = Field(
        description="File format. `csv` needs a header line; `jsonl` is one JSON object per line. "
        "Files ending in `.gz`, `.bz2`, `.zst` or `.lz4` are decompressed (CSV and JSON lines)."
    )
    path: str | list[str] = Field(
        description="A file, a folder (read recursively, skipping names that start with `.` or `_`), "
        "or a glob such as `logs/*.parquet` or `logs/**/*.csv`; or a list of these. Relative paths "
        "are resolved against the folder of the config file. Files are listed again at every run, "
        "so new files are picked up."
    )
    partitioning: Literal["hive", "none"] = Field(
        "hive",
        description="`hive` reads `key=value` folder names (e.g. `date=2026-01-01/`) as columns and "
        "skips folders whose date cannot overlap the window being read; `none` ignores folder names.",
    )
    timestamp_unit: TimestampUnit | None = Field(None, description=_TIMESTAMP_UNIT)

    @field_validator("path")
    @classmethod
    def _paths_not_empty(cls, value: str | list[str]) -> str | list[str]:
        paths = [value] if isinstance(value, str) else value
        if not paths:
            raise ValueError("give at least one path")
        if any(not item.strip() for item in paths):
            raise ValueError("a path may not be empty")
        return value

    @property
    def paths(self) -> list[str]:
        return [self.path] if isinstance(self.path, str) else list(self.path)


class SqlSourceSpec(BaseModel):
    """Logs in a database table, or the rows of a query, read through SQLAlchemy."""

    model_config = ConfigDict(extra="forbid", validate_by_name=True, validate_by_alias=True)

    type: Literal["sql"] = Field(description="A database read through SQLAlchemy.")
    url: str = Field(
        description="SQLAlchemy URL, e.g. `postgresql://user:${PGPASSWORD}@host/db` (read with psycopg 3) "
        "or `sqlite:///logs.db` (a relative SQLite path is resolved against the config file's folder). "
        "Use `${ENV}` for passwords; they are redacted from every message."
    )
    table: str | None = Field(
        None,
        description="Table or view to read. Give the schema separately in `schema`, not as `schema.table`.",
    )
    query: str | None = Field(
        None,
        description="A SELECT to read instead of a table; it is wrapped as a subquery, so the window "
        "filter and column selection still run in the database. Write a literal colon as `\\:`.",
    )
    db_schema: str | None = Field(
        None,
        alias="schema",
        description="Database schema of `table` (default: the connection's default schema).",
    )
    timestamp_unit: TimestampUnit | None = Field(None, description=_TIMESTAMP_UNIT)

    @field_validator("url")
    @classmethod
    def _psycopg_by_default(cls, value: str) -> str:
        # SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3 already; writing the driver out keeps
        # that true on 2.0 too, and postgres:// (Heroku style) is not a dialect name at all.
        return re.sub(r"^(postgresql|postgres)://", "postgresql+psycopg://", value.strip())

    @field_validator("query")
    @classmethod
    def _no_trailing_semicolon(cls, value: str | None) -> str | None:
        # The query becomes a subquery, where a trailing semicolon is a syntax error.
        if value is None:
            return None
        stripped = value.strip().rstrip(";").strip()
        if not stripped:
            raise ValueError("query is empty")
        return stripped

    @model_validator(mode="after")
    def _table_or_query(self) -> SqlSourceSpec:
        if (self.table is None) == (self.query is None):
            raise ValueError("give exactly one of `table` (a table or view to read) or `query` (a SELECT)")
        if self.query is not None and self.db_schema is not None:
            raise ValueError("`schema` applies to `table` only; qualify the names inside `query` instead")
        return self


SourceSpec = Annotated[FileSourceSpec | SqlSourceSpec, Field(discriminator="type")]
"""Either kind of source, chosen by its ``type``."""
