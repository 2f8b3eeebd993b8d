"""One HTTP POST with failures classified (standard library only)."""

from __future__ import annotations

import http.client
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import Message

from alerts.channels import DeliveryError
from alerts.redact import Redactor

RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_SNIPPET = 300


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    body: str
    headers: Message


def retry_after(headers: Message | None) -> float | None:
    """Seconds from a ``Retry-After`` header (the delta form; dates are ignored)."""
    if headers is None:
        return None
    value = headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def post(url: str, body: bytes, headers: dict[str, str], timeout: float, redact: Redactor, what: str) -> HttpAnswer:
    """POST and return a 2xx answer; raise :class:`DeliveryError` (retryable or not) otherwise."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http(s) only, validated
            text = response.read().decode("utf-8", "replace")
            return HttpAnswer(response.status, text, response.headers)
    except urllib.error.HTTPError as exc:
        text = exc.read().decode("utf-8", "replace")[:_SNIPPET] if exc.fp is not None else ""
        retryable = exc.code in RETRYABLE_STATUS or exc.code >= 500
        kind = "will retry" if retryable else "permanent"
        raise DeliveryError(
            redact(f"{what}: HTTP {exc.code} {exc.reason} ({kind}): {text}".rstrip(": ")),
            retryable=retryable,
            retry_after=retry_after(exc.headers),
        ) from None
    except (TimeoutError, socket.timeout) as exc:
        raise DeliveryError(redact(f"{what}: no answer within {timeout:g}s ({exc})"), retryable=True) from None
    except urllib.error.URLError as exc:
        raise DeliveryError(redact(f"{what}: cannot connect: {exc.reason}"), retryable=True) from None
    except (ConnectionError, http.client.HTTPException, OSError) as exc:
        raise DeliveryError(redact(f"{what}: connection failed: {type(exc).__name__}: {exc}"), retryable=True) from None
