"""The dashboards' read API: typed queries over the result store, returning DataFrames and frozen rows.

Dashboards import this module, never the store's tables, SQL or the inference logs. Every function
takes a :class:`~monitor.store.Store`, reads, and returns plain data:

- queries select only the columns and rows a page shows (one monitor, one segment, one time range,
  the checks it draws), with timestamps read as text and converted a column at a time;
- long ranges come back **bucketed** in SQL: a year of hourly windows is 8,760 windows per column,
  more than a chart can show, so windows are grouped into buckets of ``k`` consecutive windows
  (``k`` chosen so a chart gets at most ``max_buckets`` / ``max_points`` of them). A bucket's value
  is the worst window in it (largest for ceilings and effect sizes, smallest for floors; the mean
  for plain summaries such as a volume), with its window and breach counts, so no breach is hidden;
- stored profiles are decoded with ``checks.profiles`` (nothing is recomputed), and only the one
  column and window a drill-down shows are read.

The dashboard URL scheme lives here too (:func:`page_url`), so alert messages can link straight to a
view.

>>> page_url("http://dash:8501", "drift", monitor="credit-risk", column="income")
'http://dash:8501/drift?monitor=credit-risk&column=income'
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pandas as pd
from sqlalchemy import BigInteger, ColumnElement, Integer, Text, case, cast, event, extract, func, inspect, literal, select
from sqlalchemy.engine import Engine

from checks.profiles import ColumnProfile, binning_from_dict, column_from_dict
from monitor.store import Store
from monitor.store.models import MetricRow, RunRow, WindowProfileRow
from monitor.windows import Window, as_utc

PAGES = ("overview", "kpis", "drift", "quality", "alerts", "runs")
"""The dashboard's pages, by URL path; ``overview`` is the default (also served at ``/``)."""

QUERY_PARAMS = ("monitor", "column", "segment", "start", "end", "window")
"""URL query parameters every page understands (all optional). ``window`` picks the window a drift
drill-down compares with the reference; the others are the contract alert links rely on."""

ALL_SEGMENT = "*"
VERDICT_CHECKS = ("drift", "prediction_drift", "target_drift")
DATASET_COLUMN = ""
"""The column of run-level rows (``drift/dataset_drift``, ``multivariate_drift``): not a column of
the data, so never a row of a column x time heat map."""
"""Checks whose ``ok``/``breach`` rows are drift verdicts (value = effect size); their ``info`` rows
are further methods reported for information."""
VERDICT_STATUSES = ("ok", "breach")

MAX_BUCKETS = 240
"""Time buckets of a heat map: 50 columns x 240 cells stay quick to send and to draw."""
MAX_POINTS = 1500
"""Points of a line chart before windows are bucketed."""


def page_url(
    base: str | None,
    page: str = "overview",
    *,
    monitor: str | None = None,
    column: str | None = None,
    segment: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    window: datetime | None = None,
) -> str:
    """A link to a dashboard view: ``{base}/{page}?monitor=...&column=...&segment=...&start=ISO&end=ISO``.

    Parameters left as ``None`` are omitted (and ``segment="*"``, the whole population, too); times
    are written in UTC ISO 8601. Without ``base`` the link is relative to the dashboard's root.

    >>> from datetime import datetime, timezone
    >>> page_url("https://dl.example.com/", "kpis", monitor="churn", segment="region=EU",
    ...          start=datetime(2026, 11, 1, tzinfo=timezone.utc))
    'https://dl.example.com/kpis?monitor=churn&segment=region%3DEU&start=2026-11-01T00%3A00%3A00Z'
    """
    if page not in PAGES:
        raise ValueError(f"unknown dashboard page {page!r}; pages: {', '.join(PAGES)}")
    params: dict[str, str] = {}
    for name, value in (("monitor", monitor), ("column", column), ("segment", segment)):
        if value and not (name == "segment" and value == ALL_SEGMENT):
            params[name] = value
    for name, moment in (("start", start), ("end", end), ("window", window)):
        if moment is not None:
            params[name] = iso(moment)
    query = f"?{urlencode(params)}" if params else ""
    root = (base or "").rstrip("/")
    return f"{root}/{page}{query}"


def iso(moment: datetime) -> str:
    """UTC ISO 8601 with a ``Z``, to the second (window bounds never carry fractions).

    >>> from datetime import datetime, timezone, timedelta
    >>> iso(datetime(2026, 11, 1, 2, tzinfo=timezone(timedelta(hours=2))))
    '2026-11-01T00:00:00Z'
    """
    return as_utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str | None) -> datetime | None:
    """A query parameter's time (ISO 8601 date or date-time; UTC without an offset), else ``None``.

    >>> parse_time("2026-11-01"), parse_time("not a time")
    (datetime.datetime(2026, 11, 1, 0, 0, tzinfo=datetime.timezone.utc), None)
    """
    if not text:
        return None
    text = text.strip()
    if "T" in text and " " in text:  # an unencoded "+01:00" in a URL arrives as " 01:00"
        text = text.replace(" ", "+")
    try:
        return as_utc(text)
    except (ValueError, TypeError):
        return None


# ------------------------------------------------------------------------------ settings


@dataclass(frozen=True)
class KpiInfo:
    """A configured KPI, with both of its bounds (a stored result carries only the nearer one)."""

    name: str
    column: str
    agg: str
    where: str | None = None
    q: float | None = None
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True)
class MonitorInfo:
    """What the dashboards need of a monitor's configuration."""

    name: str
    window: timedelta | None = None
    schedule: str | None = None
    kpis: tuple[KpiInfo, ...] = ()
    segment_columns: tuple[str, ...] = ()
    prediction: str | None = None
    prediction_kind: str | None = None
    target: str | None = None
    latency: str | None = None
    alerting: bool = False  # the monitor has an ``alerts:`` section
    alert_channels: tuple[str, ...] = ()  # channel names of its routes (names only: never a secret)
    retrain_channel: str | None = None


