"""User-facing alert settings: the project's ``channels:`` and a monitor's ``alerts:`` sections.

Secrets never appear in the config file, not even through ``${VAR}`` interpolation: a channel names
the *environment variable* that holds its token, webhook URL or signing secret (``token_env``,
``url_env``, ``secret_env``), and the sender reads it at send time. A missing variable then becomes
a failed delivery that names the variable, never a crashed run, and the value is never stored.

>>> ChannelSettings.validate_python({"type": "slack", "token_env": "SLACK_BOT_TOKEN", "channel": "#ml-alerts"}).type
'slack'
>>> try:
...     ChannelSettings.validate_python({"type": "slack", "token": "xoxb-123", "channel": "#ml"})
... except ValueError as exc:
...     print(exc.errors()[0]["msg"])
Value error, a literal token is not allowed in the config file: put it in an environment variable and write token_env: SLACK_BOT_TOKEN (the variable's NAME)
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal, Union
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d|w)\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}

SEVERITIES = ("warning", "critical")
PIPELINE = "pipeline"
"""The check of a failed run (metric ``run_failed``): its alert inhibits the monitor's others."""
NO_DATA = "no_data"
"""The alert check of an empty window (quality ``row_count`` with status ``no_data``)."""
FRESHNESS = "freshness"
"""The check of a stale source (``freshness/lag_seconds``, measured by the service): no new rows."""
INHIBITORS = (PIPELINE, NO_DATA, FRESHNESS)
"""Alerts that mean "the data did not arrive": while one fires, the monitor's other alerts are not sent."""


def parse_duration(text: str) -> timedelta:
    """``"30m"``, ``"1d"``, ``"7d"`` -> timedelta (the units of window sizes).

    >>> parse_duration("2d")
    datetime.timedelta(days=2)
    """
    match = _DURATION.match(str(text))
    if not match or int(match.group(1)) <= 0:
        raise ValueError(f"{text!r} is not a duration; write a positive number and a unit s, m, h, d or w, e.g. 4h or 1d")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _env_name(value: str, field: str) -> str:
    if not _ENV_NAME.match(value):
        raise ValueError(
            f"{field} is the NAME of an environment variable (e.g. SLACK_BOT_TOKEN), not its value; "
            "it must be letters, digits and _ — never paste the secret itself here"
        )
    return value


def _refuse_literal_secrets(data: Any, literal_to_env: dict[str, tuple[str, str]], urls: tuple[str, ...] = ()) -> Any:
    """A secret written in place (``token: xoxb-...``), a secret where a variable's name belongs,
    or a URL with credentials: an error that says what to write, and never repeats the value
    (these checks run on the whole mapping, whose values error messages do not print)."""
    if not isinstance(data, dict):
        return data
    for literal, (env_key, example) in literal_to_env.items():
        if literal in data:
            raise ValueError(
                f"a literal {literal} is not allowed in the config file: put it in an environment variable "
                f"and write {env_key}: {example} (the variable's NAME)"
            )
    for env_key, _example in literal_to_env.values():
        value = data.get(env_key)
        if isinstance(value, str) and not _ENV_NAME.match(value):
            raise ValueError(
                f"{env_key} is the NAME of an environment variable (e.g. {_example}), not its value; "
                "it must be letters, digits and _ (never paste the secret itself here)"
            )
    for name in urls:
        value = data.get(name)
        if isinstance(value, str):
            parts = urlsplit(value)
            if parts.username or parts.password or "@" in parts.netloc:
                raise ValueError(f"{name} carries credentials: keep the URL plain and put secrets in environment variables (*_env keys)")
    return data


