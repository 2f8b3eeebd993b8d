"""A generic HTTP webhook: the JSON payload, signed with HMAC-SHA256, with an idempotency key.

Every request carries

- ``Idempotency-Key``: the same on every attempt of one delivery; a receiver that stores the keys
  it acted on never acts twice (a sender killed mid-request sends again after its restart);
- ``X-Driftline-Timestamp``: Unix seconds when this attempt was signed;
- ``X-Driftline-Signature``: ``sha256=`` + hex HMAC-SHA256 of ``"{timestamp}.{body}"`` under the
  shared secret, so the receiver can check the body came from us and is fresh (reject timestamps
  more than 5 minutes old);
- ``X-Driftline-Payload-Version``: ``1`` (see ``alerts.payload``).

>>> body = b'{"monitor": "credit"}'
>>> sig = sign("s3cret", "1700000000", body)
>>> verify_signature("s3cret", "1700000000", body, sig, now=1700000100)
True
>>> verify_signature("s3cret", "1700000000", body + b" ", sig, now=1700000100)
False
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

from alerts.channels import SendContext, SendResult, Secrets
from alerts.channels._http import post
from alerts.payload import VERSION

SIGNATURE_HEADER = "X-Driftline-Signature"
TIMESTAMP_HEADER = "X-Driftline-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"
VERSION_HEADER = "X-Driftline-Payload-Version"
TOLERANCE_S = 300


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(secret: str, timestamp: str, body: bytes, signature: str, *, now: float | None = None, tolerance_s: float = TOLERANCE_S) -> bool:
    """What a receiver checks: the signature matches and the timestamp is recent."""
    try:
        age = abs((time.time() if now is None else now) - int(timestamp))
    except (TypeError, ValueError):
        return False
    return age <= tolerance_s and hmac.compare_digest(sign(secret, timestamp, body), signature or "")


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, default=str).encode()


class WebhookChannel:
    def __init__(self, name: str, spec: Any, secrets: Secrets, *, clock: Callable[[], float] = time.time) -> None:
        self.name = name
        self.spec = spec
        self.secrets = secrets
        self.clock = clock

    def send(self, payload: dict[str, Any], context: SendContext) -> SendResult:
        secret = self.secrets.get(self.spec.secret_env, self.name)
        body = encode(payload)
        timestamp = str(int(self.clock()))
        headers = {
            **self.spec.headers,
            "Content-Type": "application/json",
            "User-Agent": "driftline-alerts",
            IDEMPOTENCY_HEADER: context.idempotency_key,
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(secret, timestamp, body),
            VERSION_HEADER: str(VERSION),
        }
        answer = post(self.spec.url, body, headers, self.spec.timeout_s, self.secrets.redactor, f"webhook {self.name!r}")
        return SendResult(info=f"HTTP {answer.status}")
