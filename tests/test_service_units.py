"""The service's decisions and jobs in-process, with a clock of the test's own.

The real-process behaviour (restarts, kill -9, two processes, outages, signals) is in
``test_service.py``; here each rule is pinned down quickly and deterministically.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import textwrap
import threading
import time
import types
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from monitor.cli import app
from monitor.config import ConfigError, RetrySettings, load_config, parse_config
from monitor.service import Leases, LeaseLost, Service, ServiceOptions, backoff, label_rechecks, pending_windows, schedule_of
from monitor.service.leases import holders, monitor_lease
from monitor.service.logs import JsonFormatter, KeyValueFormatter, event
from monitor.service.runs import RunContext, ServiceRunner
from monitor.service.status import monitor_statuses
from monitor.store import RunRecord, Store
from monitor.store.service_models import ServiceRunRow
from monitor.windows import Window

UTC = timezone.utc
T0 = datetime(2026, 9, 1, tzinfo=UTC)
HOURS = 6


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def hour(i: int) -> Window:
    return Window(at(i), at(i + 1))


CONFIG = """
store: {store}
monitors:
  - name: m
    source: {{type: parquet, path: logs}}
    columns: {{timestamp: ts, numeric: [x], categorical: [c]}}
    reference: {{type: parquet, path: reference.parquet}}
    window: 1h
    backfill_from: "2026-09-01T00:00:00Z"
    retry: {{backoff: 1m, max_backoff: 4m}}
{extra}"""


def build(tmp_path: Path, store: str = "sqlite:///store.db", extra: str = "", hours: int = HOURS) -> Path:
    rng = np.random.default_rng(5)
    pd.DataFrame({"x": rng.normal(size=1000), "c": rng.choice(list("abc"), 1000)}).to_parquet(tmp_path / "reference.parquet")
    (tmp_path / "logs").mkdir()
    for i in range(hours):
        ts = at(i) + pd.to_timedelta(np.sort(rng.uniform(0, 3599, 50)), unit="s")
        frame = pd.DataFrame({"ts": ts, "x": rng.normal(size=50), "c": rng.choice(list("abc"), 50)})
        frame.to_parquet(tmp_path / "logs" / f"h{i}.parquet")
    path = tmp_path / "driftline.yaml"
    path.write_text(CONFIG.format(store=store, extra=textwrap.indent(textwrap.dedent(extra), "    ")))
    return path


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("pg_url")


def service_for(config: Path, clock: Clock, owner: str = "test:1", **options: Any) -> tuple[Service, Store]:
    project = load_config(config)
    store = Store.open(project.store_url)
    opts = ServiceOptions(lease_ttl=timedelta(seconds=60), deliver_every=None, owner=owner, **options)
    return Service(project, store, options=opts, clock=clock), store


def service_runs(store: Store) -> list[Any]:
    with store.engine.connect() as connection:
        return connection.execute(sa.select(ServiceRunRow).order_by(ServiceRunRow.id)).all()


# ------------------------------------------------------------------------------ the config


def test_the_service_keys_are_validated_with_their_path(tmp_path: Path) -> None:
    base = {
        "name": "m", "source": {"type": "parquet", "path": "logs"}, "columns": {"timestamp": "ts"},
        "reference": {"type": "parquet", "path": "r.parquet"},
    }  # fmt: skip
    parsed = parse_config({"monitors": [{**base, "every": "5s", "delay": "1m", "freshness": "2h", "label_lag": "7d"}]})
    mon = parsed.monitors[0]
    assert (mon.every, mon.delay, mon.freshness, mon.label_lag, mon.retry.backoff) == ("5s", "1m", "2h", "7d", "30s")
    with pytest.raises(ConfigError, match=r"monitors\[0\]: give `schedule` .* or `every`"):
        parse_config({"monitors": [{**base, "every": "5s", "schedule": "* * * * *"}]})
    with pytest.raises(ConfigError, match=r"monitors\[0\]\.freshness: 'soon' is not a duration"):
        parse_config({"monitors": [{**base, "freshness": "soon"}]})
    with pytest.raises(ConfigError, match=r"monitors\[0\]\.retry\.max_backoff"):
        parse_config({"monitors": [{**base, "retry": {"max_backoff": "forever"}}]})
    with pytest.raises(ConfigError, match=r"monitors\[0\]\.retry\.tries: unknown key 'tries'; valid keys here: backoff, max_attempts"):
        parse_config({"monitors": [{**base, "retry": {"tries": 3}}]})


# ------------------------------------------------------------------------------ pure decisions


def _mon(**keys: Any):  # noqa: ANN202
    base = {"name": "m", "source": {"type": "parquet", "path": "l"}, "columns": {"timestamp": "ts"}, "reference": {"type": "parquet", "path": "r"}, "window": "1h"}
    return parse_config({"monitors": [{**base, **keys}]}).monitors[0]


@pytest.mark.parametrize(
    ("keys", "now", "cursor", "done", "expected"),
    [
        # First start, empty store: only the latest complete window.
        ({}, at(3.5), None, (), [2]),
        # backfill_from: every window from there on (an unaligned start rounds up).
        ({"backfill_from": "2026-09-01T00:30:00Z"}, at(3.5), None, (), [1, 2]),
        # After a restart: everything since the last successful window, in order.
        ({}, at(5.2), at(2), (), [2, 3, 4]),
        # Done windows (e.g. a manual `driftline run`) are not run again.
        ({}, at(5.2), at(2), (3,), [2, 4]),
        # delay: a window is complete once end + delay has passed.
        ({"delay": "15m"}, at(5.2), at(2), (), [2, 3]),
        ({"delay": "15m"}, at(5.25), at(2), (), [2, 3, 4]),
        # Nothing complete yet.
        ({}, at(2.9), at(2), (), []),
    ],
)
def test_pending_windows(keys: dict[str, Any], now: datetime, cursor: datetime | None, done: tuple[int, ...], expected: list[int]) -> None:
    windows = pending_windows(_mon(**keys), now, cursor=cursor, started=now, done=[hour(i) for i in done])
    assert windows == [hour(i) for i in expected]


def test_the_default_start_is_fixed_when_the_service_starts() -> None:
    # A first attempt that fails must not let later ticks skip the windows completed meanwhile.
    assert pending_windows(_mon(), at(5.5), cursor=None, started=at(3.5)) == [hour(2), hour(3), hour(4)]


def test_given_up_windows_are_skipped() -> None:
    assert pending_windows(_mon(), at(4.5), cursor=at(1), started=at(0), given_up=[hour(1)]) == [hour(2), hour(3)]


@pytest.mark.parametrize(
    ("attempt", "seconds"),
    [(0, 0), (1, 10), (2, 20), (3, 40), (4, 60), (50, 60), (10_000, 60)],  # doubles, capped, never overflows
)
def test_backoff(attempt: int, seconds: int) -> None:
    assert backoff(attempt, RetrySettings(backoff="10s", max_backoff="1m")) == timedelta(seconds=seconds)


def test_schedules_cron_every_and_window_end() -> None:
    now = datetime(2026, 9, 1, 10, 7, 30, tzinfo=UTC)
    cron = schedule_of(_mon(schedule="15 * * * *"))
    assert (cron.kind, cron.interval, cron.next_run(now)) == ("cron", timedelta(hours=1), datetime(2026, 9, 1, 10, 15, tzinfo=UTC))
    every = schedule_of(_mon(every="5m"))
    assert (every.kind, every.interval, every.next_run(now)) == ("every", timedelta(minutes=5), datetime(2026, 9, 1, 10, 10, tzinfo=UTC))
    # Neither: when each window completes, i.e. at its end plus the delay.
    ends = schedule_of(_mon(window="1h", delay="5m"))
    assert (ends.kind, ends.interval, ends.next_run(now)) == ("window", timedelta(hours=1), datetime(2026, 9, 1, 11, 5, tzinfo=UTC))
    # The APScheduler triggers agree (epoch-aligned, so a restart keeps the beat).
    for schedule in (cron, every, ends):
        assert schedule.trigger().get_next_fire_time(None, now) == schedule.next_run(now)


def _run(window: Window, finished: datetime, status: str = "ok") -> RunRecord:
    return RunRecord("m", window, status, started_at=finished, finished_at=finished)


def test_label_rechecks_each_window_once_after_its_labels_are_due() -> None:
    lag = timedelta(hours=2)
    runs = [
        _run(hour(0), at(1.1)),  # labels due at 3: recheck
        _run(hour(1), at(4)),  # ran once its labels were due (a recheck, or a late catch-up): done
        _run(hour(2), at(3.1)),  # labels due at 5: not yet
        _run(hour(-1), at(3.2), "failed"),  # a recheck that failed: again
    ]
    assert label_rechecks(runs, lag, at(4)) == [hour(-1), hour(0)]
    assert label_rechecks(runs, lag, at(4), given_up=[hour(-1)]) == [hour(0)]


# ------------------------------------------------------------------------------ leases


def test_a_lease_is_exclusive_renewable_expires_and_is_released(store_url: str) -> None:
    with Store.open(store_url) as store:
        a = Leases(store, "a", timedelta(seconds=10))
        b = Leases(store, "b", timedelta(seconds=10))
        t = datetime(2026, 9, 1, tzinfo=UTC)
        assert a.acquire("x", t).held
        denied = b.acquire("x", t + timedelta(seconds=5))
        assert (denied.held, denied.owner, denied.expires_at) == (False, "a", t + timedelta(seconds=10))
        assert a.acquire("x", t + timedelta(seconds=8)).held  # renewed until t+18
        assert not b.acquire("x", t + timedelta(seconds=15)).held
        assert b.acquire("x", t + timedelta(seconds=18)).held  # expired: taken over
        with pytest.raises(LeaseLost), store.session() as session:
            a.fence(session, "x")
        a.release("x")  # not a's any more: a no-op
        assert holders(store)["x"][0] == "b"
        b.release("x")
        assert "x" not in holders(store)
        assert a.acquire("x").held


def test_concurrent_acquisitions_have_one_winner(store_url: str) -> None:
    with Store.open(store_url) as store:
        owners = [Leases(store, f"p{i}", timedelta(seconds=30)) for i in range(6)]
        results: list[bool] = []
        barrier = threading.Barrier(len(owners))

        def take(leases: Leases) -> None:
            barrier.wait()
            results.append(leases.acquire("contested").held)

        threads = [threading.Thread(target=take, args=(leases,)) for leases in owners]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert sorted(results) == [False] * 5 + [True]


# ------------------------------------------------------------------------------ the monitor job


def test_a_tick_checks_every_window_in_order_once(tmp_path: Path, store_url: str) -> None:
    config = build(tmp_path, store=store_url)
    clock = Clock(at(3.01))
    service, store = service_for(config, clock)
    service.tick("m")
    service.tick("m")  # nothing new
    assert [(r.window, r.status, r.trigger) for r in store.runs("m")] == [(hour(i), "ok", "schedule") for i in range(3)]
    rows = service_runs(store)
    assert [(r.owner, r.reason, r.attempt, r.status) for r in rows] == [("test:1", "schedule", 1, "ok")] * 3
    # A restart (a new process) catches up from the store, not from memory.
    store.dispose()
    clock.now = at(5.5)
    service, store = service_for(config, clock, owner="test:2")
    service.tick("m")
    assert [r.window for r in store.runs("m")] == [hour(i) for i in range(5)]
    assert [r.owner for r in service_runs(store)] == ["test:1"] * 3 + ["test:2"] * 2
    store.dispose()


def test_a_failed_window_is_retried_with_backoff_and_later_windows_wait(tmp_path: Path) -> None:
    config = build(tmp_path)
    clock = Clock(at(2.01))
    service, store = service_for(config, clock)
    service.tick("m")  # windows 0, 1
    shutil.move(tmp_path / "logs", tmp_path / "away")  # the source is unreachable
    clock.now = at(4.01)
    service.tick("m")
    failed = store.run_for("m", hour(2))
    assert failed is not None and failed.status == "failed" and "logs" in (failed.error or "")
    breach = store.metrics("m", check="pipeline")
    assert list(breach["metric"]) == ["run_failed"] and list(breach["status"]) == ["breach"]
    assert store.run_for("m", hour(3)) is None  # windows stay in order
    state = service.states["m"]
    assert state.failures == 1 and state.retry_at == at(4.01) + timedelta(minutes=1)
    clock.now = at(4.01) + timedelta(seconds=30)
    service.tick("m")  # backing off: nothing happens
    assert len(service_runs(store)) == 3
    clock.now = at(4.01) + timedelta(minutes=1)
    service.tick("m")  # fails again: the wait doubles
    assert service.states["m"].retry_at == clock.now + timedelta(minutes=2)
    shutil.move(tmp_path / "away", tmp_path / "logs")
    clock.now += timedelta(minutes=2)
    service.tick("m")
    assert [(r.window, r.status) for r in store.runs("m")] == [(hour(i), "ok") for i in range(4)]
    attempts = [(r.window_start, r.reason, r.attempt, r.status) for r in service_runs(store)]
    assert attempts[2:] == [
        (at(2), "schedule", 1, "failed"),
        (at(2), "retry", 2, "failed"),
        (at(2), "retry", 3, "ok"),
        (at(3), "schedule", 1, "ok"),
    ]
    assert service.states["m"].failures == 0 and service.states["m"].retry_at is None
    store.dispose()


def test_max_attempts_leaves_the_window_failed_and_goes_on(tmp_path: Path) -> None:
    config = build(tmp_path)
    config.write_text(config.read_text().replace("max_backoff: 4m}", "max_backoff: 4m, max_attempts: 2}"))
    clock = Clock(at(1.01))
    service, store = service_for(config, clock)
    service.tick("m")
    shutil.move(tmp_path / "logs", tmp_path / "away")
    clock.now = at(2.01)
    service.tick("m")
    clock.now += timedelta(minutes=5)
    service.tick("m")  # the second failure of window 1: given up
    shutil.move(tmp_path / "away", tmp_path / "logs")
    clock.now = at(3.01)
    service.tick("m")
    statuses = [(r.window, r.status) for r in store.runs("m")]
    assert statuses == [(hour(0), "ok"), (hour(1), "failed"), (hour(2), "ok")]
    assert [r.attempt for r in service_runs(store) if r.window_start == at(1)] == [1, 2]
    store.dispose()


def test_the_store_down_is_logged_backed_off_and_not_fatal(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = build(tmp_path)
    clock = Clock(at(1.01))
    service, store = service_for(config, clock)
    with store.engine.begin() as connection:
        connection.execute(sa.text("drop table leases"))  # every statement of the job now fails
    with caplog.at_level(logging.INFO, logger="driftline.service"):
        service.tick("m")
        service.heartbeat()
    events = [getattr(r, "fields", {}).get("event") for r in caplog.records]
    assert events.count("store_unavailable") == 1 and "retry_scheduled" in events
    assert service.states["m"].store_failure and service.states["m"].retry_at == clock.now + timedelta(minutes=1)
    store.dispose()


def test_freshness_breaches_on_the_latest_window_when_the_source_stops(tmp_path: Path) -> None:
    config = build(tmp_path, extra="freshness: 90m\n", hours=3)
    clock = Clock(at(3.01))
    service, store = service_for(config, clock)
    service.tick("m")  # newest row ~ at(3): fresh
    clock.now = at(5.01)
    service.tick("m")  # windows 3 and 4 are empty; the newest row is 2h old
    frame = store.metrics("m", check="freshness")
    by_window = {(w - T0) / timedelta(hours=1): (s, v) for w, s, v in zip(frame["window_start"], frame["status"], frame["value"])}
    assert set(by_window) == {2, 4}  # only the latest window of each tick
    newest = pd.read_parquet(tmp_path / "logs")["ts"].max()
    assert by_window[2] == ("ok", pytest.approx((pd.Timestamp(at(3.01)) - newest).total_seconds()))
    assert by_window[4] == ("breach", pytest.approx((pd.Timestamp(at(5.01)) - newest).total_seconds()))
    assert by_window[4][1] > 5400
    assert store.run_for("m", hour(4)).status == "no_data"  # type: ignore[union-attr]
    store.dispose()


def test_a_run_longer_than_its_interval_is_recorded(tmp_path: Path) -> None:
    config = build(tmp_path)
    project = load_config(config)
    with Store.open(project.store_url) as store:
        leases = Leases(store, "me", timedelta(seconds=60))
        assert leases.acquire(monitor_lease("m")).held
        runner = ServiceRunner(project, store, project.monitor("m"), leases, interval=timedelta(microseconds=1))
        outcome = runner.run(hour(0), RunContext())
        assert outcome.run.status == "ok"
        overrun = store.metrics("m", check="pipeline")
        assert list(overrun["metric"]) == ["overrun"] and list(overrun["status"]) == ["info"]
        assert service_runs(store)[0].overrun


def test_a_run_whose_lease_was_taken_over_writes_nothing(tmp_path: Path) -> None:
    config = build(tmp_path)
    project = load_config(config)
    with Store.open(project.store_url) as store:
        mine = Leases(store, "me", timedelta(seconds=60))
        mine.acquire(monitor_lease("m"))
        with store.session() as session:  # another process took it over (this one was paused past the TTL)
            session.execute(sa.text("update leases set owner = 'other'"))
        runner = ServiceRunner(project, store, project.monitor("m"), mine, interval=None)
        with pytest.raises(LeaseLost):
            runner.run(hour(0), RunContext())
        assert store.runs("m") == [] and service_runs(store) == []


@pytest.mark.parametrize("slow_last_run", [0.0, 1.3])
def test_late_labels_recheck_each_window_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slow_last_run: float) -> None:
    # Real time here: a recheck is due when the run *finished* before end + label_lag. With the
    # first tick's last run slowed (a loaded machine), that tick outlives its earliest early
    # window's due time and rechecks it itself.
    run, seen = ServiceRunner.run, []

    def run_slowly(self: ServiceRunner, window: Window, context: RunContext) -> Any:
        seen.append(window)
        if len(seen) == 6:
            time.sleep(slow_last_run)
        return run(self, window, context)

    monkeypatch.setattr(ServiceRunner, "run", run_slowly)
    now = datetime.now(UTC).replace(microsecond=0)
    rng = np.random.default_rng(1)
    pd.DataFrame({"x": rng.normal(size=300), "c": rng.choice(list("ab"), 300)}).to_parquet(tmp_path / "reference.parquet")
    (tmp_path / "logs").mkdir()
    ts = now - pd.to_timedelta(np.sort(rng.uniform(0, 6, 60)), unit="s")
    pd.DataFrame({"ts": ts, "x": rng.normal(size=60), "c": rng.choice(list("ab"), 60)}).to_parquet(tmp_path / "logs" / "a.parquet")
    config = tmp_path / "driftline.yaml"
    config.write_text(
        CONFIG.format(store="sqlite:///store.db", extra="")
        .replace("window: 1h", "window: 1s\n    label_lag: 4s")
        .replace('"2026-09-01T00:00:00Z"', f'"{(now - timedelta(seconds=6)).isoformat()}"')
    )
    project = load_config(config)
    with Store.open(project.store_url) as store:
        service = Service(project, store, options=ServiceOptions(deliver_every=None, owner="me"))
        service.tick("m")
        lag = timedelta(seconds=4)
        # Windows caught up after end + label_lag had their labels already; the others had not.
        # (The scheduled run's own finish decides, from the append-only log: on a loaded machine
        # the first tick may already recheck its earliest windows, replacing their `runs` row.)
        scheduled = {Window(r.window_start, r.window_end): r.finished_at for r in service_runs(store) if r.reason == "schedule"}
        early = sorted(w for w, finished in scheduled.items() if finished < w.end + lag)
        assert len(scheduled) >= 4 and early and max(scheduled) in early
        time.sleep(max(0.0, (max(scheduled).end + lag - datetime.now(UTC)).total_seconds()) + 0.2)
        service.tick("m")
        service.tick("m")
        reasons = [(Window(r.window_start, r.window_end), r.reason) for r in service_runs(store)]
        # Each early window of the first tick is rechecked exactly once, whichever tick did it.
        # (Windows that completed during the sleep may be due too on a slow machine; they are
        # not what this checks.)
        first = set(scheduled)
        assert sorted(w for w, reason in reasons if reason == "label_recheck" and w in first) == early
        assert all(r.finished_at >= r.window.end + lag for r in store.runs("m") if r.window in first)


# ------------------------------------------------------------------------------ other jobs


def test_deliveries_are_sent_through_notify_when_it_exists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    service, store = service_for(build(tmp_path), Clock(at(1)))
    calls: list[tuple[Any, Any]] = []
    fake = types.ModuleType("monitor.notify")
    fake.deliver_pending = lambda project, st: calls.append((project, st)) or types.SimpleNamespace(sent=1, retrying=0, failed=0)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "monitor.notify", fake)
    service.deliver()
    assert calls == [(service.project, store)]
    monkeypatch.setitem(sys.modules, "monitor.notify", None)  # not installed: skipped quietly
    service.deliver()
    assert len(calls) == 1
    store.dispose()


def test_runs_are_logged_to_mlflow_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    logged: dict[str, Any] = {}
    fake = types.ModuleType("mlflow")
    fake.set_experiment = lambda name: logged.setdefault("experiment", name)  # type: ignore[attr-defined]

    class _Run:
        def __enter__(self) -> None:
            return None

        def __exit__(self, *_: object) -> None:
            return None

    fake.start_run = lambda run_name: logged.setdefault("run", run_name) and _Run()  # type: ignore[attr-defined]
    fake.set_tags = lambda tags: logged.setdefault("tags", tags)  # type: ignore[attr-defined]
    fake.log_params = lambda params: logged.setdefault("params", params)  # type: ignore[attr-defined]
    fake.log_metrics = lambda metrics: logged.setdefault("metrics", metrics)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "mlflow", fake)
    service, store = service_for(build(tmp_path), Clock(at(1.01)), mlflow_experiment="drift")
    service.tick("m")
    assert logged["experiment"] == "drift" and logged["tags"]["driftline.status"] == "ok"
    assert logged["params"]["rows"] == 50 and any(k.startswith("drift.x.") for k in logged["metrics"])
    store.dispose()


# ------------------------------------------------------------------------------ CLI and logs


def test_status_shows_each_monitor(tmp_path: Path) -> None:
    config = build(tmp_path)
    service, store = service_for(config, Clock(at(2.01)))
    service.tick("m")
    store.dispose()
    result = CliRunner().invoke(app, ["status", "--config", str(config), "--json"])
    assert result.exit_code == 0, result.output
    row = json.loads(result.output.splitlines()[0])
    assert row["monitor"] == "m" and row["last_window_start"] == at(1).isoformat() and row["status"] == "ok"
    assert row["lease_holder"] == "test:1" and row["last_owner"] == "test:1" and row["last_error"] is None
    assert row["lag_seconds"] > 0 and row["next_run"]
    text = CliRunner().invoke(app, ["status", "--config", str(config)]).output
    assert text.splitlines()[0].split()[:3] == ["MONITOR", "LAST", "WINDOW"] and "test:1" in text


def test_serve_exits_when_locked_and_asked_to(tmp_path: Path) -> None:
    config = build(tmp_path)
    project = load_config(config)
    with Store.open(project.store_url) as store:
        assert Leases(store, "elsewhere:42:beef", timedelta(minutes=5)).acquire(monitor_lease("m")).held
    result = CliRunner().invoke(app, ["serve", "--config", str(config), "--exit-if-locked"])
    assert result.exit_code == 3
    assert "elsewhere:42:beef" in result.output and "monitor:m" in result.output


def test_statuses_of_monitors_without_runs(tmp_path: Path) -> None:
    project = load_config(build(tmp_path))
    with Store.open(project.store_url) as store:
        (row,) = monitor_statuses(project, store, at(0))
    assert (row.last_window, row.status, row.lease_holder, row.last_error) == (None, None, None, None)


def test_log_formats() -> None:
    logger = logging.getLogger("driftline.test_service")
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger.addHandler(handler)
    try:
        event(logger, logging.WARNING, "run_finished", "m done", monitor="m", window=hour(0), status="ok", duration_s=0.12345, error=None)
    finally:
        logger.removeHandler(handler)
    line = json.loads(JsonFormatter().format(records[0]))
    assert {k: line[k] for k in ("level", "event", "monitor", "window", "status", "duration_s", "msg")} == {
        "level": "warning", "event": "run_finished", "monitor": "m",
        "window": "2026-09-01T00:00:00+00:00/2026-09-01T01:00:00+00:00", "status": "ok", "duration_s": 0.123, "msg": "m done",
    }  # fmt: skip
    assert "error" not in line
    text = KeyValueFormatter().format(records[0])
    assert 'level=warning event=run_finished monitor=m window=2026-09-01T00:00:00+00:00/2026-09-01T01:00:00+00:00 status=ok duration_s=0.123 msg="m done"' in text
