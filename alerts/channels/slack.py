"""Slack: Block Kit messages through a bot token (threads) or an incoming webhook.

A message says what a person needs to act: the monitor and model version, the window, each
alert with its metric's value, threshold and direction (how far past it), the features that
moved most, and buttons straight to the right dashboard pages. ``text`` is always sent beside
``blocks`` (notifications and screen readers show it).

With a bot token, the first message of an incident is posted to the channel and every later one
(new breaches, reminders, the resolution) is a reply in its thread; when the incident closes, the
first message is updated to say so. Each post carries the delivery's idempotency key in Slack
message metadata: a sender that died mid-post looks for it in the channel's recent history before
posting again (needs the ``channels:history`` scope; without it the post is repeated, at least once).

>>> text, blocks = render({"monitor": "credit", "model_version": "v7", "reason": "first", "status": "firing",
...     "window": {"start": "2026-03-01T00:00:00Z", "end": "2026-03-02T00:00:00Z"}, "closes_incident": False,
...     "alerts": [{"check": "drift", "column": "income", "segment": "*", "severity": "critical", "state": "firing",
...                 "reason": "first", "since": "2026-03-01T00:00:00Z", "windows": 1, "link": None,
...                 "breaches": [{"metric": "wasserstein", "value": 0.31, "threshold": 0.1, "direction": "max", "ratio": 3.1}]}],
...     "resolved": [], "ongoing": [], "top_features": [], "links": {}, "retrain": None})
>>> text
'credit: 1 new alert (1 critical) — window 2026-03-01 00:00 .. 2026-03-02 00:00 UTC'
>>> blocks[2]["text"]["text"]
':red_circle: *drift* `income` — wasserstein 0.31 > 0.1 (3.1x threshold) · critical · 1 window'
"""

from __future__ import annotations

import logging
import time
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from slack_sdk.webhook import WebhookClient

from alerts.channels import DeliveryError, SendContext, SendResult, Secrets
from alerts.channels._http import RETRYABLE_STATUS

log = logging.getLogger("driftline.alerts.slack")

# Slack's `ok: false` errors that are worth another attempt; every other one is permanent
# (invalid_auth, channel_not_found, not_in_channel, invalid_blocks...).
TRANSIENT_ERRORS = frozenset({"internal_error", "fatal_error", "service_unavailable", "request_timeout", "ratelimited", "rate_limited"})
METADATA_EVENT = "driftline_alert"
IN_CALL_RETRY_AFTER_MAX_S = 5  # longer Retry-After: give the call up, the outbox retries later

HEADER_MAX, SECTION_MAX, BLOCKS_MAX, ALERTS_SHOWN = 150, 3000, 50, 20
_ICON = {"critical": ":red_circle:", "warning": ":large_orange_circle:"}


class _RedactingFilter(logging.Filter):
    """slack-sdk logs request URLs at DEBUG (an incoming webhook's URL is its secret): mask them."""

    def __init__(self) -> None:
        super().__init__()
        self.redact: Any = str

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = self.redact(record.getMessage()), ()
        return True


def _sdk_logger(name: str, redact: Any) -> logging.Logger:
    """The logger handed to slack-sdk for one channel, with secrets masked in every record."""
    logger = logging.getLogger(f"driftline.alerts.slack.{name}")
    found = next((f for f in logger.filters if isinstance(f, _RedactingFilter)), None)
    if found is None:
        found = _RedactingFilter()
        logger.addFilter(found)
    found.redact = redact
    return logger


class _BoundedRateLimitHandler(RateLimitErrorRetryHandler):
    """Waits out a short ``Retry-After`` inside the call; a long one is left to the outbox."""

    def _can_retry(self, *, state, request, response=None, error=None) -> bool:  # noqa: ANN001
        if not super()._can_retry(state=state, request=request, response=response, error=error) or response is None:
            return False
        for name, values in response.headers.items():
            if name.lower() == "retry-after":
                try:
                    return int(values[0]) <= IN_CALL_RETRY_AFTER_MAX_S
                except (ValueError, IndexError):
                    return False
        return True


