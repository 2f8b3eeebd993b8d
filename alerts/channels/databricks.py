"""Start a Databricks job (Jobs API 2.1 ``run-now``) to retrain a model.

The request carries ``job_id``, ``job_parameters`` (the channel's own plus the drift context,
all strings: ``driftline_monitor``, ``driftline_window_start``, ``driftline_window_end``,
``driftline_reason``, ``driftline_checks``, ``driftline_columns``, ``driftline_dashboard_url``,
``driftline_payload``: the whole payload as JSON) and an ``idempotency_token`` built from the
monitor and the window: Databricks returns the existing run for a token it has seen, so a
retried or resumed delivery never starts a second run.
"""

from __future__ import annotations

import json
from typing import Any

from alerts.channels import DeliveryError, SendContext, SendResult, Secrets
from alerts.channels._http import post
from alerts.payload import databricks_token

RUN_NOW = "/api/2.1/jobs/run-now"


def job_parameters(payload: dict[str, Any], fixed: dict[str, str]) -> dict[str, str]:
    alerts = payload.get("alerts", [])
    return {
        **fixed,
        "driftline_monitor": payload["monitor"],
        "driftline_window_start": payload["window"]["start"],
        "driftline_window_end": payload["window"]["end"],
        "driftline_reason": payload.get("reason", "retrain"),
        "driftline_checks": ",".join(sorted({a["check"] for a in alerts})),
        "driftline_columns": ",".join(sorted({a["column"] for a in alerts if a["column"]})),
        "driftline_dashboard_url": (payload.get("links") or {}).get("dashboard") or "",
        "driftline_payload": json.dumps(payload, separators=(",", ":"), sort_keys=True),
    }


class DatabricksJobChannel:
    def __init__(self, name: str, spec: Any, secrets: Secrets) -> None:
        self.name = name
        self.spec = spec
        self.secrets = secrets

    def send(self, payload: dict[str, Any], context: SendContext) -> SendResult:
        token = self.secrets.get(self.spec.token_env, self.name)
        body = {
            "job_id": self.spec.job_id,
            "job_parameters": job_parameters(payload, dict(self.spec.job_parameters)),
            "idempotency_token": databricks_token(payload["monitor"], payload["window"]["start"], payload["window"]["end"]),
        }
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json", "User-Agent": "driftline-alerts"}
        answer = post(self.spec.host + RUN_NOW, json.dumps(body).encode(), headers, self.spec.timeout_s, self.secrets.redactor, f"databricks job {self.name!r}")
        try:
            run_id = json.loads(answer.body)["run_id"]
        except (ValueError, KeyError, TypeError):
            raise DeliveryError(
                self.secrets.redactor(f"databricks job {self.name!r}: answer without run_id: {answer.body[:200]}"), retryable=False
            ) from None
        return SendResult(external_id=str(run_id), info=f"run_id {run_id}")
