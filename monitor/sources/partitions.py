"""Hive partitions: ``key=value`` folder names, and which ones a window can skip.

A folder name is only a label; the rows inside carry their own timestamps. So a partition is
skipped only when its label *proves* it holds no row of the window. What is recognised:

* **A date key**: a key named ``date``, ``dt``, ``ds`` or ``day``, or ending in ``_date``, ``_dt`` or
  ``_day`` (``event_date``, ``request_day``), whose value is a date ``YYYY-MM-DD`` or ``YYYYMMDD``.
  The partition covers that calendar day.
* **Calendar parts**: integer keys ``year``, ``month``, ``day``, ``hour`` (as in
  ``year=2026/month=01/day=05/hour=13``). The partition covers the year, month, day or hour the
  longest leading run names (``year`` + ``day`` without ``month`` is just the year).
* **An hour below a date**: ``date=2026-01-05/hour=13`` covers that hour (``hour``/``hr``, 0-23).

Anything else (``model=v2``, ``day=Monday``, a value that is not a valid date) is never used
for skipping, and a file whose keys disagree with each other is always read.

Partition labels are often written in local time (Spark's ``to_date`` uses the session time zone),
so the covered span is widened by the widest UTC offsets, 14 hours before and 12 hours after,
before comparing it with the window: a day label then spans 50 hours of UTC. A one-day window
reads its own day's partition and its two neighbours; with typed Parquet timestamps the
neighbours' row groups are skipped by their statistics. Logs partitioned by *arrival* date,
where late rows land in a later partition than their timestamp, must set ``partitioning: none``.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Mapping, Sequence
from urllib.parse import unquote

from monitor.windows import Window

NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"
"""The value Hive and Spark write for a null partition value."""

UTC_OFFSET_BEFORE = timedelta(hours=14)  # UTC+14 (Line Islands): a local day starts 14 h before UTC's
UTC_OFFSET_AFTER = timedelta(hours=12)  # UTC-12 (Baker Island): a local day ends 12 h after UTC's

_DATE = re.compile(r"^(\d{4})-?(\d{2})-?(\d{2})$")
_INTEGER = re.compile(r"^[+-]?\d+$")
_DATE_NAMES = {"date", "dt", "ds", "day"}
_DATE_SUFFIXES = ("_date", "_dt", "_day")
_HOUR_NAMES = ("hour", "hr")

Span = tuple[datetime, datetime]


def parse_hive(folders: Sequence[str]) -> dict[str, str | None]:
    """``["date=2026-01-01", "raw", "model=v%202"]`` -> ``{"date": "2026-01-01", "model": "v 2"}``.

    Folder names without ``=`` are ordinary subfolders. A key seen twice keeps its deepest value.
    """
    partitions: dict[str, str | None] = {}
    for folder in folders:
        key, sep, value = folder.partition("=")
        if not sep or not key:
            continue
        value = unquote(value)
        partitions[unquote(key)] = None if value == NULL_PARTITION else value
    return partitions


def _date(text: str) -> datetime | None:
    match = _DATE.match(text.strip())
    if not match:
        return None
    try:
        return datetime(*(int(part) for part in match.groups()), tzinfo=timezone.utc)
    except ValueError:  # 2026-02-30
        return None


def _integer(text: str | None) -> int | None:
    return int(text) if text is not None and _INTEGER.match(text.strip()) else None


def _calendar_span(parts: Mapping[str, str]) -> Span | None:
    year, month, day, hour = (_integer(parts.get(key)) for key in ("year", "month", "day", "hour"))
    if year is None or not 1 <= year <= 9998:
        return None
    try:
        if month is None:
            return datetime(year, 1, 1, tzinfo=timezone.utc), datetime(year + 1, 1, 1, tzinfo=timezone.utc)
        start = datetime(year, month, 1, tzinfo=timezone.utc)
        if day is None:
            return start, (start + timedelta(days=31)).replace(day=1)
        start = start.replace(day=day)
        if hour is None:
            return start, start + timedelta(days=1)
        start = start.replace(hour=hour)
        return start, start + timedelta(hours=1)
    except ValueError:  # month=13, day=31 in April, hour=24
        return None


def partition_span(partitions: Mapping[str, str | None]) -> Span | None:
    """The UTC span ``[start, end)`` a file's partition labels claim, or None when they claim nothing
    usable. Labels are taken at face value here; ``may_overlap`` adds the time-zone slack.

    >>> [moment.isoformat() for moment in partition_span({"date": "2026-01-05", "hour": "07"})]
    ['2026-01-05T07:00:00+00:00', '2026-01-05T08:00:00+00:00']
    >>> partition_span({"day": "Monday"}) is None
    True
    """
    parts = {key.lower(): value for key, value in partitions.items() if value is not None}
    spans: list[Span] = []
    for key, value in parts.items():
        if key in _DATE_NAMES or key.endswith(_DATE_SUFFIXES):
            day = _date(value)
            if day is not None:
                spans.append((day, day + timedelta(days=1)))
    hour = next((_integer(parts[key]) for key in _HOUR_NAMES if key in parts), None)
    if spans and hour is not None and 0 <= hour <= 23:
        day = spans[0][0]
        spans.append((day + timedelta(hours=hour), day + timedelta(hours=hour + 1)))
    calendar = _calendar_span(parts)
    if calendar is not None:
        spans.append(calendar)
    if not spans:
        return None
    start, end = max(span[0] for span in spans), min(span[1] for span in spans)
    # Keys that contradict each other (date=2026-01-01 with month=02) prove nothing: read the file.
    return (start, end) if start < end else None


def may_overlap(span: Span | None, window: Window) -> bool:
    """False only when a partition labelled ``span`` (in any time zone) cannot hold a row of ``window``."""
    if span is None:
        return True
    return span[0] - UTC_OFFSET_BEFORE < window.end and span[1] + UTC_OFFSET_AFTER > window.start


def latest_possible(span: Span | None) -> datetime | None:
    """The newest instant a partition labelled ``span`` can hold (exclusive), None if unknown."""
    return None if span is None else span[1] + UTC_OFFSET_AFTER


def value_types(partitions: Sequence[Mapping[str, str | None]]) -> dict[str, type]:
    """Per key, ``int`` when every value is an integer (``hour=07``), else ``str``; like Spark's inference."""
    types: dict[str, type] = {}
    for mapping in partitions:
        for key, value in mapping.items():
            if value is None:
                types.setdefault(key, int)
            elif _integer(value) is None or abs(int(value)) >= 2**63:
                types[key] = str
            else:
                types.setdefault(key, int)
    return types
