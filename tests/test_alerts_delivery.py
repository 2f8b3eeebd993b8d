"""The outbox and its channels, against real local HTTP servers (tests/http_servers.py).

Slack's Web API and incoming webhooks, a signature-verifying webhook receiver and Databricks Jobs:
grouping into one message, threads, retries on 500 and 429, permanent failures on 400 and
``ok: false``, a hanging receiver that does not hold up other channels, missing secrets, redaction,
two senders at once, and a sender killed mid-request that delivers after its restart with no
duplicate action at the receiver.
"""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from alerts.backoff import Backoff
from alerts.payload import databricks_token
from alerts.redact import Redactor
from checks.results import Direction, MetricResult, Status
from http_servers import (
    Answer,
    DatabricksJobs,
    SlackApi,
    SlackIncomingWebhook,
    WebhookReceiver,
    queue_run,
    write_project,
)
from monitor.config import load_config
from monitor.notify import DEFAULT_LEASE, deliver_pending, deliveries, retry_delivery
from monitor.store import Store

UTC = timezone.utc
SLACK_TOKEN = "xoxb-1111-2222-s3cretSlackTok"
HOOK_SECRET = "whsec-s3cret-signing-key"
DBX_TOKEN = "dapi0123456789abcdef0123456789abcdef"
ENV = {"SLACK_BOT_TOKEN": SLACK_TOKEN, "HOOK_SECRET": HOOK_SECRET, "DBX_TOKEN": DBX_TOKEN}
FAST = Backoff(initial_s=30, factor=2, max_s=600, max_attempts=3)


def drift(column: str, value: float = 0.3, ok: bool = False) -> MetricResult:
    return MetricResult("drift", column, "wasserstein", value, Status.OK if ok else Status.BREACH, 0.1, Direction.MAX, "*", {"severity": value / 0.1, "rank": 1})


def latency(value: float = 300.0) -> MetricResult:
    return MetricResult("latency", "latency_ms", "p95", value, Status.BREACH, 250.0, Direction.MAX)


ROWS = MetricResult("quality", "", "row_count", 3000.0, Status.OK, 1.0, Direction.MIN)


@pytest.fixture
def receiver() -> Any:
    with WebhookReceiver(HOOK_SECRET) as server:
        yield server


@pytest.fixture
def slack() -> Any:
    with SlackApi(SLACK_TOKEN) as server:
        yield server


def setup(tmp_path: Path, channels: dict[str, Any], routes: list[dict[str, Any]], store_url: str | None = None, **alerts: Any):  # noqa: ANN201
    path = write_project(tmp_path, channels, {"routes": routes, "repeat_interval": "1d", **alerts}, store_url=store_url)
    project = load_config(path)
    return path, project, Store.open(project.store_url)


def webhook(url: str, **extra: Any) -> dict[str, Any]:
    return {"type": "webhook", "url": url + "/hooks/driftline", "secret_env": "HOOK_SECRET", "timeout_s": 2, **extra}


def slack_bot(server: SlackApi, **extra: Any) -> dict[str, Any]:
    return {"type": "slack", "token_env": "SLACK_BOT_TOKEN", "channel": "#ml-alerts", "base_url": server.base_url, "timeout_s": 2, **extra}


def row(store: Store, delivery_id: int) -> Any:
    return next(d for d in deliveries(store, limit=1000) if d.id == delivery_id)


def send(project: Any, store: Store, now: datetime | None = None, **kwargs: Any) -> Any:
    kwargs.setdefault("env", ENV)
    kwargs.setdefault("backoff", FAST)
    kwargs.setdefault("rng", random.Random(0))
    return deliver_pending(project, store, now=now or datetime.now(UTC), **kwargs)


# --------------------------------------------------------------------------------- webhook