def retry_handlers() -> list[Any]:
    pause = FixedValueRetryIntervalCalculator(0.5)
    return [
        ConnectionErrorRetryHandler(max_retry_count=1, interval_calculator=pause),
        _BoundedRateLimitHandler(max_retry_count=1),
        ServerErrorRetryHandler(max_retry_count=1, interval_calculator=pause),
    ]


# ----------------------------------------------------------------------------------- rendering


def _num(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
            return f"{value:.3g}"
        return f"{value:.4g}"
    return str(value)


def _breach_text(breach: dict[str, Any]) -> str:
    value, threshold = breach.get("value"), breach.get("threshold")
    if threshold is None:
        return f"{breach['metric']} {_num(value)}"
    sign = "<" if breach.get("direction") == "min" else ">"
    ratio = breach.get("ratio")
    past = f" ({ratio:.2g}x threshold)" if isinstance(ratio, (int, float)) else ""
    return f"{breach['metric']} {_num(value)} {sign} {_num(threshold)}{past}"


def _alert_line(alert: dict[str, Any], resolved: bool = False) -> str:
    icon = ":white_check_mark:" if resolved else _ICON.get(alert.get("severity") or "", ":white_circle:")
    where = f" `{alert['column']}`" if alert.get("column") else ""
    segment = f" [{alert['segment']}]" if alert.get("segment") not in (None, "*") else ""
    if alert["check"] == "pipeline":
        error = next((b.get("details", {}).get("error") for b in alert.get("breaches", []) if b.get("details")), None)
        what = f"the run failed: {error}" if error else "the run failed"
    elif alert["check"] == "no_data":
        what = "the window has no rows"
    else:
        what = "; ".join(_breach_text(b) for b in alert.get("breaches", [])) or "breach"
    tail = "" if resolved else f" · {alert.get('severity') or 'warning'} · {alert.get('windows', 1)} window{'s' if alert.get('windows', 1) != 1 else ''}"
    if alert.get("reason") == "repeat_due":
        tail += " · still firing"
    link = f" <{alert['link']}|open>" if alert.get("link") else ""
    return f"{icon} *{alert['check']}*{where}{segment} — {what}{tail}{link}"


def _window(payload: dict[str, Any]) -> str:
    def short(text: str) -> str:
        return text.replace("T", " ").replace(":00Z", "").replace("Z", "")

    return f"{short(payload['window']['start'])} .. {short(payload['window']['end'])} UTC"


def _summary(payload: dict[str, Any]) -> str:
    firing, resolved = payload.get("alerts", []), payload.get("resolved", [])
    parts = []
    if firing:
        critical = sum(a.get("severity") == "critical" for a in firing)
        repeat = payload.get("reason") == "repeat_due" and all(a.get("reason") == "repeat_due" for a in firing)
        noun = "alert" + ("s" if len(firing) != 1 else "")
        label = f"{len(firing)} {noun} still firing" if repeat else f"{len(firing)} new {noun}"
        parts.append(label + (f" ({critical} critical)" if critical else ""))
    if resolved:
        parts.append(f"{len(resolved)} resolved")
    if payload.get("kind") == "retrain":
        parts = [f"retraining triggered by {len(firing)} sustained breach{'es' if len(firing) != 1 else ''}"]
    return f"{payload['monitor']}: {', '.join(parts) or 'update'}"


def render(payload: dict[str, Any], *, closed_banner: bool = False) -> tuple[str, list[dict[str, Any]]]:
    """``(text, blocks)`` of a payload, within Block Kit's limits."""
    summary = _summary(payload)
    text = f"{summary} — window {_window(payload)}"
    icon = ":white_check_mark:" if payload.get("status") == "resolved" or closed_banner else (
        ":red_circle:" if any(a.get("severity") == "critical" for a in payload.get("alerts", [])) else ":large_orange_circle:"
    )
    header = ("RESOLVED — " if closed_banner else "") + summary
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(f"{header}", HEADER_MAX), "emoji": True}},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*Monitor*\n{payload['monitor']}"},
                {"type": "mrkdwn", "text": f"*Model version*\n{payload.get('model_version') or 'n/a'}"},
                {"type": "mrkdwn", "text": f"*Window*\n{_window(payload)}"},
                {"type": "mrkdwn", "text": f"*Status*\n{icon} {payload.get('status', 'firing')}"},
            ],
        },
    ]
    lines = [_alert_line(a) for a in payload.get("alerts", [])] + [_alert_line(a, resolved=True) for a in payload.get("resolved", [])]
    for line in lines[:ALERTS_SHOWN]:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _clip(line, SECTION_MAX)}})
    if len(lines) > ALERTS_SHOWN:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"…and {len(lines) - ALERTS_SHOWN} more (see the dashboard)"}]})
    ongoing = payload.get("ongoing", [])
    if ongoing:
        names = ", ".join(f"{a['check']}:{a['column'] or '-'}" for a in ongoing[:10])
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(f"Still firing: {names}", SECTION_MAX)}]})
    top = payload.get("top_features", [])
    if top:
        moved = "\n".join(
            f"{i}. `{f['column']}` {f['metric']} {_num(f['value'])} (threshold {_num(f['threshold'])})" + (" — *breach*" if f.get("breach") else "")
            for i, f in enumerate(top, 1)
        )
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _clip(f"*Top moved features*\n{moved}", SECTION_MAX)}})
    if payload.get("retrain"):
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": ":arrows_counterclockwise: retraining was triggered for this window"}]})
    links = payload.get("links") or {}
    buttons = [
        {"type": "button", "text": {"type": "plain_text", "text": label}, "url": links[key], "action_id": f"driftline_{key}"}
        for key, label in (("dashboard", "Open dashboard"), ("alerts", "Alert history"))
        if links.get(key)
    ]
    if buttons:
        blocks.append({"type": "actions", "elements": buttons})
    return _clip(text, SECTION_MAX), blocks[:BLOCKS_MAX]


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ------------------------------------------------------------------------------------ errors


