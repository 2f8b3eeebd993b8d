"""Explicit conversions between domain records and ORM rows (in both directions)."""

from __future__ import annotations

from typing import Any

from checks.results import MetricResult
from monitor.store.models import ReferenceRow, RunRow
from monitor.store.records import ReferenceRecord, RunRecord, StoredProfile
from monitor.windows import Window


def run_values(run: RunRecord) -> dict[str, Any]:
    """The column values of a run's row; ``run.id`` is left to the database."""
    return {
        "monitor": run.monitor,
        "window_start": run.window.start,
        "window_end": run.window.end,
        "status": run.status,
        "trigger": run.trigger,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "rows": run.rows,
        "bad_rows": run.bad_rows,
        "error": run.error,
        "config_fingerprint": run.config_fingerprint,
        "reference_version": run.reference_version,
        "driftline_version": run.driftline_version,
    }


def run_record(row: RunRow) -> RunRecord:
    return RunRecord(
        monitor=row.monitor,
        window=Window(row.window_start, row.window_end),
        status=row.status,
        started_at=row.started_at,
        finished_at=row.finished_at,
        rows=row.rows,
        bad_rows=row.bad_rows,
        error=row.error,
        config_fingerprint=row.config_fingerprint,
        reference_version=row.reference_version,
        driftline_version=row.driftline_version,
        trigger=row.trigger,
        id=row.id,
    )


def metric_values(metric: MetricResult, run_id: int, run: RunRecord) -> dict[str, Any]:
    """A metric's row, with the run's monitor and window copied in for fast dashboard reads."""
    return {
        "run_id": run_id,
        "monitor": run.monitor,
        "window_start": run.window.start,
        "window_end": run.window.end,
        "segment": metric.segment,
        "check": metric.check,
        "column": metric.column,
        "metric": metric.metric,
        "value": metric.value,  # MetricResult has already turned NaN/inf into None
        "threshold": metric.threshold,
        "direction": None if metric.direction is None else metric.direction.value,
        "status": metric.status.value,
        "details": metric.details,
    }


def profile_values(profile: StoredProfile, run_id: int, run: RunRecord) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "monitor": run.monitor,
        "window_start": run.window.start,
        "window_end": run.window.end,
        "segment": profile.segment,
        "column": profile.column,
        "payload": profile.payload,
    }


def reference_record(row: ReferenceRow) -> ReferenceRecord:
    return ReferenceRecord(
        monitor=row.monitor,
        fingerprint=row.fingerprint,
        version=row.version,
        created_at=row.created_at,
        rows=row.rows,
        payload=row.payload,
    )
