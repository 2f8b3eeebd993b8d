"""Engines for the store: URL normalisation, SQLite connection settings, migration locking."""

from __future__ import annotations

import sqlite3
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import URL, Connection, Engine, make_url

from monitor.store.types import json_dumps

SUPPORTED_BACKENDS = ("sqlite", "postgresql")

SQLITE_BUSY_TIMEOUT_MS = 30_000
"""How long a SQLite writer waits for another one (runs are seconds long; dashboards read)."""

SQLITE_BEGIN = "driftline_sqlite_begin"
"""Execution option naming the ``BEGIN`` mode of SQLite transactions (DEFERRED or IMMEDIATE)."""

_SQLITE_BEGIN_MODES = frozenset({"DEFERRED", "IMMEDIATE", "EXCLUSIVE"})

# One advisory lock key for every migration of a PostgreSQL database (any schema): two
# processes starting at once migrate one after the other instead of racing on CREATE TABLE.
_PG_MIGRATION_LOCK = zlib.crc32(b"driftline.store.migrate")


def normalize_url(url: str | URL) -> URL:
    """The store URL with PostgreSQL pinned to psycopg 3.

    ``postgres://`` (Heroku and friends) is not a SQLAlchemy dialect name at all, and a bare
    ``postgresql://`` meant psycopg2 before SQLAlchemy 2.1: both become ``postgresql+psycopg``.

    >>> normalize_url("postgres://u:p@db/driftline").render_as_string(hide_password=False)
    'postgresql+psycopg://u:p@db/driftline'
    """
    url = make_url(url)
    if url.drivername in ("postgres", "postgresql"):
        url = url.set(drivername="postgresql+psycopg")
    return url


def create_store_engine(url: str | URL) -> Engine:
    """An engine for the store: SQLite (default) or PostgreSQL, nothing else."""
    url = normalize_url(url)
    backend = url.get_backend_name()
    if backend not in SUPPORTED_BACKENDS:
        raise ValueError(
            f"the result store supports {' and '.join(SUPPORTED_BACKENDS)}, not {backend!r} "
            f"(URL {url.render_as_string(hide_password=True)})"
        )
    options: dict[str, Any] = {"json_serializer": json_dumps}
    if backend == "postgresql":
        # A long-running service outlives server restarts and idle-connection reapers.
        options["pool_pre_ping"] = True
    else:
        _ensure_sqlite_folder(url)
    engine = create_engine(url, **options)
    if backend == "sqlite":
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def _ensure_sqlite_folder(url: URL) -> None:
    database = url.database or ""
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # The sqlite3 driver's legacy mode begins transactions only before INSERT/UPDATE/DELETE,
    # so SELECTs and DDL would run outside them. Switch it off and let _sqlite_on_begin emit
    # BEGIN (SQLAlchemy's documented recipe): transactions then mean what they say.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        # busy_timeout first, so that switching to WAL waits for a lock instead of failing.
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        # WAL: readers (dashboards) never block the writer (the runner) and vice versa.
        _use_wal(cursor)
        # SQLite ignores foreign keys (and ON DELETE CASCADE) unless asked, per connection.
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _use_wal(cursor: Any) -> None:
    # WAL is a property of the database file, so this is a read once the file is set up. The
    # switch itself needs an exclusive lock and does not go through the busy handler: when
    # processes open a new file at once, it fails with "database is locked". Retry it.
    if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
        return
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL").fetchone()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _sqlite_on_begin(connection: Connection) -> None:
    mode = str(connection.get_execution_options().get(SQLITE_BEGIN, "DEFERRED")).upper()
    if mode not in _SQLITE_BEGIN_MODES:
        raise ValueError(f"{SQLITE_BEGIN}={mode!r}: expected one of {sorted(_SQLITE_BEGIN_MODES)}")
    connection.exec_driver_sql(f"BEGIN {mode}")


def writer(engine: Engine) -> Engine:
    """The engine to write with.

    On SQLite, a write transaction takes the write lock at BEGIN (``BEGIN IMMEDIATE``): a
    deferred transaction that reads and then writes cannot wait for the lock when another
    writer got there first, and fails with "database is locked" despite ``busy_timeout``.
    Reads keep deferred transactions so that they never wait for writers.
    """
    if engine.dialect.name == "sqlite":
        return engine.execution_options(**{SQLITE_BEGIN: "IMMEDIATE"})
    return engine


@contextmanager
def migration_connection(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction that is safe to migrate the store with.

    PostgreSQL: a transaction-scoped advisory lock serialises concurrent migrators.
    SQLite: the write lock is taken at BEGIN, and foreign keys are off while migrating,
    because batch mode rebuilds a table by dropping it, and dropping a parent table with
    foreign keys on would cascade-delete its children (every metric of every run). The
    pragma cannot change inside a transaction, so it is set on the raw connection before
    BEGIN; ``PRAGMA foreign_key_check`` then verifies the result before the commit.
    """
    with writer(engine).connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            connection.connection.driver_connection.execute("PRAGMA foreign_keys = OFF")  # type: ignore[union-attr]
        try:
            with connection.begin():
                if connection.dialect.name == "postgresql":
                    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
                yield connection
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                    if broken:
                        raise RuntimeError(f"the migration broke foreign keys, rolled back: {broken[:5]}")
        finally:
            if sqlite:
                connection.connection.driver_connection.execute("PRAGMA foreign_keys = ON")  # type: ignore[union-attr]
