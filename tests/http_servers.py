"""Real local HTTP servers that speak the formats Driftline sends to, for tests.

Each server runs a ``ThreadingHTTPServer`` on 127.0.0.1 with a random port in a daemon thread:

- :class:`SlackApi`: Slack's Web API (``/api/chat.postMessage``, ``/api/chat.update``,
  ``/api/conversations.history``) with ``Authorization: Bearer`` checked (``ok: false,
  invalid_auth`` otherwise), 429 with ``Retry-After`` and 500 on demand;
- :class:`SlackIncomingWebhook`: an incoming webhook (``ok`` / ``invalid_payload`` / ``no_service``);
- :class:`WebhookReceiver`: a generic receiver that verifies ``X-Driftline-Signature`` (its own
  implementation of the documented scheme) and acts once per ``Idempotency-Key``;
- :class:`DatabricksJobs`: ``/api/2.1/jobs/run-now`` with bearer auth; a repeated
  ``idempotency_token`` returns the run it started before.

Failures are scripted with :meth:`FakeServer.script` (answers used in order, then normal
behaviour) or ``always`` (an answer for every request); :meth:`FakeServer.stall_next` makes the
next request act and then hang until :meth:`FakeServer.release`, for killing a sender mid-request.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


@dataclass
class Answer:
    status: int
    body: Any = None  # dict -> JSON, str -> text
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"{}")


class FakeServer:
    """Base: records requests, plays scripted answers, can stall."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self._script: list[Answer] = []
        self.always: Answer | None = None
        self._lock = threading.Lock()
        self._stall = False
        self.stalled = threading.Event()  # set when a stalled request has acted and hangs
        self._release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:  # noqa: N802 - query parameters arrive as a form body
                path, _, query = self.path.partition("?")
                headers = {k.lower(): v for k, v in self.headers.items()}
                headers["content-type"] = "application/x-www-form-urlencoded"
                self._serve(Request("GET", path, headers, query.encode()))

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                self._serve(Request("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length)))

            def _serve(self, request: Request) -> None:
                with server._lock:
                    server.requests.append(request)
                    scripted = server._script.pop(0) if server._script else server.always
                    stall, server._stall = server._stall, False
                answer = scripted or server.handle(request)
                if stall:
                    server.stalled.set()
                    server._release.wait(30)
                try:
                    self._answer(answer)
                except OSError:
                    pass  # the client is gone (killed): nothing to answer

            def _answer(self, answer: Answer) -> None:
                if isinstance(answer.body, (dict, list)):
                    data, kind = json.dumps(answer.body).encode(), "application/json; charset=utf-8"
                else:
                    data, kind = str(answer.body or "").encode(), "text/plain; charset=utf-8"
                self.send_response(answer.status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name=type(self).__name__, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def handle(self, request: Request) -> Answer:  # overridden
        return Answer(404, "not found")

    def script(self, *answers: Answer) -> None:
        with self._lock:
            self._script.extend(answers)

    def stall_next(self) -> None:
        """The next request is handled (acted on) and then hangs until :meth:`release`."""
        self._release.clear()
        self.stalled.clear()
        self._stall = True

    def release(self) -> None:
        self._release.set()

    def close(self) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeServer:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


# ------------------------------------------------------------------------------------- Slack


class SlackApi(FakeServer):
    """Slack's Web API: ``WebClient(token=..., base_url=server.base_url)``."""

    CHANNEL_ID = "C0ALERTS"

    def __init__(self, token: str = "xoxb-test-token") -> None:
        self.token = token
        self.messages: list[dict[str, Any]] = []  # in posting order
        self.updates: list[dict[str, Any]] = []
        self._ts = itertools.count(1)
        super().__init__()

    @property
    def base_url(self) -> str:
        return self.url + "/api/"

    def _args(self, request: Request) -> dict[str, Any]:
        if request.headers.get("content-type", "").startswith("application/json"):
            return request.json()
        args: dict[str, Any] = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        for name in ("blocks", "metadata"):
            if isinstance(args.get(name), str):
                args[name] = json.loads(args[name])
        return args

    def handle(self, request: Request) -> Answer:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return Answer(200, {"ok": False, "error": "invalid_auth"})
        args = self._args(request)
        method = request.path.split("?")[0].removeprefix("/api/")
        if method == "chat.postMessage":
            if not args.get("text") and not args.get("blocks"):
                return Answer(200, {"ok": False, "error": "no_text"})
            with self._lock:
                ts = f"{1700000000 + next(self._ts)}.000100"
                message = {**args, "ts": ts, "channel_id": self.CHANNEL_ID}
                self.messages.append(message)
            return Answer(200, {"ok": True, "channel": self.CHANNEL_ID, "ts": ts, "message": {"text": args.get("text"), "ts": ts}})
        if method == "chat.update":
            with self._lock:
                target = next((m for m in self.messages if m["ts"] == args.get("ts")), None)
                if target is None:
                    return Answer(200, {"ok": False, "error": "message_not_found"})
                self.updates.append(args)
                target.update(text=args.get("text"), blocks=args.get("blocks"), updated=True)
            return Answer(200, {"ok": True, "channel": self.CHANNEL_ID, "ts": args["ts"]})
        if method == "conversations.history":
            with self._lock:
                found = [
                    {"ts": m["ts"], "text": m.get("text"), **({"metadata": m["metadata"]} if m.get("metadata") and args.get("include_all_metadata") in (True, "true", "1", 1) else {})}
                    for m in reversed(self.messages)
                ]
            return Answer(200, {"ok": True, "messages": found, "has_more": False})
        return Answer(200, {"ok": False, "error": "unknown_method"})

    def top_level(self) -> list[dict[str, Any]]:
        return [m for m in self.messages if not m.get("thread_ts")]


class SlackIncomingWebhook(FakeServer):
    """An incoming webhook at ``/services/T000/B000/<secret>``."""

    def __init__(self, secret_path: str = "T000/B000/s3cretHookPath") -> None:
        self.path = f"/services/{secret_path}"
        self.posts: list[dict[str, Any]] = []
        super().__init__()

    @property
    def hook_url(self) -> str:
        return self.url + self.path

    def handle(self, request: Request) -> Answer:
        if request.path != self.path:
            return Answer(404, "no_service")
        try:
            body = request.json()
        except ValueError:
            return Answer(400, "invalid_payload")
        if not body.get("text") and not body.get("blocks"):
            return Answer(400, "no_text")
        with self._lock:
            self.posts.append(body)
        return Answer(200, "ok")


# ------------------------------------------------------------------------- generic webhook


class WebhookReceiver(FakeServer):
    """Verifies ``X-Driftline-Signature`` = ``sha256=HMAC(secret, "{timestamp}.{body}")`` and acts
    once per ``Idempotency-Key``: :attr:`actions` holds the payloads acted on."""

    def __init__(self, secret: str = "whsec-test-secret", tolerance_s: float = 300) -> None:
        self.secret = secret
        self.tolerance_s = tolerance_s
        self.actions: list[dict[str, Any]] = []
        self.keys: set[str] = set()
        self.rejected: list[str] = []
        super().__init__()

    def verify(self, request: Request) -> str | None:
        timestamp = request.headers.get("x-driftline-timestamp", "")
        signature = request.headers.get("x-driftline-signature", "")
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > self.tolerance_s:
            return "stale or missing timestamp"
        expected = "sha256=" + hmac.new(self.secret.encode(), timestamp.encode() + b"." + request.body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            return "bad signature"
        if not request.headers.get("idempotency-key"):
            return "no idempotency key"
        return None

    def handle(self, request: Request) -> Answer:
        problem = self.verify(request)
        if problem:
            with self._lock:
                self.rejected.append(problem)
            return Answer(401, {"error": problem})
        key = request.headers["idempotency-key"]
        with self._lock:
            if key in self.keys:
                return Answer(200, {"status": "duplicate"})
            self.keys.add(key)
            self.actions.append(request.json())
        return Answer(202, {"status": "accepted"})


# ------------------------------------------------------------------------------ Databricks


class DatabricksJobs(FakeServer):
    """``POST /api/2.1/jobs/run-now``; :attr:`runs` are the runs actually started."""

    def __init__(self, token: str = "dapi-test-token", job_ids: tuple[int, ...] = (42,)) -> None:
        self.token = token
        self.job_ids = set(job_ids)
        self.runs: list[dict[str, Any]] = []
        self._by_token: dict[str, int] = {}
        self._ids = itertools.count(1001)
        super().__init__()

    def handle(self, request: Request) -> Answer:
        if request.path != "/api/2.1/jobs/run-now":
            return Answer(404, {"error_code": "ENDPOINT_NOT_FOUND", "message": request.path})
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return Answer(401, {"error_code": "UNAUTHENTICATED", "message": "Invalid access token."})
        body = request.json()
        if body.get("job_id") not in self.job_ids:
            return Answer(400, {"error_code": "INVALID_PARAMETER_VALUE", "message": f"Job {body.get('job_id')} does not exist."})
        token = body.get("idempotency_token")
        if token is not None and len(token) > 64:
            return Answer(400, {"error_code": "INVALID_PARAMETER_VALUE", "message": "idempotency_token too long"})
        with self._lock:
            if token in self._by_token:
                return Answer(200, {"run_id": self._by_token[token], "number_in_job": self._by_token[token]})
            run_id = next(self._ids)
            if token is not None:
                self._by_token[token] = run_id
            self.runs.append({"run_id": run_id, **body})
        return Answer(200, {"run_id": run_id, "number_in_job": run_id})


@contextmanager
def servers(*made: FakeServer) -> Iterator[tuple[FakeServer, ...]]:
    try:
        yield made
    finally:
        for server in made:
            server.close()


# ------------------------------------------------------------------ projects wired to them


def write_project(
    folder: Any,
    channels: dict[str, Any],
    alerts: dict[str, Any] | None,
    *,
    store_url: str | None = None,
    dashboard_url: str | None = "http://dash.local:8501",
    monitor: dict[str, Any] | None = None,
) -> Any:
    """A config file with one monitor ``credit`` (source files need not exist) and the given
    channels and alert settings; returns its path."""
    import yaml

    mon = {
        "name": "credit",
        "source": {"type": "parquet", "path": "logs"},
        "columns": {"timestamp": "ts"},
        "reference": {"type": "parquet", "path": "reference.parquet"},
        **(monitor or {}),
    }
    if alerts is not None:
        mon["alerts"] = alerts
    data: dict[str, Any] = {
        "store": store_url or f"sqlite:///{folder / 'driftline.db'}",
        "channels": channels,
        "monitors": [mon],
    }
    if dashboard_url:
        data["dashboard_url"] = dashboard_url
    path = folder / "driftline.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def queue_run(store: Any, project: Any, results: list[Any], day: int, *, now: Any = None, status: str = "breach") -> list[int]:
    """Run the alert hook's decision for one daily window of ``credit`` (as the Runner would, in a
    transaction of its own); the ids of the deliveries queued."""
    from datetime import datetime, timedelta, timezone

    from monitor.notify import queue_alerts
    from monitor.store import RunRecord
    from monitor.windows import Window

    start = datetime(2026, 3, 1, tzinfo=timezone.utc) + timedelta(days=day)
    window = Window(start, start + timedelta(days=1))
    run = RunRecord(monitor="credit", window=window, status=status, started_at=window.end, finished_at=window.end, id=day + 1)
    mon = project.monitor("credit")
    with store.session() as session:
        return queue_alerts(session, project, mon, run, results, now=now or window.end + timedelta(minutes=5))
