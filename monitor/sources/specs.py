"""Configuration of inference-log sources: the ``source:`` (and ``reference:``) block of a monitor.

These models are the configuration reference: their field descriptions are rendered into the
README. They only validate; ``monitor.sources.open_source`` turns one into a readable source.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_serializer,
    model_validator,
)

TimestampUnit = Literal["s", "ms", "us", "ns"]

_TIMESTAMP_UNIT = (
    "Unit of numeric (Unix epoch) timestamps: `s`, `ms`, `us` or `ns`. Required when the timestamp "
    "column holds numbers, e.g. `ms` for Databricks' `timestamp_ms`; ignored for real timestamp "
    "columns and for date strings."
)


class InferenceTableSpec(BaseModel):
    """A Databricks Model Serving inference table, unpacked into one row per record: `source: {..., inference_table: {}}`.

    Each row of the table is one request, with the request and response as JSON.

    Every record of a request becomes a row with the record's keys as feature columns and these
    columns: `timestamp` (the request time), `prediction`, `latency_ms`, `model_version` (from the
    request metadata), `status_code`, `request_id` and `record_id` (unique per record: use it as
    `columns.id`); configure `columns:` with these names. The
    defaults are the legacy table's column names; gateway tables rename some of them, so each name
    is a setting. Rows of failed requests (status code other than 200) are dropped, and requests
    whose JSON cannot be read are dropped; both are counted in the read's warnings.
    """

    model_config = ConfigDict(extra="forbid")

    timestamp: str = Field(
        "timestamp_ms",
        description="Source column with the request time; becomes the column `timestamp`.",
    )
    timestamp_unit: TimestampUnit | None = Field(
        "ms",
        description="Unit of `timestamp` when it holds numbers (the legacy table's `timestamp_ms` is in ms); "
        "a `timestamp_unit` set on the source itself takes precedence.",
    )
    latency: str | None = Field(
        "execution_time_ms",
        description="Source column with the request's execution time in ms; becomes `latency_ms` (the same "
        "value for every record of a request). null: none.",
    )
    status_code: str | None = Field(
        "status_code",
        description="Source column with the HTTP status; rows other than 200 are dropped. null: keep every row.",
    )
    request: str = Field(
        "request",
        description="Source column with the request JSON: `{\"dataframe_records\": [...]}`, "
        "`{\"dataframe_split\": {\"columns\": [...], \"data\": [...]}}`, `{\"instances\": [...]}` or "
        "`{\"inputs\": ...}`.",
    )
    response: str | None = Field(
        "response",
        description="Source column with the response JSON, `{\"predictions\": [...]}` (or `outputs`), one "
        "prediction per record; becomes `prediction`. null: none.",
    )
    request_metadata: str | None = Field(
        "request_metadata",
        description="Source column with the request metadata (a JSON object or a map); its `model_version` "
        "becomes `model_version`. null: none.",
    )
    id: str | None = Field(
        "databricks_request_id",
        description="Source column with the request id; becomes `request_id` (shared by the records of a "
        "request) and `record_id` (`{request id}:{position}`, unique per record). null: none.",
    )
    prediction_field: str | int | None = Field(
        None,
        description="When each prediction is an object (e.g. `{\"label\": 1, \"score\": 0.8}`), the key to "
        "use; when it is a list (class probabilities), the position. Objects with a single key need none.",
    )
    extra_columns: list[str] = Field(
        default_factory=list,
        description="Other source columns copied to every record of the request, under their own names "
        "(e.g. `client_request_id`, `date`).",
    )


_INFERENCE_TABLE = (
    "Read the source as a Databricks Model Serving inference table: JSON requests and responses unpacked "
    "into one row per record (see InferenceTableSpec); `{}` for the legacy column names."
)


class _AdaptableSource(BaseModel):
    """A source that an ``inference_table`` adapter may unpack. Each subclass declares the field itself,
    last, so the configuration reference lists it after the source's own keys."""

    @model_serializer(mode="wrap")
    def _without_unset_adapter(self, handler):  # type: ignore[no-untyped-def]
        # Keep dumps (and so config and reference fingerprints) of plain sources as they were before
        # the adapter existed: adding an unset key must not refit every stored reference.
        data = handler(self)
        if isinstance(data, dict) and getattr(self, "inference_table", None) is None:
            data.pop("inference_table", None)
        return data


class FileSourceSpec(_AdaptableSource):
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
    inference_table: InferenceTableSpec | None = Field(None, description=_INFERENCE_TABLE)

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


class SqlSourceSpec(_AdaptableSource):
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
    inference_table: InferenceTableSpec | None = Field(None, description=_INFERENCE_TABLE)

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


class DeltaSourceSpec(_AdaptableSource):
    """Logs in a Delta Lake table, read with delta-rs (no Spark): only its current (or chosen) version's files.

    Deleted and updated rows are never read (reading the folder as Parquet would return them). The
    window and the columns are pushed down: files are skipped by partition values and the log's
    statistics, row groups by their statistics, and only the requested columns are decoded.
    """

    model_config = ConfigDict(extra="forbid")

    type: Literal["delta"] = Field(description="A Delta Lake table.")
    path: str = Field(
        description="The table's folder (the one holding `_delta_log/`), relative to the config file's folder, "
        "or a URI such as `s3://bucket/table` (credentials from the environment, as delta-rs reads them)."
    )
    version: int | None = Field(
        None,
        ge=0,
        description="Read this table version (time travel) instead of the latest; the latest is loaded again "
        "at every read, so new commits are picked up.",
    )
    timestamp_unit: TimestampUnit | None = Field(None, description=_TIMESTAMP_UNIT)
    inference_table: InferenceTableSpec | None = Field(None, description=_INFERENCE_TABLE)

    @field_validator("path")
    @classmethod
    def _path_not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a path may not be empty")
        return value


SourceSpec = Annotated[FileSourceSpec | SqlSourceSpec | DeltaSourceSpec, Field(discriminator="type")]
"""Any kind of source, chosen by its ``type``."""
