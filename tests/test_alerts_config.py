"""Alert configuration: channels, routes, secrets by environment variable name, clear errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from typer.testing import CliRunner

from alerts import settings as alert_settings
from monitor.config import ConfigError, parse_config
from monitor.notify import config_warnings

MONITOR = {
    "name": "credit",
    "source": {"type": "parquet", "path": "logs"},
    "columns": {"timestamp": "ts"},
    "reference": {"type": "parquet", "path": "reference.parquet"},
}
CHANNELS = {
    "ml-alerts": {"type": "slack", "token_env": "SLACK_BOT_TOKEN", "channel": "#ml-alerts"},
    "oncall": {"type": "slack_webhook", "url_env": "SLACK_WEBHOOK_URL"},
    "hook": {"type": "webhook", "url": "https://hooks.example.com/driftline", "secret_env": "WEBHOOK_SECRET"},
    "retrain": {"type": "databricks_job", "host": "https://adb-1.2.azuredatabricks.net/", "token_env": "DATABRICKS_TOKEN", "job_id": 123},
}
ALERTS = {
    "routes": [{"channel": "ml-alerts"}, {"channel": "oncall", "min_severity": "critical"}, {"channel": "hook", "checks": ["drift", "performance"]}],
    "for_windows": 2,
    "repeat_interval": "12h",
    "severity": {"critical_above": 3.0},
    "retrain": {"channel": "retrain", "sustained_windows": 3, "cooldown": "7d"},
}


def config(channels: Any = None, alerts: Any = None, **monitor: Any) -> dict[str, Any]:
    mon = {**MONITOR, **monitor}
    if alerts is not None:
        mon["alerts"] = alerts
    return {"channels": CHANNELS if channels is None else channels, "monitors": [mon]}


def problems(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    return str(info.value)


def test_a_full_alert_config_validates() -> None:
    project = parse_config(config(alerts=ALERTS))
    alerts = project.monitors[0].alerts
    assert alerts is not None and alerts.for_windows == 2 and alerts.repeat_delta.total_seconds() == 12 * 3600
    assert alerts.retrain is not None and alerts.retrain.cooldown_delta.days == 7
    assert project.channels["retrain"].host == "https://adb-1.2.azuredatabricks.net"  # trailing slash dropped
    assert project.channels["ml-alerts"].base_url == "https://slack.com/api/"


def test_alerts_are_optional_and_do_not_change_the_fingerprint() -> None:
    plain = parse_config(config(channels={})).monitors[0]
    alerted = parse_config(config(alerts=ALERTS)).monitors[0]
    assert plain.alerts is None and plain.fingerprint() == alerted.fingerprint()


@pytest.mark.parametrize(
    ("channel", "expected"),
    [
        ({"type": "slack", "token": "xoxb-1-2", "channel": "#x"}, "a literal token is not allowed in the config file: put it in an environment variable and write token_env: SLACK_BOT_TOKEN"),
        ({"type": "slack_webhook", "url": "https://hooks.slack.com/services/T/B/X"}, "write url_env: SLACK_WEBHOOK_URL"),
        ({"type": "webhook", "url": "https://x.example", "secret": "abc"}, "write secret_env: WEBHOOK_SECRET"),
        ({"type": "databricks_job", "host": "https://x", "token": "dapi1", "job_id": 1}, "write token_env: DATABRICKS_TOKEN"),
        ({"type": "slack", "token_env": "xoxb-123-456", "channel": "#x"}, "token_env is the NAME of an environment variable"),
        ({"type": "webhook", "url": "https://u:pw@x.example/h", "secret_env": "S"}, "url carries credentials"),
        ({"type": "webhook", "url": "https://x.example/h", "secret_env": "S", "headers": {"Authorization": "Bearer x"}}, "Authorization is a credential"),
        ({"type": "webhook", "url": "ftp://x.example/h", "secret_env": "S"}, "must be an http(s) URL"),
        ({"type": "teams", "url": "https://x"}, "channels.bad"),
        ({"type": "webhook", "url": "https://x.example/h", "secret_env": "S", "retries": 3}, "channels.bad.retries: unknown key"),
    ],
)
def test_bad_channels_say_what_to_write(channel: dict[str, Any], expected: str) -> None:
    text = problems(config(channels={"bad": channel}))
    assert expected in text
    for secret in ("xoxb-1-2", "xoxb-123-456", "dapi1", "pw@"):
        assert secret not in text  # errors never repeat a secret


def test_routes_must_name_known_channels_of_the_right_kind() -> None:
    text = problems(config(alerts={"routes": [{"channel": "ml-alert"}]}))
    assert "monitors[0].alerts.routes[0].channel: unknown channel 'ml-alert'; channels: hook, ml-alerts, oncall, retrain" in text
    text = problems(config(alerts={"routes": [{"channel": "retrain"}]}))
    assert "'retrain' is a databricks_job channel, which can only start retraining" in text
    text = problems(config(alerts={"retrain": {"channel": "ml-alerts"}}))
    assert "monitors[0].alerts.retrain.channel: 'ml-alerts' is a slack channel; retraining needs one of webhook, databricks_job" in text
    text = problems(config(channels={}, alerts={"routes": [{"channel": "x"}]}))
    assert "add a `channels:` section" in text


def test_alert_settings_values_are_checked() -> None:
    assert "'soon' is not a duration" in problems(config(alerts={"repeat_interval": "soon"}))
    assert "for_windows" in problems(config(alerts={"for_windows": 0}))
    assert "min_severity" in problems(config(alerts={"routes": [{"channel": "hook", "min_severity": "high"}]}))
    assert "alerts.rout" in problems(config(alerts={"rout": []}))


def test_missing_secrets_are_warnings_not_errors(tmp_path: Path) -> None:
    import yaml

    from monitor.cli import app

    project = parse_config(config(alerts=ALERTS))
    assert project  # validation passes without any of the variables
    path = tmp_path / "driftline.yaml"
    path.write_text(yaml.safe_dump({**config(alerts={"routes": [{"channel": "hook"}]}), "store": "sqlite:///x.db"}))
    from monitor.config import load_config

    warnings = config_warnings(load_config(path), env={"WEBHOOK_SECRET": "s"})
    assert "channels.ml-alerts: environment variable SLACK_BOT_TOKEN is not set here; deliveries to 'ml-alerts' will fail until it is" in warnings
    assert not any("WEBHOOK_SECRET" in w for w in warnings)
    assert "channels.oncall: no monitor routes alerts to it" in warnings
    result = CliRunner().invoke(app, ["validate", "--config", str(path)], env={"SLACK_BOT_TOKEN": ""})
    assert result.exit_code == 0 and "warning: channels.ml-alerts: environment variable SLACK_BOT_TOKEN is not set" in result.output


def test_every_alert_setting_is_documented() -> None:
    from monitor.docs import reference

    models = [m for m in vars(alert_settings).values() if isinstance(m, type) and issubclass(m, BaseModel) and m.__module__ == alert_settings.__name__ and not m.__name__.startswith("_")]
    assert len(models) >= 8
    for model in models:
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"
    text = reference()
    for name in ("AlertSettings", "Route", "RetrainSettings", "SlackChannel", "WebhookChannel", "DatabricksJobChannel", "SlackWebhookChannel"):
        assert f"#### {name}" in text, name
