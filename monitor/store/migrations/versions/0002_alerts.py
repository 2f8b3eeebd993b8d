"""Alerting: alert states, the delivery outbox and silences.

Revision ID: 0002_alerts
Revises: 0001
Create Date: 2026-11-21

Branch ``alerts`` (the store upgrades to "heads"). Written by hand, like 0001: no application
imports; constraint names follow ``monitor.store.models.NAMING_CONVENTION``.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002_alerts"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = ("alerts",)
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _one_of(column: str, *values: str) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", ID, nullable=False),
        sa.Column("monitor", sa.Text(), nullable=False),
        sa.Column("check", sa.Text(), nullable=False),
        sa.Column("column", sa.Text(), nullable=False),
        sa.Column("segment", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("severity", sa.Text(), nullable=True),
        sa.Column("consecutive", sa.Integer(), nullable=False),
        sa.Column("healthy_windows", sa.Integer(), nullable=False),
        sa.Column("since", TIMESTAMP, nullable=True),
        sa.Column("last_window_end", TIMESTAMP, nullable=True),
        sa.Column("fired_at", TIMESTAMP, nullable=True),
        sa.Column("resolved_at", TIMESTAMP, nullable=True),
        sa.Column("last_notified_at", TIMESTAMP, nullable=True),
        sa.Column("incident", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("breaches", JSON, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
        sa.UniqueConstraint("monitor", "check", "column", "segment", name=op.f("uq_alerts_monitor_check_column_segment")),
        sa.CheckConstraint(_one_of("status", "ok", "pending", "firing", "resolved"), name=op.f("ck_alerts_status")),
        sa.CheckConstraint(_one_of("severity", "warning", "critical"), name=op.f("ck_alerts_severity")),
    )
    op.create_index(op.f("ix_alerts_monitor_status"), "alerts", ["monitor", "status"])

    op.create_table(
        "deliveries",
        sa.Column("id", ID, nullable=False),
        sa.Column("channel", sa.Text(), nullable=False),
        sa.Column("channel_type", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("monitor", sa.Text(), nullable=False),
        sa.Column("window_start", TIMESTAMP, nullable=False),
        sa.Column("window_end", TIMESTAMP, nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("thread", sa.Text(), nullable=True),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("idempotency_key", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TIMESTAMP, nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("sent_at", TIMESTAMP, nullable=True),
        sa.Column("external_id", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
        # The outbox's last line of defence: one delivery per key, however often a run is redone.
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_deliveries_idempotency_key")),
        sa.CheckConstraint(_one_of("kind", "notify", "retrain"), name=op.f("ck_deliveries_kind")),
        sa.CheckConstraint(_one_of("status", "pending", "sending", "sent", "failed"), name=op.f("ck_deliveries_status")),
    )
    op.create_index(op.f("ix_deliveries_status_next_attempt_at"), "deliveries", ["status", "next_attempt_at"])
    op.create_index(op.f("ix_deliveries_monitor_kind_window_end"), "deliveries", ["monitor", "kind", "window_end"])
    op.create_index(op.f("ix_deliveries_channel_thread"), "deliveries", ["channel", "thread"])

    op.create_table(
        "silences",
        sa.Column("id", ID, nullable=False),
        sa.Column("monitor", sa.Text(), nullable=False),
        sa.Column("check", sa.Text(), nullable=True),
        sa.Column("column", sa.Text(), nullable=True),
        sa.Column("segment", sa.Text(), nullable=True),
        sa.Column("starts_at", TIMESTAMP, nullable=False),
        sa.Column("ends_at", TIMESTAMP, nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_silences")),
    )
    op.create_index(op.f("ix_silences_monitor_ends_at"), "silences", ["monitor", "ends_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_silences_monitor_ends_at"), table_name="silences")
    op.drop_table("silences")
    op.drop_index(op.f("ix_deliveries_channel_thread"), table_name="deliveries")
    op.drop_index(op.f("ix_deliveries_monitor_kind_window_end"), table_name="deliveries")
    op.drop_index(op.f("ix_deliveries_status_next_attempt_at"), table_name="deliveries")
    op.drop_table("deliveries")
    op.drop_index(op.f("ix_alerts_monitor_status"), table_name="alerts")
    op.drop_table("alerts")
