"""The versioned JSON payload of a delivery: what webhooks receive and what Slack messages show.

Version 1 (``"schema": "driftline.alert", "version": 1``); fields are only ever added within a
version. A payload holds no secret: it is stored in the outbox as it is and rendered per channel at
send time.

.. code-block:: text

    schema, version       "driftline.alert", 1
    kind                  "notify" | "retrain"
    idempotency_key       the same on every attempt of one delivery (also the Idempotency-Key header)
    monitor, model_version
    window                {"start": ISO 8601, "end": ISO 8601}  (UTC, end exclusive)
    reason                "first" | "new_breaches" | "repeat_due" | "resolved" | "retrain"
    status                "firing" | "resolved"
    incident              id of the group of alerts this message belongs to (Slack threads on it)
    closes_incident       true when nothing of the incident is firing any more
    alerts                alerts firing now: [{check, column, segment, severity, state, reason,
                          since, windows, breaches: [{metric, value, threshold, direction, ratio}],
                          link}]
    resolved, ongoing     alerts resolved by this window; alerts still firing, notified earlier
    top_features          drift verdicts of the whole population, most moved first:
                          [{column, metric, value, threshold, ratio, breach}]
    links                 {"dashboard": URL | null, "alerts": URL | null}
    retrain               {"sustained_windows": n, "checks": [...]} or null
    generated_at          ISO 8601
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any

from alerts.links import dashboard_link, page_for
from alerts.policy import Alert, Notification, RetrainDecision
from checks.results import ALL, MetricResult, Status

SCHEMA = "driftline.alert"
VERSION = 1
TOP_FEATURES = 5


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def top_moved(results: Iterable[MetricResult], n: int = TOP_FEATURES) -> list[dict[str, Any]]:
    """The ``n`` features whose drift verdicts moved most (over the whole population)."""
    verdicts = [
        r for r in results
        if r.check == "drift" and r.segment == ALL and r.threshold is not None
        and r.status in (Status.OK, Status.BREACH) and isinstance(r.details.get("rank"), int)
    ]  # fmt: skip
    verdicts.sort(key=lambda r: r.details["rank"])
    out = []
    for r in verdicts[:n]:
        ratio = r.details.get("severity")
        out.append({
            "column": r.column, "metric": r.metric, "value": r.value, "threshold": r.threshold,
            "ratio": ratio if isinstance(ratio, (int, float)) and math.isfinite(ratio) else None,
            "breach": r.status is Status.BREACH,
        })  # fmt: skip
    return out


def _alert(alert: Alert, dashboard_url: str | None, start: datetime, end: datetime) -> dict[str, Any]:
    key = alert.key
    return {
        "check": key.check,
        "column": key.column,
        "segment": key.segment,
        "severity": alert.severity,
        "state": alert.status.value,
        "reason": alert.reason.value,
        "since": iso(alert.since),
        "windows": alert.consecutive,
        "breaches": [b.to_dict() for b in alert.breaches],
        "link": dashboard_link(
            dashboard_url, page_for(key.check), key.monitor, column=key.column or None,
            segment=key.segment, start=min(alert.since or start, start), end=end,
        ),  # fmt: skip
    }


def notification_payload(
    notification: Notification,
    *,
    dashboard_url: str | None = None,
    model_version: str | None = None,
    top_features: Sequence[dict[str, Any]] = (),
    retrain: RetrainDecision | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    start, end = notification.window_start, notification.window_end
    n = notification
    return {
        "schema": SCHEMA,
        "version": VERSION,
        "kind": "notify",
        "monitor": n.monitor,
        "model_version": model_version,
        "window": {"start": iso(start), "end": iso(end)},
        "reason": n.reason.value,
        "status": "firing" if n.firing else "resolved",
        "incident": n.incident,
        "closes_incident": n.closes_incident,
        "alerts": [_alert(a, dashboard_url, start, end) for a in n.firing],
        "resolved": [_alert(a, dashboard_url, start, end) for a in n.resolved],
        "ongoing": [_alert(a, dashboard_url, start, end) for a in n.ongoing],
        "top_features": list(top_features),
        "links": {
            "dashboard": dashboard_link(dashboard_url, "overview", n.monitor, start=start, end=end),
            "alerts": dashboard_link(dashboard_url, "alerts", n.monitor, start=start, end=end),
        },
        "retrain": None if retrain is None else {"sustained_windows": retrain.sustained_windows, "checks": sorted({a.key.check for a in retrain.alerts})},
        "generated_at": iso(now or datetime.now(timezone.utc)),
    }


def retrain_payload(
    decision: RetrainDecision,
    *,
    dashboard_url: str | None = None,
    model_version: str | None = None,
    top_features: Sequence[dict[str, Any]] = (),
    now: datetime | None = None,
) -> dict[str, Any]:
    start, end = decision.window_start, decision.window_end
    return {
        "schema": SCHEMA,
        "version": VERSION,
        "kind": "retrain",
        "monitor": decision.monitor,
        "model_version": model_version,
        "window": {"start": iso(start), "end": iso(end)},
        "reason": "retrain",
        "status": "firing",
        "incident": f"retrain:{decision.monitor}@{iso(start)}",
        "closes_incident": False,
        "alerts": [_alert(a, dashboard_url, start, end) for a in decision.alerts],
        "resolved": [],
        "ongoing": [],
        "top_features": list(top_features),
        "links": {
            "dashboard": dashboard_link(dashboard_url, "drift", decision.monitor, start=start, end=end),
            "alerts": dashboard_link(dashboard_url, "alerts", decision.monitor, start=start, end=end),
        },
        "retrain": {"sustained_windows": decision.sustained_windows, "checks": sorted({a.key.check for a in decision.alerts})},
        "generated_at": iso(now or datetime.now(timezone.utc)),
    }


def filtered(payload: dict[str, Any], checks: Sequence[str], min_severity: str, segments: bool = True) -> dict[str, Any] | None:
    """The payload a route receives: only its checks, severities (and segments); None when nothing is left."""

    def keep(alert: dict[str, Any]) -> bool:
        if checks and alert["check"] not in checks:
            return False
        if not segments and alert["segment"] != ALL:
            return False
        return min_severity == "warning" or alert["severity"] == "critical"

    out = {**payload, **{part: [a for a in payload[part] if keep(a)] for part in ("alerts", "resolved", "ongoing")}}
    if not out["alerts"] and not out["resolved"]:
        return None
    out["status"] = "firing" if out["alerts"] else "resolved"
    if out["reason"] == "new_breaches" and not out["ongoing"]:
        out["reason"] = "first"  # nothing this route was told about is still firing
    return out


def idempotency_key(kind: str, monitor: str, window_start: str, window_end: str, channel: str, content: Any) -> str:
    """Stable for one delivery: the same run re-deciding the same thing yields the same key."""
    digest = hashlib.sha256(
        json.dumps([kind, monitor, window_start, window_end, channel, content], sort_keys=True, default=str).encode()
    ).hexdigest()
    return f"dl1-{kind}-{digest[:40]}"


def databricks_token(monitor: str, window_start: str, window_end: str) -> str:
    """Databricks' ``idempotency_token`` (at most 64 characters): one run per monitor and window."""
    return "driftline-" + hashlib.sha256(f"{monitor}|{window_start}|{window_end}".encode()).hexdigest()[:48]