def test_webhook_gets_one_signed_grouped_payload(tmp_path: Path, receiver: WebhookReceiver) -> None:
    _, project, store = setup(tmp_path, {"hook": webhook(receiver.url)}, [{"channel": "hook"}])
    results = [ROWS, *(drift(f"f{i:02d}") for i in range(25)), latency()]
    ids = queue_run(store, project, results, 0)
    assert len(ids) == 1  # 26 breaches, one delivery
    report = send(project, store)
    assert (report.sent, report.failed) == (1, 0) and receiver.rejected == []
    [payload] = receiver.actions
    assert payload["schema"] == "driftline.alert" and payload["version"] == 1 and payload["kind"] == "notify"
    assert payload["monitor"] == "credit" and payload["window"] == {"start": "2026-03-01T00:00:00Z", "end": "2026-03-02T00:00:00Z"}
    assert payload["reason"] == "first" and len(payload["alerts"]) == 26
    first = payload["alerts"][0]
    assert first["severity"] == "critical" and first["breaches"][0] | {"details": {}} == {
        "metric": "wasserstein", "value": 0.3, "threshold": 0.1, "direction": "max", "ratio": pytest.approx(3.0), "details": {}}
    assert first["link"].startswith("http://dash.local:8501/drift?monitor=credit&column=f00&start=2026-03-01T00%3A00%3A00Z")
    request = receiver.requests[0]
    assert request.headers["idempotency-key"] == payload["idempotency_key"] == row(store, ids[0]).idempotency_key
    assert request.headers["x-driftline-payload-version"] == "1"
    stored = row(store, ids[0])
    assert stored.status == "sent" and stored.attempts == 1 and stored.sent_at is not None
    assert HOOK_SECRET not in json.dumps(stored.payload)
    store.dispose()


def test_a_bad_signature_is_refused_by_the_receiver(tmp_path: Path) -> None:
    with WebhookReceiver("another-secret") as receiver:
        _, project, store = setup(tmp_path, {"hook": webhook(receiver.url)}, [{"channel": "hook"}])
        [delivery] = queue_run(store, project, [ROWS, drift("income")], 0)
        report = send(project, store)
        assert report.failed == 1 and receiver.actions == [] and receiver.rejected == ["bad signature"]
        assert "HTTP 401" in (row(store, delivery).last_error or "")
        store.dispose()


def test_webhook_500_retries_with_backoff_then_delivers_once(tmp_path: Path, receiver: WebhookReceiver) -> None:
    _, project, store = setup(tmp_path, {"hook": webhook(receiver.url)}, [{"channel": "hook"}])
    [delivery] = queue_run(store, project, [ROWS, drift("income")], 0)
    receiver.script(Answer(500, "boom"), Answer(503, "still down"))
    now = datetime(2026, 3, 2, 1, tzinfo=UTC)
    assert send(project, store, now).retrying == 1
    first = row(store, delivery)
    assert first.status == "pending" and first.attempts == 1 and "HTTP 500" in (first.last_error or "")
    wait = first.next_attempt_at - now
    assert timedelta(seconds=15) <= wait <= timedelta(seconds=30)  # 30 s with jitter in [0.5, 1)
    assert send(project, store, now + timedelta(seconds=10)).sent == 0  # not due yet
    assert send(project, store, first.next_attempt_at).retrying == 1
    second = row(store, delivery)
    assert timedelta(seconds=30) <= second.next_attempt_at - first.next_attempt_at <= timedelta(seconds=60)
    assert send(project, store, second.next_attempt_at).sent == 1
    assert row(store, delivery).status == "sent" and row(store, delivery).attempts == 3
    assert len(receiver.actions) == 1
    store.dispose()


