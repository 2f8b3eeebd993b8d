"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import enum
import json
import math
from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Integer
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from monitor.windows import as_utc

JSONType = JSON().with_variant(JSONB(), "postgresql")
"""JSON everywhere, JSONB (indexable, compact) on PostgreSQL."""

BigIntId = BigInteger().with_variant(Integer(), "sqlite")
"""A 64-bit surrogate key; SQLite only auto-increments a column declared exactly ``INTEGER``."""


def utcnow() -> datetime:
    """The callable default of timestamp columns (never ``default=datetime.now()``)."""
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware UTC.

    PostgreSQL keeps the instant in ``timestamptz`` but answers in the session's time zone;
    SQLite has no timezone type and silently drops the offset (12:00+02:00 would come back as a
    naive 12:00). So values are converted to UTC on the way in (naive input is taken to be UTC,
    like ``monitor.windows.as_utc``), written naive on SQLite, where the fixed-width text form
    then also sorts and compares correctly, and tagged UTC on the way out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}: {value!r}")
        value = as_utc(value)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


def json_dumps(value: Any) -> str:
    """The engines' JSON serialiser.

    PostgreSQL rejects ``NaN``/``Infinity`` in JSON while SQLite would keep them, so non-finite
    floats become ``null`` on both (the policy of ``MetricResult``, which already moves a NaN
    value to ``None``); numpy arrays and scalars, enums and datetimes are converted rather than
    failing a run's save at the last step.
    """
    return json.dumps(_jsonable(value), allow_nan=False, separators=(",", ":"))


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, enum.Enum):
        return _jsonable(value.value)
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return {(key.item() if hasattr(key, "item") else key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if hasattr(value, "tolist"):  # numpy arrays and scalars, without importing numpy here
        return _jsonable(value.tolist())
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable: {value!r}")
