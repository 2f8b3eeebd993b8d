"""Links from alerts straight to the right dashboard page.

``{dashboard_url}/{page}?monitor=...&column=...&segment=...&start=ISO&end=ISO``; the dashboard
reads these query parameters. Without a ``dashboard_url`` there are no links.

>>> from datetime import datetime, timezone
>>> t = datetime(2026, 3, 1, tzinfo=timezone.utc)
>>> dashboard_link("https://dl.example/", "drift", "credit risk", column="income", segment="region=EU", start=t)
'https://dl.example/drift?monitor=credit+risk&column=income&segment=region%3DEU&start=2026-03-01T00%3A00%3A00Z'
>>> dashboard_link(None, "drift", "credit") is None
True
"""

from __future__ import annotations

from datetime import datetime, timezone
from urllib.parse import urlencode

PAGES = ("overview", "kpis", "drift", "quality", "alerts", "runs")

# The page that shows each check best.
_PAGE_OF_CHECK = {
    "drift": "drift", "prediction_drift": "drift", "target_drift": "drift",
    "quality": "quality", "no_data": "quality",
    "latency": "kpis", "performance": "kpis", "kpi": "kpis", "prediction": "kpis",
    "pipeline": "runs", "freshness": "runs",
}  # fmt: skip


def page_for(check: str) -> str:
    return _PAGE_OF_CHECK.get(check, "overview")


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def dashboard_link(
    base: str | None,
    page: str,
    monitor: str,
    *,
    column: str | None = None,
    segment: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> str | None:
    """The URL of ``page`` filtered to a monitor (and column, segment, time range); None without a base."""
    if not base:
        return None
    if page not in PAGES:
        raise ValueError(f"unknown dashboard page {page!r}; pages: {', '.join(PAGES)}")
    query: list[tuple[str, str]] = [("monitor", monitor)]
    if column:
        query.append(("column", column))
    if segment and segment != "*":
        query.append(("segment", segment))
    if start is not None:
        query.append(("start", _iso(start)))
    if end is not None:
        query.append(("end", _iso(end)))
    return f"{base.rstrip('/')}/{page}?{urlencode(query)}"