def test_webhook_that_answers_500_forever_fails_after_max_attempts(tmp_path: Path, receiver: WebhookReceiver) -> None:
    _, project, store = setup(tmp_path, {"hook": webhook(receiver.url)}, [{"channel": "hook"}])
    [delivery] = queue_run(store, project, [ROWS, drift("income")], 0)
    receiver.always = Answer(500, "down")
    now = datetime(2026, 3, 2, 1, tzinfo=UTC)
    for _ in range(FAST.max_attempts):
        send(project, store, now)
        now = row(store, delivery).next_attempt_at
    failed = row(store, delivery)
    assert failed.status == "failed" and failed.attempts == FAST.max_attempts
    assert failed.last_error and failed.last_error.startswith("gave up after 3 attempts") and "HTTP 500" in failed.last_error
    assert send(project, store, now + timedelta(days=1)).sent == 0  # failed rows are left alone
    # ...until someone retries it by hand
    receiver.always = None
    retry_delivery(store, delivery, now=now)
    assert send(project, store, now).sent == 1 and len(receiver.actions) == 1
    store.dispose()


def test_webhook_400_is_permanent_with_the_reason(tmp_path: Path, receiver: WebhookReceiver) -> None:
    _, project, store = setup(tmp_path, {"hook": webhook(receiver.url)}, [{"channel": "hook"}])
    [delivery] = queue_run(store, project, [ROWS, drift("income")], 0)
    receiver.script(Answer(400, {"error": "unknown monitor field"}))
    report = send(project, store)
    assert report.failed == 1 and report.retrying == 0
    failed = row(store, delivery)
    assert failed.status == "failed" and failed.attempts == 1
    assert "HTTP 400" in (failed.last_error or "") and "permanent" in (failed.last_error or "") and "unknown monitor field" in (failed.last_error or "")
    store.dispose()


def test_webhook_429_waits_at_least_retry_after(tmp_path: Path, receiver: WebhookReceiver) -> None:
    _, project, store = setup(tmp_path, {"hook": webhook(receiver.url)}, [{"channel": "hook"}])
    [delivery] = queue_run(store, project, [ROWS, drift("income")], 0)
    receiver.script(Answer(429, {"error": "slow down"}, {"Retry-After": "120"}))
    now = datetime(2026, 3, 2, 1, tzinfo=UTC)
    assert send(project, store, now).retrying == 1
    assert row(store, delivery).next_attempt_at - now >= timedelta(seconds=120)
    assert send(project, store, row(store, delivery).next_attempt_at).sent == 1
    store.dispose()


def test_a_hanging_webhook_does_not_block_other_channels(tmp_path: Path, receiver: WebhookReceiver, slack: SlackApi) -> None:
    channels = {"hook": webhook(receiver.url, timeout_s=0.5), "slack": slack_bot(slack)}
    _, project, store = setup(tmp_path, channels, [{"channel": "hook"}, {"channel": "slack"}])
    ids = queue_run(store, project, [ROWS, drift("income")], 0)
    queue_run(store, project, [ROWS, drift("income"), latency()], 1, now=datetime(2026, 3, 2, 1, tzinfo=UTC))
    receiver.stall_next()  # acts, then hangs past the client's timeout
    started = time.monotonic()
    report = send(project, store, datetime(2026, 3, 3, 1, tzinfo=UTC))
    took = time.monotonic() - started
    receiver.release()
    assert report.sent == 2 and report.retrying == 1 and report.skipped == 1  # hook's second row waits its turn
    assert len(slack.messages) == 2
    hung = row(store, ids[0])
    assert hung.status == "pending" and "no answer within 0.5s" in (hung.last_error or "")
    assert took < 5
    store.dispose()


def test_missing_secret_is_a_recorded_failure_naming_the_variable(tmp_path: Path, receiver: WebhookReceiver, slack: SlackApi) -> None:
    channels = {"hook": webhook(receiver.url, secret_env="NOT_SET_ANYWHERE"), "slack": slack_bot(slack)}
    _, project, store = setup(tmp_path, channels, [{"channel": "hook"}, {"channel": "slack"}])
    ids = queue_run(store, project, [ROWS, drift("income")], 0)
    report = send(project, store)
    assert (report.sent, report.failed) == (1, 1)
    hook_row = next(row(store, i) for i in ids if row(store, i).channel == "hook")
    assert hook_row.status == "failed" and "NOT_SET_ANYWHERE is not set" in (hook_row.last_error or "")
    assert len(slack.messages) == 1
    store.dispose()


