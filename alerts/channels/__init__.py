"""Delivery channels: Slack (bot or incoming webhook), a signed generic webhook, Databricks Jobs.

A channel turns a stored payload (``alerts.payload``) into one request and classifies what went
wrong at the edge: a :class:`DeliveryError` is ``retryable`` (5xx, 429, timeouts, connection
errors, Slack's transient errors) or permanent (other 4xx, Slack's ``ok: false``, a missing
secret), and its message is already redacted. Channels never touch the outbox: the sender
(``monitor.notify``) claims rows, calls :meth:`Channel.send` and records the outcome.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from alerts.redact import Redactor


class DeliveryError(Exception):
    """A failed send. ``retryable``: worth trying again later; ``retry_after``: the receiver's hint (s)."""

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


class MissingSecret(DeliveryError):
    def __init__(self, variable: str, channel: str) -> None:
        super().__init__(
            f"channel {channel!r}: environment variable {variable} is not set; export it where the sender runs "
            f"(then `driftline deliveries --retry ID`)",
            retryable=False,
        )
        self.variable = variable


@dataclass(frozen=True)
class SendResult:
    external_id: str | None = None  # Slack ts, Databricks run_id...
    info: str = ""


@dataclass
class SendContext:
    """What a channel needs besides the payload, for one attempt."""

    idempotency_key: str
    attempt: int = 1
    recovering: bool = False  # a previous attempt died mid-send: the receiver may already have it
    thread_ts: str | None = None  # Slack: the incident's first message
    thread_payload: dict[str, Any] | None = None  # ...and its payload (to mark it resolved)
    external_id: str | None = None  # what an earlier attempt of this delivery already recorded
    record_external_id: Callable[[str], None] = lambda _id: None  # save a half-done step right away
    created_at: float | None = None  # epoch seconds the delivery was queued


class Channel(Protocol):
    name: str

    def send(self, payload: dict[str, Any], context: SendContext) -> SendResult: ...


@dataclass
class Secrets:
    """Reads a channel's secrets from the environment at send time, and remembers them for redaction."""

    env: Mapping[str, str] = field(default_factory=lambda: os.environ)
    redactor: Redactor = field(default_factory=Redactor)

    def get(self, variable: str, channel: str) -> str:
        value = self.env.get(variable)
        if not value:
            raise MissingSecret(variable, channel)
        self.redactor.add(value)
        return value


def build_channel(name: str, spec: Any, secrets: Secrets) -> Channel:
    """The channel for a validated channel spec (``alerts.settings``)."""
    if spec.type == "slack":
        from alerts.channels.slack import SlackBotChannel

        return SlackBotChannel(name, spec, secrets)
    if spec.type == "slack_webhook":
        from alerts.channels.slack import SlackWebhookChannel

        return SlackWebhookChannel(name, spec, secrets)
    if spec.type == "webhook":
        from alerts.channels.webhook import WebhookChannel

        return WebhookChannel(name, spec, secrets)
    if spec.type == "databricks_job":
        from alerts.channels.databricks import DatabricksJobChannel

        return DatabricksJobChannel(name, spec, secrets)
    raise ValueError(f"channel {name!r}: unknown type {spec.type!r}")
