"""`driftline serve` as a real process over a log that keeps growing.

Each test starts ``python -m monitor.cli serve`` (or a launcher that slows the save transaction
down, to be caught in the middle of it) on 2-second windows checked every second, while a
thread appends a Parquet file of fresh rows every half second. What they show:

- windows are checked in order, with no gap, each once, with every row that arrived;
- a source that stops producing rows gets a freshness breach and a firing alert;
- ``kill -9`` in the middle of a save, then a restart: every window exactly once;
- two processes on one PostgreSQL store: no window run twice, the second takes over;
- the store going down (a TCP proxy in front of PostgreSQL, stopped and restarted): the
  process stays up, retries, and catches up every window;
- SIGTERM in the middle of a save: exit code 0 and the whole run stored.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from monitor.store import Store
from monitor.store.service_models import LeaseRow, ServiceRunRow
from monitor.windows import Window

UTC = timezone.utc
WINDOW_S = 2
ROOT = Path(__file__).resolve().parents[1]

CONFIG = """
store: {store}
monitors:
  - name: live
    source: {{type: parquet, path: logs}}
    columns: {{timestamp: ts, numeric: [x], categorical: [c]}}
    reference: {{type: parquet, path: reference.parquet}}
    window: {window}s
    every: 1s
    delay: {delay}
    backfill_from: "{backfill_from}"
    retry: {{backoff: 1s, max_backoff: 2s}}
{extra}"""

# Runs the real CLI with Store.save_run slowed down *inside* its transaction (after the run, its
# metrics, profiles and service row are written, before the commit), and says so on stderr.
SLOW_LAUNCHER = """
import json, os, sys, time
from monitor.store import store as _store

_pause = float(os.environ["DRIFTLINE_TEST_SLOW_SAVE"])
_save = _store.Store.save_run


def save_run(self, run, metrics, profiles=(), *, also=None):
    def slowly(session, run_id):
        if also is not None:
            also(session, run_id)
        window = f"{run.window.start.isoformat()}/{run.window.end.isoformat()}"
        print(json.dumps({"event": "test_saving", "window": window}), file=sys.stderr, flush=True)
        time.sleep(_pause)

    return _save(self, run, metrics, profiles, also=slowly)


_store.Store.save_run = save_run
from monitor.cli import app