def test_routes_filter_by_check_and_severity(tmp_path: Path, receiver: WebhookReceiver, slack: SlackApi) -> None:
    channels = {"hook": webhook(receiver.url), "slack": slack_bot(slack)}
    routes = [{"channel": "hook", "checks": ["latency"], "segments": False}, {"channel": "slack", "min_severity": "critical"}]
    _, project, store = setup(tmp_path, channels, routes)
    in_eu = MetricResult("latency", "latency_ms", "p95", 900.0, Status.BREACH, 250.0, Direction.MAX, "region=EU")
    queue_run(store, project, [ROWS, drift("income", 0.3), drift("age", 0.12), latency(300), in_eu], 0)
    send(project, store)
    assert [(a["check"], a["segment"]) for a in receiver.actions[0]["alerts"]] == [("latency", "*")]
    assert "region=EU" in json.dumps(slack.messages[0]["blocks"])  # the other route takes segments
    assert "income" in slack.messages[0]["text"] or "income" in json.dumps(slack.messages[0]["blocks"])
    assert "*drift* `age`" not in json.dumps(slack.messages[0]["blocks"])  # a warning: below the route's min_severity
    store.dispose()


# ----------------------------------------------------------------------------------- Slack


def test_slack_bot_posts_blocks_then_threads_updates_and_marks_the_incident_resolved(tmp_path: Path, slack: SlackApi) -> None:
    _, project, store = setup(tmp_path, {"slack": slack_bot(slack)}, [{"channel": "slack"}])
    day = lambda i: datetime(2026, 3, 2 + i, 1, tzinfo=UTC)  # noqa: E731
    queue_run(store, project, [ROWS, drift("income")], 0, now=day(0))
    send(project, store, day(0))
    queue_run(store, project, [ROWS, drift("income"), latency()], 1, now=day(1) - timedelta(hours=12))  # new breach
    send(project, store, day(1))
    queue_run(store, project, [ROWS, drift("income", 0.01, ok=True), MetricResult("latency", "latency_ms", "p95", 100.0, Status.OK, 250.0, Direction.MAX)], 2, now=day(2))
    send(project, store, day(2))
    root, new, resolved = slack.messages
    assert "thread_ts" not in root and new["thread_ts"] == resolved["thread_ts"] == root["ts"]
    posted = slack.requests[0].json()
    assert posted["text"].startswith("credit: 1 new alert (1 critical)") and posted["blocks"][0]["type"] == "header"
    blocks = json.dumps(posted["blocks"])
    for expected in ("Model version", "2026-03-01 00:00 .. 2026-03-02 00:00 UTC", "`income`", "wasserstein 0.3 > 0.1", "Open dashboard", "http://dash.local:8501/"):
        assert expected in blocks, expected
    assert "latency" in json.dumps(new["blocks"]) and "Still firing: drift:income" in json.dumps(new["blocks"])
    assert resolved["text"].startswith("credit: 2 resolved")
    # the first message now says the incident is over
    assert slack.updates and slack.updates[0]["ts"] == root["ts"] and root["text"].startswith("RESOLVED")
    stored = deliveries(store)
    assert {d.external_id for d in stored} == {m["ts"] for m in slack.messages}
    store.dispose()


def test_slack_rejected_token_is_permanent_and_the_token_never_recorded(tmp_path: Path, slack: SlackApi, caplog: pytest.LogCaptureFixture) -> None:
    _, project, store = setup(tmp_path, {"slack": slack_bot(slack)}, [{"channel": "slack"}])
    [delivery] = queue_run(store, project, [ROWS, drift("income")], 0)
    wrong = "xoxb-9999-8888-WrongButSecret"
    with caplog.at_level(logging.DEBUG):
        report = send(project, store, env={**ENV, "SLACK_BOT_TOKEN": wrong})
    failed = row(store, delivery)
    assert report.failed == 1 and failed.status == "failed" and "invalid_auth" in (failed.last_error or "")
    assert wrong not in caplog.text and "WrongButSecret" not in (failed.last_error or "") and wrong not in str(report.errors)
    store.dispose()


