"""The runner as the service uses it: fenced by the monitor's lease, logged, with pipeline health.

``ServiceRunner`` is the ordinary ``Runner`` with three things added to each run's save
transaction (so each commits or rolls back with the run's results):

- a fence: the save renews the monitor's lease or fails, so a process that lost its lease
  (paused past the TTL, cut off from the database) can never overwrite the new holder's work;
- the results the service measures itself: ``freshness/lag_seconds`` (the age of the source's
  newest row, on the latest window) and ``pipeline/overrun`` (a run longer than its interval);
- a ``service_runs`` row: who ran the window, why, which attempt, how long.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from checks.results import Direction, MetricResult, Status
from monitor import runner as runner_module
from monitor.config import MonitorConfig, Project
from monitor.runner import Runner, RunOutcome
from monitor.service.leases import Leases, monitor_lease
from monitor.service.logs import event
from monitor.sources import SourceError, open_source
from monitor.store import RunRecord, Store, StoredProfile
from monitor.store.service_models import ServiceRunRow
from monitor.store.types import utcnow
from monitor.windows import Window, format_duration, parse_duration

log = logging.getLogger("driftline.service")


@dataclass(frozen=True)
class RunContext:
    """Why the service runs this window, and what it measured before the run."""

    reason: str = "schedule"
    attempt: int = 1
    freshness: MetricResult | None = None


def freshness_result(mon: MonitorConfig, newest: datetime | None, now: datetime) -> MetricResult:
    """``freshness/lag_seconds``: how old the source's newest row is, against ``mon.freshness``."""
    assert mon.freshness is not None
    limit = parse_duration(mon.freshness).total_seconds()
    details: dict[str, Any] = {"freshness": mon.freshness, "newest": newest.isoformat() if newest else None}
    if newest is None:
        details["reason"] = "the source has no rows with a valid timestamp"
        return MetricResult("freshness", "", "lag_seconds", None, Status.BREACH, threshold=limit, direction=Direction.MAX, details=details)
    lag = max(0.0, (now - newest).total_seconds())
    status = Status.BREACH if lag > limit else Status.OK
    return MetricResult("freshness", "", "lag_seconds", lag, status, threshold=limit, direction=Direction.MAX, details=details)


class ServiceRunner(Runner):
    """One monitor's runner inside `driftline serve` (one per monitor: runs of a monitor never
    overlap, so the per-run context needs no more than a thread-local guard)."""

    def __init__(self, project: Project, store: Store, mon: MonitorConfig, leases: Leases, interval: timedelta | None) -> None:
        # The project's own hooks (the alert outbox) sit between the fence and the record.
        hooks = [self._fence, *runner_module.default_hooks(project), self._record]
        super().__init__(project, store, hooks=hooks)
        self.mon = mon
        self.leases = leases
        self.interval = interval
        self._local = threading.local()

    # -- one run -------------------------------------------------------------------------

    def newest_row(self) -> datetime | None:
        """The source's newest timestamp (``SourceError`` when it cannot be read)."""
        source = open_source(self.mon.source, self.project.base_dir)
        try:
            return source.max_timestamp(self.mon.columns.timestamp)
        finally:
            source.close()

    def measure_freshness(self, now: datetime) -> MetricResult | None:
        if not self.mon.freshness:
            return None
        try:
            newest = self.newest_row()
        except SourceError as exc:  # the run will fail on the same source and say why
            event(log, logging.WARNING, "freshness_unknown", f"{self.mon.name}: cannot read the newest row: {exc}", monitor=self.mon.name)
            return None
        return freshness_result(self.mon, newest, now)

    def run(self, window: Window, context: RunContext) -> RunOutcome:
        self._local.context = context
        try:
            return self.run_window(self.mon, window, trigger="schedule")
        finally:
            self._local.context = None

    # -- the save transaction ------------------------------------------------------------

    def _save(self, mon: MonitorConfig, run: RunRecord, results: list[MetricResult], stored: list[StoredProfile]) -> RunRecord:
        context: RunContext = getattr(self._local, "context", None) or RunContext()
        elapsed = (utcnow() - run.started_at).total_seconds()
        extra: list[MetricResult] = []
        if context.freshness is not None:
            extra.append(context.freshness)
        overrun = self.interval is not None and elapsed > self.interval.total_seconds()
        if overrun:
            assert self.interval is not None
            extra.append(
                MetricResult(
                    "pipeline", "", "overrun", elapsed, Status.INFO,
                    threshold=self.interval.total_seconds(), direction=Direction.MAX,
                    details={"interval": format_duration(self.interval)},
                )  # fmt: skip
            )
            event(
                log, logging.WARNING, "run_overrun",
                f"{mon.name} {run.window}: the run took {elapsed:.1f}s, longer than its interval {format_duration(self.interval)}",
                monitor=mon.name, window=run.window, duration_s=elapsed, interval_s=self.interval.total_seconds(),
            )  # fmt: skip
        if run.status == "ok" and any(r.status is Status.BREACH for r in extra):
            run = replace(run, status="breach")
        self._local.pending = (context, elapsed, overrun)
        return super()._save(mon, run, [*results, *extra], stored)

    def _fence(self, session: Session, mon: MonitorConfig, run: RunRecord, results: list[MetricResult]) -> None:
        self.leases.fence(session, monitor_lease(mon.name))

    def _record(self, session: Session, mon: MonitorConfig, run: RunRecord, results: list[MetricResult]) -> None:
        context, elapsed, overrun = self._local.pending
        session.execute(
            insert(ServiceRunRow).values(
                run_id=run.id,
                monitor=mon.name,
                window_start=run.window.start,
                window_end=run.window.end,
                owner=self.leases.owner,
                reason=context.reason,
                attempt=context.attempt,
                status=run.status,
                started_at=run.started_at,
                finished_at=run.finished_at,
                duration_s=elapsed,
                overrun=overrun,
            )
        )


def log_to_mlflow(experiment: str, outcome: RunOutcome) -> None:
    """Log a run's overall metrics to an MLflow experiment (only when ``mlflow`` is installed)."""
    import mlflow  # type: ignore[import-not-found]

    run = outcome.run
    mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name=f"{run.monitor} {run.window.start.isoformat()}"):
        mlflow.set_tags({"driftline.monitor": run.monitor, "driftline.status": run.status})
        mlflow.log_params({"window_start": run.window.start.isoformat(), "window_end": run.window.end.isoformat(), "rows": run.rows})
        metrics = {
            _mlflow_key(f"{r.check}.{r.column or '-'}.{r.metric}"): r.value
            for r in outcome.results
            if r.segment == "*" and r.value is not None
        }
        if metrics:
            mlflow.log_metrics(metrics)


def _mlflow_key(text: str) -> str:
    # MLflow metric names allow letters, digits, _ - . / and spaces.
    return "".join(c if c.isalnum() or c in "_-./ " else "_" for c in text)
