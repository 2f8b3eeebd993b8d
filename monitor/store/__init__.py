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