app(prog_name="driftline")
"""


# ------------------------------------------------------------------------------ a growing log


class GrowingLog:
    """Writes ``history_s`` seconds of rows at once, then a Parquet file of new rows every
    ``period`` seconds (moved into ``logs/`` whole, never seen half-written), and counts the rows
    of each window."""

    def __init__(self, root: Path, history_s: float = 8, period: float = 0.5, rate: int = 40, seed: int = 0) -> None:
        self.logs, self.staging = root / "logs", root / "staging"
        self.logs.mkdir()
        self.staging.mkdir()
        self.rng = np.random.default_rng(seed)
        self.period, self.rate = period, rate
        self.counts: Counter[int] = Counter()  # window start (epoch seconds) -> rows
        self.files = 0
        self.last_us = _now_us() - int(history_s * 1e6)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="growing-log", daemon=True)
        self.write()

    def write(self) -> None:
        until = _now_us()
        n = max(1, int((until - self.last_us) / 1e6 * self.rate))
        ts = np.sort(self.rng.integers(self.last_us, until, n))
        frame = pd.DataFrame(
            {
                "ts": pd.to_datetime(ts, unit="us", utc=True),
                "x": self.rng.normal(size=n),
                "c": self.rng.choice(["a", "b", "c"], n),
            }
        )
        staged = self.staging / f"part-{self.files:05d}.parquet"
        frame.to_parquet(staged)
        os.replace(staged, self.logs / staged.name)
        self.counts.update((ts // (WINDOW_S * 1_000_000) * WINDOW_S).tolist())
        self.files += 1
        self.last_us = until

    def _loop(self) -> None:
        while not self._stop.wait(self.period):
            self.write()

    def start(self) -> GrowingLog:
        self._thread.start()
        return self

    def stop(self) -> datetime:
        """Stop writing; the time of the newest row."""
        self._stop.set()
        self._thread.join(timeout=10)
        return datetime.fromtimestamp(self.last_us / 1e6, UTC)

    def rows(self, window: Window) -> int:
        return self.counts.get(int(window.start.timestamp()), 0)


def _now_us() -> int:
    return time.time_ns() // 1000


def project_dir(tmp_path: Path, store: str, *, delay: str = "1s", backfill_s: int = 6, extra: str = "") -> Path:
    rng = np.random.default_rng(1)
    pd.DataFrame({"x": rng.normal(size=2000), "c": rng.choice(["a", "b", "c"], 2000)}).to_parquet(tmp_path / "reference.parquet")
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=backfill_s)
    config = tmp_path / "driftline.yaml"
    config.write_text(
        CONFIG.format(
            store=store, window=WINDOW_S, delay=delay, backfill_from=start.isoformat(),
            extra=textwrap.indent(textwrap.dedent(extra), "    "),
        )  # fmt: skip
    )
    return config


# ------------------------------------------------------------------------------ a serve process


class Serve:
    """A `driftline serve --log-json` process whose log events are collected as they come."""

    def __init__(self, config: Path, *args: str, slow_save: float = 0.0, lease_ttl: str = "2s") -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if slow_save:
            launcher = config.parent / "slow_launcher.py"
            launcher.write_text(SLOW_LAUNCHER)
            command = [sys.executable, str(launcher)]
            env["DRIFTLINE_TEST_SLOW_SAVE"] = str(slow_save)
        else:
            command = [sys.executable, "-m", "monitor.cli"]
        command += ["serve", "--config", str(config), "--log-json", "--lease-ttl", lease_ttl, "--deliver-every", "0", *args]
        self.proc = subprocess.Popen(
            command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        self.events: list[dict[str, Any]] = []
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))
            try:
                self.events.append(json.loads(line))
            except ValueError:
                pass

    def named(self, name: str, **fields: Any) -> list[dict[str, Any]]:
        return [e for e in list(self.events) if e.get("event") == name and all(e.get(k) == v for k, v in fields.items())]

    def wait_for(self, condition: Callable[[], Any], timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            if self.proc.poll() is not None:
                self._reader.join(timeout=5)
                value = condition()
                if value:
                    return value
                raise AssertionError(f"serve exited ({self.proc.returncode}) before {what}:\n{self.tail()}")
            time.sleep(0.05)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}:\n{self.tail()}")

    def wait_event(self, name: str, timeout: float = 20, count: int = 1, **fields: Any) -> dict[str, Any]:
        found = self.wait_for(lambda: len(self.named(name, **fields)) >= count, timeout, f"{count}x {name} {fields}")
        assert found
        return self.named(name, **fields)[count - 1]

    @property
    def owner(self) -> str:
        return str(self.wait_event("serve_started")["owner"])

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise AssertionError(f"serve did not stop within {timeout}s:\n{self.tail()}") from None
        self._reader.join(timeout=5)
        return code

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.lines[-lines:])


@pytest.fixture
def serves() -> Iterator[list[Serve]]:
    """Every process a test starts is killed at its end, whatever happened."""
    started: list[Serve] = []
    yield started
    for serve in started:
        if serve.proc.poll() is None:
            serve.proc.kill()
            serve.proc.wait(timeout=10)


# ------------------------------------------------------------------------------ the store's view


@dataclass(frozen=True)
class Committed:
    window: Window
    owner: str
    reason: str
    status: str


def committed(url: str) -> list[Committed]:
    """The service's runs, in commit order."""
    store = Store(url)
    try:
        with store.engine.connect() as connection:
            rows = connection.execute(sa.select(ServiceRunRow).order_by(ServiceRunRow.id)).all()
    finally:
        store.dispose()
    return [Committed(Window(r.window_start, r.window_end), r.owner, r.reason, r.status) for r in rows]