def _classify(exc: Exception, what: str, redact: Any) -> DeliveryError:
    if isinstance(exc, SlackApiError):
        response = exc.response
        status = getattr(response, "status_code", 200)
        error = (response.data or {}).get("error") if isinstance(getattr(response, "data", None), dict) else None
        retry_after = None
        headers = getattr(response, "headers", {}) or {}
        for name, value in headers.items():
            if name.lower() == "retry-after":
                try:
                    retry_after = float(value[0] if isinstance(value, list) else value)
                except (ValueError, IndexError):
                    pass
        retryable = status in RETRYABLE_STATUS or status >= 500 or (error in TRANSIENT_ERRORS)
        kind = "will retry" if retryable else "permanent"
        return DeliveryError(redact(f"{what}: Slack answered HTTP {status} error={error or '?'} ({kind})"), retryable=retryable, retry_after=retry_after)
    return DeliveryError(redact(f"{what}: {type(exc).__name__}: {exc}".splitlines()[0]), retryable=True)


class SlackBotChannel:
    def __init__(self, name: str, spec: Any, secrets: Secrets) -> None:
        self.name = name
        self.spec = spec
        self.secrets = secrets

    def _client(self) -> WebClient:
        token = self.secrets.get(self.spec.token_env, self.name)
        return WebClient(
            token=token, base_url=self.spec.base_url, timeout=self.spec.timeout_s,  # type: ignore[arg-type]
            retry_handlers=retry_handlers(), logger=_sdk_logger(self.name, self.secrets.redactor),
        )  # fmt: skip

    def send(self, payload: dict[str, Any], context: SendContext) -> SendResult:
        what = f"slack {self.name!r}"
        client = self._client()
        redact = self.secrets.redactor
        try:
            ts = context.external_id  # posted by an attempt that died before recording success
            if ts is None and context.recovering:
                ts = self._already_posted(client, context)
            if ts is None:
                text, blocks = render(payload)
                arguments: dict[str, Any] = {
                    "channel": self.spec.channel, "text": text, "blocks": blocks, "unfurl_links": False,
                    "metadata": {"event_type": METADATA_EVENT, "event_payload": {"idempotency_key": context.idempotency_key, "monitor": payload["monitor"]}},
                }  # fmt: skip
                if context.thread_ts:
                    arguments["thread_ts"] = context.thread_ts
                response = client.chat_postMessage(**arguments)
                ts = str(response["ts"])
                context.record_external_id(ts)
                channel_id = response.get("channel") or self.spec.channel
            else:
                channel_id = self.spec.channel
            if payload.get("closes_incident") and context.thread_ts and context.thread_payload:
                self._mark_closed(client, channel_id, context)
            return SendResult(external_id=ts)
        except (SlackApiError, SlackClientError, OSError) as exc:
            raise _classify(exc, what, redact) from None

    def _already_posted(self, client: WebClient, context: SendContext) -> str | None:
        """The ts of a message carrying this delivery's key, if an earlier attempt posted it."""
        try:
            oldest = f"{(context.created_at or time.time()) - 60:.6f}"
            history = client.conversations_history(channel=self.spec.channel, oldest=oldest, limit=200, include_all_metadata=True)
        except SlackApiError as exc:
            log.info("%s: cannot look for an earlier post (%s); posting again", self.name, (exc.response.data or {}).get("error"))
            return None
        for message in history.get("messages", []):
            meta = message.get("metadata") or {}
            if meta.get("event_type") == METADATA_EVENT and (meta.get("event_payload") or {}).get("idempotency_key") == context.idempotency_key:
                return str(message["ts"])
        return None

    def _mark_closed(self, client: WebClient, channel_id: str, context: SendContext) -> None:
        assert context.thread_payload is not None and context.thread_ts is not None
        text, blocks = render(context.thread_payload, closed_banner=True)
        try:
            client.chat_update(channel=channel_id, ts=context.thread_ts, text="RESOLVED — " + text, blocks=blocks)
        except SlackApiError as exc:  # the resolution itself was posted; the banner is a nicety
            log.warning("%s: could not mark the incident's first message resolved: %s", self.name, self.secrets.redactor((exc.response.data or {}).get("error")))


