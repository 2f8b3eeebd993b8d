"""The result store: runs, metrics, profiles and references, on SQLite or PostgreSQL."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
from alembic import command
from alembic.config import Config
from sqlalchemy import ColumnElement, DateTime, Text, cast, delete, func, insert, select, type_coerce, union
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Engine
from sqlalchemy.orm import Session

from checks.results import MetricResult
from monitor.store import convert
from monitor.store.engine import create_store_engine, migration_connection, writer
from monitor.store.models import MetricRow, ReferenceRow, RunRow, WindowProfileRow
from monitor.store.records import ReferenceRecord, RunRecord, StoredProfile
from monitor.store.types import utcnow
from monitor.windows import Window

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

METRIC_COLUMNS = (
    "monitor", "window_start", "window_end", "segment", "check", "column", "metric",
    "value", "threshold", "direction", "status", "details", "run_id",
)  # fmt: skip
"""The columns of ``Store.metrics()``, in order."""

_METRIC_DTYPES = {
    "monitor": "str", "window_start": "datetime64[us, UTC]", "window_end": "datetime64[us, UTC]",
    "segment": "str", "check": "str", "column": "str", "metric": "str", "value": "float64",
    "threshold": "float64", "direction": "str", "status": "str", "details": "object", "run_id": "int64",
}  # fmt: skip

# Alembic's `context` and `op` are module-level proxies: two migrations at once in one process
# (two stores opened by two threads) would drive each other's connections and deadlock.
# Processes are kept apart by the database itself (see engine.migration_connection).
_ALEMBIC_LOCK = threading.Lock()

# Concurrent writers of one monitor's references can each pick the same next version; the
# loser of the unique constraint looks again. A handful of rounds is plenty for a rare race.
_REFERENCE_ATTEMPTS = 5


class Store:
    """Driftline's results, read and written through one engine.

    >>> store = Store.open("sqlite://")
    >>> store.monitors()
    []
    >>> store.dispose()
    """

    def __init__(self, url: str | URL) -> None:
        self._engine = create_store_engine(url)
        self._writer = writer(self._engine)

    @classmethod
    def open(cls, url: str | URL) -> Store:
        """A store whose schema is migrated to the latest revision."""
        store = cls(url)
        try:
            store.migrate()
        except BaseException:
            store.dispose()
            raise
        return store

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def url(self) -> str:
        """The URL with its password masked: safe for logs and error messages."""
        return self._engine.url.render_as_string(hide_password=True)

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.dispose()

    def dispose(self) -> None:
        """Close the pooled connections."""
        self._engine.dispose()

    def migrate(self) -> None:
        """Upgrade the schema to the latest revision (a no-op when it is already there)."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with _ALEMBIC_LOCK, migration_connection(self._engine) as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "heads")  # "heads": a feature branch not yet merged still migrates

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in a write transaction: committed on success, rolled back on error.

        Objects stay readable after the commit (``expire_on_commit=False``). On SQLite the
        transaction holds the write lock from its start (see ``engine.writer``).
        """
        with Session(self._writer, expire_on_commit=False) as session, session.begin():
            yield session

    # -- references ------------------------------------------------------------------------

    def save_reference(self, monitor: str, fingerprint: str, rows: int, payload: dict[str, Any]) -> ReferenceRecord:
        """Store a reference profile as the monitor's next version.

        A reference is learned once: when ``(monitor, fingerprint)`` is already stored, that
        record is returned as it is and ``rows``/``payload`` are not written.
        """
        with self.session() as session:
            for _ in range(_REFERENCE_ATTEMPTS):
                existing = session.scalars(
                    select(ReferenceRow).where(ReferenceRow.monitor == monitor, ReferenceRow.fingerprint == fingerprint)
                ).one_or_none()
                if existing is not None:
                    return convert.reference_record(existing)
                latest = session.scalar(select(func.max(ReferenceRow.version)).where(ReferenceRow.monitor == monitor))
                values = {
                    "monitor": monitor,
                    "version": (latest or 0) + 1,
                    "fingerprint": fingerprint,
                    "created_at": utcnow(),
                    "rows": rows,
                    "payload": payload,
                }
                # DO NOTHING on either unique key: a concurrent writer took this version or
                # stored this fingerprint first (PostgreSQL waits for its commit); look again.
                stmt = _dialect_insert(session, ReferenceRow).values(values).on_conflict_do_nothing()
                stored = session.scalars(stmt.returning(ReferenceRow)).one_or_none()
                if stored is not None:
                    return convert.reference_record(stored)
        raise RuntimeError(f"could not store a reference of {monitor!r}: {_REFERENCE_ATTEMPTS} conflicting writers")

    def reference_for(self, monitor: str, fingerprint: str) -> ReferenceRecord | None:
        return self._one_reference(ReferenceRow.monitor == monitor, ReferenceRow.fingerprint == fingerprint)

    def reference(self, monitor: str, version: int) -> ReferenceRecord | None:
        return self._one_reference(ReferenceRow.monitor == monitor, ReferenceRow.version == version)

    def latest_reference(self, monitor: str) -> ReferenceRecord | None:
        stmt = (
            select(ReferenceRow).where(ReferenceRow.monitor == monitor).order_by(ReferenceRow.version.desc()).limit(1)
        )
        with Session(self._engine) as session:
            row = session.scalars(stmt).one_or_none()
            return None if row is None else convert.reference_record(row)

    def _one_reference(self, *where: ColumnElement[bool]) -> ReferenceRecord | None:
        with Session(self._engine) as session:
            row = session.scalars(select(ReferenceRow).where(*where)).one_or_none()
            return None if row is None else convert.reference_record(row)

    # -- runs ------------------------------------------------------------------------------

    def save_run(
        self,
        run: RunRecord,
        metrics: Sequence[MetricResult],
        profiles: Sequence[StoredProfile] = (),
        *,
        also: Callable[[Session, int], None] | None = None,
    ) -> int:
        """Store a run with its metrics and profiles, replacing what its window had; its id.

        One transaction: the run row is upserted on (monitor, window) and keeps its id; the
        old run's metrics and profiles are deleted and the new ones inserted; then
        ``also(session, run_id)`` adds whatever must commit with the results (the alert
        outbox). The upsert locks the run's row, so concurrent saves of one window queue up
        behind each other and the last one wins whole: one run, one set of metrics, and no
        IntegrityError for the caller.
        """
        metrics, profiles = list(metrics), list(profiles)
        _refuse_duplicates(run, metrics, profiles)
        with self.session() as session:
            run_id = self._upsert_run(session, run)
            session.execute(delete(MetricRow).where(MetricRow.run_id == run_id))
            session.execute(delete(WindowProfileRow).where(WindowProfileRow.run_id == run_id))
            # Bulk inserts (executemany): no ORM object per metric.
            if metrics:
                session.execute(insert(MetricRow), [convert.metric_values(m, run_id, run) for m in metrics])
            if profiles:
                session.execute(insert(WindowProfileRow), [convert.profile_values(p, run_id, run) for p in profiles])
            if also is not None:
                also(session, run_id)
        return run_id

    @staticmethod
    def _upsert_run(session: Session, run: RunRecord) -> int:
        values = convert.run_values(run)
        key = ("monitor", "window_start", "window_end")
        stmt = _dialect_insert(session, RunRow).values(values)
        stmt = stmt.on_conflict_do_update(
            index_elements=list(key),
            set_={name: stmt.excluded[name] for name in values if name not in key},
        )
        run_id: int = session.execute(stmt.returning(RunRow.id)).scalar_one()
        return run_id

    def run_for(self, monitor: str, window: Window) -> RunRecord | None:
        stmt = select(RunRow).where(
            RunRow.monitor == monitor, RunRow.window_start == window.start, RunRow.window_end == window.end
        )
        with Session(self._engine) as session:
            row = session.scalars(stmt).one_or_none()
            return None if row is None else convert.run_record(row)

    def runs(
        self,
        monitor: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        status: str | None = None,
        limit: int | None = None,
    ) -> list[RunRecord]:
        """Runs ordered by window start; windows inside ``[start, end)``.

        With ``limit``, the latest ``limit`` windows (still in ascending order): the Runs page
        wants the recent ones, not the first ever stored.
        """
        stmt = select(RunRow).where(*_window_filters(RunRow, start, end))
        if monitor is not None:
            stmt = stmt.where(RunRow.monitor == monitor)
        if status is not None:
            stmt = stmt.where(RunRow.status == status)
        newest_first = (RunRow.window_start.desc(), RunRow.window_end.desc(), RunRow.monitor.desc(), RunRow.id.desc())
        if limit is not None:
            stmt = stmt.order_by(*newest_first).limit(limit)
        else:
            stmt = stmt.order_by(RunRow.window_start, RunRow.window_end, RunRow.monitor, RunRow.id)
        with Session(self._engine) as session:
            records = [convert.run_record(row) for row in session.scalars(stmt)]
        return records[::-1] if limit is not None else records

    def done_windows(self, monitor: str, start: datetime, end: datetime) -> set[Window]:
        """Windows inside ``[start, end)`` whose run did not fail: nothing to catch up there."""
        stmt = select(RunRow.window_start, RunRow.window_end).where(
            RunRow.monitor == monitor, RunRow.status != "failed", *_window_filters(RunRow, start, end)
        )
        with self._engine.connect() as connection:
            return {Window(row.window_start, row.window_end) for row in connection.execute(stmt)}

    def last_run(self, monitor: str) -> RunRecord | None:
        """The run of the latest window (any status)."""
        runs = self.runs(monitor, limit=1)
        return runs[0] if runs else None

    def monitors(self) -> list[str]:
        """Every monitor with a run or a reference, sorted."""
        stmt = union(select(RunRow.monitor), select(ReferenceRow.monitor))
        with self._engine.connect() as connection:
            return sorted(connection.scalars(stmt))

    # -- dashboard reads -------------------------------------------------------------------

    def metrics(
        self,
        monitor: str | None = None,
        *,
        check: str | None = None,
        column: str | None = None,
        segment: str | None = None,
        metric: str | None = None,
        status: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> pd.DataFrame:
        """Metric results as a DataFrame with the columns of ``METRIC_COLUMNS``.

        Windows inside ``[start, end)``; ordered by window start, check, column, metric (then
        segment and monitor). One SQL query, rows read as tuples (no ORM object per row):
        dashboards ask for months of hourly windows.
        """
        equal_to = {
            MetricRow.monitor: monitor, MetricRow.check: check, MetricRow.column: column,
            MetricRow.segment: segment, MetricRow.metric: metric, MetricRow.status: status,
        }  # fmt: skip
        stmt = (
            select(*_METRIC_SELECT)
            .where(*(attribute == value for attribute, value in equal_to.items() if value is not None))
            .where(*_window_filters(MetricRow, start, end))
            .order_by(
                MetricRow.window_start, MetricRow.check, MetricRow.column, MetricRow.metric,
                MetricRow.segment, MetricRow.monitor,
            )  # fmt: skip
        )
        with self._engine.connect() as connection:
            rows = connection.execute(stmt).all()
        return _metrics_frame(rows)

    def profiles(
        self,
        monitor: str,
        column: str,
        *,
        segment: str = "*",
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[tuple[Window, dict[str, Any]]]:
        """A column's window profiles in one segment, by window start."""
        stmt = (
            select(WindowProfileRow.window_start, WindowProfileRow.window_end, WindowProfileRow.payload)
            .where(
                WindowProfileRow.monitor == monitor,
                WindowProfileRow.column == column,
                WindowProfileRow.segment == segment,
                *_window_filters(WindowProfileRow, start, end),
            )
            .order_by(WindowProfileRow.window_start, WindowProfileRow.window_end)
        )
        with self._engine.connect() as connection:
            return [(Window(row.window_start, row.window_end), row.payload) for row in connection.execute(stmt)]