def assert_each_window_once_in_order(url: str, first: datetime) -> list[Committed]:
    rows = committed(url)
    windows = [r.window for r in rows]
    assert windows, "no run was committed"
    assert len(set(windows)) == len(windows), f"a window ran twice: {Counter(windows).most_common(3)}"
    assert windows == sorted(windows), "windows were committed out of order"
    expected = [Window(windows[0].start + i * timedelta(seconds=WINDOW_S), windows[0].end + i * timedelta(seconds=WINDOW_S)) for i in range(len(windows))]
    assert windows == expected, "a gap between windows"
    assert windows[0].start == _aligned_up(first)
    assert all(r.status != "failed" for r in rows)
    store = Store(url)
    try:
        runs = store.runs("live")
    finally:
        store.dispose()
    assert [r.window for r in runs] == windows  # one stored run per window, nothing else
    return rows


def _aligned_up(moment: datetime) -> datetime:
    seconds = -(-int(moment.timestamp()) // WINDOW_S) * WINDOW_S
    return datetime.fromtimestamp(seconds, UTC)


def _backfill_from(config: Path) -> datetime:
    text = config.read_text().split('backfill_from: "', 1)[1].split('"', 1)[0]
    return datetime.fromisoformat(text)


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"


# ------------------------------------------------------------------------------ in order, no gaps, stale source


@dataclass
class GrowingRun:
    config: Path
    url: str
    log: GrowingLog
    newest: datetime
    serve: Serve
    code: int


@pytest.fixture(scope="module")
def growing_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GrowingRun]:
    """One serve over a log that grows for 5 s and then stops; shared by the two tests below."""
    tmp_path = tmp_path_factory.mktemp("growing")
    url = sqlite_url(tmp_path)
    # delay 2s: rows arrive up to half a second late; every one of them must be counted.
    config = project_dir(tmp_path, url, delay="2s", extra="freshness: 3s\nalerts: {}\n")
    log = GrowingLog(tmp_path).start()
    serve = Serve(config)
    try:
        serve.wait_event("serve_started", timeout=30)
        time.sleep(5)
        newest = log.stop()
        # Until a window starting over 1 s after the newest row is checked (at its end + delay,
        # when the newest row is over 3 s old: stale).
        serve.wait_for(
            lambda: any(_start(e) > newest + timedelta(seconds=1) for e in serve.named("run_finished")),
            timeout=20, what="a window after the log stopped",
        )  # fmt: skip
        code = serve.stop()
        yield GrowingRun(config, url, log, newest, serve, code)
    finally:
        log.stop()
        if serve.proc.poll() is None:
            serve.proc.kill()


def test_serve_checks_every_window_in_order_with_no_gap_and_every_row(growing_run: GrowingRun) -> None:
    run = growing_run
    assert run.code == 0, run.serve.tail()
    rows = assert_each_window_once_in_order(run.url, _backfill_from(run.config))
    assert len(rows) >= 7  # the catch-up at start (~3 windows) and the live ones
    # The first windows were caught up at start (the log had 8 s of history), the rest as they came.
    store = Store(run.url)
    try:
        stored = {r.window: r.rows for r in store.runs("live")}
    finally:
        store.dispose()
    assert {w: n for w, n in stored.items()} == {w: run.log.rows(w) for w in stored}
    assert sum(stored.values()) > 100
    assert {e.get("event") for e in run.serve.events} >= {"serve_started", "lease_acquired", "run_started", "run_finished", "stopped"}


def test_a_source_that_stops_producing_rows_raises_a_no_data_alert(growing_run: GrowingRun) -> None:
    run = growing_run
    store = Store(run.url)
    try:
        lag = store.metrics("live", check="freshness", metric="lag_seconds")
        runs = {r.window: r.status for r in store.runs("live")}
        with store.engine.connect() as connection:
            alerts = dict(connection.execute(sa.text("select \"check\", status from alerts where monitor = 'live'")).all())
    finally:
        store.dispose()
    assert not lag.empty
    before = lag[lag["window_end"] <= run.newest]
    after = lag[lag["window_start"] > run.newest + timedelta(seconds=1)]
    assert set(before["status"]) == {"ok"} and len(before) >= 1
    assert set(after["status"]) == {"breach"} and (after["value"] > 3).all()
    assert all(status == "no_data" for window, status in runs.items() if window.start > run.newest)
    assert run.serve.named("stale_source")
    # The alerting engine (monitor.notify's hook, in the run's transaction) turned it into alerts.
    assert alerts.get("freshness") == "firing" and alerts.get("no_data") == "firing"