def test_slack_429_is_waited_out_and_500_retried_by_the_outbox(tmp_path: Path, slack: SlackApi) -> None:
    _, project, store = setup(tmp_path, {"slack": slack_bot(slack)}, [{"channel": "slack"}])
    [first] = queue_run(store, project, [ROWS, drift("income")], 0)
    slack.script(Answer(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "0"}))
    assert send(project, store).sent == 1  # slack-sdk's rate-limit handler retried in the call
    assert len(slack.requests) == 2 and len(slack.messages) == 1
    [second] = queue_run(store, project, [ROWS, drift("income"), latency()], 1, now=datetime(2026, 3, 2, 20, tzinfo=UTC))
    slack.script(Answer(500, "oops"), Answer(500, "oops"))  # the in-call retry fails too
    now = datetime(2026, 3, 3, 1, tzinfo=UTC)
    assert send(project, store, now).retrying == 1
    waiting = row(store, second)
    assert waiting.status == "pending" and "HTTP 500" in (waiting.last_error or "")
    assert send(project, store, waiting.next_attempt_at).sent == 1
    assert len(slack.messages) == 2 and row(store, first).status == "sent"
    store.dispose()


def test_slack_rate_limit_with_a_long_retry_after_goes_back_to_the_outbox(tmp_path: Path, slack: SlackApi) -> None:
    _, project, store = setup(tmp_path, {"slack": slack_bot(slack)}, [{"channel": "slack"}])
    [delivery] = queue_run(store, project, [ROWS, drift("income")], 0)
    slack.script(Answer(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "90"}))
    now = datetime(2026, 3, 2, 1, tzinfo=UTC)
    started = time.monotonic()
    assert send(project, store, now).retrying == 1
    assert time.monotonic() - started < 5  # not slept in the call
    assert row(store, delivery).next_attempt_at - now >= timedelta(seconds=90)
    store.dispose()


