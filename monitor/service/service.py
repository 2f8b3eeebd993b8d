"""`driftline serve`: every monitor on its schedule, in one long-running process.

The design, in the order things can go wrong:

- **Restarts.** APScheduler keeps its jobs in memory and they are rebuilt from the config at
  each start; no job store is shared or persisted (a persisted one drops runs missed while down
  and runs every job twice when two processes share it). What survives a restart is the store:
  each job checks *every complete window since the last one it checked successfully*, in order,
  so a restart catches up, and a window that is done is never run again.
- **Two processes.** A lease per monitor (table ``leases``) says who runs it; the other process
  waits and takes over when the lease is released or expires. Every run's save transaction
  renews the lease or fails (``Leases.fence``), and ``runs`` is unique per (monitor, window) as
  the last line of defence.
- **Failures.** A run that fails is stored by the runner with its error and a
  ``pipeline/run_failed`` breach; the job retries that same window with exponential backoff and
  does not move past it. When the store itself is down nothing can be stored: the job logs,
  backs off and tries again; the process does not exit.
- **Stale sources.** With ``freshness``, the latest window's run records the age of the
  source's newest row (``freshness/lag_seconds``), a breach when too old.
- **Stopping.** SIGTERM/SIGINT stop the scheduling; the run in progress finishes (its save is
  one transaction), the leases are released and the process exits 0. A second signal exits at
  once: the database rolls back whatever transaction was open.
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import and_, func, select
from sqlalchemy.exc import SQLAlchemyError

from checks.results import MetricResult, Status
from monitor.config import MonitorConfig, Project
from monitor.runner import RunOutcome
from monitor.service import plan
from monitor.service.leases import LeaseLost, Leases, LeaseState, make_owner, monitor_lease
from monitor.service.logs import event
from monitor.service.runs import RunContext, ServiceRunner, log_to_mlflow
from monitor.store import Store
from monitor.store.models import RunRow
from monitor.store.service_models import ServiceRunRow
from monitor.store.types import utcnow
from monitor.windows import Window, parse_duration

log = logging.getLogger("driftline.service")

EXIT_LOCKED = 3
"""Exit code of ``serve --exit-if-locked`` when another process holds a lease."""

RECHECK_LOOKBACK_WINDOWS = 24
"""Label re-checks look back max(label_lag, this many windows) past the labels' due time."""

_EARLY = timedelta(milliseconds=50)  # a retry job may fire a hair before its time


@dataclass
class MonitorState:
    """What a monitor's job remembers between two runs (in memory: a restart starts afresh)."""

    failures: int = 0
    """Consecutive failed attempts (runs or store access)."""
    retry_at: datetime | None = None
    last_error: str | None = None
    store_failure: bool = False
    """The last failure was the store's: retried as soon as the store answers again."""


@dataclass
class _LeaseNote:
    held: bool = False
    owner: str | None = None


@dataclass
class ServiceOptions:
    lease_ttl: timedelta = timedelta(seconds=60)
    deliver_every: timedelta | None = timedelta(seconds=30)
    mlflow_experiment: str | None = None
    owner: str = field(default_factory=make_owner)