# ------------------------------------------------------------------------------ kill -9 and restart


def test_kill_9_mid_save_then_restart_checks_every_window_exactly_once(tmp_path: Path, serves: list[Serve]) -> None:
    url = sqlite_url(tmp_path)
    config = project_dir(tmp_path, url)
    log = GrowingLog(tmp_path).start()
    try:
        # A lease longer than the next process takes to start: it must wait for the dead one's.
        first = Serve(config, slow_save=1.0, lease_ttl="5s")
        serves.append(first)
        first.wait_event("run_finished", count=2, timeout=40)
        caught = first.wait_event("test_saving", count=3, timeout=20)  # inside the third save's transaction
        first.proc.kill()
        first.proc.wait(timeout=10)
        killed = Window(*(datetime.fromisoformat(t) for t in caught["window"].split("/")))
        before = committed(url)
        assert killed not in [r.window for r in before]  # rolled back: nothing of it was written
        store = Store(url)
        try:
            assert store.run_for("live", killed) is None
            assert store.metrics("live", start=killed.start, end=killed.end).empty
        finally:
            store.dispose()

        second = Serve(config)
        serves.append(second)
        # The dead process's lease must expire first: the new one says whose it waits for.
        waiting = second.wait_event("lease_waiting", timeout=30)
        assert waiting["holder"] == first.owner
        second.wait_event("run_finished", window=caught["window"], status="ok", timeout=30)
        second.wait_event("run_finished", count=len([e for e in second.named("run_finished")]) + 2, timeout=20)
        assert second.stop() == 0, second.tail()
    finally:
        log.stop()
    rows = assert_each_window_once_in_order(url, _backfill_from(config))
    assert {r.owner for r in rows} == {first.owner, second.owner}
    assert [r.owner for r in rows if r.window == killed] == [second.owner]


# ------------------------------------------------------------------------------ two processes, one store


@pytest.mark.postgres
def test_two_serve_processes_on_one_postgres_store_never_run_a_window_twice(tmp_path: Path, pg_url: str, serves: list[Serve]) -> None:
    config = project_dir(tmp_path, pg_url)
    log = GrowingLog(tmp_path).start()
    try:
        a, b = Serve(config), Serve(config)
        serves += [a, b]
        owners = {a.owner: a, b.owner: b}
        holder_owner = a.wait_for(lambda: (a.named("lease_acquired") or b.named("lease_acquired") or [{}])[0].get("owner"), 30, "a lease holder")
        holder = owners[holder_owner]
        waiter = b if holder is a else a
        holder.wait_event("run_finished", count=4, timeout=30)
        waiting = waiter.wait_event("lease_waiting", timeout=10)
        assert waiting["holder"] == holder.owner and not waiter.named("run_started")  # it waited, it did not work
        # The holder stops; the other one takes over at once (the lease is released, not left to expire).
        assert holder.stop() == 0, holder.tail()
        waiter.wait_event("lease_acquired", timeout=10)
        waiter.wait_event("run_finished", count=3, timeout=20)
        assert waiter.stop() == 0, waiter.tail()
    finally:
        log.stop()
    rows = assert_each_window_once_in_order(pg_url, _backfill_from(config))
    assert {r.owner for r in rows} == {a.owner, b.owner}  # both worked, never on the same window
    ran_by = [r.owner for r in rows]
    assert ran_by == sorted(ran_by, key=lambda o: o == waiter.owner)  # one handover, no ping-pong


# ------------------------------------------------------------------------------ the database goes down