def test_slack_incoming_webhook(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # slack-sdk logs the URL it posts to: it must come out masked
    with SlackIncomingWebhook() as hook:
        channels = {"hooked": {"type": "slack_webhook", "url_env": "SLACK_HOOK_URL", "timeout_s": 2}}
        _, project, store = setup(tmp_path, channels, [{"channel": "hooked"}])
        env = {**ENV, "SLACK_HOOK_URL": hook.hook_url}
        [ok] = queue_run(store, project, [ROWS, drift("income")], 0)
        assert send(project, store, env=env).sent == 1
        assert hook.posts[0]["text"].startswith("credit: 1 new alert") and hook.posts[0]["blocks"]
        # a webhook URL that Slack no longer knows: permanent, and the secret URL is not in the error
        [gone] = queue_run(store, project, [ROWS, drift("income"), latency()], 1, now=datetime(2026, 3, 2, 20, tzinfo=UTC))
        wrong = hook.url + "/services/T000/B000/RevokedS3cretPath"
        assert send(project, store, env={**ENV, "SLACK_HOOK_URL": wrong}).failed == 1
        error = row(store, gone).last_error or ""
        assert "HTTP 404" in error and "no_service" in error and "RevokedS3cretPath" not in error
        assert row(store, ok).status == "sent"
        assert "Sending a request" in caplog.text and "s3cretHookPath" not in caplog.text and "RevokedS3cretPath" not in caplog.text
        store.dispose()


# ------------------------------------------------------------------------------ Databricks


def test_databricks_retrain_after_sustained_drift_once_per_cooldown(tmp_path: Path, receiver: WebhookReceiver) -> None:
    with DatabricksJobs(DBX_TOKEN, job_ids=(42,)) as jobs:
        channels = {
            "hook": webhook(receiver.url),
            "retrain": {"type": "databricks_job", "host": jobs.url, "token_env": "DBX_TOKEN", "job_id": 42, "job_parameters": {"env": "prod"}, "timeout_s": 2},
        }
        retrain = {"channel": "retrain", "sustained_windows": 3, "cooldown": "7d"}
        _, project, store = setup(tmp_path, channels, [{"channel": "hook"}], retrain=retrain)
        for day in range(12):  # drift every day, processed in real time (wall clock = window end)
            queue_run(store, project, [ROWS, drift("income")], day)
            send(project, store, datetime(2026, 3, 2 + day, 1, tzinfo=UTC))
        # sustained on day 2 (third window), cooldown 7 days: again on day 9, and only then
        assert [r["job_parameters"]["driftline_window_start"] for r in jobs.runs] == ["2026-03-03T00:00:00Z", "2026-03-10T00:00:00Z"]
        run = jobs.runs[0]
        assert run["job_id"] == 42 and run["job_parameters"]["env"] == "prod"
        assert run["job_parameters"]["driftline_monitor"] == "credit" and run["job_parameters"]["driftline_columns"] == "income"
        assert json.loads(run["job_parameters"]["driftline_payload"])["kind"] == "retrain"
        token = databricks_token("credit", "2026-03-03T00:00:00Z", "2026-03-04T00:00:00Z")
        assert run["idempotency_token"] == token and len(token) <= 64
        retrains = [d for d in deliveries(store, limit=100) if d.kind == "retrain"]
        assert sorted(d.external_id for d in retrains) == ["1001", "1002"]
        # the notification of that window says retraining was triggered
        assert receiver.actions[0]["retrain"] is None and any(a["retrain"] for a in receiver.actions)
        store.dispose()


def test_databricks_errors(tmp_path: Path) -> None:
    with DatabricksJobs(DBX_TOKEN, job_ids=(42,)) as jobs:
        channels = {"hook": {"type": "webhook", "url": "http://127.0.0.1:9/x", "secret_env": "HOOK_SECRET"},
                    "retrain": {"type": "databricks_job", "host": jobs.url, "token_env": "DBX_TOKEN", "job_id": 7, "timeout_s": 2}}
        _, project, store = setup(tmp_path, channels, [], retrain={"channel": "retrain", "sustained_windows": 1})
        [delivery] = queue_run(store, project, [ROWS, drift("income")], 0)
        report = send(project, store)
        error = row(store, delivery).last_error or ""
        assert report.failed == 1 and "HTTP 400" in error and "Job 7 does not exist" in error
        assert DBX_TOKEN not in error
        store.dispose()


# -------------------------------------------------------------------------------- senders


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest) -> str | None:
    return None if request.param == "sqlite" else request.getfixturevalue("pg_url")


