"""The store's domain types: what the runner writes and the dashboards read.

They are plain frozen dataclasses, kept apart from the ORM rows of ``models`` so that nothing
outside the store holds a database session or a lazily loaded attribute.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from monitor.windows import Window, as_utc

RUN_STATUSES = ("ok", "breach", "no_data", "failed")
"""``ok``: every check passed; ``breach``: at least one breached; ``no_data``: the window was
empty; ``failed``: the pipeline itself failed and ``error`` says why."""

RUN_TRIGGERS = ("run", "backfill", "schedule", "demo")
"""What started a run: ``driftline run``, a backfill, the scheduler or the demo."""


@dataclass(frozen=True)
class RunRecord:
    """One run of one monitor over one window."""

    monitor: str
    window: Window
    status: str
    started_at: datetime
    finished_at: datetime
    rows: int = 0
    bad_rows: int = 0
    error: str | None = None
    config_fingerprint: str = ""
    reference_version: int | None = None
    driftline_version: str = ""
    trigger: str = "run"
    id: int | None = None

    def __post_init__(self) -> None:
        if self.status not in RUN_STATUSES:
            raise ValueError(f"run status {self.status!r} is not one of {', '.join(RUN_STATUSES)}")
        if self.trigger not in RUN_TRIGGERS:
            raise ValueError(f"run trigger {self.trigger!r} is not one of {', '.join(RUN_TRIGGERS)}")
        object.__setattr__(self, "started_at", as_utc(self.started_at))
        object.__setattr__(self, "finished_at", as_utc(self.finished_at))

    @property
    def duration_s(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()


@dataclass(frozen=True)
class ReferenceRecord:
    """A stored reference profile: learned once, versioned 1, 2, 3... per monitor."""

    monitor: str
    fingerprint: str
    version: int
    created_at: datetime
    rows: int
    payload: dict[str, Any]

    def __post_init__(self) -> None:
        object.__setattr__(self, "created_at", as_utc(self.created_at))


@dataclass(frozen=True)
class StoredProfile:
    """A window's serialised profile of one column in one segment."""

    segment: str
    column: str
    payload: dict[str, Any]
