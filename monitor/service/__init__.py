"""`driftline serve` and `driftline status`: scheduled checks that survive restarts, late data
and each other. See ``monitor.service.service`` for the design."""

from monitor.service.leases import LeaseLost, Leases, LeaseState, make_owner, monitor_lease
from monitor.service.plan import Schedule, backoff, label_rechecks, pending_windows, schedule_of
from monitor.service.service import EXIT_LOCKED, Service, ServiceOptions, install_stop_handlers, open_store
from monitor.service.status import MonitorStatus, monitor_statuses

__all__ = [
    "EXIT_LOCKED",
    "LeaseLost",
    "LeaseState",
    "Leases",
    "MonitorStatus",
    "Schedule",
    "Service",
    "ServiceOptions",
    "backoff",
    "install_stop_handlers",
    "label_rechecks",
    "make_owner",
    "monitor_lease",
    "monitor_statuses",
    "open_store",
    "pending_windows",
    "schedule_of",
]
