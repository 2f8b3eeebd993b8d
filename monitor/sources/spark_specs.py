"""Configuration of sources only the Spark engine reads: a table of the Spark session's catalog.

Kept apart from ``monitor.sources.specs`` because nothing here can be read in-process: a
``spark_table`` names a table that exists only inside a SparkSession (a Hive metastore, Unity
Catalog, or the session's own warehouse). ``open_source`` refuses it under ``engine: pandas``.
This module only validates; it never imports pyspark.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from monitor.sources.specs import TimestampUnit

# One to three dot-separated parts (catalog.schema.table), each a plain name or `back-quoted`.
_PART = r"(?:[A-Za-z_][A-Za-z0-9_]*|`(?:[^`]|``)+`)"
_TABLE = re.compile(rf"^{_PART}(?:\.{_PART}){{0,2}}$")


class SparkTableSpec(BaseModel):
    """Logs in a table of the Spark session's catalog (Unity Catalog, Hive), read by `engine: spark` only.

    The window is read with `WHERE ts >= start AND ts < end` pushed into Spark when the timestamp
    column is a timestamp, a date or (with `timestamp_unit`) a number; text timestamps are parsed
    after reading. As for SQL sources, rows with a NULL timestamp belong to no window.
    """

    model_config = ConfigDict(extra="forbid")

    type: Literal["spark_table"] = Field(description="A table read by the Spark engine (`engine: spark`).")
    table: str = Field(
        description="Table name as Spark SQL writes it: `logs`, `schema.logs` or `catalog.schema.logs` "
        "(back-quote parts with other characters: `` `my-schema`.logs ``)."
    )
    timestamp_unit: TimestampUnit | None = Field(
        None,
        description="Unit of numeric (Unix epoch) timestamps: `s`, `ms`, `us` or `ns`. Required when the "
        "timestamp column holds numbers; ignored for timestamp and date columns.",
    )

    @field_validator("table")
    @classmethod
    def _table_name(cls, value: str) -> str:
        name = value.strip()
        if not _TABLE.match(name):
            raise ValueError(
                f"{value!r} is not a table name: write `table`, `schema.table` or `catalog.schema.table` "
                "(back-quote parts that hold other characters)"
            )
        return name
