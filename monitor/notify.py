"""Alerting glue: the run hook that queues notifications, and the sender that delivers them.

1. :class:`AlertHook` runs inside the transaction that stores a run's results (``Runner`` calls it):
   it loads the monitor's alert states and silences, lets the pure policy (``alerts.policy``)
   decide, stores the new states and writes one outbox row (``deliveries``) per route and kind.
   Results, alert states and deliveries commit together or not at all, so nothing decided is lost
   when Slack is down, and nothing is queued for results that were never stored.
2. :func:`deliver_pending` claims due rows (a compare-and-set on status and attempt number, so two
   senders never send one row twice), sends them outside any transaction, one thread per
   channel, and records each outcome: sent (with Slack's ``ts`` or Databricks' ``run_id``), a
   retry after exponential backoff with jitter (5xx, 429, timeouts, connection errors), or failed
   with the redacted reason (4xx, Slack ``ok: false``, a missing secret, too many attempts).
   A sender killed mid-send leaves its row ``sending``; once the lease runs out the row is due
   again, and the idempotency key (header, Databricks ``idempotency_token``, Slack metadata)
   keeps the receiver from acting twice.

``driftline run``/``backfill``/``send`` and the scheduler call :func:`deliver_pending`.
"""

from __future__ import annotations

import logging
import os
import random
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from alerts.backoff import Backoff
from alerts.channels import Channel, DeliveryError, SendContext, Secrets, build_channel
from alerts.payload import filtered, idempotency_key, iso, notification_payload, retrain_payload, top_moved
from alerts.policy import Alert, AlertKey, AlertStatus, Breach, Reason, RetrainRecord, Silence, decide, observe
from alerts.redact import Redactor
from alerts.settings import secret_env_names
from checks.results import MetricResult
from monitor.config import MonitorConfig, Project
from monitor.store import RunRecord, Store
from monitor.store.alert_models import AlertRow, DeliveryRow, SilenceRow
from monitor.store.types import utcnow

log = logging.getLogger("driftline.notify")

DEFAULT_BACKOFF = Backoff(initial_s=30.0, factor=2.0, max_s=3600.0, max_attempts=8)
DEFAULT_LEASE = timedelta(minutes=5)
"""How long a claimed delivery may be in flight before another sender may take it over.
Longer than any channel's timeout times its in-call retries."""

DELIVERY_STATUSES = ("pending", "sending", "sent", "failed")


# ================================================================================ the run hook