# The SELECT of Store.metrics(), in METRIC_COLUMNS order. Measured on 200k rows, per-row Python
# work dominated: timestamps skip UTCDateTime's per-value step (pandas converts the whole
# column at once: naive SQLite values are UTC) and details arrive as JSON text, decoded in one
# json.loads call rather than one per row.
_METRIC_SELECT = tuple(
    type_coerce(getattr(MetricRow, name), DateTime(timezone=True)).label(name)
    if name in ("window_start", "window_end")
    else cast(MetricRow.details, Text).label(name)
    if name == "details"
    else getattr(MetricRow, name)
    for name in METRIC_COLUMNS
)


def _metrics_frame(rows: Sequence[Sequence[Any]]) -> pd.DataFrame:
    # Column-wise: pandas' from_records probes every SQLAlchemy Row with hasattr(), slowly.
    columns: dict[str, Any] = dict(zip(METRIC_COLUMNS, zip(*rows))) if rows else dict.fromkeys(METRIC_COLUMNS, ())
    texts = ("null" if text is None else text for text in columns["details"])
    columns["details"] = json.loads("[" + ",".join(texts) + "]")
    frame = pd.DataFrame(columns, columns=list(METRIC_COLUMNS))
    for name in ("window_start", "window_end"):
        frame[name] = pd.to_datetime(frame[name], utc=True)
    return frame.astype(_METRIC_DTYPES)