@dataclass(frozen=True)
class DashboardSettings:
    """Where the results are and which monitors a config declares (none when opened on a bare store)."""

    store_url: str
    dashboard_url: str | None = None
    monitors: tuple[MonitorInfo, ...] = ()
    config_path: str | None = None

    def monitor(self, name: str) -> MonitorInfo | None:
        return next((m for m in self.monitors if m.name == name), None)


def load_settings(config_path: str | Path) -> DashboardSettings:
    """The dashboard's view of a config file; raises ``monitor.config.ConfigError`` when it is invalid."""
    from monitor.config import load_config  # config pulls in the source specs: only when asked

    project = load_config(config_path)
    monitors = []
    for mon in project.monitors:
        cols = mon.columns
        alert_settings = getattr(mon, "alerts", None)
        retrain = getattr(alert_settings, "retrain", None)
        monitors.append(
            MonitorInfo(
                name=mon.name,
                window=mon.window_size,
                schedule=mon.schedule,
                kpis=tuple(KpiInfo(k.name, k.column, k.agg, k.where, k.q, k.min, k.max) for k in mon.kpis),
                segment_columns=tuple(cols.segments),
                prediction=cols.prediction,
                prediction_kind=cols.prediction_kind,
                target=cols.target,
                latency=cols.latency,
                alerting=alert_settings is not None,
                alert_channels=tuple(dict.fromkeys(r.channel for r in getattr(alert_settings, "routes", ()) or ())),
                retrain_channel=getattr(retrain, "channel", None),
            )
        )
    return DashboardSettings(
        store_url=project.store_url,
        dashboard_url=project.config.dashboard_url,
        monitors=tuple(monitors),
        config_path=str(project.path),
    )


# ------------------------------------------------------------------------- small helpers


def _engine(store: Store) -> Engine:
    return store.engine


def _times(values: Iterable[Any]) -> pd.Series:
    """Timestamps read as text (naive UTC on SQLite, with an offset on PostgreSQL) -> UTC, at once."""
    series = pd.Series(list(values), dtype="object")
    if series.empty:
        return pd.Series([], dtype="datetime64[us, UTC]")
    return pd.to_datetime(series, utc=True, format="ISO8601").astype("datetime64[us, UTC]")


def _text(column: Any) -> Any:
    return cast(column, Text)


def _epoch(engine: Engine, column: Any) -> ColumnElement[int]:
    """Seconds since 1970 of a stored timestamp, as an integer, on SQLite and PostgreSQL."""
    if engine.dialect.name == "sqlite":
        return cast(func.strftime("%s", column), Integer)
    return cast(extract("epoch", column), BigInteger)


def _frame(rows: Sequence[Sequence[Any]], columns: Sequence[str]) -> pd.DataFrame:
    data = dict(zip(columns, zip(*rows))) if rows else {name: () for name in columns}
    return pd.DataFrame({name: list(data[name]) for name in columns}, columns=list(columns))


def _window_filters(table: Any, start: datetime | None, end: datetime | None) -> list[ColumnElement[bool]]:
    """Windows inside ``[start, end)``, as ``Store.metrics`` reads them."""
    filters: list[ColumnElement[bool]] = []
    if start is not None:
        filters.append(table.window_start >= as_utc(start))
    if end is not None:
        filters.append(table.window_end <= as_utc(end))
    return filters


def _by_column(stmt: Any) -> Any:
    """On SQLite, read through the (monitor, column, window_start) index.

    Without statistics (stores are never ANALYZEd) SQLite picks the (monitor, check, window_start)
    index for a query naming both a check and a column, and walks every row of the check: a year
    of one column's quality history then reads 1.3 million rows instead of 35 thousand.
    """
    for index in MetricRow.__table__.indexes:
        if [c.name for c in index.columns] == ["monitor", "column", "window_start"]:
            return stmt.with_hint(MetricRow, f"INDEXED BY {index.name}", "sqlite")
    return stmt


def _windows_per_bucket(span: timedelta, window: timedelta, limit: int) -> int:
    """How many consecutive windows one bucket holds so that ``span`` fits in ``limit`` buckets.

    >>> _windows_per_bucket(timedelta(days=365), timedelta(hours=1), 240)
    37
    >>> _windows_per_bucket(timedelta(days=7), timedelta(hours=1), 240)
    1
    """
    if window <= timedelta(0) or span <= timedelta(0):
        return 1
    windows = math.ceil(span / window)
    return max(1, math.ceil(windows / limit))


# ---------------------------------------------------------------------------- connections


