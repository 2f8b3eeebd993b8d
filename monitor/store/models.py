"""ORM rows of the result store (SQLAlchemy 2.x typed declarative).

These classes are the database's shape only; the rest of Driftline sees the frozen records of
``monitor.store.records``, converted in ``monitor.store.convert``. Each change here needs a
migration in ``migrations/versions/`` (``tests/test_store.py`` compares the two).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, Double, ForeignKey, Index, MetaData, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from monitor.store.types import BigIntId, JSONType, UTCDateTime, utcnow

# Stable, predictable constraint names, so that migrations (and SQLite's batch mode, which
# recreates tables) can refer to constraints by name on every database.
NAMING_CONVENTION = {
    "pk": "pk_%(table_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
}

# The vocabularies the CHECK constraints enforce. They are written out rather than derived from
# RUN_STATUSES / checks.results.Status so that a new value cannot silently diverge from the
# deployed schema: a test compares them, and a change needs a migration.
RUN_STATUS_VALUES = ("ok", "breach", "no_data", "failed")
RUN_TRIGGER_VALUES = ("run", "backfill", "schedule", "demo")
METRIC_STATUS_VALUES = ("ok", "breach", "info", "no_data", "error")
DIRECTION_VALUES = ("max", "min")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    # NULL IN (...) is NULL, which a CHECK accepts: nullable columns need nothing more.
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        str: Text(),
        float: Double(),
        datetime: UTCDateTime(),
        dict[str, Any]: JSONType,
    }


class RunRow(Base):
    __tablename__ = "runs"
    __table_args__ = (
        # The last line of defence against two writers of one window.
        UniqueConstraint("monitor", "window_start", "window_end"),
        Index(None, "monitor", "window_start"),
        CheckConstraint(_one_of("status", RUN_STATUS_VALUES), name="status"),
        CheckConstraint(_one_of('"trigger"', RUN_TRIGGER_VALUES), name="trigger"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    monitor: Mapped[str]
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    status: Mapped[str]
    trigger: Mapped[str]
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime]
    rows: Mapped[int]
    bad_rows: Mapped[int]
    error: Mapped[str | None]
    config_fingerprint: Mapped[str]
    reference_version: Mapped[int | None]
    driftline_version: Mapped[str]


class MetricRow(Base):
    """One metric of one column, segment and window: the narrow results table.

    ``monitor`` and the window are copied from the run so that dashboard queries (a metric's
    history, a column x window heat map) read one indexed table without a join.
    """

    __tablename__ = "metric_results"
    __table_args__ = (
        UniqueConstraint("run_id", "segment", "check", "column", "metric"),
        Index(None, "monitor", "check", "window_start"),
        Index(None, "monitor", "column", "window_start"),
        CheckConstraint(_one_of("status", METRIC_STATUS_VALUES), name="status"),
        CheckConstraint(_one_of("direction", DIRECTION_VALUES), name="direction"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    run_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("runs.id", ondelete="CASCADE"))
    monitor: Mapped[str]
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    segment: Mapped[str]
    # "check" and "column" are SQL keywords; SQLAlchemy quotes them in every statement it emits.
    check: Mapped[str]
    column: Mapped[str]
    metric: Mapped[str]
    value: Mapped[float | None]
    threshold: Mapped[float | None]
    direction: Mapped[str | None]
    status: Mapped[str]
    details: Mapped[dict[str, Any]]


class WindowProfileRow(Base):
    """A window's serialised column profile, so dashboards draw distributions without logs."""

    __tablename__ = "window_profiles"
    __table_args__ = (
        UniqueConstraint("run_id", "segment", "column"),
        # Not in the first sketch of the schema: Store.profiles() reads a column's history.
        Index(None, "monitor", "column", "window_start"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    run_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("runs.id", ondelete="CASCADE"))
    monitor: Mapped[str]
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    segment: Mapped[str]
    column: Mapped[str]
    payload: Mapped[dict[str, Any]]


class ReferenceRow(Base):
    __tablename__ = "reference_profiles"
    __table_args__ = (
        UniqueConstraint("monitor", "version"),
        UniqueConstraint("monitor", "fingerprint"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    monitor: Mapped[str]
    version: Mapped[int]
    fingerprint: Mapped[str]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    rows: Mapped[int]
    payload: Mapped[dict[str, Any]]
