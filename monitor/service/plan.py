"""What the service should do next: pure functions of the config, the store's facts and ``now``.

Nothing here reads a clock, a file or a database, so every decision is tested with a table.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from monitor.config import MonitorConfig, RetrySettings
from monitor.store import RunRecord
from monitor.windows import EPOCH, Window, as_utc, latest_complete, parse_duration, windows_between


def delay_of(mon: MonitorConfig) -> timedelta:
    return parse_duration(mon.delay) if mon.delay else timedelta(0)


@dataclass(frozen=True)
class Schedule:
    """When a monitor's job fires: a cron expression, a fixed interval, or each window's end.

    >>> from datetime import datetime, timezone
    >>> s = Schedule("every", "30s", timedelta(seconds=30), timedelta(0))
    >>> s.next_run(datetime(2026, 1, 1, 0, 0, 10, tzinfo=timezone.utc)).isoformat()
    '2026-01-01T00:00:30+00:00'
    """

    kind: Literal["cron", "every", "window"]
    text: str
    interval: timedelta
    """The time between two runs: a run that takes longer overruns (is reported)."""
    offset: timedelta
    """Interval schedules fire at ``EPOCH + offset + k * interval``."""

    def trigger(self) -> BaseTrigger:
        if self.kind == "cron":
            return CronTrigger.from_crontab(self.text, timezone="UTC")
        # Aligned on the epoch, not on the process start: a restart keeps the same beat.
        return IntervalTrigger(seconds=self.interval.total_seconds(), start_date=EPOCH + self.offset, timezone="UTC")

    def next_run(self, now: datetime) -> datetime | None:
        # Computed here rather than by the trigger: an IntervalTrigger adds its full interval to
        # a past start date one step at a time, slowly, when asked without a previous fire time.
        now = as_utc(now)
        if self.kind == "cron":
            return self.trigger().get_next_fire_time(None, now)
        base = EPOCH + self.offset
        steps = -((base - now) // self.interval) if now > base else 0
        return base + steps * self.interval


def schedule_of(mon: MonitorConfig) -> Schedule:
    """The monitor's ``schedule`` (cron), ``every`` (interval) or, with neither, its window's end."""
    if mon.schedule:
        trigger = CronTrigger.from_crontab(mon.schedule, timezone="UTC")
        first = trigger.get_next_fire_time(None, EPOCH)
        second = trigger.get_next_fire_time(first, first + timedelta(microseconds=1)) if first else None
        interval = (second - first) if first and second else timedelta(days=1)
        return Schedule("cron", mon.schedule, interval, timedelta(0))
    if mon.every:
        return Schedule("every", mon.every, parse_duration(mon.every), timedelta(0))
    size = mon.window_size
    offset = delay_of(mon) % size
    return Schedule("window", f"each window end (+{mon.delay or '0s'})", size, offset)


def complete_until(mon: MonitorConfig, now: datetime) -> datetime:
    """The end of the latest complete window: a window is complete once ``end + delay <= now``."""
    return latest_complete(as_utc(now) - delay_of(mon), mon.window_size).end


def first_start(mon: MonitorConfig, cursor: datetime | None, started: datetime) -> datetime:
    """Where the windows to check begin.

    After the last window the service checked successfully (``cursor``); on the very first
    start, at ``backfill_from`` or else at the latest window complete when the service started.
    """
    if cursor is not None:
        return cursor
    if mon.backfill_from is not None:
        return as_utc(mon.backfill_from)
    return latest_complete(as_utc(started) - delay_of(mon), mon.window_size).start


def pending_windows(
    mon: MonitorConfig,
    now: datetime,
    *,
    cursor: datetime | None,
    started: datetime,
    done: Iterable[Window] = (),
    given_up: Iterable[Window] = (),
) -> list[Window]:
    """Every complete window from ``first_start`` on that is not done, in order."""
    skip = set(done) | set(given_up)
    begin = first_start(mon, cursor, started)
    return [w for w in windows_between(begin, complete_until(mon, now), mon.window_size) if w not in skip]


def backoff(attempt: int, retry: RetrySettings) -> timedelta:
    """The wait after the ``attempt``-th consecutive failure: ``backoff * 2**(attempt-1)``, capped.

    >>> [backoff(n, RetrySettings(backoff="10s", max_backoff="1m")).seconds for n in (1, 2, 3, 4, 5)]
    [10, 20, 40, 60, 60]
    """
    first, cap = parse_duration(retry.backoff), parse_duration(retry.max_backoff)
    if attempt < 1:
        return timedelta(0)
    # Cap the exponent first: 2**attempt of a long outage would overflow a timedelta.
    return min(cap, first * (2 ** min(attempt - 1, 40)))


def label_rechecks(runs: Iterable[RunRecord], label_lag: timedelta, now: datetime, given_up: Iterable[Window] = ()) -> list[Window]:
    """Windows whose labels are due (``end + label_lag <= now``) but whose run predates that
    moment, or whose recheck failed; in order. A recheck's run finishes after the moment, so each
    window is rechecked once."""
    now, skip = as_utc(now), set(given_up)
    due = [
        r.window
        for r in runs
        if r.window.end + label_lag <= now
        and r.window not in skip
        and (r.status == "failed" or r.finished_at < r.window.end + label_lag)
    ]
    return sorted(set(due))
