"""Join the alerts and service branches: one head again.

Revision ID: 0004_merge
Revises: 0002_alerts, 0003_service
Create Date: 2026-11-21

The two features were built side by side, each as a branch off 0001; this revision only merges
them, so later migrations have one parent and `alembic heads` shows one head.
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0004_merge"
down_revision: str | Sequence[str] | None = ("0002_alerts", "0003_service")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
