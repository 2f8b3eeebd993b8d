"""A local webhook receiver to watch alerts arrive (``driftline demo`` starts one).

It does what a real receiver should: checks ``X-Driftline-Signature`` and the timestamp, acts once
per ``Idempotency-Key`` (a repeat is answered 200 and ignored), and answers 401 to anything
unsigned. What it accepted is kept in :attr:`LocalReceiver.received`.

>>> from alerts.channels.webhook import sign
>>> import json, time, urllib.request
>>> with LocalReceiver("s3cret") as receiver:
...     body = json.dumps({"monitor": "credit", "kind": "notify", "reason": "first", "alerts": [],
...                        "resolved": [], "window": {"start": "2026-03-01T00:00:00Z"}}).encode()
...     stamp = str(int(time.time()))
...     headers = {"X-Driftline-Timestamp": stamp, "X-Driftline-Signature": sign("s3cret", stamp, body),
...                "Idempotency-Key": "k1", "Content-Type": "application/json"}
...     for _ in range(2):
...         _ = urllib.request.urlopen(urllib.request.Request(receiver.url, body, headers), timeout=5).read()
...     len(receiver.received), receiver.duplicates
(1, 1)
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from alerts.channels.webhook import IDEMPOTENCY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature


def describe(payload: dict[str, Any]) -> str:
    """One line per message: ``credit-risk 2026-10-11: first: drift income (critical), ...``."""
    day = str(payload.get("window", {}).get("start", ""))[:10]
    if payload.get("kind") == "retrain":
        columns = ", ".join(sorted({a.get("column") or a.get("check") for a in payload.get("alerts", [])}))
        return f"{payload.get('monitor')} {day}: RETRAIN triggered (sustained: {columns})"

    def names(alerts: list[dict[str, Any]], severity: bool) -> str:
        parts = [
            f"{a['check']} {a['column']}".strip() + (f" [{a['segment']}]" if a.get("segment") not in (None, "*") else "")
            + (f" ({a.get('severity')})" if severity else "")
            for a in alerts
        ]
        return ", ".join(parts[:6]) + (f" +{len(parts) - 6} more" if len(parts) > 6 else "")

    text = f"{payload.get('monitor')} {day}: {payload.get('reason')}"
    if payload.get("alerts"):
        text += f": {names(payload['alerts'], True)}"
    if payload.get("resolved"):
        text += f"{'; resolved' if payload.get('alerts') else ''}: {names(payload['resolved'], False)}"
    if payload.get("retrain"):
        text += " (retraining triggered)"
    return text


class LocalReceiver:
    def __init__(self, secret: str, *, host: str = "127.0.0.1", port: int = 0, on_payload: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.secret = secret
        self.received: list[dict[str, Any]] = []
        self.duplicates = 0
        self.rejected = 0
        self._keys: set[str] = set()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                ok = verify_signature(receiver.secret, self.headers.get(TIMESTAMP_HEADER, ""), body, self.headers.get(SIGNATURE_HEADER, ""))
                key = self.headers.get(IDEMPOTENCY_HEADER, "")
                status = 401
                if ok and key:
                    with receiver._lock:
                        if key in receiver._keys:
                            receiver.duplicates += 1
                            status = 200
                        else:
                            receiver._keys.add(key)
                            payload = json.loads(body)
                            receiver.received.append(payload)
                            status = 202
                            if on_payload is not None:
                                on_payload(payload)
                else:
                    with receiver._lock:
                        receiver.rejected += 1
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="driftline-receiver", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self._server.server_address[0]}:{self.port}/driftline"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> LocalReceiver:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
