"""The service: leases between `driftline serve` processes and the log of the runs they committed.

Revision ID: 0003_service
Revises: 0001
Create Date: 2026-11-21

A branch of its own (label ``service``) beside the alerts branch: ``Store.migrate()`` upgrades
to "heads". Written by hand like 0001: SQLAlchemy's own types, final constraint names.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_service"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = ("service",)
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite auto-increments INTEGER only
TIMESTAMP = sa.DateTime(timezone=True)


def _one_of(column: str, *values: str) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("owner", sa.Text(), nullable=False),
        sa.Column("acquired_at", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leases")),
    )
    op.create_table(
        "service_runs",
        sa.Column("id", ID, nullable=False),
        sa.Column("run_id", ID, nullable=False),
        sa.Column("monitor", sa.Text(), nullable=False),
        sa.Column("window_start", TIMESTAMP, nullable=False),
        sa.Column("window_end", TIMESTAMP, nullable=False),
        sa.Column("owner", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("finished_at", TIMESTAMP, nullable=False),
        sa.Column("duration_s", sa.Double(), nullable=False),
        sa.Column("overrun", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_runs")),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_service_runs_run_id_runs"), ondelete="CASCADE"
        ),
        sa.CheckConstraint(
            _one_of("reason", "schedule", "retry", "label_recheck"), name=op.f("ck_service_runs_reason")
        ),
        sa.CheckConstraint(
            _one_of("status", "ok", "breach", "no_data", "failed"), name=op.f("ck_service_runs_status")
        ),
    )
    op.create_index(op.f("ix_service_runs_monitor_window_start"), "service_runs", ["monitor", "window_start"])


def downgrade() -> None:
    op.drop_index(op.f("ix_service_runs_monitor_window_start"), table_name="service_runs")
    op.drop_table("service_runs")
    op.drop_table("leases")