def _window_filters(
    table: type[RunRow] | type[MetricRow] | type[WindowProfileRow], start: datetime | None, end: datetime | None
) -> list[ColumnElement[bool]]:
    """Windows lying inside ``[start, end)``: starting at or after ``start``, ending by ``end``."""
    filters: list[ColumnElement[bool]] = []
    if start is not None:
        filters.append(table.window_start >= start)
    if end is not None:
        filters.append(table.window_end <= end)
    return filters


def _dialect_insert(session: Session, entity: type[RunRow] | type[ReferenceRow]) -> Any:
    """``INSERT`` with ``ON CONFLICT`` support: the two dialects spell it the same way."""
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert(entity)
    if name == "sqlite":
        return sqlite.insert(entity)
    raise NotImplementedError(f"no upsert for {name!r}")  # create_store_engine refuses others


def _refuse_duplicates(run: RunRecord, metrics: Sequence[MetricResult], profiles: Sequence[StoredProfile]) -> None:
    """Duplicate keys are a bug of the caller: say which, rather than an IntegrityError."""
    seen: set[tuple[str, ...]] = set()
    for metric in metrics:
        if metric.key in seen:
            raise ValueError(
                f"{run.monitor} {run.window}: metric {metric.key} appears twice (check, column, segment, metric)"
            )
        seen.add(metric.key)
    seen.clear()
    for profile in profiles:
        key = (profile.segment, profile.column)
        if key in seen:
            raise ValueError(
                f"{run.monitor} {run.window}: two profiles of column {profile.column!r} in segment {profile.segment!r}"
            )
        seen.add(key)

