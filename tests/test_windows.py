from datetime import datetime, timedelta, timezone

import pytest

from monitor.windows import Window, as_utc, latest_complete, parse_duration, window_containing, windows_between

UTC = timezone.utc


def test_parse_duration() -> None:
    assert parse_duration("15m") == timedelta(minutes=15)
    assert parse_duration("1d") == timedelta(days=1)
    assert parse_duration("2w") == timedelta(weeks=2)
    for bad in ("1x", "0h", "", "h", "1.5h"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_windows_are_utc_and_aligned() -> None:
    moment = datetime(2026, 10, 3, 14, 30, tzinfo=timezone(timedelta(hours=2)))  # 12:30 UTC
    w = window_containing(moment, timedelta(hours=1))
    assert w == Window(datetime(2026, 10, 3, 12, tzinfo=UTC), datetime(2026, 10, 3, 13, tzinfo=UTC))
    assert w.contains(datetime(2026, 10, 3, 12, tzinfo=UTC)) and not w.contains(datetime(2026, 10, 3, 13, tzinfo=UTC))
    assert latest_complete(datetime(2026, 10, 3, 0, 0, tzinfo=UTC), timedelta(days=1)).start == datetime(2026, 10, 2, tzinfo=UTC)


def test_windows_between_only_complete_windows() -> None:
    start = datetime(2026, 10, 1, 6, tzinfo=UTC)
    end = datetime(2026, 10, 4, 3, tzinfo=UTC)
    days = list(windows_between(start, end, timedelta(days=1)))
    assert [w.start.day for w in days] == [2, 3]
    assert all(w.end - w.start == timedelta(days=1) for w in days)


def test_naive_is_utc_and_strings_parse() -> None:
    assert as_utc("2026-10-01T00:00:00Z") == datetime(2026, 10, 1, tzinfo=UTC)
    assert as_utc(datetime(2026, 10, 1)) == datetime(2026, 10, 1, tzinfo=UTC)
    with pytest.raises(ValueError):
        Window(datetime(2026, 10, 2, tzinfo=UTC), datetime(2026, 10, 1, tzinfo=UTC))