def tune_for_reading(store: Store) -> Store:
    """Let SQLite sort with helper threads on this store's connections (``PRAGMA threads``).

    A heat map of a year groups a million rows; SQLite sorts them single-threaded unless asked,
    and sorting is most of that query's time (measured: 2.2 s -> 1.5 s on two cores). Call it
    on a store opened for reading, before its first query. PostgreSQL plans in parallel itself.
    """
    engine = _engine(store)
    if engine.dialect.name == "sqlite":
        threads = max(1, min(4, (os.cpu_count() or 1)))

        def _threads(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.execute(f"PRAGMA threads = {threads}")

        event.listen(engine, "connect", _threads)
    return store


def store_ready(store: Store) -> bool:
    """Whether the store holds Driftline's tables: a new database does not until a run migrates it."""
    return {"runs", "metric_results"} <= _tables(store)


# ------------------------------------------------------------------------------- monitors


def monitors(store: Store) -> list[str]:
    """Every monitor with a run or a reference in the store, sorted."""
    return store.monitors()


def extent(store: Store, monitor: str | None = None) -> Window | None:
    """From the first window's start to the last window's end (of one monitor, or of all)."""
    stmt = select(_text(func.min(RunRow.window_start)), _text(func.max(RunRow.window_end)))
    if monitor is not None:
        stmt = stmt.where(RunRow.monitor == monitor)
    with _engine(store).connect() as connection:
        first, last = connection.execute(stmt).one()
    if first is None or last is None:
        return None
    times = _times([first, last])
    return Window(times.iloc[0].to_pydatetime(), times.iloc[1].to_pydatetime())


def window_size(store: Store, monitor: str) -> timedelta | None:
    """The window size of the monitor's latest run (what the store holds, whatever the config says now)."""
    stmt = (
        select(_text(RunRow.window_start), _text(RunRow.window_end))
        .where(RunRow.monitor == monitor)
        .order_by(RunRow.window_start.desc())
        .limit(1)
    )
    with _engine(store).connect() as connection:
        row = connection.execute(stmt).first()
    if row is None:
        return None
    start, end = _times(row)
    return (end - start).to_pytimedelta()


def _last_good_run(store: Store, monitor: str) -> int | None:
    """Id of the latest run that checked data (status ok or breach)."""
    stmt = (
        select(RunRow.id)
        .where(RunRow.monitor == monitor, RunRow.status.in_(("ok", "breach")))
        .order_by(RunRow.window_start.desc())
        .limit(1)
    )
    with _engine(store).connect() as connection:
        return connection.execute(stmt).scalar()


def segments(store: Store, monitor: str) -> list[str]:
    """The monitor's segments: ``*`` (the whole population) first, then those of its latest checked window."""
    run_id = _last_good_run(store, monitor)
    found: set[str] = set()
    if run_id is not None:
        stmt = select(MetricRow.segment).where(MetricRow.run_id == run_id).distinct()
        with _engine(store).connect() as connection:
            found = set(connection.scalars(stmt))
    found.discard(ALL_SEGMENT)
    return [ALL_SEGMENT, *sorted(found)]


def checked_columns(store: Store, monitor: str) -> pd.DataFrame:
    """``check, column, metric, kind`` checked in the latest checked window (whole population).

    ``kind`` is ``verdict`` for drift verdicts, ``info`` for further methods and summaries, and
    ``threshold`` for other thresholded metrics.
    """
    run_id = _last_good_run(store, monitor)
    columns = ["check", "column", "metric", "kind"]
    if run_id is None:
        return pd.DataFrame(columns=columns)
    stmt = (
        select(MetricRow.check, MetricRow.column, MetricRow.metric, MetricRow.status, MetricRow.threshold)
        .where(MetricRow.run_id == run_id, MetricRow.segment == ALL_SEGMENT)
        .order_by(MetricRow.check, MetricRow.column, MetricRow.metric)
    )
    with _engine(store).connect() as connection:
        rows = connection.execute(stmt).all()
    out = []
    for check, column, metric, status, threshold in rows:
        if check in VERDICT_CHECKS:
            kind = "verdict" if status in VERDICT_STATUSES or threshold is not None else "info"
        else:
            kind = "info" if status == "info" or threshold is None else "threshold"
        out.append((check, column, metric, kind))
    return pd.DataFrame(out, columns=columns)


def drift_columns(store: Store, monitor: str) -> pd.DataFrame:
    """``check, column, metric`` of the drift verdicts (features, then prediction, then target)."""
    frame = checked_columns(store, monitor)
    frame = frame[frame["check"].isin(VERDICT_CHECKS) & (frame["kind"] == "verdict") & (frame["column"] != DATASET_COLUMN)]
    order = {check: i for i, check in enumerate(VERDICT_CHECKS)}
    frame = frame.assign(_order=frame["check"].map(order)).sort_values(["_order", "column"])
    return frame.drop(columns=["_order", "kind"]).reset_index(drop=True)


# ---------------------------------------------------------------------------------- health


@dataclass(frozen=True)
class MonitorHealth:
    """One monitor at a glance."""

    monitor: str
    last_window: Window | None = None
    last_status: str | None = None  # a run status, or None when the monitor has no run yet
    last_rows: int | None = None
    last_error: str | None = None
    window: timedelta | None = None
    lag: timedelta | None = None  # from the end of the latest window to ``now``
    stale: bool = False  # no new window for more than two windows (plus a day for daily ones)
    breaching: tuple[str, ...] = ()  # "check:column metric" breached in the latest window, whole population
    open_alerts: int | None = None  # None when alerting is not configured in this store


def health(store: Store, names: Sequence[str], *, now: datetime) -> list[MonitorHealth]:
    """The health of each named monitor, ``now`` passed in (lag and staleness depend on it)."""
    alerts = open_alert_counts(store)
    out = []
    for name in names:
        last = store.last_run(name)
        if last is None:
            out.append(MonitorHealth(name, open_alerts=None if alerts is None else alerts.get(name, 0)))
            continue
        size = last.window.end - last.window.start
        lag = as_utc(now) - last.window.end
        grace = 2 * size + (timedelta(days=1) if size >= timedelta(days=1) else timedelta(0))
        stmt = (
            select(MetricRow.check, MetricRow.column, MetricRow.metric)
            .where(MetricRow.run_id == last.id, MetricRow.status == "breach", MetricRow.segment == ALL_SEGMENT)
            .order_by(MetricRow.check, MetricRow.column, MetricRow.metric)
        )
        with _engine(store).connect() as connection:
            breaching = tuple(
                f"{check}:{column} {metric}" if column else f"{check} {metric}" for check, column, metric in connection.execute(stmt)
            )
        out.append(
            MonitorHealth(
                monitor=name,
                last_window=last.window,
                last_status=last.status,
                last_rows=last.rows,
                last_error=last.error,
                window=size,
                lag=lag,
                stale=lag > grace,
                breaching=breaching,
                open_alerts=None if alerts is None else alerts.get(name, 0),
            )
        )
    return out


# ------------------------------------------------------------------------------------ runs

RUN_COLUMNS = (
    "window_start", "window_end", "status", "rows", "bad_rows", "duration_s", "error", "trigger",
    "reference_version", "started_at", "finished_at",
)  # fmt: skip


def runs(store: Store, monitor: str, *, start: datetime | None = None, end: datetime | None = None) -> pd.DataFrame:
    """The monitor's runs with windows inside ``[start, end)``, oldest first: one row per window."""
    stmt = (
        select(
            _text(RunRow.window_start), _text(RunRow.window_end), RunRow.status, RunRow.rows, RunRow.bad_rows,
            _text(RunRow.started_at), _text(RunRow.finished_at), RunRow.error, RunRow.trigger, RunRow.reference_version,
        )  # fmt: skip
        .where(RunRow.monitor == monitor, *_window_filters(RunRow, start, end))
        .order_by(RunRow.window_start)
    )
    with _engine(store).connect() as connection:
        rows = connection.execute(stmt).all()
    names = ["window_start", "window_end", "status", "rows", "bad_rows", "started_at", "finished_at", "error", "trigger", "reference_version"]
    frame = _frame(rows, names)
    for name in ("window_start", "window_end", "started_at", "finished_at"):
        frame[name] = _times(frame[name])
    frame["rows"] = frame["rows"].astype("int64")
    frame["bad_rows"] = frame["bad_rows"].astype("int64")
    frame["duration_s"] = (frame["finished_at"] - frame["started_at"]).dt.total_seconds()
    frame["reference_version"] = frame["reference_version"].astype("Int64")
    return frame[list(RUN_COLUMNS)]


RUN_BUCKET_COLUMNS = ("window_start", "window_end", "windows", "rows", "status")
_STATUS_RANK = {"ok": 0, "no_data": 1, "breach": 2, "failed": 3}


def run_buckets(
    store: Store, monitor: str, *, start: datetime | None = None, end: datetime | None = None, max_points: int = 400
) -> pd.DataFrame:
    """Rows per window over a range, for a volume trend: each run, or with more than ``max_points``
    windows, buckets of consecutive runs (``rows`` = the bucket's mean rows per window, ``status``
    its worst run: failed, then breach, no data, ok)."""
    resolved = _resolve_range(store, monitor, start, end)
    if resolved is None:
        return pd.DataFrame(columns=list(RUN_BUCKET_COLUMNS))
    first, last, size = resolved
    per_bucket = _windows_per_bucket(last - first, size, max_points)
    if per_bucket == 1:
        frame = runs(store, monitor, start=start, end=end)
        frame["windows"] = 1
        return frame[list(RUN_BUCKET_COLUMNS)]
    engine = _engine(store)
    bucket = ((_epoch(engine, RunRow.window_start) - literal(int(first.timestamp()))) // literal(int(size.total_seconds()) * per_bucket)).label("bucket")
    rank = case(*((RunRow.status == status, value) for status, value in _STATUS_RANK.items()), else_=0)
    stmt = (
        select(_text(func.min(RunRow.window_start)), _text(func.max(RunRow.window_end)), func.count(), func.avg(RunRow.rows), func.max(rank))
        .where(RunRow.monitor == monitor, *_window_filters(RunRow, first, last))
        .group_by(bucket)
        .order_by(bucket)
    )
    with engine.connect() as connection:
        rows = connection.execute(stmt).all()
    frame = _frame(rows, ["window_start", "window_end", "windows", "rows", "rank"])
    by_rank = {value: status for status, value in _STATUS_RANK.items()}
    frame["status"] = [by_rank.get(int(r), "ok") for r in frame["rank"]]
    frame["window_start"] = _times(frame["window_start"])
    frame["window_end"] = _times(frame["window_end"])
    frame["rows"] = pd.to_numeric(frame["rows"]).round().astype("int64")
    frame["windows"] = frame["windows"].astype("int64")
    return frame[list(RUN_BUCKET_COLUMNS)]


@dataclass(frozen=True)
class RunTotals:
    """Counts of a monitor's runs in a range, by status, and their slowest duration."""

    runs: int = 0
    ok: int = 0
    breach: int = 0
    no_data: int = 0
    failed: int = 0
    rows: int = 0
    max_duration_s: float | None = None


def run_totals(frame: pd.DataFrame) -> RunTotals:
    """Totals of a :func:`runs` frame."""
    if frame.empty:
        return RunTotals()
    counts = frame["status"].value_counts()
    return RunTotals(
        runs=len(frame),
        ok=int(counts.get("ok", 0)),
        breach=int(counts.get("breach", 0)),
        no_data=int(counts.get("no_data", 0)),
        failed=int(counts.get("failed", 0)),
        rows=int(frame["rows"].sum()),
        max_duration_s=float(frame["duration_s"].max()),
    )


# --------------------------------------------------------------------------------- metrics

SERIES_COLUMNS = (
    "window_start", "window_end", "column", "metric", "value", "threshold", "direction", "status", "windows", "breaches",
)  # fmt: skip


def _metric_filters(
    monitor: str,
    checks: Sequence[str],
    *,
    metrics: Sequence[str] | None,
    columns: Sequence[str] | None,
    segment: str,
    statuses: Sequence[str] | None,
    start: datetime | None,
    end: datetime | None,
) -> list[ColumnElement[bool]]:
    where = [MetricRow.monitor == monitor, MetricRow.segment == segment, *_window_filters(MetricRow, start, end)]
    where.append(MetricRow.check == checks[0] if len(checks) == 1 else MetricRow.check.in_(list(checks)))
    if metrics is not None:
        where.append(MetricRow.metric.in_(list(metrics)))
    if columns is not None:
        where.append(MetricRow.column.in_(list(columns)))
    if statuses is not None:
        where.append(MetricRow.status.in_(list(statuses)))
    return where


def _resolve_range(
    store: Store, monitor: str, start: datetime | None, end: datetime | None
) -> tuple[datetime, datetime, timedelta] | None:
    """The range to bucket (the data's extent fills in missing ends) and the monitor's window size."""
    size = window_size(store, monitor)
    if size is None:
        return None
    if start is None or end is None:
        bounds = extent(store, monitor)
        if bounds is None:
            return None
        start = bounds.start if start is None else start
        end = bounds.end if end is None else end
    return as_utc(start), as_utc(end), size


def metric_series(
    store: Store,
    monitor: str,
    checks: str | Sequence[str],
    *,
    metrics: Sequence[str] | None = None,
    columns: Sequence[str] | None = None,
    segment: str = ALL_SEGMENT,
    statuses: Sequence[str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    max_points: int = MAX_POINTS,
    details: bool = False,
) -> pd.DataFrame:
    """Metric values over time, one row per (window or bucket, column, metric), oldest first.

    Columns: ``SERIES_COLUMNS`` (+ ``details`` when asked and not bucketed). When the range holds
    more than ``max_points`` windows, consecutive windows are bucketed in SQL: ``value`` is then the
    worst window of the bucket (the largest, or the smallest for metrics with a floor, or the mean
    for summaries without a threshold), ``threshold`` the tightest one, ``status`` ``breach`` when
    any window breached, ``windows`` and ``breaches`` the counts.
    """
    checks = (checks,) if isinstance(checks, str) else tuple(checks)
    where = _metric_filters(
        monitor, checks, metrics=metrics, columns=columns, segment=segment, statuses=statuses, start=start, end=end
    )
    resolved = _resolve_range(store, monitor, start, end)
    per_bucket = 1
    if resolved is not None:
        first, last, size = resolved
        per_bucket = _windows_per_bucket(last - first, size, max_points)
    engine = _engine(store)
    if per_bucket == 1 or resolved is None:
        selected = [
            _text(MetricRow.window_start), _text(MetricRow.window_end), MetricRow.column, MetricRow.metric,
            MetricRow.value, MetricRow.threshold, MetricRow.direction, MetricRow.status,
        ]  # fmt: skip
        if details:
            selected.append(_text(MetricRow.details))
        stmt = select(*selected).where(*where).order_by(MetricRow.window_start, MetricRow.column, MetricRow.metric)
        if columns is not None:
            stmt = _by_column(stmt)
        with engine.connect() as connection:
            rows = connection.execute(stmt).all()
        names = ["window_start", "window_end", "column", "metric", "value", "threshold", "direction", "status"]
        frame = _frame(rows, names + (["details"] if details else []))
        frame["windows"] = 1
        frame["breaches"] = (frame["status"] == "breach").astype("int64")
        if details:
            texts = ("null" if text is None else text for text in frame["details"])
            frame["details"] = json.loads("[" + ",".join(texts) + "]")
    else:
        first, last, size = resolved
        bucket_seconds = int(size.total_seconds()) * per_bucket
        origin = int(first.timestamp())
        bucket = ((_epoch(engine, MetricRow.window_start) - literal(origin)) // literal(bucket_seconds)).label("bucket")
        breach = func.sum(case((MetricRow.status == "breach", 1), else_=0))
        stmt = (
            select(
                _text(func.min(MetricRow.window_start)), _text(func.max(MetricRow.window_end)), MetricRow.column,
                MetricRow.metric, func.max(MetricRow.value), func.min(MetricRow.value), func.avg(MetricRow.value),
                func.max(MetricRow.threshold), func.min(MetricRow.threshold), func.max(MetricRow.direction),
                func.count(), breach, func.max(MetricRow.status),
            )  # fmt: skip
            .where(*where)
            .group_by(bucket, MetricRow.column, MetricRow.metric)
            .order_by(bucket, MetricRow.column, MetricRow.metric)
        )
        if columns is not None:
            stmt = _by_column(stmt)
        with engine.connect() as connection:
            rows = connection.execute(stmt).all()
        names = ["window_start", "window_end", "column", "metric", "vmax", "vmin", "vavg", "tmax", "tmin", "direction", "windows", "breaches", "any_status"]
        raw = _frame(rows, names)
        floor = raw["direction"] == "min"
        ceiling = raw["direction"] == "max"
        frame = raw[["window_start", "window_end", "column", "metric", "direction", "windows", "breaches"]].copy()
        frame["value"] = raw["vavg"].where(~(floor | ceiling), raw["vmin"].where(floor, raw["vmax"]))
        frame["threshold"] = raw["tmax"].where(floor, raw["tmin"])
        frame["breaches"] = frame["breaches"].fillna(0).astype("int64")
        # The bucket breached when any window did; otherwise it is as its windows were (ok, info...).
        frame["status"] = raw["any_status"].replace({"breach": "ok"}).where(frame["breaches"] == 0, "breach")
    frame["window_start"] = _times(frame["window_start"])
    frame["window_end"] = _times(frame["window_end"])
    for name in ("value", "threshold"):
        frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
    frame["windows"] = frame["windows"].astype("int64")
    order = list(SERIES_COLUMNS) + (["details"] if details and "details" in frame else [])
    return frame[order].reset_index(drop=True)


@dataclass(frozen=True)
class Grid:
    """A column x time grid of one family of metrics (a heat map), bucketed to at most ``max_buckets``.

    ``frame`` has one row per (check, column, metric, bucket): ``check, column, metric, bucket_start,
    bucket_end, windows, value`` (the largest in the bucket), ``threshold`` (the smallest), and
    ``breaches`` (windows that breached).
    """

    frame: pd.DataFrame
    windows_per_bucket: int = 1
    window: timedelta | None = None

    @property
    def empty(self) -> bool:
        return self.frame.empty


GRID_COLUMNS = ("check", "column", "metric", "bucket_start", "bucket_end", "windows", "value", "threshold", "breaches")


def metric_grid(
    store: Store,
    monitor: str,
    checks: str | Sequence[str],
    *,
    metrics: Sequence[str] | None = None,
    statuses: Sequence[str] | None = None,
    segment: str = ALL_SEGMENT,
    start: datetime | None = None,
    end: datetime | None = None,
    max_buckets: int = MAX_BUCKETS,
) -> Grid:
    """A heat map's cells, aggregated in SQL (one row per check, column, metric and time bucket).

    For the drift heat map: ``checks=VERDICT_CHECKS, statuses=VERDICT_STATUSES`` (the verdicts,
    value = effect size). For data quality: ``checks="quality", metrics=["missing_share"]``.
    """
    checks = (checks,) if isinstance(checks, str) else tuple(checks)
    resolved = _resolve_range(store, monitor, start, end)
    if resolved is None:
        return Grid(pd.DataFrame(columns=list(GRID_COLUMNS)))
    first, last, size = resolved
    per_bucket = _windows_per_bucket(last - first, size, max_buckets)
    engine = _engine(store)
    bucket_seconds = int(size.total_seconds()) * per_bucket
    bucket = ((_epoch(engine, MetricRow.window_start) - literal(int(first.timestamp()))) // literal(bucket_seconds)).label("bucket")
    where = _metric_filters(
        monitor, checks, metrics=metrics, columns=None, segment=segment, statuses=statuses, start=first, end=last
    )
    where.append(MetricRow.column != DATASET_COLUMN)
    stmt = (
        select(
            MetricRow.check, MetricRow.column, MetricRow.metric, bucket, func.count(),
            func.max(MetricRow.value), func.min(MetricRow.threshold),
            func.sum(case((MetricRow.status == "breach", 1), else_=0)),
        )  # fmt: skip
        .where(*where)
        .group_by(bucket, MetricRow.check, MetricRow.column, MetricRow.metric)  # bucket first: rows arrive in time order
    )
    with engine.connect() as connection:
        rows = connection.execute(stmt).all()
    raw = _frame(rows, ["check", "column", "metric", "bucket", "windows", "value", "threshold", "breaches"])
    origin = pd.Timestamp(first)
    step = pd.Timedelta(seconds=bucket_seconds)
    frame = pd.DataFrame(
        {
            "check": raw["check"].astype("str"),
            "column": raw["column"].astype("str"),
            "metric": raw["metric"].astype("str"),
            "bucket_start": (origin + raw["bucket"].astype("int64") * step).astype("datetime64[us, UTC]"),
            "windows": raw["windows"].astype("int64"),
            "value": pd.to_numeric(raw["value"], errors="coerce").astype("float64"),
            "threshold": pd.to_numeric(raw["threshold"], errors="coerce").astype("float64"),
            "breaches": raw["breaches"].fillna(0).astype("int64"),
        }
    )
    frame["bucket_end"] = frame["bucket_start"] + step
    frame = frame.sort_values(["check", "column", "metric", "bucket_start"]).reset_index(drop=True)
    return Grid(frame[list(GRID_COLUMNS)], per_bucket, size)


def breach_counts(
    store: Store,
    monitor: str,
    *,
    segment: str = ALL_SEGMENT,
    start: datetime | None = None,
    end: datetime | None = None,
    checks: Sequence[str] | None = None,
) -> pd.DataFrame:
    """``check, column, metric, windows, first, last`` of every metric that breached in the range:
    how many windows breached, the first one's start and the last one's end."""
    where = [MetricRow.monitor == monitor, MetricRow.segment == segment, MetricRow.status == "breach", *_window_filters(MetricRow, start, end)]
    if checks is not None:
        where.append(MetricRow.check.in_(list(checks)))
    stmt = (
        select(
            MetricRow.check, MetricRow.column, MetricRow.metric, func.count(),
            _text(func.min(MetricRow.window_start)), _text(func.max(MetricRow.window_end)),
        )  # fmt: skip
        .where(*where)
        .group_by(MetricRow.check, MetricRow.column, MetricRow.metric)
        .order_by(func.count().desc(), MetricRow.check, MetricRow.column, MetricRow.metric)
    )
    with _engine(store).connect() as connection:
        rows = connection.execute(stmt).all()
    frame = _frame(rows, ["check", "column", "metric", "windows", "first", "last"])
    frame["windows"] = frame["windows"].astype("int64")
    frame["first"] = _times(frame["first"])
    frame["last"] = _times(frame["last"])
    return frame


# --------------------------------------------------------------------------- distributions


@dataclass(frozen=True)
class Distribution:
    """One column's reference and window profiles, decoded with ``checks.profiles`` for drawing.

    ``reference_segment`` is the segment whose reference profile is shown: the requested one, or
    ``*`` when the reference did not hold that segment (the runner compares with it then, too).
    """

    monitor: str
    column: str
    segment: str
    kind: str | None = None  # "numeric" | "categorical"; None when the reference lacks the column
    reference: ColumnProfile | None = None
    current: ColumnProfile | None = None
    window: Window | None = None
    reference_version: int | None = None
    reference_segment: str = ALL_SEGMENT
    notes: tuple[str, ...] = field(default=())


def column_distribution(
    store: Store, monitor: str, column: str, *, segment: str = ALL_SEGMENT, window_start: datetime | None = None
) -> Distribution:
    """The reference profile of ``column`` and its profile in the window starting at ``window_start``
    (the latest stored window when ``None``). Reads one profile row and the window's reference."""
    where = [WindowProfileRow.monitor == monitor, WindowProfileRow.column == column, WindowProfileRow.segment == segment]
    if window_start is not None:
        where.append(WindowProfileRow.window_start == as_utc(window_start))
    stmt = (
        select(_text(WindowProfileRow.window_start), _text(WindowProfileRow.window_end), WindowProfileRow.payload, RunRow.reference_version)
        .join(RunRow, RunRow.id == WindowProfileRow.run_id)
        .where(*where)
        .order_by(WindowProfileRow.window_start.desc())
        .limit(1)
    )
    with _engine(store).connect() as connection:
        row = connection.execute(stmt).first()
    notes: list[str] = []
    window = None
    payload = None
    version = None
    if row is not None:
        times = _times(row[:2])
        window = Window(times.iloc[0].to_pydatetime(), times.iloc[1].to_pydatetime())
        payload, version = row[2], row[3]
    reference = store.reference(monitor, version) if version is not None else store.latest_reference(monitor)
    if reference is None:
        return Distribution(monitor, column, segment, window=window, notes=("no reference is stored for this monitor",))
    binning_data = reference.payload.get("binnings", {}).get(column)
    if binning_data is None:
        return Distribution(monitor, column, segment, window=window, reference_version=reference.version,
                            notes=(f"the reference has no profile of {column!r}",))  # fmt: skip
    binning = binning_from_dict(binning_data)
    profiles = reference.payload.get("profiles", {})
    reference_segment = segment
    seg_profile = profiles.get(segment)
    if seg_profile is None or column not in seg_profile.get("columns", {}) or int(seg_profile.get("rows", 0)) == 0:
        reference_segment = ALL_SEGMENT
        seg_profile = profiles.get(ALL_SEGMENT, {})
        if segment != ALL_SEGMENT:
            notes.append(f"the reference has no rows of {segment}: compared with the whole reference")
    ref_data = seg_profile.get("columns", {}).get(column)
    ref_profile = column_from_dict(ref_data, binning) if ref_data is not None else None
    current = column_from_dict(payload, binning) if payload is not None else None
    if row is None:
        notes.append("no window profile of this column is stored" + (" for that window" if window_start else ""))
    return Distribution(
        monitor=monitor,
        column=column,
        segment=segment,
        kind=binning_data.get("kind"),
        reference=ref_profile,
        current=current,
        window=window,
        reference_version=reference.version,
        reference_segment=reference_segment,
        notes=tuple(notes),
    )


def unseen_values(
    store: Store, monitor: str, columns: Sequence[str], *, segment: str = ALL_SEGMENT, window_start: datetime
) -> pd.DataFrame:
    """``column, value, count`` of the values a window held that its reference never did (the most
    frequent ones each profile kept), for categorical ``columns``."""
    if not columns:
        return pd.DataFrame(columns=["column", "value", "count"])
    stmt = select(WindowProfileRow.column, WindowProfileRow.payload).where(
        WindowProfileRow.monitor == monitor,
        WindowProfileRow.column.in_(list(columns)),
        WindowProfileRow.window_start == as_utc(window_start),
        WindowProfileRow.segment == segment,
    )
    rows: list[tuple[str, str, int]] = []
    with _engine(store).connect() as connection:
        for column, payload in connection.execute(stmt):
            if payload.get("kind") != "categorical":
                continue
            for value, count in (payload.get("unseen_values") or {}).items():
                rows.append((column, str(value), int(count)))
    frame = pd.DataFrame(rows, columns=["column", "value", "count"])
    return frame.sort_values(["column", "count"], ascending=[True, False]).reset_index(drop=True)


# ----------------------------------------------------------------------------------- alerts
# The alerting tables (monitor/store/alert_models.py) arrive with the ``alerts`` migration branch.
# A store without them (older, or opened before that migration) still serves every other page.

ALERT_TABLES = ("alerts", "deliveries", "silences")
OPEN_ALERT_STATUSES = ("pending", "firing")


def _tables(store: Store) -> set[str]:
    return set(inspect(_engine(store)).get_table_names())


def alerting_configured(store: Store) -> bool:
    """Whether the store holds the alerting tables."""
    return set(ALERT_TABLES) <= _tables(store)


def open_alert_counts(store: Store) -> dict[str, int] | None:
    """Open (pending or firing) alerts per monitor; ``None`` when the store has no alert tables."""
    if not alerting_configured(store):
        return None
    from monitor.store.alert_models import AlertRow

    stmt = (
        select(AlertRow.monitor, func.count())
        .where(AlertRow.status.in_(OPEN_ALERT_STATUSES))
        .group_by(AlertRow.monitor)
    )
    with _engine(store).connect() as connection:
        return {monitor: int(count) for monitor, count in connection.execute(stmt)}


ALERT_COLUMNS = (
    "check", "column", "segment", "status", "severity", "consecutive", "since", "fired_at", "resolved_at",
    "last_window_end", "last_notified_at", "incident", "reason", "breaches",
)  # fmt: skip


def alerts(store: Store, monitor: str, *, segment: str | None = None) -> pd.DataFrame:
    """The monitor's alert keys with their state (one row per check, column and segment), open ones
    first, then by when they last changed. ``breaches`` counts the metrics of the last breaching window."""
    if not alerting_configured(store):
        return pd.DataFrame(columns=list(ALERT_COLUMNS))
    from monitor.store.alert_models import AlertRow

    where = [AlertRow.monitor == monitor]
    if segment is not None:
        where.append(AlertRow.segment == segment)
    stmt = select(
        AlertRow.check, AlertRow.column, AlertRow.segment, AlertRow.status, AlertRow.severity, AlertRow.consecutive,
        _text(AlertRow.since), _text(AlertRow.fired_at), _text(AlertRow.resolved_at), _text(AlertRow.last_window_end),
        _text(AlertRow.last_notified_at), AlertRow.incident, AlertRow.reason, AlertRow.breaches, _text(AlertRow.updated_at),
    ).where(*where)  # fmt: skip
    with _engine(store).connect() as connection:
        rows = connection.execute(stmt).all()
    frame = _frame(rows, [*ALERT_COLUMNS, "updated_at"])
    for name in ("since", "fired_at", "resolved_at", "last_window_end", "last_notified_at", "updated_at"):
        frame[name] = _times(frame[name])
    frame["breaches"] = [len((b or {}).get("breaches", [])) if isinstance(b, dict) else 0 for b in frame["breaches"]]
    frame["consecutive"] = pd.to_numeric(frame["consecutive"]).astype("Int64")
    frame["_open"] = frame["status"].isin(OPEN_ALERT_STATUSES)
    frame = frame.sort_values(["_open", "updated_at"], ascending=[False, False])
    return frame[list(ALERT_COLUMNS)].reset_index(drop=True)


DELIVERY_COLUMNS = (
    "created_at", "kind", "channel", "channel_type", "status", "attempts", "sent_at", "next_attempt_at",
    "last_error", "external_id", "window_start", "window_end", "reason", "incident", "alerts", "resolved", "retrain",
)  # fmt: skip


def deliveries(
    store: Store,
    monitor: str,
    *,
    kind: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 1000,
) -> pd.DataFrame:
    """The monitor's outbox rows for windows inside ``[start, end)``, newest first: notifications
    (``kind="notify"``) or retrain triggers (``"retrain"``).

    Only what a person needs is returned: the channel's *name* and type, the delivery state, the
    stored (already redacted) error, and from the payload the reason, the incident and how many
    alerts it carried. Never the payload itself, and never a channel's URL or token.
    """
    if not alerting_configured(store):
        return pd.DataFrame(columns=list(DELIVERY_COLUMNS))
    from monitor.store.alert_models import DeliveryRow

    where = [DeliveryRow.monitor == monitor, *_window_filters(DeliveryRow, start, end)]
    if kind is not None:
        where.append(DeliveryRow.kind == kind)
    stmt = (
        select(
            _text(DeliveryRow.created_at), DeliveryRow.kind, DeliveryRow.channel, DeliveryRow.channel_type,
            DeliveryRow.status, DeliveryRow.attempts, _text(DeliveryRow.sent_at), _text(DeliveryRow.next_attempt_at),
            DeliveryRow.last_error, DeliveryRow.external_id, _text(DeliveryRow.window_start), _text(DeliveryRow.window_end),
            DeliveryRow.payload,
        )  # fmt: skip
        .where(*where)
        .order_by(DeliveryRow.created_at.desc(), DeliveryRow.id.desc())
        .limit(limit)
    )
    with _engine(store).connect() as connection:
        rows = connection.execute(stmt).all()
    frame = _frame(rows, [*DELIVERY_COLUMNS[:12], "payload"])
    payloads = [p if isinstance(p, dict) else {} for p in frame["payload"]]
    frame["reason"] = [p.get("reason") for p in payloads]
    frame["incident"] = [p.get("incident") for p in payloads]
    frame["alerts"] = [len(p.get("alerts") or []) for p in payloads]
    frame["resolved"] = [len(p.get("resolved") or []) for p in payloads]
    frame["retrain"] = [
        None if not p.get("retrain") else f"{p['retrain'].get('sustained_windows')} windows: {', '.join(p['retrain'].get('checks') or [])}"
        for p in payloads
    ]
    for name in ("created_at", "sent_at", "next_attempt_at", "window_start", "window_end"):
        frame[name] = _times(frame[name])
    frame["attempts"] = pd.to_numeric(frame["attempts"]).astype("Int64")
    return frame[list(DELIVERY_COLUMNS)].reset_index(drop=True)


SILENCE_COLUMNS = ("check", "column", "segment", "starts_at", "ends_at", "reason", "created_by", "active")


def silences(store: Store, monitor: str, *, now: datetime, include_expired: bool = True) -> pd.DataFrame:
    """The monitor's silences, latest end first; ``active`` when ``now`` lies inside one.
    An empty check, column or segment matches anything."""
    if not alerting_configured(store):
        return pd.DataFrame(columns=list(SILENCE_COLUMNS))
    from monitor.store.alert_models import SilenceRow

    where = [SilenceRow.monitor == monitor]
    if not include_expired:
        where.append(SilenceRow.ends_at > as_utc(now))
    stmt = (
        select(
            SilenceRow.check, SilenceRow.column, SilenceRow.segment, _text(SilenceRow.starts_at), _text(SilenceRow.ends_at),
            SilenceRow.reason, SilenceRow.created_by,
        )  # fmt: skip
        .where(*where)
        .order_by(SilenceRow.ends_at.desc())
    )
    with _engine(store).connect() as connection:
        rows = connection.execute(stmt).all()
    frame = _frame(rows, list(SILENCE_COLUMNS[:-1]))
    for name in ("starts_at", "ends_at"):
        frame[name] = _times(frame[name])
    moment = pd.Timestamp(as_utc(now))
    frame["active"] = (frame["starts_at"] <= moment) & (frame["ends_at"] > moment)
    for name in ("check", "column", "segment"):
        frame[name] = frame[name].where(frame[name].notna() & (frame[name] != ""), "any")
    return frame[list(SILENCE_COLUMNS)].reset_index(drop=True)


__all__ = [
    "ALL_SEGMENT",
    "DashboardSettings",
    "Distribution",
    "Grid",
    "KpiInfo",
    "MAX_BUCKETS",
    "MAX_POINTS",
    "MonitorHealth",
    "MonitorInfo",
    "PAGES",
    "QUERY_PARAMS",
    "RunTotals",
    "VERDICT_CHECKS",
    "VERDICT_STATUSES",
    "alerting_configured",
    "alerts",
    "deliveries",
    "silences",
    "breach_counts",
    "checked_columns",
    "column_distribution",
    "drift_columns",
    "extent",
    "health",
    "iso",
    "load_settings",
    "metric_grid",
    "metric_series",
    "monitors",
    "open_alert_counts",
    "page_url",
    "parse_time",
    "run_buckets",
    "run_totals",
    "runs",
    "segments",
    "store_ready",
    "tune_for_reading",
    "unseen_values",
    "window_size",
]
