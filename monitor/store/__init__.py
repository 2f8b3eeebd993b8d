"""The result store: every run, metric, window profile and reference profile of Driftline.

SQLAlchemy 2.x over SQLite (the default: one file, WAL) or PostgreSQL (``postgresql+psycopg``),
with its schema migrated by Alembic (``Store.open(url)`` or ``Store(url).migrate()``).

>>> from monitor.store import Store
>>> with Store.open("sqlite://") as store:
...     store.latest_reference("churn") is None
True
"""

from monitor.store.engine import normalize_url
from monitor.store.records import RUN_STATUSES, RUN_TRIGGERS, ReferenceRecord, RunRecord, StoredProfile
from monitor.store.store import METRIC_COLUMNS, Store
from monitor.store import alert_models  # noqa: E402,F401  (the alert tables belong to Base.metadata: alembic compares it whole)
from monitor.store import service_models  # noqa: E402,F401  (the service's tables join Base.metadata)

__all__ = [
    "METRIC_COLUMNS",
    "RUN_STATUSES",
    "RUN_TRIGGERS",
    "ReferenceRecord",
    "RunRecord",
    "Store",
    "StoredProfile",
    "normalize_url",
]