class Service:
    """The scheduled jobs of one `serve` process. ``tick``, ``heartbeat`` and ``deliver`` are
    the jobs; they are plain methods, so tests can call them directly with a clock of their own."""

    def __init__(
        self,
        project: Project,
        store: Store,
        monitors: list[MonitorConfig] | None = None,
        options: ServiceOptions | None = None,
        clock: Callable[[], datetime] = utcnow,
        stop_event: threading.Event | None = None,
    ) -> None:
        self.project = project
        self.store = store
        self.monitors = {m.name: m for m in (monitors if monitors is not None else project.monitors)}
        self.options = options or ServiceOptions()
        self.clock = clock
        self.owner = self.options.owner
        self.leases = Leases(store, self.owner, self.options.lease_ttl)
        self.schedules = {name: plan.schedule_of(mon) for name, mon in self.monitors.items()}
        self.runners = {
            name: ServiceRunner(project, store, mon, self.leases, self.schedules[name].interval)
            for name, mon in self.monitors.items()
        }
        self.states = {name: MonitorState() for name in self.monitors}
        self.started = clock()
        self.stop_event = stop_event or threading.Event()
        self.scheduler: BackgroundScheduler | None = None
        self._locks = {name: threading.Lock() for name in self.monitors}
        self._notes: dict[str, _LeaseNote] = {}
        self._notes_lock = threading.Lock()
        self._store_down = False
        self._notify_missing_logged = False
        self._mlflow_missing_logged = False

    @property
    def stopping(self) -> bool:
        return self.stop_event.is_set()

    # ------------------------------------------------------------------ leases

    def lease(self, name: str, now: datetime | None = None) -> bool:
        """Take or renew a lease, logging only changes: acquired, lost, waiting for someone."""
        state = self.leases.acquire(name, now or self.clock())
        self._note(state)
        return state.held

    def _note(self, state: LeaseState) -> None:
        with self._notes_lock:
            note = self._notes.setdefault(state.name, _LeaseNote())
            before = (note.held, note.owner)
            note.held, note.owner = state.held, state.owner
        if state.held and not before[0]:
            event(log, logging.INFO, "lease_acquired", f"{self.owner} now holds {state.name}", lease=state.name, owner=self.owner)
            monitor = state.name.removeprefix("monitor:")
            if monitor in self.monitors and before != (False, None):
                self._kick(monitor)  # taken over from another process: catch up now, not at the next fire
        elif not state.held and before[0]:
            event(log, logging.WARNING, "lease_lost", f"{state.name} was taken over by {state.owner}", lease=state.name, holder=state.owner)
        elif not state.held and state.owner != before[1] and state.owner is not None:
            event(
                log, logging.INFO, "lease_waiting",
                f"{state.name} is held by {state.owner} until {state.expires_at:%H:%M:%S} UTC; waiting for it",
                lease=state.name, holder=state.owner, expires_at=state.expires_at,
            )  # fmt: skip

    def lease_names(self) -> list[str]:
        return [monitor_lease(n) for n in self.monitors]

    def heartbeat(self) -> None:
        """Renew the leases held, take those that are free; notice the store going and coming back."""
        try:
            for name in self.lease_names():
                if self.stopping:
                    return
                self.lease(name)
        except SQLAlchemyError as exc:
            self._store_failed("heartbeat", exc)
            return
        if self._store_down:
            self._store_down = False
            event(log, logging.INFO, "store_recovered", "the store answers again", store=self.store.url)
            for name, state in self.states.items():
                if state.store_failure:  # do not wait out a backoff grown during the outage
                    state.retry_at = None
                    self._kick(name)

    def _store_failed(self, where: str, exc: BaseException) -> None:
        if not self._store_down:
            self._store_down = True
            event(
                log, logging.ERROR, "store_unavailable", f"the store is unavailable ({where}): {_first_line(exc)}",
                store=self.store.url, error=_first_line(exc),
            )  # fmt: skip

    def release_leases(self) -> None:
        for name in self.lease_names():
            try:
                self.leases.release(name)
            except SQLAlchemyError as exc:  # it expires on its own
                event(log, logging.WARNING, "lease_release_failed", f"cannot release {name}: {_first_line(exc)}", lease=name)

    # ------------------------------------------------------------------ a monitor's job

    def tick(self, name: str) -> None:
        """A monitor's job: every complete window not yet done, then due label re-checks."""
        lock = self._locks[name]
        if not lock.acquire(blocking=False):
            return  # the previous run of this job is still catching up
        try:
            self._tick(name)
        finally:
            lock.release()

    def _tick(self, name: str) -> None:
        mon, state = self.monitors[name], self.states[name]
        if self.stopping or (state.retry_at is not None and self.clock() + _EARLY < state.retry_at):
            return
        try:
            if not self.lease(monitor_lease(name)):
                return
            if self._catch_up(mon, state) and mon.label_lag:
                self._recheck_labels(mon, state)
        except LeaseLost as exc:
            event(log, logging.WARNING, "lease_lost", f"{name}: {exc}", monitor=name)
        except SQLAlchemyError as exc:
            self._store_failed(f"monitor {name}", exc)
            self._failed(mon, state, None, f"store unavailable: {_first_line(exc)}", store=True)
        except Exception as exc:  # never let one monitor's bug stop the service
            log.exception("%s: the job failed", name)
            self._failed(mon, state, None, f"{type(exc).__name__}: {exc}")

    def _catch_up(self, mon: MonitorConfig, state: MonitorState) -> bool:
        """Run the pending windows in order; False when one failed or the service stops."""
        now = self.clock()
        cursor = self._cursor(mon.name)
        begin = plan.first_start(mon, cursor, self.started)
        until = plan.complete_until(mon, now)
        if begin >= until:
            return True
        done = self.store.done_windows(mon.name, begin, until)
        given_up = self._given_up(mon, begin, until)
        windows = plan.pending_windows(mon, now, cursor=cursor, started=self.started, done=done, given_up=given_up)
        for window in windows:
            if self.stopping or not self.lease(monitor_lease(mon.name)):
                return False
            freshness = self.runners[mon.name].measure_freshness(self.clock()) if window.end == until else None
            if not self._run(mon, state, window, "schedule", freshness):
                return False
        return True

    def _recheck_labels(self, mon: MonitorConfig, state: MonitorState) -> None:
        assert mon.label_lag is not None
        lag, now = parse_duration(mon.label_lag), self.clock()
        # Windows whose labels came due within the lookback: so also those due during a downtime
        # up to that long. Older ones are left as they are (`driftline backfill --force` redoes them).
        since = now - lag - max(lag, RECHECK_LOOKBACK_WINDOWS * mon.window_size)
        runs = self.store.runs(mon.name, start=since, end=now - lag)
        given_up = self._given_up(mon, since, now - lag)
        for window in plan.label_rechecks(runs, lag, now, given_up):
            if self.stopping or not self.lease(monitor_lease(mon.name)):
                return
            if not self._run(mon, state, window, "label_recheck", None):
                return

    def _run(self, mon: MonitorConfig, state: MonitorState, window: Window, reason: str, freshness: MetricResult | None) -> bool:
        attempt = self._failed_attempts(mon.name, window) + 1
        if attempt > 1 and reason == "schedule":
            reason = "retry"
        context = RunContext(reason=reason, attempt=attempt, freshness=freshness)
        event(
            log, logging.INFO, "run_started", f"{mon.name} {window}: {reason} (attempt {attempt})",
            monitor=mon.name, window=window, reason=reason, attempt=attempt, owner=self.owner,
        )  # fmt: skip
        clock = time.perf_counter()
        outcome = self.runners[mon.name].run(window, context)
        run = outcome.run
        level = logging.WARNING if run.status == "failed" else logging.INFO
        event(
            log, level, "run_finished", f"{mon.name} {window}: {run.status}",
            monitor=mon.name, window=window, status=run.status, rows=run.rows, breaches=len(outcome.breaches),
            duration_s=time.perf_counter() - clock, reason=reason, attempt=attempt, error=run.error, owner=self.owner,
        )  # fmt: skip
        if freshness is not None and freshness.status is Status.BREACH:
            event(
                log, logging.WARNING, "stale_source", f"{mon.name}: the newest row is older than {mon.freshness}",
                monitor=mon.name, lag_s=freshness.value, freshness=mon.freshness,
            )  # fmt: skip
        if self.options.mlflow_experiment:
            self._mlflow(outcome)
        if run.status == "failed":
            self._failed(mon, state, window, run.error or "failed")
            return False
        if state.failures:
            event(log, logging.INFO, "recovered", f"{mon.name}: running again after {state.failures} failure(s)", monitor=mon.name)
        state.failures, state.retry_at, state.last_error, state.store_failure = 0, None, None, False
        return True

    def _failed(self, mon: MonitorConfig, state: MonitorState, window: Window | None, error: str, *, store: bool = False) -> None:
        state.failures += 1
        state.store_failure = store
        wait = plan.backoff(state.failures, mon.retry)
        state.retry_at = self.clock() + wait
        state.last_error = error
        event(
            log, logging.WARNING, "retry_scheduled", f"{mon.name}: retrying in {wait.total_seconds():g}s after: {error}",
            monitor=mon.name, window=window, attempt=state.failures, retry_in_s=wait.total_seconds(), error=error,
        )  # fmt: skip
        self._kick(mon.name, state.retry_at)

    def _kick(self, name: str, at: datetime | None = None) -> None:
        """Run a monitor's job once more at ``at`` (default now), besides its schedule."""
        if self.scheduler is None or self.stopping:
            return
        try:
            self.scheduler.add_job(
                self.tick, DateTrigger(run_date=at or self.clock()), args=[name],
                id=f"kick:{name}", name=f"catch up {name}", replace_existing=True,
            )  # fmt: skip
        except Exception:  # the scheduler is shutting down
            log.debug("cannot schedule another run of %s", name, exc_info=True)

    # -- facts from the store ------------------------------------------------------------

    def _cursor(self, monitor: str) -> datetime | None:
        """The end of the latest window the service checked successfully."""
        stmt = select(func.max(RunRow.window_end)).where(
            RunRow.monitor == monitor, RunRow.trigger == "schedule", RunRow.status != "failed"
        )
        with self.store.engine.connect() as connection:
            return connection.scalar(stmt)

    def _failed_attempts(self, monitor: str, window: Window) -> int:
        """Failed attempts of a window that is still failed (0 once it succeeded)."""
        stmt = (
            select(func.count())
            .select_from(ServiceRunRow)
            .join(RunRow, RunRow.id == ServiceRunRow.run_id)
            .where(
                ServiceRunRow.monitor == monitor,
                ServiceRunRow.window_start == window.start,
                ServiceRunRow.window_end == window.end,
                ServiceRunRow.status == "failed",
                RunRow.status == "failed",
            )
        )
        with self.store.engine.connect() as connection:
            return int(connection.scalar(stmt) or 0)

    def _given_up(self, mon: MonitorConfig, start: datetime, end: datetime) -> set[Window]:
        """Windows still failed after ``retry.max_attempts`` attempts: left failed, skipped."""
        limit = mon.retry.max_attempts
        if limit is None:
            return set()
        stmt = (
            select(ServiceRunRow.window_start, ServiceRunRow.window_end)
            .join(RunRow, RunRow.id == ServiceRunRow.run_id)
            .where(
                and_(ServiceRunRow.monitor == mon.name, ServiceRunRow.status == "failed", RunRow.status == "failed"),
                ServiceRunRow.window_start >= start,
                ServiceRunRow.window_end <= end,
            )
            .group_by(ServiceRunRow.window_start, ServiceRunRow.window_end)
            .having(func.count() >= limit)
        )
        with self.store.engine.connect() as connection:
            return {Window(row.window_start, row.window_end) for row in connection.execute(stmt)}

    # ------------------------------------------------------------------ other jobs

    def deliver(self) -> None:
        """Send queued alert deliveries (``monitor.notify``), when that module is installed."""
        try:
            # Looked up at each call: the alerts module is optional (and installed separately).
            notify = importlib.import_module("monitor.notify")
        except ModuleNotFoundError as exc:
            if exc.name not in ("monitor.notify", "monitor"):
                raise
            if not self._notify_missing_logged:
                self._notify_missing_logged = True
                log.debug("monitor.notify is not installed: no deliveries to send")
            return
        # No lease here: deliver_pending claims each delivery itself, safe from several processes.
        try:
            report = notify.deliver_pending(self.project, self.store)
        except SQLAlchemyError as exc:
            self._store_failed("deliveries", exc)
            return
        except Exception:
            log.exception("sending deliveries failed")
            return
        counts = {k: getattr(report, k, 0) for k in ("sent", "retrying", "failed")}
        if any(counts.values()):
            event(log, logging.INFO, "deliveries", f"alert deliveries: {report}", **counts)

    def _mlflow(self, outcome: RunOutcome) -> None:
        try:
            log_to_mlflow(self.options.mlflow_experiment or "", outcome)
        except ImportError:
            if not self._mlflow_missing_logged:
                self._mlflow_missing_logged = True
                event(log, logging.WARNING, "mlflow_missing", "--mlflow-experiment is set but mlflow is not installed")
        except Exception as exc:  # MLflow down must never stop monitoring
            event(log, logging.WARNING, "mlflow_failed", f"logging to MLflow failed: {_first_line(exc)}")

    # ------------------------------------------------------------------ lifecycle

    def locked_by_others(self) -> dict[str, LeaseState]:
        """Take every monitor lease once; the ones another process holds (released again if not all free)."""
        now = self.clock()
        states = {name: self.leases.acquire(name, now) for name in (monitor_lease(n) for n in self.monitors)}
        others = {name: s for name, s in states.items() if not s.held}
        if others:
            for name, s in states.items():
                if s.held:
                    self.leases.release(name)
        else:
            for s in states.values():
                self._note(s)
        return others

    def start(self) -> None:
        """Build the jobs from the config and start scheduling (in background threads)."""
        ttl = self.options.lease_ttl
        scheduler = BackgroundScheduler(
            timezone="UTC",
            executors={"default": ThreadPoolExecutor(max_workers=len(self.monitors) + 3)},
            # Missed fires cost nothing (each job catches up every window), so coalesce them
            # and never drop one for being late; one instance of each job at a time.
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        now = self.clock()
        heartbeat = max(ttl / 3, timedelta(milliseconds=500))
        scheduler.add_job(self.heartbeat, IntervalTrigger(seconds=heartbeat.total_seconds(), timezone="UTC"), id="heartbeat", next_run_time=now)
        for name, schedule in self.schedules.items():
            # The trigger's own first fire keeps an interval aligned on the epoch (a first fire
            # "now" would shift every later one); the catch-up of what was missed runs at once.
            scheduler.add_job(self.tick, schedule.trigger(), args=[name], id=f"monitor:{name}", name=name)
        if self.options.deliver_every:
            every = self.options.deliver_every.total_seconds()
            scheduler.add_job(self.deliver, IntervalTrigger(seconds=every, timezone="UTC"), id="deliveries", next_run_time=now)
        self.scheduler = scheduler
        for name in self.schedules:
            self._kick(name, now)
        scheduler.start()
        for name, schedule in self.schedules.items():
            mon = self.monitors[name]
            event(
                log, logging.INFO, "monitor_scheduled", f"{name}: {schedule.kind} {schedule.text}, window {mon.window}",
                monitor=name, schedule=schedule.text, window_size=mon.window, next_run=schedule.next_run(now),
            )  # fmt: skip

    def stop(self) -> None:
        """Stop scheduling, wait for the runs in progress, release the leases."""
        self.stop_event.set()
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        self.release_leases()

    def serve_forever(self, install_signals: bool = True) -> int:
        if install_signals:
            install_stop_handlers(self.stop_event)
        self.start()
        event(log, logging.INFO, "serve_started", f"serving {len(self.monitors)} monitor(s) as {self.owner}", owner=self.owner, pid=os.getpid(), store=self.store.url)
        while not self.stop_event.wait(0.5):
            pass
        event(log, logging.INFO, "stopping", "stopping: waiting for the runs in progress", owner=self.owner)
        self.stop()
        event(log, logging.INFO, "stopped", "stopped; leases released", owner=self.owner)
        return 0


def install_stop_handlers(stop: threading.Event) -> None:
    """SIGTERM/SIGINT: the first asks for a graceful stop, a second one exits at once."""

    def handler(signum: int, _frame: Any) -> None:
        if stop.is_set():
            event(log, logging.WARNING, "forced_exit", f"{signal.Signals(signum).name} again: exiting now (open transactions roll back)")
            os._exit(128 + signum)
        event(log, logging.INFO, "signal", f"{signal.Signals(signum).name}: stopping after the run in progress", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def open_store(url: str, stop: threading.Event, first_wait: float = 1.0, max_wait: float = 30.0) -> Store | None:
    """``Store.open`` that waits for the database to come up (None when asked to stop first)."""
    wait = first_wait
    while not stop.is_set():
        try:
            return Store.open(url)
        except (SQLAlchemyError, OSError) as exc:
            event(log, logging.ERROR, "store_unavailable", f"cannot open the store, retrying in {wait:g}s: {_first_line(exc)}", retry_in_s=wait)
            stop.wait(wait)
            wait = min(max_wait, wait * 2)
    return None


def _first_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