def _plain_url(value: str, field: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{field} must be an http(s) URL, got {value!r}")
    return value.rstrip("/") if field == "host" else value


class SlackChannel(_Strict):
    """A Slack bot (``chat.postMessage``): later updates of an incident are threaded under its first message."""

    type: Literal["slack"] = Field(description="Slack through a bot token (Web API).")
    token_env: str = Field(description="Name of the environment variable holding the bot token (xoxb-...).")
    channel: str = Field(description="Slack channel id or name to post in, e.g. C0123456789 or #ml-alerts.")
    base_url: str = Field("https://slack.com/api/", description="Slack Web API base URL (change only for a proxy or a test server).")
    timeout_s: float = Field(10.0, gt=0, le=120, description="Seconds to wait for Slack per request.")

    @model_validator(mode="before")
    @classmethod
    def _literal(cls, data: Any) -> Any:
        return _refuse_literal_secrets(data, {"token": ("token_env", "SLACK_BOT_TOKEN")}, ("base_url",))

    @field_validator("token_env")
    @classmethod
    def _env(cls, value: str) -> str:
        return _env_name(value, "token_env")

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        value = _plain_url(value, "base_url")
        return value if value.endswith("/") else value + "/"


class SlackWebhookChannel(_Strict):
    """A Slack incoming webhook (one fixed channel, no threads)."""

    type: Literal["slack_webhook"] = Field(description="Slack through an incoming webhook URL.")
    url_env: str = Field(description="Name of the environment variable holding the webhook URL (the URL is a secret).")
    timeout_s: float = Field(10.0, gt=0, le=120, description="Seconds to wait for Slack per request.")

    @model_validator(mode="before")
    @classmethod
    def _literal(cls, data: Any) -> Any:
        return _refuse_literal_secrets(data, {"url": ("url_env", "SLACK_WEBHOOK_URL"), "webhook_url": ("url_env", "SLACK_WEBHOOK_URL")})

    @field_validator("url_env")
    @classmethod
    def _env(cls, value: str) -> str:
        return _env_name(value, "url_env")


class WebhookChannel(_Strict):
    """A generic HTTP webhook: the versioned JSON payload, HMAC-SHA256 signed, with an idempotency key."""

    type: Literal["webhook"] = Field(description="POST the JSON payload (version 1) to a URL.")
    url: str = Field(description="Where to POST (no credentials in it; the receiver authenticates us by the signature).")
    secret_env: str = Field(description="Name of the environment variable holding the HMAC signing secret.")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra, non-secret HTTP headers.")
    timeout_s: float = Field(10.0, gt=0, le=120, description="Seconds to wait for the receiver per request.")

    @model_validator(mode="before")
    @classmethod
    def _literal(cls, data: Any) -> Any:
        return _refuse_literal_secrets(data, {"secret": ("secret_env", "WEBHOOK_SECRET")}, ("url",))

    @field_validator("secret_env")
    @classmethod
    def _env(cls, value: str) -> str:
        return _env_name(value, "secret_env")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _plain_url(value, "url")

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if name.lower() in {"authorization", "cookie", "x-api-key", "proxy-authorization"}:
                raise ValueError(f"headers: {name} is a credential; the receiver verifies the X-Driftline-Signature instead")
        return value


class DatabricksJobChannel(_Strict):
    """A Databricks job started with ``POST /api/2.1/jobs/run-now`` (for retraining)."""

    type: Literal["databricks_job"] = Field(description="Run a Databricks job (Jobs API 2.1 run-now).")
    host: str = Field(description="Workspace URL, e.g. https://adb-123.4.azuredatabricks.net.")
    token_env: str = Field(description="Name of the environment variable holding a Databricks token.")
    job_id: int = Field(gt=0, description="The job to run.")
    job_parameters: dict[str, str] = Field(default_factory=dict, description="Fixed job parameters, sent beside the drift context (driftline_*).")
    timeout_s: float = Field(30.0, gt=0, le=300, description="Seconds to wait for the workspace per request.")

    @model_validator(mode="before")
    @classmethod
    def _literal(cls, data: Any) -> Any:
        return _refuse_literal_secrets(data, {"token": ("token_env", "DATABRICKS_TOKEN")}, ("host",))

    @field_validator("token_env")
    @classmethod
    def _env(cls, value: str) -> str:
        return _env_name(value, "token_env")

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        return _plain_url(value, "host")


ChannelSpec = Annotated[
    Union[SlackChannel, SlackWebhookChannel, WebhookChannel, DatabricksJobChannel],
    Field(discriminator="type"),
]
ChannelSettings: TypeAdapter[Any] = TypeAdapter(ChannelSpec)
NOTIFY_TYPES = ("slack", "slack_webhook", "webhook")
RETRAIN_TYPES = ("webhook", "databricks_job")


def secret_env_names(channel: Any) -> list[str]:
    """The environment variables a channel reads at send time."""
    return [getattr(channel, name) for name in ("token_env", "url_env", "secret_env") if getattr(channel, name, None)]


class Route(_Strict):
    """Where a monitor's notifications go, and which of them."""

    channel: str = Field(description="Name of a channel in the project's `channels`.")
    checks: list[str] = Field(default_factory=list, description="Only alerts of these checks (drift, quality, latency, performance, kpi, pipeline, no_data...); empty: all.")
    min_severity: Literal["warning", "critical"] = Field("warning", description="Only alerts at least this severe.")
    segments: bool = Field(True, description="Also alerts of single segments (e.g. region=EU); false: only the whole population's.")


class SeveritySettings(_Strict):
    """How an alert's severity is decided."""

    critical_above: float = Field(
        2.0, gt=1.0,
        description="A breach is critical when it is this many times past its threshold (effect/threshold; "
        "for floors threshold/value; drift uses its own severity). Otherwise it is a warning.",
    )
    critical_checks: list[str] = Field(
        default_factory=lambda: [PIPELINE, NO_DATA, FRESHNESS], description="Checks whose alerts are always critical."
    )


class RetrainSettings(_Strict):
    """When a sustained breach triggers retraining."""

    channel: str = Field(description="Name of a webhook or databricks_job channel that starts retraining.")
    checks: list[str] = Field(default_factory=lambda: ["drift", "performance"], description="Breaches of these checks count.")
    sustained_windows: int = Field(3, ge=1, le=1000, description="Consecutive breaching windows needed before retraining.")
    segments: bool = Field(False, description="Count breaches of single segments too (default: the whole population's only).")
    cooldown: str = Field("7d", description="At most one retrain per cooldown (measured on both the wall clock and the windows).")

    @field_validator("cooldown")
    @classmethod
    def _cooldown(cls, value: str) -> str:
        parse_duration(value)
        return value

    @property
    def cooldown_delta(self) -> timedelta:
        return parse_duration(self.cooldown)


class AlertSettings(_Strict):
    """A monitor's alerting: when breaches become alerts, and where they are sent."""

    routes: list[Route] = Field(default_factory=list, description="Channels that receive this monitor's notifications.")
    for_windows: int = Field(
        1, ge=1, le=1000,
        description="Consecutive breaching windows before an alert fires (pending until then). Failed runs, empty windows and a stale source fire at once.",
    )
    resolve_windows: int = Field(
        1, ge=1, le=1000,
        description="Consecutive healthy windows before a firing alert resolves (2 or more keeps a flapping alert from "
        "resolving and firing again every other window).",
    )
    repeat_interval: str = Field("1d", description="Remind of alerts still firing after this long (wall clock).")
    severity: SeveritySettings = Field(default_factory=SeveritySettings, description="Warning or critical.")
    retrain: RetrainSettings | None = Field(None, description="Trigger retraining on a sustained breach (optional).")

    @field_validator("repeat_interval")
    @classmethod
    def _repeat(cls, value: str) -> str:
        parse_duration(value)
        return value

    @property
    def repeat_delta(self) -> timedelta:
        return parse_duration(self.repeat_interval)


def channel_problems(channels: dict[str, Any], alerts: AlertSettings | None, where: str) -> list[str]:
    """Cross-checks of a monitor's routes against the project's channels (unknown names, wrong kinds)."""
    if alerts is None:
        return []
    problems: list[str] = []
    known = ", ".join(sorted(channels)) or "(none: add a `channels:` section at the top level)"
    for i, route in enumerate(alerts.routes):
        spec = channels.get(route.channel)
        if spec is None:
            problems.append(f"{where}.alerts.routes[{i}].channel: unknown channel {route.channel!r}; channels: {known}")
        elif spec.type not in NOTIFY_TYPES:
            problems.append(
                f"{where}.alerts.routes[{i}].channel: {route.channel!r} is a {spec.type} channel, which can only start "
                f"retraining (alerts.retrain.channel); notifications go to {', '.join(NOTIFY_TYPES)} channels"
            )
    if alerts.retrain is not None:
        spec = channels.get(alerts.retrain.channel)
        if spec is None:
            problems.append(f"{where}.alerts.retrain.channel: unknown channel {alerts.retrain.channel!r}; channels: {known}")
        elif spec.type not in RETRAIN_TYPES:
            problems.append(
                f"{where}.alerts.retrain.channel: {alerts.retrain.channel!r} is a {spec.type} channel; retraining needs "
                f"one of {', '.join(RETRAIN_TYPES)}"
            )
    return problems
