"""Cached reads: every query a page makes goes through here, to ``monitor.read``, cached for a short TTL.

The cache key is the store URL and the query's arguments (monitor, segment, range...), so every
visitor looking at the same view shares one result for ``TTL`` seconds; the sidebar's refresh button
clears it. The ``Store`` itself (its connection pool) is one per URL and process.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime, timedelta

import pandas as pd
import streamlit as st

from monitor import read
from monitor.store import Store


def _ttl() -> int:
    try:
        return max(1, int(os.environ.get("DRIFTLINE_DASHBOARD_TTL", "60")))
    except ValueError:
        return 60


TTL = _ttl()
"""Seconds a query result is reused (``DRIFTLINE_DASHBOARD_TTL``, default 60): fresh enough for
windows that arrive every hour or day, and a page's reruns (every click) cost nothing."""

_cache = st.cache_data(ttl=TTL, show_spinner=False, max_entries=512)


@st.cache_resource(show_spinner=False)
def store(url: str) -> Store:
    """One store (and connection pool) per URL; never migrated here: the dashboard only reads."""
    return read.tune_for_reading(Store(url))


@_cache
def ready(url: str) -> bool:
    """Whether the store has Driftline's tables (a new, empty database has none)."""
    return read.store_ready(store(url))


@_cache
def monitors(url: str) -> list[str]:
    return read.monitors(store(url))


@_cache
def extent(url: str, monitor: str) -> read.Window | None:
    return read.extent(store(url), monitor)


@_cache
def window_size(url: str, monitor: str) -> timedelta | None:
    return read.window_size(store(url), monitor)


@_cache
def segments(url: str, monitor: str) -> list[str]:
    return read.segments(store(url), monitor)


@_cache
def drift_columns(url: str, monitor: str) -> pd.DataFrame:
    return read.drift_columns(store(url), monitor)


@_cache
def checked_columns(url: str, monitor: str) -> pd.DataFrame:
    return read.checked_columns(store(url), monitor)


@_cache
def health(url: str, names: tuple[str, ...], now: datetime) -> list[read.MonitorHealth]:
    return read.health(store(url), names, now=now)


@_cache
def runs(url: str, monitor: str, start: datetime | None, end: datetime | None) -> pd.DataFrame:
    return read.runs(store(url), monitor, start=start, end=end)


@_cache
def run_buckets(url: str, monitor: str, start: datetime | None, end: datetime | None) -> pd.DataFrame:
    return read.run_buckets(store(url), monitor, start=start, end=end)


@_cache
def series(
    url: str,
    monitor: str,
    checks: str | tuple[str, ...],
    *,
    metrics: tuple[str, ...] | None = None,
    columns: tuple[str, ...] | None = None,
    segment: str = read.ALL_SEGMENT,
    statuses: tuple[str, ...] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    details: bool = False,
) -> pd.DataFrame:
    return read.metric_series(
        store(url), monitor, checks, metrics=metrics, columns=columns, segment=segment, statuses=statuses,
        start=start, end=end, details=details,
    )  # fmt: skip


@_cache
def grid(
    url: str,
    monitor: str,
    checks: str | tuple[str, ...],
    *,
    metrics: tuple[str, ...] | None = None,
    statuses: tuple[str, ...] | None = None,
    segment: str = read.ALL_SEGMENT,
    start: datetime | None = None,
    end: datetime | None = None,
) -> read.Grid:
    return read.metric_grid(
        store(url), monitor, checks, metrics=metrics, statuses=statuses, segment=segment, start=start, end=end
    )


@_cache
def breaches(
    url: str, monitor: str, segment: str, start: datetime | None, end: datetime | None, checks: tuple[str, ...] | None = None
) -> pd.DataFrame:
    return read.breach_counts(store(url), monitor, segment=segment, start=start, end=end, checks=checks)


@_cache
def distribution(url: str, monitor: str, column: str, segment: str, window_start: datetime | None) -> read.Distribution:
    return read.column_distribution(store(url), monitor, column, segment=segment, window_start=window_start)


@_cache
def unseen(url: str, monitor: str, columns: Sequence[str], segment: str, window_start: datetime) -> pd.DataFrame:
    return read.unseen_values(store(url), monitor, tuple(columns), segment=segment, window_start=window_start)


@_cache
def alerting(url: str) -> bool:
    return read.alerting_configured(store(url))


def clear() -> None:
    """Forget every cached result (the sidebar's refresh button)."""
    st.cache_data.clear()


@_cache
def alerts(url: str, monitor: str, segment: str | None) -> pd.DataFrame:
    return read.alerts(store(url), monitor, segment=segment)


@_cache
def deliveries(url: str, monitor: str, kind: str | None, start: datetime | None, end: datetime | None) -> pd.DataFrame:
    return read.deliveries(store(url), monitor, kind=kind, start=start, end=end)


@_cache
def silences(url: str, monitor: str, now: datetime) -> pd.DataFrame:
    return read.silences(store(url), monitor, now=now)