class SlackWebhookChannel:
    def __init__(self, name: str, spec: Any, secrets: Secrets) -> None:
        self.name = name
        self.spec = spec
        self.secrets = secrets

    def send(self, payload: dict[str, Any], context: SendContext) -> SendResult:
        url = self.secrets.get(self.spec.url_env, self.name)
        what = f"slack webhook {self.name!r}"
        redact = self.secrets.redactor
        client = WebhookClient(url=url, timeout=self.spec.timeout_s, retry_handlers=retry_handlers(), logger=_sdk_logger(self.name, redact))  # type: ignore[arg-type]
        text, blocks = render(payload)
        try:
            response = client.send(text=text, blocks=blocks, unfurl_links=False)
        except (SlackClientError, OSError) as exc:
            raise DeliveryError(redact(f"{what}: {type(exc).__name__}: {exc}".splitlines()[0]), retryable=True) from None
        if response.status_code == 200:
            return SendResult(info="ok")
        retry_after = None
        for name, value in (response.headers or {}).items():
            if name.lower() == "retry-after":
                try:
                    retry_after = float(value[0] if isinstance(value, list) else value)
                except (ValueError, IndexError):
                    pass
        retryable = response.status_code in RETRYABLE_STATUS or response.status_code >= 500
        kind = "will retry" if retryable else "permanent"
        raise DeliveryError(
            redact(f"{what}: HTTP {response.status_code} {str(response.body)[:200]} ({kind})"), retryable=retryable, retry_after=retry_after
        )