class AlertHook:
    """The ``RunHook`` that turns a run's results into alert states and outbox rows."""

    def __init__(self, project: Project, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.project = project
        self.clock = clock

    def __call__(self, session: Session, mon: MonitorConfig, run: RunRecord, results: list[MetricResult]) -> None:
        if mon.alerts is None:
            return
        try:
            # A savepoint: a bug here must cost the alerts of this run, never its results.
            with session.begin_nested():
                queue_alerts(session, self.project, mon, run, results, now=self.clock())
        except Exception as exc:  # noqa: BLE001 - logged, and the run's results still commit
            log.error("%s %s: alerting failed, results are stored without alerts: %s", mon.name, run.window, _redactor(self.project)(f"{type(exc).__name__}: {exc}"), exc_info=log.isEnabledFor(logging.DEBUG))


def queue_alerts(session: Session, project: Project, mon: MonitorConfig, run: RunRecord, results: Sequence[MetricResult], *, now: datetime) -> list[int]:
    """Decide and queue, inside ``session``; the ids of the deliveries written."""
    settings = mon.alerts
    assert settings is not None
    previous = load_alerts(session, mon.name)
    silences = active_silences(session, mon.name, now)
    last = last_retrain(session, mon.name) if settings.retrain else None
    window = (run.window.start, run.window.end)
    decision = decide(previous, observe(mon.name, results), now, settings, silences, window=window, last_retrain=last)
    save_alerts(session, decision.states, previous, now)

    context = {
        "dashboard_url": project.config.dashboard_url,
        "model_version": _model_version(results),
        "top_features": top_moved(results),
        "now": now,
    }
    start, end = iso(run.window.start) or "", iso(run.window.end) or ""
    queued: list[int] = []
    if decision.notification is not None:
        payload = notification_payload(decision.notification, retrain=decision.retrain, **context)
        for route in settings.routes:
            routed = filtered(payload, route.checks, route.min_severity, route.segments)
            if routed is None:
                continue
            content = [(a["check"], a["column"], a["segment"], a["reason"]) for a in routed["alerts"] + routed["resolved"]]
            routed["idempotency_key"] = idempotency_key("notify", mon.name, start, end, route.channel, content)
            queued += _queue(session, project, route.channel, "notify", run, decision.notification.incident, routed, now)
    if decision.retrain is not None and settings.retrain is not None:
        payload = retrain_payload(decision.retrain, **context)
        payload["idempotency_key"] = idempotency_key("retrain", mon.name, start, end, settings.retrain.channel, "retrain")
        queued += _queue(session, project, settings.retrain.channel, "retrain", run, None, payload, now)
    for key, alert in decision.states.items():
        if alert.reason is not Reason.DO_NOT_NOTIFY:
            log.info("%s %s: %s", key, alert.status.value, alert.reason.value)
    return queued


def _queue(session: Session, project: Project, channel: str, kind: str, run: RunRecord, thread: str | None, payload: dict[str, Any], now: datetime) -> list[int]:
    spec = project.config.channels[channel]
    values = {
        "channel": channel, "channel_type": spec.type, "kind": kind, "monitor": run.monitor,
        "window_start": run.window.start, "window_end": run.window.end, "run_id": run.id, "thread": thread,
        "payload": payload, "idempotency_key": payload["idempotency_key"], "status": "pending", "attempts": 0,
        "next_attempt_at": now, "created_at": now,
    }  # fmt: skip
    # The same decision again (a re-run of the window) finds its key taken: nothing new to send.
    stmt = _insert(session, DeliveryRow).values(values).on_conflict_do_nothing(index_elements=["idempotency_key"])
    new_id = session.execute(stmt.returning(DeliveryRow.id)).scalar_one_or_none()
    return [] if new_id is None else [new_id]


def _insert(session: Session, entity: Any) -> Any:
    return (postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert)(entity)


def _model_version(results: Sequence[MetricResult]) -> str | None:
    for result in results:
        version = result.details.get("model_version")
        if isinstance(version, str) and version:
            return version
    return None


# -------------------------------------------------------------------------- alert rows


def _alert_from_row(row: AlertRow) -> Alert:
    return Alert(
        key=AlertKey(row.monitor, row.check, row.column, row.segment),
        status=AlertStatus(row.status),
        severity=row.severity,
        consecutive=row.consecutive,
        healthy=row.healthy_windows,
        since=row.since,
        last_window_end=row.last_window_end,
        fired_at=row.fired_at,
        resolved_at=row.resolved_at,
        last_notified_at=row.last_notified_at,
        incident=row.incident,
        breaches=tuple(Breach.from_dict(b) for b in (row.breaches or {}).get("breaches", [])),
        reason=Reason(row.reason),
    )


def _alert_values(alert: Alert, now: datetime) -> dict[str, Any]:
    return {
        "monitor": alert.key.monitor, "check": alert.key.check, "column": alert.key.column, "segment": alert.key.segment,
        "status": alert.status.value, "severity": alert.severity, "consecutive": alert.consecutive, "healthy_windows": alert.healthy, "since": alert.since,
        "last_window_end": alert.last_window_end, "fired_at": alert.fired_at, "resolved_at": alert.resolved_at,
        "last_notified_at": alert.last_notified_at, "incident": alert.incident, "reason": alert.reason.value,
        "breaches": {"breaches": [b.to_dict() for b in alert.breaches]}, "updated_at": now,
    }  # fmt: skip


def load_alerts(session: Session, monitor: str) -> dict[AlertKey, Alert]:
    rows = session.scalars(select(AlertRow).where(AlertRow.monitor == monitor))
    return {alert.key: alert for alert in map(_alert_from_row, rows)}


def save_alerts(session: Session, states: Mapping[AlertKey, Alert], previous: Mapping[AlertKey, Alert], now: datetime) -> None:
    """Upsert the alerts that changed (ok alerts that were ok before are left alone)."""
    for key, alert in states.items():
        if previous.get(key) == alert:
            continue
        values = _alert_values(alert, now)
        stmt = _insert(session, AlertRow).values(values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["monitor", "check", "column", "segment"],
            set_={name: stmt.excluded[name] for name in values if name not in ("monitor", "check", "column", "segment")},
        )
        session.execute(stmt)


def active_silences(session: Session, monitor: str, now: datetime) -> list[Silence]:
    rows = session.scalars(select(SilenceRow).where(SilenceRow.monitor == monitor, SilenceRow.ends_at > now))
    return [_silence(row) for row in rows]


def _silence(row: SilenceRow) -> Silence:
    return Silence(row.monitor, row.ends_at, row.starts_at, row.check, row.column, row.segment, row.reason, row.id)


def last_retrain(session: Session, monitor: str) -> RetrainRecord | None:
    """The latest retraining of a monitor that was queued (a failed one counts: it was decided)."""
    row = session.execute(
        select(DeliveryRow.window_end, DeliveryRow.created_at)
        .where(DeliveryRow.monitor == monitor, DeliveryRow.kind == "retrain")
        .order_by(DeliveryRow.window_end.desc())
        .limit(1)
    ).first()
    return None if row is None else RetrainRecord(row.window_end, row.created_at)


# ================================================================================ the sender


@dataclass
class DeliveryReport:
    """What one :func:`deliver_pending` call did."""

    sent: int = 0
    retrying: int = 0
    failed: int = 0
    skipped: int = 0  # claimed by another sender first, or left for the next round
    errors: list[str] = field(default_factory=list)  # redacted
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def __str__(self) -> str:
        text = f"{self.sent} sent, {self.retrying} to retry, {self.failed} failed"
        return text + (f", {self.skipped} left for later" if self.skipped else "")

    def add(self, outcome: str, error: str | None = None) -> None:
        with self._lock:
            setattr(self, outcome, getattr(self, outcome) + 1)
            if error:
                self.errors.append(error)


@dataclass(frozen=True)
class _Claim:
    id: int
    channel: str
    kind: str
    thread: str | None
    payload: dict[str, Any]
    idempotency_key: str
    attempt: int
    recovering: bool
    external_id: str | None
    created_at: datetime


def _redactor(project: Project, env: Mapping[str, str] | None = None) -> Redactor:
    """Masks every configured secret that is set in the environment (and credential-shaped text)."""
    env = os.environ if env is None else env
    return Redactor(env.get(name) for spec in project.config.channels.values() for name in secret_env_names(spec))


def deliver_pending(
    project: Project,
    store: Store,
    *,
    now: datetime | None = None,
    limit: int = 100,
    env: Mapping[str, str] | None = None,
    backoff: Backoff = DEFAULT_BACKOFF,
    lease: timedelta = DEFAULT_LEASE,
    rng: random.Random | None = None,
    channel_factory: Callable[[str, Any, Secrets], Channel] = build_channel,
) -> DeliveryReport:
    """Send the deliveries that are due (at most ``limit``), one thread per channel; never raises
    for a channel's failure. Safe to run from several processes at once."""
    now = now or utcnow()
    redact = _redactor(project, env)
    secrets = Secrets(os.environ if env is None else env, redact)
    report = DeliveryReport()
    with Session(store.engine) as session:
        due = session.execute(
            select(DeliveryRow.id, DeliveryRow.channel)
            .where(DeliveryRow.status.in_(("pending", "sending")), DeliveryRow.next_attempt_at <= now)
            .order_by(DeliveryRow.id)
            .limit(limit)
        ).all()
    by_channel: dict[str, list[int]] = {}
    for row in due:
        by_channel.setdefault(row.channel, []).append(row.id)
    if not by_channel:
        return report
    rng = rng or random.Random()

    def work(channel_name: str, ids: list[int]) -> None:
        _deliver_channel(project, store, channel_name, ids, now, lease, backoff, rng, secrets, channel_factory, report)

    if len(by_channel) == 1:
        (name, ids), = by_channel.items()
        work(name, ids)
    else:
        # A channel that hangs must not hold up the others.
        with ThreadPoolExecutor(max_workers=min(8, len(by_channel)), thread_name_prefix="driftline-send") as pool:
            for future in [pool.submit(work, name, ids) for name, ids in by_channel.items()]:
                future.result()
    if report.sent or report.failed or report.retrying:
        log.info("deliveries: %s", report)
    return report


def _deliver_channel(
    project: Project, store: Store, name: str, ids: list[int], now: datetime, lease: timedelta, backoff: Backoff,
    rng: random.Random, secrets: Secrets, factory: Callable[[str, Any, Secrets], Channel], report: DeliveryReport,
) -> None:  # fmt: skip
    channel: Channel | None = None
    for position, delivery_id in enumerate(ids):
        claim = _claim(store, delivery_id, now, lease)
        if claim is None:
            report.add("skipped")
            continue
        spec = project.config.channels.get(name)
        try:
            if spec is None:
                raise DeliveryError(f"channel {name!r} is no longer in the config; add it back, then `driftline deliveries --retry {delivery_id}`", retryable=False)
            channel = channel or factory(name, spec, secrets)
            context = _context(store, claim, spec.type)
            result = channel.send(claim.payload, context)
        except DeliveryError as exc:
            message = secrets.redactor(str(exc))
            if exc.retryable and not backoff.exhausted(claim.attempt):
                delay = backoff.delay(claim.attempt, rng, at_least_s=exc.retry_after or 0.0)
                _finish(store, claim, status="pending", next_attempt_at=now + delay, last_error=message)
                log.warning("delivery %s to %r: attempt %s failed, retrying in %ss: %s", delivery_id, name, claim.attempt, round(delay.total_seconds()), message)
                report.add("retrying", message)
                # The channel is down or throttling: leave its other rows for the next round.
                for _ in ids[position + 1 :]:
                    report.add("skipped")
                return
            if exc.retryable:
                message = f"gave up after {claim.attempt} attempts: {message}"
            _finish(store, claim, status="failed", next_attempt_at=now, last_error=message)
            log.error("delivery %s to %r failed: %s", delivery_id, name, message)
            report.add("failed", message)
            continue
        except Exception as exc:  # noqa: BLE001 - a bug in one delivery must not stop the others
            message = secrets.redactor(f"{type(exc).__name__}: {exc}")
            _finish(store, claim, status="failed", next_attempt_at=now, last_error=f"internal error: {message}")
            log.error("delivery %s to %r: internal error: %s", delivery_id, name, message)
            report.add("failed", message)
            continue
        _finish(store, claim, status="sent", next_attempt_at=now, last_error=None, sent_at=utcnow(), external_id=result.external_id or claim.external_id)
        report.add("sent")


def _claim(store: Store, delivery_id: int, now: datetime, lease: timedelta) -> _Claim | None:
    """Take a due row for this sender: status and attempt number are compared and set in one
    UPDATE, so of two senders one wins; the row stays ``sending`` until the lease runs out."""
    with store.session() as session:
        row = session.get(DeliveryRow, delivery_id)
        if row is None or row.status not in ("pending", "sending") or row.next_attempt_at > now:
            return None
        claimed = session.execute(
            update(DeliveryRow)
            .where(DeliveryRow.id == delivery_id, DeliveryRow.status == row.status, DeliveryRow.attempts == row.attempts)
            .values(status="sending", attempts=row.attempts + 1, next_attempt_at=now + lease)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:
            return None
        return _Claim(
            id=row.id, channel=row.channel, kind=row.kind, thread=row.thread, payload=row.payload,
            idempotency_key=row.idempotency_key, attempt=row.attempts + 1, recovering=row.status == "sending",
            external_id=row.external_id, created_at=row.created_at,
        )  # fmt: skip


def _context(store: Store, claim: _Claim, channel_type: str) -> SendContext:
    context = SendContext(
        idempotency_key=claim.idempotency_key,
        attempt=claim.attempt,
        recovering=claim.recovering,
        external_id=claim.external_id,
        created_at=claim.created_at.timestamp(),
        record_external_id=lambda external_id: _record_external_id(store, claim, external_id),
    )
    if channel_type == "slack" and claim.thread:
        with Session(store.engine) as session:
            root = session.execute(
                select(DeliveryRow.external_id, DeliveryRow.payload)
                .where(DeliveryRow.channel == claim.channel, DeliveryRow.thread == claim.thread, DeliveryRow.id < claim.id, DeliveryRow.external_id.is_not(None))
                .order_by(DeliveryRow.id)
                .limit(1)
            ).first()
        if root is not None:
            context.thread_ts, context.thread_payload = root.external_id, root.payload
    return context


def _record_external_id(store: Store, claim: _Claim, external_id: str) -> None:
    """Saved as soon as the receiver gave it (before the delivery is marked sent): an attempt that
    dies after posting leaves the proof behind, and the next attempt does not post again."""
    with store.session() as session:
        session.execute(
            update(DeliveryRow)
            .where(DeliveryRow.id == claim.id, DeliveryRow.attempts == claim.attempt)
            .values(external_id=external_id)
            .execution_options(synchronize_session=False)
        )


def _finish(store: Store, claim: _Claim, *, status: str, next_attempt_at: datetime, last_error: str | None, sent_at: datetime | None = None, external_id: str | None = None) -> None:
    values: dict[str, Any] = {"status": status, "next_attempt_at": next_attempt_at, "last_error": last_error}
    if sent_at is not None:
        values["sent_at"] = sent_at
    if external_id is not None:
        values["external_id"] = external_id
    with store.session() as session:
        done = session.execute(
            update(DeliveryRow)
            .where(DeliveryRow.id == claim.id, DeliveryRow.status == "sending", DeliveryRow.attempts == claim.attempt)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
    if done.rowcount != 1:
        # Our lease ran out and another sender took the row over; its outcome stands.
        log.warning("delivery %s: attempt %s finished after its lease; another sender owns it now", claim.id, claim.attempt)


# ================================================================================ operations


@dataclass(frozen=True)
class DeliveryRecord:
    id: int
    channel: str
    kind: str
    monitor: str
    window_start: datetime
    window_end: datetime
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
    external_id: str | None
    idempotency_key: str
    payload: dict[str, Any]


def deliveries(store: Store, *, status: str | None = None, monitor: str | None = None, limit: int = 50) -> list[DeliveryRecord]:
    """Newest first."""
    stmt = select(DeliveryRow).order_by(DeliveryRow.id.desc()).limit(limit)
    if status is not None:
        stmt = stmt.where(DeliveryRow.status == status)
    if monitor is not None:
        stmt = stmt.where(DeliveryRow.monitor == monitor)
    with Session(store.engine) as session:
        return [
            DeliveryRecord(
                r.id, r.channel, r.kind, r.monitor, r.window_start, r.window_end, r.status, r.attempts, r.next_attempt_at,
                r.last_error, r.created_at, r.sent_at, r.external_id, r.idempotency_key, r.payload,
            )  # fmt: skip
            for r in session.scalars(stmt)
        ]


def retry_delivery(store: Store, delivery_id: int, *, now: datetime | None = None) -> str:
    """Make a failed (or waiting) delivery due now, with a fresh count of attempts; says what it did."""
    now = now or utcnow()
    with store.session() as session:
        row = session.get(DeliveryRow, delivery_id)
        if row is None:
            raise LookupError(f"no delivery {delivery_id}")
        if row.status == "sent":
            raise ValueError(f"delivery {delivery_id} was sent at {iso(row.sent_at)}; it is not retried (the receiver has it)")
        if row.status == "sending" and row.next_attempt_at > now:
            raise ValueError(f"delivery {delivery_id} is being sent right now (lease until {iso(row.next_attempt_at)})")
        row.status, row.attempts, row.next_attempt_at = "pending", 0, now
    return f"delivery {delivery_id} is due now"


def add_silence(
    store: Store, monitor: str, *, ends_at: datetime, reason: str, check: str | None = None, column: str | None = None,
    segment: str | None = None, starts_at: datetime | None = None, created_by: str | None = None,
) -> int:  # fmt: skip
    now = utcnow()
    starts_at = starts_at or now
    if ends_at <= starts_at:
        raise ValueError(f"a silence must end after it starts ({iso(starts_at)}); got --until {iso(ends_at)}")
    with store.session() as session:
        row = SilenceRow(monitor=monitor, check=check, column=column, segment=segment, starts_at=starts_at, ends_at=ends_at, reason=reason, created_by=created_by, created_at=now)
        session.add(row)
        session.flush()
        return row.id


def silences(store: Store, *, monitor: str | None = None, include_expired: bool = False, now: datetime | None = None) -> list[Silence]:
    now = now or utcnow()
    stmt = select(SilenceRow).order_by(SilenceRow.ends_at, SilenceRow.id)
    if monitor is not None:
        stmt = stmt.where(SilenceRow.monitor == monitor)
    if not include_expired:
        stmt = stmt.where(SilenceRow.ends_at > now)
    with Session(store.engine) as session:
        return [_silence(row) for row in session.scalars(stmt)]


def remove_silence(store: Store, silence_id: int, *, now: datetime | None = None) -> bool:
    """End a silence now (kept for history); False when there is no such active silence."""
    now = now or utcnow()
    with store.session() as session:
        done = session.execute(update(SilenceRow).where(SilenceRow.id == silence_id, SilenceRow.ends_at > now).values(ends_at=now))
    return done.rowcount == 1


def alerts(store: Store, monitor: str | None = None, *, firing_only: bool = False) -> list[Alert]:
    stmt = select(AlertRow).order_by(AlertRow.monitor, AlertRow.check, AlertRow.column, AlertRow.segment)
    if monitor is not None:
        stmt = stmt.where(AlertRow.monitor == monitor)
    if firing_only:
        stmt = stmt.where(AlertRow.status == "firing")
    with Session(store.engine) as session:
        return [_alert_from_row(row) for row in session.scalars(stmt)]


def config_warnings(project: Project, env: Mapping[str, str] | None = None) -> list[str]:
    """What ``driftline validate`` warns about: secrets missing here, channels nobody uses."""
    env = os.environ if env is None else env
    used = {route.channel for m in project.monitors if m.alerts for route in m.alerts.routes}
    used |= {m.alerts.retrain.channel for m in project.monitors if m.alerts and m.alerts.retrain}
    warnings = []
    for name, spec in sorted(project.config.channels.items()):
        for variable in secret_env_names(spec):
            if not env.get(variable):
                warnings.append(f"channels.{name}: environment variable {variable} is not set here; deliveries to {name!r} will fail until it is")
        if name not in used:
            warnings.append(f"channels.{name}: no monitor routes alerts to it")
    for mon in project.monitors:
        if mon.alerts is not None and not mon.alerts.routes and mon.alerts.retrain is None:
            warnings.append(f"monitor {mon.name}: alerts has no routes; alert states are kept but nothing is sent")
    return warnings
