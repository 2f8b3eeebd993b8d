"""Windows: half-open, timezone-aware UTC time ranges that a run covers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Iterator

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d|w)\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """``"15m"``, ``"1h"``, ``"1d"``, ``"7d"``, ``"1w"`` -> timedelta.

    >>> parse_duration("6h")
    datetime.timedelta(seconds=21600)
    """
    match = _DURATION.match(str(text))
    if not match:
        raise ValueError(f"{text!r} is not a duration; write a number and a unit s, m, h, d or w, e.g. 1h or 1d")
    amount, unit = int(match.group(1)), match.group(2)
    if amount <= 0:
        raise ValueError(f"{text!r}: a duration must be positive")
    return timedelta(**{_UNITS[unit]: amount})


def format_duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def as_utc(moment: datetime | str) -> datetime:
    """A timezone-aware UTC datetime; naive input is taken to be UTC already."""
    if isinstance(moment, str):
        text = moment.strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


@dataclass(frozen=True, order=True)
class Window:
    """``[start, end)`` in UTC."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", as_utc(self.start))
        object.__setattr__(self, "end", as_utc(self.end))
        if not self.start < self.end:
            raise ValueError(f"a window must end after it starts: {self.start} .. {self.end}")

    @property
    def size(self) -> timedelta:
        return self.end - self.start

    def contains(self, moment: datetime) -> bool:
        return self.start <= as_utc(moment) < self.end

    def __str__(self) -> str:
        return f"[{self.start.isoformat()}, {self.end.isoformat()})"


def window_containing(moment: datetime, size: timedelta) -> Window:
    """The window of ``size`` (aligned on the Unix epoch, UTC) that contains ``moment``."""
    moment = as_utc(moment)
    index = (moment - EPOCH) // size
    start = EPOCH + index * size
    return Window(start, start + size)


def latest_complete(now: datetime, size: timedelta) -> Window:
    """The last window that ended at or before ``now``."""
    current = window_containing(now, size)
    return Window(current.start - size, current.start)


def windows_between(start: datetime, end: datetime, size: timedelta) -> Iterator[Window]:
    """Every aligned window that lies entirely in ``[start, end)``, in order."""
    start, end = as_utc(start), as_utc(end)
    first = window_containing(start, size)
    if first.start < start:
        first = Window(first.end, first.end + size)
    window = first
    while window.end <= end:
        yield window
        window = Window(window.end, window.end + size)
