"""ORM rows of ``driftline serve``: leases between processes and the log of the runs it committed.

Registered on the same ``Base.metadata`` as ``monitor.store.models`` (``monitor.store`` imports
this module, so the metadata Alembic compares with is always complete). Migration:
``migrations/versions/0003_service.py`` (branch ``service``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index
from sqlalchemy.orm import Mapped, mapped_column

from monitor.store.models import RUN_STATUS_VALUES, Base, _one_of
from monitor.store.types import BigIntId

SERVICE_RUN_REASONS = ("schedule", "retry", "label_recheck")
"""Why the service ran a window: it was due (first attempt, or caught up after a restart), an
earlier attempt failed, or its labels were due (``label_lag``)."""


class LeaseRow(Base):
    """Which `serve` process may run a monitor (name ``monitor:<name>``).

    A lease is taken with one conditional upsert (free, expired or already ours), renewed by a
    heartbeat and by every run's save transaction, and deleted when its owner stops.
    """

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(primary_key=True)
    owner: Mapped[str]
    acquired_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class ServiceRunRow(Base):
    """One run the service committed: written in the run's own transaction, never updated.

    ``runs`` holds one row per window (a re-run replaces it); this append-only log says who ran
    each window, why and for how long, so double work between processes would show here.
    """

    __tablename__ = "service_runs"
    __table_args__ = (
        Index(None, "monitor", "window_start"),
        CheckConstraint(_one_of("reason", SERVICE_RUN_REASONS), name="reason"),
        CheckConstraint(_one_of("status", RUN_STATUS_VALUES), name="status"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    run_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("runs.id", ondelete="CASCADE"))
    monitor: Mapped[str]
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    owner: Mapped[str]
    reason: Mapped[str]
    attempt: Mapped[int]
    status: Mapped[str]
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime]
    duration_s: Mapped[float]
    overrun: Mapped[bool]
