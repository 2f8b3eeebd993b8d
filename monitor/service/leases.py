"""Leases in the store: which `driftline serve` process may run a monitor.

One row per lease name (``monitor:<name>``). Taking a lease is one conditional upsert, atomic on SQLite and
PostgreSQL alike: insert it, or take it over when it is ours already or has expired. The holder
renews it (a heartbeat, and every run's save transaction, see ``fence``) and deletes it when it
stops; a holder that dies without a word loses it when ``expires_at`` passes.

Expiry compares the clocks of the processes involved: keep hosts in NTP sync and the TTL well
above their skew (the default 60 s is plenty).
"""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from monitor.store import Store
from monitor.store.service_models import LeaseRow
from monitor.store.types import utcnow

def monitor_lease(name: str) -> str:
    return f"monitor:{name}"


def make_owner() -> str:
    """``host:pid:random``: readable in logs, unique even when a container reuses a pid."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(2)}"


class LeaseLost(RuntimeError):
    """This process no longer holds the lease it needs: another process runs the monitor now."""


@dataclass(frozen=True)
class LeaseState:
    name: str
    held: bool
    owner: str | None
    expires_at: datetime | None


class Leases:
    """The leases of one owner (one `serve` process) in one store."""

    def __init__(self, store: Store, owner: str, ttl: timedelta) -> None:
        if ttl <= timedelta(0):
            raise ValueError("the lease TTL must be positive")
        self.store = store
        self.owner = owner
        self.ttl = ttl

    def acquire(self, name: str, now: datetime | None = None) -> LeaseState:
        """Take or renew ``name``; when another owner holds it, say who and until when."""
        now = now or utcnow()
        values = {"name": name, "owner": self.owner, "acquired_at": now, "expires_at": now + self.ttl}
        with self.store.session() as session:
            stmt = _insert(session).values(values)
            stmt = stmt.on_conflict_do_update(
                index_elements=["name"],
                set_={
                    "owner": stmt.excluded.owner,
                    # A renewal keeps the time it was first taken.
                    "acquired_at": case((LeaseRow.owner == stmt.excluded.owner, LeaseRow.acquired_at), else_=stmt.excluded.acquired_at),
                    "expires_at": stmt.excluded.expires_at,
                },
                where=or_(LeaseRow.owner == stmt.excluded.owner, LeaseRow.expires_at <= stmt.excluded.acquired_at),
            )
            taken = session.execute(stmt.returning(LeaseRow.owner)).scalar_one_or_none()
            if taken is not None:
                return LeaseState(name, True, self.owner, now + self.ttl)
            row = session.execute(select(LeaseRow.owner, LeaseRow.expires_at).where(LeaseRow.name == name)).one_or_none()
        if row is None:  # released between the two statements: try again next time
            return LeaseState(name, False, None, None)
        return LeaseState(name, False, row.owner, row.expires_at)

    def fence(self, session: Session, name: str, now: datetime | None = None) -> None:
        """Inside a write transaction: renew ``name`` or raise ``LeaseLost``.

        Called in the transaction that saves a run, it makes the save conditional on holding
        the lease. The UPDATE also locks the lease row on PostgreSQL (SQLite's writer holds the
        whole database), so nobody can take the lease over before this transaction commits.
        """
        now = now or utcnow()
        stmt = (
            update(LeaseRow)
            .where(LeaseRow.name == name, LeaseRow.owner == self.owner)
            .values(expires_at=now + self.ttl)
        )
        if session.execute(stmt).rowcount != 1:
            raise LeaseLost(f"{self.owner} no longer holds the lease {name!r}: not saving")

    def release(self, name: str) -> None:
        with self.store.session() as session:
            session.execute(delete(LeaseRow).where(LeaseRow.name == name, LeaseRow.owner == self.owner))


def holders(store: Store) -> dict[str, tuple[str, datetime]]:
    """Every lease: name -> (owner, expires_at)."""
    with store.engine.connect() as connection:
        rows = connection.execute(select(LeaseRow.name, LeaseRow.owner, LeaseRow.expires_at)).all()
    return {row.name: (row.owner, row.expires_at) for row in rows}


def _insert(session: Session) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(LeaseRow)
    return sqlite.insert(LeaseRow)  # the store supports these two only
