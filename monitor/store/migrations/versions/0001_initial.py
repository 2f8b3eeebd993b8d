"""The initial result store: runs, metric results, window profiles and reference profiles.

Revision ID: 0001
Revises:
Create Date: 2026-11-21

Written by hand to be read. Types are spelled in SQLAlchemy's own terms (timestamps are
timezone-aware; the application's UTCDateTime only adds UTC conversion in Python), so this file
never imports application code that may change later. Constraint names follow the naming
convention of ``monitor.store.models`` and are final (``op.f``).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite auto-increments INTEGER only
TIMESTAMP = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _one_of(column: str, *values: str) -> str:
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", ID, nullable=False),
        sa.Column("monitor", sa.Text(), nullable=False),
        sa.Column("window_start", TIMESTAMP, nullable=False),
        sa.Column("window_end", TIMESTAMP, nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("trigger", sa.Text(), nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("finished_at", TIMESTAMP, nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("bad_rows", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("config_fingerprint", sa.Text(), nullable=False),
        sa.Column("reference_version", sa.Integer(), nullable=True),
        sa.Column("driftline_version", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
        # Two writers of one window: the second one updates, it never adds a run.
        sa.UniqueConstraint(
            "monitor", "window_start", "window_end", name=op.f("uq_runs_monitor_window_start_window_end")
        ),
        sa.CheckConstraint(_one_of("status", "ok", "breach", "no_data", "failed"), name=op.f("ck_runs_status")),
        sa.CheckConstraint(_one_of('"trigger"', "run", "backfill", "schedule", "demo"), name=op.f("ck_runs_trigger")),
    )
    op.create_index(op.f("ix_runs_monitor_window_start"), "runs", ["monitor", "window_start"])

    op.create_table(
        "metric_results",
        sa.Column("id", ID, nullable=False),
        sa.Column("run_id", ID, nullable=False),
        # The run's monitor and window, copied for dashboard queries without a join.
        sa.Column("monitor", sa.Text(), nullable=False),
        sa.Column("window_start", TIMESTAMP, nullable=False),
        sa.Column("window_end", TIMESTAMP, nullable=False),
        sa.Column("segment", sa.Text(), nullable=False),
        sa.Column("check", sa.Text(), nullable=False),
        sa.Column("column", sa.Text(), nullable=False),
        sa.Column("metric", sa.Text(), nullable=False),
        sa.Column("value", sa.Double(), nullable=True),
        sa.Column("threshold", sa.Double(), nullable=True),
        sa.Column("direction", sa.Text(), nullable=True),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("details", JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_metric_results")),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_metric_results_run_id_runs"), ondelete="CASCADE"
        ),
        sa.UniqueConstraint(
            "run_id", "segment", "check", "column", "metric",
            name=op.f("uq_metric_results_run_id_segment_check_column_metric"),
        ),
        sa.CheckConstraint(
            _one_of("status", "ok", "breach", "info", "no_data", "error"), name=op.f("ck_metric_results_status")
        ),
        sa.CheckConstraint(_one_of("direction", "max", "min"), name=op.f("ck_metric_results_direction")),
    )
    op.create_index(
        op.f("ix_metric_results_monitor_check_window_start"), "metric_results", ["monitor", "check", "window_start"]
    )
    op.create_index(
        op.f("ix_metric_results_monitor_column_window_start"), "metric_results", ["monitor", "column", "window_start"]
    )

    op.create_table(
        "window_profiles",
        sa.Column("id", ID, nullable=False),
        sa.Column("run_id", ID, nullable=False),
        sa.Column("monitor", sa.Text(), nullable=False),
        sa.Column("window_start", TIMESTAMP, nullable=False),
        sa.Column("window_end", TIMESTAMP, nullable=False),
        sa.Column("segment", sa.Text(), nullable=False),
        sa.Column("column", sa.Text(), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_window_profiles")),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_window_profiles_run_id_runs"), ondelete="CASCADE"
        ),
        sa.UniqueConstraint("run_id", "segment", "column", name=op.f("uq_window_profiles_run_id_segment_column")),
    )
    op.create_index(
        op.f("ix_window_profiles_monitor_column_window_start"), "window_profiles", ["monitor", "column", "window_start"]
    )

    op.create_table(
        "reference_profiles",
        sa.Column("id", ID, nullable=False),
        sa.Column("monitor", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("fingerprint", sa.Text(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reference_profiles")),
        sa.UniqueConstraint("monitor", "version", name=op.f("uq_reference_profiles_monitor_version")),
        sa.UniqueConstraint("monitor", "fingerprint", name=op.f("uq_reference_profiles_monitor_fingerprint")),
    )


def downgrade() -> None:
    op.drop_table("reference_profiles")
    op.drop_index(op.f("ix_window_profiles_monitor_column_window_start"), table_name="window_profiles")
    op.drop_table("window_profiles")
    op.drop_index(op.f("ix_metric_results_monitor_column_window_start"), table_name="metric_results")
    op.drop_index(op.f("ix_metric_results_monitor_check_window_start"), table_name="metric_results")
    op.drop_table("metric_results")
    op.drop_index(op.f("ix_runs_monitor_window_start"), table_name="runs")
    op.drop_table("runs")
