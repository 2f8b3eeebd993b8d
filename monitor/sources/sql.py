"""Inference logs in a database: a table or a query, read through SQLAlchemy.

A window is read with ``WHERE ts >= :start AND ts < :end`` and bound parameters, streamed in
batches (a server-side cursor on PostgreSQL). The database stores timestamps in many ways, and the
bound values must compare the same way the stored ones do, so one non-null value is sampled first:

* ``timestamptz`` (an aware value): bound as aware UTC datetimes: exact.
* ``timestamp`` without time zone (a naive value): bound as naive UTC datetimes. An aware bound
  would be converted through the session's time zone and shift the window.
* a date: bound as dates covering the window.
* numbers: Unix epochs in ``timestamp_unit``; bound as numbers covering the window.
* text (SQLite keeps ``DateTime`` as ``'2026-01-01 12:00:00.000000'``; other writers use a ``T``,
  fewer decimals, an offset): bound as text, for both separators, on whole minutes, so text order
  matches time order; with an offset (``+02:00``) the bounds widen by 14 hours. Text that is not
  ISO 8601 cannot be compared in the database: every row is read (a warning says so).

In every case the exact window filter runs again after the timestamps are parsed, so bounds that
cover a little more than the window only cost a few extra rows. Rows whose timestamp is NULL are
outside every window: a windowed read does not see them, a read without a window counts them in
``bad_timestamps``.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Iterator, Sequence

import pandas as pd
import sqlalchemy as sa

from monitor.sources._columns import kind_of_series, wanted_columns
from monitor.sources._timestamps import TimestampParser, epoch_bounds, window_mask
from monitor.sources.base import BatchSource, ColumnKind, ReadReport, SourceError
from monitor.sources.specs import SqlSourceSpec
from monitor.windows import Window

_ISO_TEXT = re.compile(
    r"^\d{4}-\d{2}-\d{2}(?P<time>[ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?\s*(?P<zone>Z|[+-]\d{2}(:?\d{2})?)?$"
)
_WIDEST_OFFSET = timedelta(hours=14)
_KIND_SAMPLE_ROWS = 1_000
_SECRET_PARAMETER = re.compile(r"(?i)\b(password|passwd|pwd|secret|token|api_key|access_token)=[^&;\s]*")
_TABLES_LISTED = 20


def redact_url(url: str | sa.URL) -> str:
    """The URL with its password (and password-like query parameters) replaced by ``***``."""
    try:
        text = sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        text = re.sub(r"(://[^:/@\s]*:)[^@/\s]*@", r"\1***@", str(url))
    return _SECRET_PARAMETER.sub(lambda match: f"{match.group(1)}=***", text)


def kind_of_sql_type(sql_type: sa.types.TypeEngine) -> ColumnKind | None:
    """The kind a declared SQL type implies; None when it implies nothing (SQLite's untyped columns)."""
    if isinstance(sql_type, sa.types.NullType):
        return None
    if isinstance(sql_type, sa.Boolean):
        return "bool"
    if isinstance(sql_type, (sa.DateTime, sa.Date)):
        return "timestamp"
    if isinstance(sql_type, (sa.Integer, sa.Numeric, sa.Float)):  # Float is no Numeric since SQLAlchemy 2.1
        return "numeric"
    if isinstance(sql_type, sa.String):
        return "string"
    return "other"


class _NoRows:
    """The timestamp column holds no value at all: no window can have rows."""


_NO_ROWS = _NoRows()


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


def _floor_minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def _ceil_minute(moment: datetime) -> datetime:
    floor = _floor_minute(moment)
    return floor if floor == moment else floor + timedelta(minutes=1)


class SqlSource(BatchSource):
    """A table or query in any database SQLAlchemy reaches; see the module docstring for windows."""

    def __init__(self, spec: SqlSourceSpec, base_dir: Path | None = None) -> None:
        self.spec = spec
        try:
            url = sa.make_url(spec.url)
        except sa.exc.ArgumentError as error:
            raise SourceError(
                f"{redact_url(spec.url)!r} is not a database URL ({error}); write e.g. "
                "postgresql://user:${PGPASSWORD}@host/db or sqlite:///logs.db"
            ) from None
        self._sqlite_file: Path | None = None
        if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
            if not url.database.startswith("file:"):
                path = Path(url.database).expanduser()
                if not path.is_absolute():
                    path = (Path(base_dir) if base_dir is not None else Path.cwd()).resolve() / path
                url = url.set(database=str(path))
                self._sqlite_file = path
        self._url = url
        self._password = url.password
        self._safe_url = redact_url(url)
        if spec.table is not None:
            what = f"sql table {spec.db_schema + '.' if spec.db_schema else ''}{spec.table}"
        else:
            what = "sql query"
        self.description = f"{what} at {self._safe_url}"
        self._engine: sa.Engine | None = None

    def __enter__(self) -> SqlSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- connections and errors -------------------------------------------------------------

    def _scrub(self, error: BaseException) -> str:
        """The first lines of a driver error, with the password removed should a driver echo it."""
        text = str(getattr(error, "orig", None) or error).strip()
        text = " ".join(text.splitlines()[:2])
        if self._password:
            text = text.replace(str(self._password), "***")
        return redact_url(text) if "://" in text else text

    def _engine_or_error(self) -> sa.Engine:
        if self._engine is None:
            try:
                self._engine = sa.create_engine(self._url, pool_pre_ping=True)
            except (ImportError, sa.exc.NoSuchModuleError) as error:
                raise SourceError(
                    f"cannot use {self._safe_url}: its database driver is not installed ({error}); "
                    "for PostgreSQL install `driftline[postgres]`"
                ) from None
            except sa.exc.ArgumentError as error:
                raise SourceError(f"cannot use {self._safe_url}: {self._scrub(error)}") from None
        return self._engine

    @contextmanager
    def _connect(self) -> Iterator[sa.Connection]:
        if self._sqlite_file is not None and not self._sqlite_file.is_file():
            # SQLite would silently create an empty database and report "no such table".
            raise SourceError(
                f"SQLite database {self._sqlite_file} does not exist; check `url` in the source config "
                "(a relative path is resolved against the config file's folder)"
            )
        try:
            connection = self._engine_or_error().connect()
        except sa.exc.DBAPIError as error:
            raise SourceError(f"cannot connect to {self._safe_url}: {self._scrub(error)}") from None
        with connection:
            yield connection

    def _execute(self, connection: sa.Connection, statement: sa.Executable, doing: str) -> sa.CursorResult:
        try:
            return connection.execute(statement)
        except sa.exc.DBAPIError as error:
            raise SourceError(f"{self.description}: {doing} failed: {self._scrub(error)}") from None

    # -- what to read -----------------------------------------------------------------------

    def _relation(self, connection: sa.Connection) -> tuple[sa.FromClause, dict[str, ColumnKind | None]]:
        """The table, or the query as a subquery, and its columns with the kinds their SQL types imply."""
        spec = self.spec
        if spec.table is not None:
            inspector = sa.inspect(connection)
            try:
                columns = inspector.get_columns(spec.table, schema=spec.db_schema)
            except sa.exc.NoSuchTableError:
                columns = []
            except sa.exc.DBAPIError as error:
                raise SourceError(
                    f"{self.description}: reading the table's columns failed: {self._scrub(error)}"
                ) from None
            if not columns:
                raise self._no_such_table(inspector)
            kinds = {column["name"]: kind_of_sql_type(column["type"]) for column in columns}
            relation = sa.table(spec.table, *(sa.column(name) for name in kinds), schema=spec.db_schema)
            return relation, kinds
        assert spec.query is not None
        probe = sa.select(sa.text("*")).select_from(sa.text(spec.query).columns().subquery("src")).limit(0)
        result = self._execute(connection, probe, "the query")
        names = list(result.keys())
        result.close()
        relation = sa.text(spec.query).columns(*(sa.column(name) for name in names)).subquery("src")
        return relation, {name: None for name in names}

    def _no_such_table(self, inspector: sa.Inspector) -> SourceError:
        spec = self.spec
        try:
            tables = sorted(
                inspector.get_table_names(schema=spec.db_schema) + inspector.get_view_names(schema=spec.db_schema)
            )
        except sa.exc.DBAPIError:
            tables = []
        where = f"schema {spec.db_schema!r}" if spec.db_schema else "the default schema"
        listed = ", ".join(tables[:_TABLES_LISTED]) + (" ..." if len(tables) > _TABLES_LISTED else "") or "none"
        hint = ""
        if spec.db_schema is None and "." in (spec.table or ""):
            schema, _, table = (spec.table or "").rpartition(".")
            hint = f"; to name a schema write `schema: {schema}` and `table: {table}`"
        return SourceError(
            f"table {spec.table!r} not found in {where} at {self._safe_url}; tables there: {listed}{hint}"
        )

    def _timestamp_column(
        self, relation: sa.FromClause, names: Sequence[str], timestamp: str
    ) -> sa.ColumnElement:
        if timestamp not in names:
            raise SourceError(
                f"timestamp column {timestamp!r} not found in {self.description}; columns there: "
                f"{', '.join(names)}. Set the monitor's timestamp column to one of them"
            )
        return relation.c[timestamp]

    def _window_filter(
        self, connection: sa.Connection, column: sa.ColumnElement, window: Window, parser: TimestampParser,
        report: ReadReport,
    ) -> sa.ColumnElement[bool] | None | _NoRows:
        """A WHERE clause selecting at least the window's rows; None when the database cannot tell."""
        sample = self._execute(
            connection, sa.select(column).where(column.is_not(None)).limit(1), "sampling the timestamp column"
        ).scalar()
        if sample is None:
            return _NO_ROWS
        low: object
        high: object
        if isinstance(sample, datetime):
            if sample.tzinfo is not None:
                low, high, sql_type = window.start, window.end, sa.DateTime(timezone=True)
            else:
                low, high, sql_type = _naive_utc(window.start), _naive_utc(window.end), sa.DateTime()
        elif isinstance(sample, date):
            last = (window.end - timedelta(microseconds=1)).date()
            low, high, sql_type = window.start.date(), last + timedelta(days=1), sa.Date()
        elif isinstance(sample, (int, float, Decimal)) and not isinstance(sample, bool):
            parser.parse(pd.Series([sample]), self.description)  # no unit: raises, telling to set one
            low, high = epoch_bounds(window, str(parser.unit))
            sql_type = sa.BigInteger() if isinstance(sample, int) else sa.Float()
        elif isinstance(sample, str):
            return self._text_filter(column, sample, window, report)
        else:
            report.warnings.append(
                f"timestamp column {column.name!r} holds {type(sample).__name__} values; every row is read and "
                "filtered after parsing"
            )
            return None
        return sa.and_(
            column >= sa.bindparam("window_start", low, type_=sql_type),
            column < sa.bindparam("window_end", high, type_=sql_type),
        )

    @staticmethod
    def _text_filter(
        column: sa.ColumnElement, sample: str, window: Window, report: ReadReport
    ) -> sa.ColumnElement[bool] | None:
        match = _ISO_TEXT.match(sample.strip())
        if match is None:
            report.warnings.append(
                f"timestamp column {column.name!r} holds text like {sample!r}, which the database cannot compare "
                "as time; every row is read and filtered after parsing (store ISO 8601 text or a timestamp type)"
            )
            return None
        text = sa.String()
        if match["time"] is None:
            last = (window.end - timedelta(microseconds=1)).date()
            return sa.and_(
                column >= sa.bindparam("window_start", window.start.date().isoformat(), type_=text),
                column < sa.bindparam("window_end", (last + timedelta(days=1)).isoformat(), type_=text),
            )
        start, end = window.start, window.end
        if match["zone"] not in (None, "Z"):
            # Text holds local times with their offset: text order is local order, off by up to 14 hours.
            start, end = start - _WIDEST_OFFSET, end + _WIDEST_OFFSET
        # Whole minutes, the shortest form a time takes: text order puts '2026-01-01 12:00' before
        # '2026-01-01 12:00:00.000000' and '...12:00+00:00', so stored values of any precision compare
        # correctly. A bound of '12:00:00' would sort after a stored '12:00' and lose that row.
        low, high = _floor_minute(start), _ceil_minute(end)
        ranges = []
        for number, separator in enumerate((" ", "T")):
            form = f"%Y-%m-%d{separator}%H:%M"
            ranges.append(
                sa.and_(
                    column >= sa.bindparam(f"window_start_{number}", low.strftime(form), type_=text),
                    column < sa.bindparam(f"window_end_{number}", high.strftime(form), type_=text),
                )
            )
        return sa.or_(*ranges)

    # -- the Source protocol ----------------------------------------------------------------

    def columns(self) -> dict[str, ColumnKind]:
        with self._connect() as connection:
            relation, kinds = self._relation(connection)
            unknown = [name for name, kind in kinds.items() if kind is None]
            if unknown:
                statement = sa.select(*(relation.c[name] for name in unknown)).limit(_KIND_SAMPLE_ROWS)
                result = self._execute(connection, statement, "sampling rows")
                sample = pd.DataFrame(result.all(), columns=list(result.keys()))
                for name in unknown:
                    kinds[name] = kind_of_series(sample[name], detect_dates=True) if name in sample else None
        return {name: kind or "other" for name, kind in kinds.items()}

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
        parser = TimestampParser(timestamp or "", self.spec.timestamp_unit)
        with self._connect() as connection:
            relation, kinds = self._relation(connection)
            report.missing_columns.update(name for name in wanted if name not in kinds)
            statement = sa.select(*(relation.c[name] for name in wanted if name in kinds))
            if timestamp is not None:
                column = self._timestamp_column(relation, list(kinds), timestamp)
                if window is not None:
                    where = self._window_filter(connection, column, window, parser, report)
                    if isinstance(where, _NoRows):
                        return
                    if where is not None:
                        statement = statement.where(where)
            result = self._execute(connection, statement.execution_options(yield_per=batch_rows), "reading rows")
            report.files += 1
            keys = list(result.keys())
            try:
                for rows in result.partitions():
                    frame = pd.DataFrame(rows, columns=keys)
                    report.rows_scanned += len(frame)
                    if timestamp is not None:
                        instants = parser.parse(frame[timestamp], self.description)
                        report.bad_timestamps += int(instants.isna().sum())
                        keep = window_mask(instants, window)
                        if not keep.any():
                            continue
                        frame = frame[keep].reset_index(drop=True)
                        frame[timestamp] = instants[keep].reset_index(drop=True)
                    report.rows += len(frame)
                    yield frame
            except sa.exc.DBAPIError as error:
                raise SourceError(f"{self.description}: reading rows failed: {self._scrub(error)}") from None
            finally:
                result.close()
                report.warnings.extend(parser.notes)

    def max_timestamp(self, timestamp: str) -> datetime | None:
        parser = TimestampParser(timestamp, self.spec.timestamp_unit)
        with self._connect() as connection:
            relation, kinds = self._relation(connection)
            column = self._timestamp_column(relation, list(kinds), timestamp)
            value = self._execute(connection, sa.select(sa.func.max(column)), "finding the newest timestamp").scalar()
            if value is None:
                return None
            trusted = not isinstance(value, str) or (
                (match := _ISO_TEXT.match(value.strip())) is not None and match["zone"] in (None, "Z")
            )
            if trusted:
                newest = parser.parse(pd.Series([value]), self.description).iloc[0]
                if not pd.isna(newest):
                    return newest.to_pydatetime()
            # Text with offsets, or junk that sorts last: MAX of text is not the newest instant.
            newest = None
            result = self._execute(
                connection, sa.select(column).execution_options(yield_per=1 << 16), "reading timestamps"
            )
            for rows in result.partitions():
                values = pd.DataFrame(rows, columns=[timestamp])[timestamp]
                batch = parser.parse(values, self.description).max()
                if not pd.isna(batch) and (newest is None or batch > newest):
                    newest = batch
            return None if newest is None else newest.to_pydatetime()

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
