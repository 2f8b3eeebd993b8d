"""`driftline status`: every monitor's last window, lag, last error, next run and lease holder."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from monitor.config import Project
from monitor.service.leases import holders, monitor_lease
from monitor.service.plan import schedule_of
from monitor.store import Store
from monitor.store.service_models import ServiceRunRow
from monitor.windows import Window, as_utc


@dataclass(frozen=True)
class MonitorStatus:
    monitor: str
    last_window: Window | None
    status: str | None
    lag: timedelta | None
    """now - the end of the last window checked."""
    last_error: str | None
    """The error of the latest window whose run is still failed."""
    failed_window: Window | None
    next_run: datetime | None
    schedule: str
    lease_holder: str | None
    lease_expires: datetime | None
    last_owner: str | None
    """The process that ran the last window, when the service ran it."""
    overrun: bool

    def as_dict(self) -> dict[str, Any]:
        def iso(value: Any) -> Any:
            return value.isoformat() if isinstance(value, datetime) else value

        return {
            "monitor": self.monitor,
            "last_window_start": iso(self.last_window.start) if self.last_window else None,
            "last_window_end": iso(self.last_window.end) if self.last_window else None,
            "status": self.status,
            "lag_seconds": self.lag.total_seconds() if self.lag is not None else None,
            "last_error": self.last_error,
            "failed_window_start": iso(self.failed_window.start) if self.failed_window else None,
            "next_run": iso(self.next_run),
            "schedule": self.schedule,
            "lease_holder": self.lease_holder,
            "lease_expires": iso(self.lease_expires),
            "last_owner": self.last_owner,
            "overrun": self.overrun,
        }


def monitor_statuses(project: Project, store: Store, now: datetime) -> list[MonitorStatus]:
    now = as_utc(now)
    leases = holders(store)
    out = []
    for mon in project.monitors:
        last = store.last_run(mon.name)
        failed = store.runs(mon.name, status="failed", limit=1)
        schedule = schedule_of(mon)
        holder = leases.get(monitor_lease(mon.name))
        if holder is not None and holder[1] <= now:
            holder = None  # expired: nobody serves it
        owner, overrun = None, False
        if last is not None and last.id is not None:
            with store.engine.connect() as connection:
                row = connection.execute(
                    select(ServiceRunRow.owner, ServiceRunRow.overrun)
                    .where(ServiceRunRow.run_id == last.id)
                    .order_by(ServiceRunRow.id.desc())
                    .limit(1)
                ).one_or_none()
            if row is not None:
                owner, overrun = row.owner, bool(row.overrun)
        out.append(
            MonitorStatus(
                monitor=mon.name,
                last_window=last.window if last else None,
                status=last.status if last else None,
                lag=(now - last.window.end) if last else None,
                last_error=failed[0].error if failed else None,
                failed_window=failed[0].window if failed else None,
                next_run=schedule.next_run(now),
                schedule=schedule.text,
                lease_holder=holder[0] if holder else None,
                lease_expires=holder[1] if holder else None,
                last_owner=owner,
                overrun=overrun,
            )
        )
    return out


def human(delta: timedelta | None) -> str:
    """``3d 4h``, ``5m 2s``, ``-``.

    >>> human(timedelta(hours=26, minutes=5))
    '1d 2h'
    >>> human(timedelta(seconds=42))
    '42s'
    """
    if delta is None:
        return "-"
    seconds = int(delta.total_seconds())
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size or (unit == "s" and not parts):
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
        if len(parts) == 2:
            break
    return sign + " ".join(parts)


def table(rows: list[MonitorStatus], now: datetime) -> str:
    headers = ["MONITOR", "LAST WINDOW (UTC)", "STATUS", "LAG", "NEXT RUN (UTC)", "LEASE", "LAST ERROR"]
    lines = []
    for r in rows:
        window = f"{r.last_window.start:%Y-%m-%d %H:%M:%S} .. {r.last_window.end:%H:%M:%S}" if r.last_window else "-"
        status = (r.status or "-") + (" (overrun)" if r.overrun else "")
        lease = f"{r.lease_holder} ({human(r.lease_expires - now)} left)" if r.lease_holder and r.lease_expires else "- (not served)"
        error = "-"
        if r.last_error:
            error = f"{r.failed_window.start:%Y-%m-%d %H:%M:%S}: {r.last_error}" if r.failed_window else r.last_error
            error = error if len(error) <= 120 else error[:117] + "..."
        next_run = f"{r.next_run:%Y-%m-%d %H:%M:%S}" if r.next_run else "-"
        lines.append([r.monitor, window, status, human(r.lag), next_run, lease, error])
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(headers)]
    render = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([render(headers), *(render(line) for line in lines)])