class TcpProxy:
    """Forwards 127.0.0.1:port to a target; ``stop()`` cuts every connection and refuses new ones."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._running = threading.Event()
        self._lock = threading.Lock()
        self._server: socket.socket | None = None

    def start(self) -> TcpProxy:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(64)
        server.settimeout(0.1)
        self._server = server
        self._running.set()
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()
        return self

    def _accept(self, server: socket.socket) -> None:
        with server:
            while self._running.is_set():
                try:
                    client, _ = server.accept()
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not self._running.is_set():  # accepted just as the proxy stopped: refuse it
                    client.close()
                    return
                client.settimeout(None)
                try:
                    upstream = socket.create_connection(self.target)
                except OSError:
                    client.close()
                    continue
                with self._lock:
                    self._sockets += [client, upstream]
                for src, dst in ((client, upstream), (upstream, client)):
                    threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def stop(self) -> None:
        # Close the listening socket at once: a reconnect in the accept loop's 0.1 s timeout used
        # to slip through, so a failed run's record could be saved "during" the outage.
        self._running.clear()
        if self._server is not None:
            try:
                self._server.close()
            except OSError:
                pass
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for s in sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        time.sleep(0.3)  # the accept loop notices within 0.1 s and closes the listening socket


@pytest.mark.postgres
def test_a_database_outage_is_survived_and_the_run_retried(tmp_path: Path, pg_url: str, pg_server: str, serves: list[Serve]) -> None:
    target = sa.make_url(pg_server)
    proxy = TcpProxy((target.host or "127.0.0.1", target.port or 5432)).start()
    url = sa.make_url(pg_url).set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    config = project_dir(tmp_path, url)
    log = GrowingLog(tmp_path).start()
    try:
        serve = Serve(config, slow_save=1.0, lease_ttl="3s")
        serves.append(serve)
        caught = serve.wait_event("test_saving", count=3, timeout=40)
        proxy.stop()  # the database goes away in the middle of that run's save transaction
        down = time.monotonic()
        serve.wait_event("store_unavailable", timeout=10)
        serve.wait_event("retry_scheduled", timeout=10)
        time.sleep(max(0.0, 4 - (time.monotonic() - down)))  # 4 s without a database: windows complete meanwhile
        assert serve.proc.poll() is None, serve.tail()
        assert not serve.named("run_finished", window=caught["window"])
        proxy.start()
        serve.wait_event("store_recovered", timeout=15)
        serve.wait_event("run_finished", window=caught["window"], status="ok", timeout=15)
        after = len(serve.named("run_finished"))
        serve.wait_event("run_finished", count=after + 2, timeout=20)
        assert serve.stop() == 0, serve.tail()
    finally:
        log.stop()
        proxy.stop()
    rows = assert_each_window_once_in_order(pg_url, _backfill_from(config))
    assert len({r.owner for r in rows}) == 1
    # The interrupted run was started again after the outage and committed once.
    assert len(serve.named("run_started", window=caught["window"])) >= 2
    assert any("store unavailable" in e.get("error", "") for e in serve.named("retry_scheduled"))


# ------------------------------------------------------------------------------ SIGTERM


def test_sigterm_mid_save_finishes_the_run_and_exits_0(tmp_path: Path, serves: list[Serve]) -> None:
    url = sqlite_url(tmp_path)
    config = project_dir(tmp_path, url)
    log = GrowingLog(tmp_path).start()
    try:
        serve = Serve(config, slow_save=1.5)
        serves.append(serve)
        caught = serve.wait_event("test_saving", count=2, timeout=40)
        # One SIGTERM (stop() sends it): a second one, on purpose, means "exit now".
        assert serve.stop(signal.SIGTERM, timeout=20) == 0, serve.tail()
    finally:
        log.stop()
    window = Window(*(datetime.fromisoformat(t) for t in caught["window"].split("/")))
    names = [(e.get("event"), e.get("window")) for e in serve.events]
    # The signal arrived during the save, and the run still finished before the process stopped.
    saving, finished = names.index(("test_saving", caught["window"])), names.index(("run_finished", caught["window"]))
    assert saving < names.index(("signal", None)) < finished < names.index(("stopped", None))
    assert serve.named("run_finished", window=caught["window"], status="ok")
    store = Store(url)
    try:
        run = store.run_for("live", window)
        assert run is not None and run.status == "ok" and run.rows > 0
        assert not store.metrics("live", start=window.start, end=window.end).empty
        assert store.profiles("live", "x", start=window.start, end=window.end)
        with store.engine.connect() as connection:
            assert connection.scalar(sa.select(sa.func.count()).select_from(LeaseRow)) == 0  # released
    finally:
        store.dispose()
    assert [r.window for r in committed(url)].count(window) == 1


def _start(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(str(event["window"]).split("/")[0])