def test_two_senders_at_once_never_send_one_delivery_twice(tmp_path: Path, receiver: WebhookReceiver, store_url: str | None) -> None:
    _, project, store = setup(tmp_path, {"hook": webhook(receiver.url)}, [{"channel": "hook"}], store_url=store_url, repeat_interval="1m")
    for day in range(12):
        queue_run(store, project, [ROWS, drift("income"), *(latency(300 + day) for _ in range(1))], day)
    barrier = threading.Barrier(3)
    reports = []

    def sender() -> None:
        barrier.wait(5)
        reports.append(deliver_pending(project, store, env=ENV, backoff=FAST))

    threads = [threading.Thread(target=sender) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sum(r.sent for r in reports) == len(deliveries(store, limit=100)) == len(receiver.requests)
    assert len(receiver.keys) == len(receiver.requests)  # no key arrived twice
    store.dispose()


def test_deliveries_and_silence_commands(tmp_path: Path, receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    from monitor.cli import app

    path, project, store = setup(tmp_path, {"hook": webhook(receiver.url)}, [{"channel": "hook"}])
    [delivery] = queue_run(store, project, [ROWS, drift("income")], 0)
    receiver.script(Answer(400, "nope"))
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    cli = CliRunner()
    sent = cli.invoke(app, ["send", "--config", str(path)])
    assert sent.exit_code == 1 and "0 sent, 0 to retry, 1 failed" in sent.output
    listed = cli.invoke(app, ["deliveries", "--config", str(path), "--status", "failed"])
    assert listed.exit_code == 0 and f"{delivery:5d}  failed" in listed.output and "HTTP 400" in listed.output
    retried = cli.invoke(app, ["deliveries", "--config", str(path), "--retry", str(delivery)])
    assert retried.exit_code == 0 and "1 sent" in retried.output and len(receiver.actions) == 1
    assert cli.invoke(app, ["deliveries", "--config", str(path), "--retry", str(delivery)]).exit_code == 2  # sent: refused
    as_json = cli.invoke(app, ["deliveries", "--config", str(path), "--json"])
    assert json.loads(as_json.output.splitlines()[0])["status"] == "sent"

    added = cli.invoke(app, ["silence", "add", "--config", str(path), "--monitor", "credit", "--check", "drift", "--column", "income", "--for", "2d", "--reason", "known shift"])
    assert added.exit_code == 0 and added.output.startswith("silence 1: credit drift/income/*")
    assert "known shift" in cli.invoke(app, ["silence", "list", "--config", str(path)]).output
    bad = cli.invoke(app, ["silence", "add", "--config", str(path), "--monitor", "credit", "--check", "drfit", "--for", "2d", "--reason", "x"])
    assert bad.exit_code == 2 and "checks: drift" in bad.output
    assert cli.invoke(app, ["silence", "add", "--config", str(path), "--monitor", "nope", "--for", "2d", "--reason", "x"]).exit_code == 2
    assert cli.invoke(app, ["silence", "remove", "1", "--config", str(path)]).exit_code == 0
    assert cli.invoke(app, ["silence", "list", "--config", str(path)]).output.strip() == "no silences"
    assert cli.invoke(app, ["silence", "remove", "1", "--config", str(path)]).exit_code == 2
    firing = cli.invoke(app, ["alerts", "--config", str(path)])
    assert "firing" in firing.output and "credit/drift/income" in firing.output
    store.dispose()


# ------------------------------------------------------------------- killed mid-delivery

_SENDER = "from monitor.cli import app; app()"


def _kill_mid_delivery(path: Path, server: Any, env: dict[str, str]) -> None:
    """Start `driftline send` as a real process, wait until the receiver acted on the request
    and hangs, then kill -9 the sender."""
    server.stall_next()
    child = subprocess.Popen(
        [sys.executable, "-c", _SENDER, "send", "--config", str(path)],
        env={**os.environ, **env, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert server.stalled.wait(30), child.communicate(timeout=5)
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        assert child.returncode == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
        server.release()


@pytest.mark.parametrize("kind", ["webhook", "databricks_job", "slack"])
def test_a_sender_killed_mid_delivery_delivers_after_restart_without_a_second_action(tmp_path: Path, kind: str) -> None:
    if kind == "webhook":
        server: Any = WebhookReceiver(HOOK_SECRET)
        channels = {"out": webhook(server.url, timeout_s=30)}
        alerts: dict[str, Any] = {"routes": [{"channel": "out"}]}
    elif kind == "databricks_job":
        server = DatabricksJobs(DBX_TOKEN)
        channels = {"out": {"type": "databricks_job", "host": server.url, "token_env": "DBX_TOKEN", "job_id": 42, "timeout_s": 30}}
        alerts = {"retrain": {"channel": "out", "sustained_windows": 1}}
    else:
        server = SlackApi(SLACK_TOKEN)
        channels = {"out": slack_bot(server, timeout_s=30)}
        alerts = {"routes": [{"channel": "out"}]}
    try:
        path = write_project(tmp_path, channels, alerts)
        project = load_config(path)
        store = Store.open(project.store_url)
        [delivery] = queue_run(store, project, [ROWS, drift("income")], 0, now=datetime.now(UTC) - timedelta(minutes=1))
        _kill_mid_delivery(path, server, ENV)
        stuck = row(store, delivery)
        assert stuck.status == "sending" and stuck.attempts == 1
        # Restarted before the lease ran out: the row is still someone else's.
        assert send(project, store).sent == 0
        # After the lease: taken over, sent again with the same key, acted on once.
        report = send(project, store, datetime.now(UTC) + DEFAULT_LEASE + timedelta(seconds=1))
        assert report.sent == 1, report.errors
        done = row(store, delivery)
        assert done.status == "sent" and done.attempts == 2
        if kind == "webhook":
            assert len(server.requests) == 2 and len(server.actions) == 1
            assert server.requests[0].headers["idempotency-key"] == server.requests[1].headers["idempotency-key"]
        elif kind == "databricks_job":
            assert len(server.requests) == 2 and len(server.runs) == 1 and done.external_id == str(server.runs[0]["run_id"])
        else:  # found its own message through the metadata instead of posting again
            assert len(server.messages) == 1 and done.external_id == server.messages[0]["ts"]
            assert any(r.path.startswith("/api/conversations.history") for r in server.requests)
        store.dispose()
    finally:
        server.close()


# ------------------------------------------------------------------------------ redaction


def test_redactor_masks_secrets_and_credentials() -> None:
    redact = Redactor(["whsec-abcdef", "tin", None])
    text = redact(
        "POST https://bob:hunter2@example.com/x?token=abc123&keep=1 Authorization: Bearer eyJhbGciOi.x "
        "xoxb-123-456-abcdef https://hooks.slack.com/services/T0/B0/XXXXXXXX secret whsec-abcdef dapi0123456789abcdef0123 tin"
    )
    for secret in ("hunter2", "abc123", "eyJhbGciOi", "123-456-abcdef", "T0/B0/XXXXXXXX", "whsec-abcdef", "dapi0123456789abcdef0123"):
        assert secret not in text, secret
    assert "keep=1" in text and text.endswith(" tin")  # short values are not treated as secrets
    assert redact("nothing secret here") == "nothing secret here"


def test_secrets_are_redacted_from_recorded_errors_and_logs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # A receiver that echoes what it got (including the signature) in its error answer.
    with WebhookReceiver(HOOK_SECRET) as receiver:
        _, project, store = setup(tmp_path, {"hook": webhook(receiver.url)}, [{"channel": "hook"}])
        [delivery] = queue_run(store, project, [ROWS, drift("income")], 0)
        receiver.script(Answer(400, f"bad request, your secret is {HOOK_SECRET} and token {SLACK_TOKEN}"))
        with caplog.at_level(logging.INFO):
            send(project, store)
        error = row(store, delivery).last_error or ""
        assert "HTTP 400" in error and HOOK_SECRET not in error and SLACK_TOKEN not in error
        assert HOOK_SECRET not in caplog.text and SLACK_TOKEN not in caplog.text
        with store.engine.connect() as connection:
            dump = json.dumps([list(r) for r in connection.execute(sa.text("SELECT * FROM deliveries")).all()], default=str)
        assert HOOK_SECRET not in dump and SLACK_TOKEN not in dump
        store.dispose()


def test_a_slack_post_recorded_before_a_crash_is_not_posted_again(tmp_path: Path, slack: SlackApi) -> None:
    # The sender posted and saved Slack's ts, then died before marking the row sent.
    _, project, store = setup(tmp_path, {"slack": slack_bot(slack)}, [{"channel": "slack"}])
    [delivery] = queue_run(store, project, [ROWS, drift("income")], 0)
    now = datetime.now(UTC)
    with store.session() as session:
        session.execute(sa.text("UPDATE deliveries SET status = 'sending', attempts = 1, external_id = '1700000000.000900', next_attempt_at = :t WHERE id = :id"),
                        {"t": (now - timedelta(seconds=1)).replace(tzinfo=None), "id": delivery})
    assert send(project, store, now).sent == 1
    done = row(store, delivery)
    assert done.status == "sent" and done.external_id == "1700000000.000900" and slack.messages == [] and slack.requests == []
    store.dispose()
