"""ORM rows of alerting: alert states, the delivery outbox and silences.

Migration: ``migrations/versions/0002_alerts.py`` (branch ``alerts``). Retraining history is the
outbox's rows of kind ``retrain``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, Index, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from monitor.store.models import Base
from monitor.store.types import BigIntId, utcnow

ALERT_STATUS_VALUES = ("ok", "pending", "firing", "resolved")
SEVERITY_VALUES = ("warning", "critical")
DELIVERY_KIND_VALUES = ("notify", "retrain")
DELIVERY_STATUS_VALUES = ("pending", "sending", "sent", "failed")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


class AlertRow(Base):
    """The state of one alert key (monitor, check, column, segment)."""

    __tablename__ = "alerts"
    __table_args__ = (
        UniqueConstraint("monitor", "check", "column", "segment"),
        Index(None, "monitor", "status"),
        CheckConstraint(_one_of("status", ALERT_STATUS_VALUES), name="status"),
        CheckConstraint(_one_of("severity", SEVERITY_VALUES), name="severity"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    monitor: Mapped[str]
    check: Mapped[str]
    column: Mapped[str]
    segment: Mapped[str]
    status: Mapped[str]
    severity: Mapped[str | None]
    consecutive: Mapped[int]
    healthy_windows: Mapped[int]
    since: Mapped[datetime | None]
    last_window_end: Mapped[datetime | None]
    fired_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    last_notified_at: Mapped[datetime | None]
    incident: Mapped[str | None]
    reason: Mapped[str]
    breaches: Mapped[dict[str, Any]]  # {"breaches": [...]} of the last breaching window
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class DeliveryRow(Base):
    """The outbox: one message (or retrain trigger) for one channel, written with the run's results."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("idempotency_key"),
        Index(None, "status", "next_attempt_at"),
        Index(None, "monitor", "kind", "window_end"),
        Index(None, "channel", "thread"),
        CheckConstraint(_one_of("kind", DELIVERY_KIND_VALUES), name="kind"),
        CheckConstraint(_one_of("status", DELIVERY_STATUS_VALUES), name="status"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    channel: Mapped[str]
    channel_type: Mapped[str]
    kind: Mapped[str]
    monitor: Mapped[str]
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    run_id: Mapped[int | None]  # no foreign key: delivery history outlives a deleted run
    thread: Mapped[str | None]  # the incident it belongs to (Slack threads on it)
    payload: Mapped[dict[str, Any]]  # alerts.payload, version 1; never a secret
    idempotency_key: Mapped[str]
    status: Mapped[str]
    attempts: Mapped[int]
    next_attempt_at: Mapped[datetime]  # when pending: due time; when sending: the claim's lease end
    last_error: Mapped[str | None]  # redacted
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    external_id: Mapped[str | None]  # Slack ts, Databricks run_id


class SilenceRow(Base):
    """Mutes matching alerts of one monitor until ``ends_at`` (empty fields match anything)."""

    __tablename__ = "silences"
    __table_args__ = (Index(None, "monitor", "ends_at"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    monitor: Mapped[str]
    check: Mapped[str | None]
    column: Mapped[str | None]
    segment: Mapped[str | None]
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    reason: Mapped[str]
    created_by: Mapped[str | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
