"""End to end: logs -> Runner -> results + alert states + outbox (one transaction) -> channels.

A small generated log (income shifts from day 3, day 6 is empty, and day 7 fails: the logs are
gone) is
backfilled through the real Runner and its default hooks, on SQLite and on PostgreSQL; then the
outbox is delivered to local Slack, webhook and Databricks servers.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from http_servers import DatabricksJobs, SlackApi, WebhookReceiver, write_project
from monitor.config import load_config
from monitor.notify import alerts, deliver_pending, deliveries
from monitor.runner import Runner
from monitor.store import Store

UTC = timezone.utc
START = datetime(2026, 3, 1, tzinfo=UTC)
SHIFT_DAY, EMPTY_DAY, BROKEN_DAY, DAYS = 3, 6, 7, 8
ENV = {"SLACK_BOT_TOKEN": "xoxb-e2e-token", "HOOK_SECRET": "whsec-e2e", "DBX_TOKEN": "dapi-e2e"}


def _frame(rng: np.random.Generator, day: int, rows: int, shifted: bool) -> pd.DataFrame:
    ts = START + timedelta(days=day) + pd.to_timedelta(np.sort(rng.uniform(0, 86399, rows)), unit="s")
    return pd.DataFrame({
        "ts": ts,
        "income": rng.lognormal(10.9, 0.45, rows) * (1.6 if shifted else 1.0),
        "age": rng.integers(18, 80, rows),
        "region": rng.choice(["NA", "EU"], rows, p=[0.6, 0.4]),
    })  # fmt: skip


def build_logs(folder: Path) -> None:
    rng = np.random.default_rng(5)
    _frame(rng, -30, 6000, False).drop(columns=["ts"]).to_parquet(folder / "reference.parquet")
    for day in range(BROKEN_DAY):
        part = folder / "logs" / f"date={(START + timedelta(days=day)):%Y-%m-%d}"
        part.mkdir(parents=True)
        if day == EMPTY_DAY:
            _frame(rng, day, 10, False).iloc[0:0].to_parquet(part / "part-0.parquet")
        else:
            _frame(rng, day, 1500, day >= SHIFT_DAY).to_parquet(part / "part-0.parquet")


MONITOR = {
    "columns": {"timestamp": "ts", "numeric": ["income", "age"], "categorical": ["region"]},
    "window": "1d",
    "checks": {"drift": {}, "quality": {}},
}


def project_for(folder: Path, slack: SlackApi, hook: WebhookReceiver, jobs: DatabricksJobs, store_url: str | None) -> Path:
    channels = {
        "slack": {"type": "slack", "token_env": "SLACK_BOT_TOKEN", "channel": "#ml", "base_url": slack.base_url, "timeout_s": 5},
        "hook": {"type": "webhook", "url": hook.url + "/driftline", "secret_env": "HOOK_SECRET", "timeout_s": 5},
        "pager": {"type": "webhook", "url": hook.url + "/pager", "secret_env": "PAGER_SECRET_NOT_SET", "timeout_s": 5},
        "retrain": {"type": "databricks_job", "host": jobs.url, "token_env": "DBX_TOKEN", "job_id": 42, "timeout_s": 5},
    }
    alerts_config = {
        "routes": [{"channel": "slack"}, {"channel": "hook"}, {"channel": "pager", "min_severity": "critical"}],
        "repeat_interval": "1d",
        "retrain": {"channel": "retrain", "sustained_windows": 2, "cooldown": "7d", "checks": ["drift"]},
    }
    return write_project(folder, channels, alerts_config, store_url=store_url, monitor=MONITOR)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest) -> str | None:
    return None if request.param == "sqlite" else request.getfixturevalue("pg_url")


@pytest.fixture
def fakes() -> Any:
    slack, hook, jobs = SlackApi(ENV["SLACK_BOT_TOKEN"]), WebhookReceiver(ENV["HOOK_SECRET"]), DatabricksJobs(ENV["DBX_TOKEN"])
    yield slack, hook, jobs
    for server in (slack, hook, jobs):
        server.close()


def test_runner_to_channels(tmp_path: Path, store_url: str | None, fakes: Any) -> None:
    slack, hook, jobs = fakes
    build_logs(tmp_path)
    project = load_config(project_for(tmp_path, slack, hook, jobs, store_url))
    store = Store.open(project.store_url)
    runner = Runner(project, store)  # default hooks: the alert outbox
    mon = project.monitor("credit")
    outcomes = runner.backfill(mon, START, START + timedelta(days=BROKEN_DAY))
    (tmp_path / "logs").rename(tmp_path / "logs.moved")  # the source disappears: the next run fails
    outcomes.append(runner.run_window(mon, _window(BROKEN_DAY)))
    assert [o.run.status for o in outcomes] == ["ok"] * SHIFT_DAY + ["breach"] * 3 + ["no_data", "failed"]

    # the outbox was written with the results: before anything is sent
    queued = deliveries(store, limit=100)
    assert queued and {d.status for d in queued} == {"pending"}
    report = deliver_pending(project, store, env=ENV)
    assert report.failed == len([d for d in queued if d.channel == "pager"]) >= 1
    pager = [d for d in deliveries(store, limit=100) if d.channel == "pager"]
    assert all("PAGER_SECRET_NOT_SET is not set" in (d.last_error or "") for d in pager)

    # webhook: day 3 announces the drift; day 6 the empty window; day 7 the failed run
    by_day = {a["window"]["start"][:10]: a for a in hook.actions}
    assert sorted(by_day) == ["2026-03-04", "2026-03-07", "2026-03-08"]
    first = by_day["2026-03-04"]
    assert first["reason"] == "first" and any(a["check"] == "drift" and a["column"] == "income" for a in first["alerts"])
    assert first["top_features"][0]["column"] == "income"
    empty = by_day["2026-03-07"]
    assert [a["check"] for a in empty["alerts"]] == ["no_data"] and empty["reason"] == "new_breaches"
    failed = by_day["2026-03-08"]
    assert [a["check"] for a in failed["alerts"]] == ["pipeline"] and "error" in json.dumps(failed["alerts"][0]["breaches"])
    # the drift alert is inhibited while the failures fire, and still firing underneath
    income = next(a for a in alerts(store, "credit") if a.key.check == "drift" and a.key.column == "income" and a.key.segment == "*")
    assert income.status.value == "firing" and income.reason.value == "inhibited"

    # Slack: one thread for the incident
    assert len(slack.messages) == 3 and len(slack.top_level()) == 1
    # retraining once: sustained for 2 windows on day 4, cooldown afterwards
    assert [r["job_parameters"]["driftline_window_start"] for r in jobs.runs] == ["2026-03-05T00:00:00Z"]

    # re-running windows queues nothing new (same decisions, same keys; older windows are stale)
    (tmp_path / "logs.moved").rename(tmp_path / "logs")
    before = len(deliveries(store, limit=100))
    runner.backfill(mon, START, START + timedelta(days=EMPTY_DAY), force=True)
    assert len(deliveries(store, limit=100)) == before
    # the source is back: re-running the failed window resolves the failure (one more message)
    runner.run_window(mon, _window(BROKEN_DAY))
    deliver_pending(project, store, env=ENV)
    assert hook.actions[-1]["reason"] == "resolved", hook.actions[-1]
    assert [a["check"] for a in hook.actions[-1]["resolved"]] == ["pipeline"]
    store.dispose()


def test_a_broken_alerting_hook_never_costs_the_run(tmp_path: Path, fakes: Any, caplog: pytest.LogCaptureFixture) -> None:
    slack, hook, jobs = fakes
    build_logs(tmp_path)
    project = load_config(project_for(tmp_path, slack, hook, jobs, None))
    store = Store.open(project.store_url)
    with store.engine.begin() as connection:  # the alert tables are gone: every hook call fails
        connection.execute(sa.text("DROP TABLE alerts"))
    runner = Runner(project, store)
    outcome = runner.run_window(project.monitor("credit"), _window(SHIFT_DAY))
    assert outcome.run.status == "breach" and store.run_for("credit", _window(SHIFT_DAY)) is not None
    assert "alerting failed, results are stored without alerts" in caplog.text
    store.dispose()


def _window(day: int) -> Any:
    from monitor.windows import Window

    return Window(START + timedelta(days=day), START + timedelta(days=day + 1))


def test_cli_backfill_sends_what_it_queued(tmp_path: Path, fakes: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from monitor.cli import app

    slack, hook, jobs = fakes
    build_logs(tmp_path)
    path = project_for(tmp_path, slack, hook, jobs, None)
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(app, ["backfill", "--config", str(path), "--start", "2026-03-01", "--end", "2026-03-07", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "alerts: " in result.output and "failed (see `driftline deliveries`)" in result.output  # the pager's missing secret
    assert len(hook.actions) == 1 and len(slack.messages) == 1 and len(jobs.runs) == 1
    listed = CliRunner().invoke(app, ["deliveries", "--config", str(path), "--status", "failed"])
    assert "PAGER_SECRET_NOT_SET" in listed.output
