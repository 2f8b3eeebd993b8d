"""The config file: the issue's example is a contract; every mistake names file, key and fix."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from monitor.config import ConfigError, WindowReference, load_config

EXAMPLE = """
store: sqlite:///driftline.db          # or postgresql+psycopg://user@host/db
monitors:
  - name: credit-risk
    source: {type: parquet, path: "logs/*.parquet"}   # csv | jsonl | sql (url + table or query)
    columns:
      timestamp: ts
      id: request_id
      numeric: [income, age]            # inferred from the reference when omitted
      categorical: [region]
      prediction: score
      prediction_kind: probability      # probability | class | regression
      target: label
      latency: latency_ms
      segments: [region]
    reference: {type: parquet, path: reference.parquet}   # or {window: {start: ..., end: ...}}
    window: 1d
    schedule: "15 0 * * *"
    checks: {drift: {}, quality: {}, latency: {p95_max_ms: 250}, performance: {}}
    kpis: [{name: approval_rate, column: score, agg: mean, min: 0.2}]
"""


def write(tmp_path: Path, text: str, name: str = "driftline.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def problems(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message  # every error names the file
    return message


def test_the_issue_example_is_valid(tmp_path: Path) -> None:
    project = load_config(write(tmp_path, EXAMPLE))
    mon = project.monitor("credit-risk")
    assert mon.columns.numeric == ["income", "age"]
    assert mon.window_size.total_seconds() == 86400
    assert mon.checks.latency.p95_max_ms == 250
    assert mon.kpis[0].agg == "mean" and mon.kpis[0].min == 0.2
    # A relative SQLite path is relative to the config file, wherever the command runs.
    assert project.store_url == f"sqlite:///{(tmp_path / 'driftline.db').resolve()}"


def test_unknown_key_is_named_with_its_path_and_a_suggestion(tmp_path: Path) -> None:
    message = problems(tmp_path, EXAMPLE.replace('schedule: "15 0 * * *"', 'schedul: "15 0 * * *"'))
    assert "monitors[0].schedul" in message
    assert "did you mean 'schedule'" in message


def test_unknown_key_inside_columns(tmp_path: Path) -> None:
    message = problems(tmp_path, EXAMPLE.replace("latency: latency_ms", "latencyy: latency_ms"))
    assert "monitors[0].columns.latencyy" in message
    assert "did you mean 'latency'" in message


def test_bad_prediction_kind_lists_the_valid_values(tmp_path: Path) -> None:
    message = problems(tmp_path, EXAMPLE.replace("prediction_kind: probability", "prediction_kind: prob"))
    assert "monitors[0].columns.prediction_kind" in message
    assert "'probability'" in message and "'regression'" in message and "'prob'" in message


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("window: 1d", "window: daily", "monitors[0].window"),
        ('schedule: "15 0 * * *"', 'schedule: "every day"', "not a cron expression"),
        ("agg: mean", "agg: median", "monitors[0].kpis[0].agg"),
        ("p95_max_ms: 250", "p95_max_ms: fast", "monitors[0].checks.latency.p95_max_ms"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert expected in problems(tmp_path, EXAMPLE.replace(old, new))


def test_missing_required_key(tmp_path: Path) -> None:
    message = problems(tmp_path, EXAMPLE.replace("      timestamp: ts\n", ""))
    assert "monitors[0].columns.timestamp" in message and "missing" in message


def test_prediction_without_kind_explains_the_fix(tmp_path: Path) -> None:
    message = problems(tmp_path, EXAMPLE.replace("      prediction_kind: probability      # probability | class | regression\n", ""))
    assert "prediction_kind" in message and "probability | class | regression" in message


def test_secrets_come_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = EXAMPLE.replace("store: sqlite:///driftline.db", "store: postgresql+psycopg://app:${DB_PASSWORD}@db/monitoring")
    monkeypatch.setenv("DB_PASSWORD", "s3cret")
    project = load_config(write(tmp_path, text))
    assert project.store_url == "postgresql+psycopg://app:s3cret@db/monitoring"
    monkeypatch.delenv("DB_PASSWORD")
    message = problems(tmp_path, text)
    assert "store" in message and "DB_PASSWORD is not set" in message and "export DB_PASSWORD" in message


def test_env_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DRIFTLINE_STORE", raising=False)
    text = EXAMPLE.replace("store: sqlite:///driftline.db", "store: ${DRIFTLINE_STORE:-sqlite:///other.db}")
    assert load_config(write(tmp_path, text)).store_url.endswith("other.db")


def test_reference_as_a_window_of_the_source(tmp_path: Path) -> None:
    text = EXAMPLE.replace(
        "reference: {type: parquet, path: reference.parquet}",
        "reference: {window: {start: 2026-09-01, end: 2026-09-15}}",
    )
    ref = load_config(write(tmp_path, text)).monitor("credit-risk").reference
    assert isinstance(ref, WindowReference)
    assert ref.window.end.day == 15


def test_reference_window_must_be_ordered(tmp_path: Path) -> None:
    text = EXAMPLE.replace(
        "reference: {type: parquet, path: reference.parquet}",
        "reference: {window: {start: 2026-09-15, end: 2026-09-01}}",
    )
    assert "window.end must be after window.start" in problems(tmp_path, text)


def test_sql_source(tmp_path: Path) -> None:
    text = EXAMPLE.replace(
        'source: {type: parquet, path: "logs/*.parquet"}',
        "source: {type: sql, url: 'sqlite:///logs.db', table: predictions}",
    )
    assert load_config(write(tmp_path, text)).monitor("credit-risk").source.type == "sql"


def test_yaml_syntax_error_has_a_line(tmp_path: Path) -> None:
    message = problems(tmp_path, "store: [unclosed\nmonitors: []\n")
    assert "line" in message and "not valid YAML" in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.yaml")
    assert "file not found" in str(info.value) and "nope.yaml" in str(info.value)


def test_duplicate_monitor_names(tmp_path: Path) -> None:
    body = EXAMPLE.split("monitors:\n", 1)[1]
    message = problems(tmp_path, EXAMPLE + body)
    assert "unique" in message and "credit-risk" in message


def test_several_problems_are_reported_at_once(tmp_path: Path) -> None:
    message = problems(tmp_path, EXAMPLE.replace("window: 1d", "window: soon").replace("agg: mean", "agg: avg"))
    assert "monitors[0].window" in message and "monitors[0].kpis[0].agg" in message


def test_fingerprint_changes_with_what_is_computed(tmp_path: Path) -> None:
    a = load_config(write(tmp_path, EXAMPLE)).monitor("credit-risk").fingerprint()
    b = load_config(write(tmp_path, EXAMPLE.replace("p95_max_ms: 250", "p95_max_ms: 300"), "b.yaml")).monitor("credit-risk").fingerprint()
    c = load_config(write(tmp_path, EXAMPLE, "c.yaml")).monitor("credit-risk").fingerprint()
    assert a != b and a == c


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        # pydantic puts a discriminated union's tag into error locations; users never wrote it
        ('path: "logs/*.parquet"}', 'pth: "logs/*.parquet"}', "monitors[0].source.pth: unknown key 'pth'; did you mean 'path'?"),
        (
            "reference: {type: parquet, path: reference.parquet}",
            "reference: {type: sql, url: 'sqlite:///r.db', table: t, shema: x}",
            "monitors[0].reference.shema: unknown key 'shema'; did you mean 'schema'?",
        ),
        (
            "reference: {type: parquet, path: reference.parquet}",
            "reference: {window: {start: 2026-09-15, end: 2026-09-01}}",
            "monitors[0].reference.window: window.end must be after window.start",
        ),
        ("min: 0.2}]", "mn: 0.2}]", "monitors[0].kpis[0].mn: unknown key 'mn'; did you mean 'min'?"),
    ],
)
def test_error_paths_are_the_keys_the_user_wrote(tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert old in EXAMPLE
    assert expected in problems(tmp_path, EXAMPLE.replace(old, new))


def test_error_path_inside_a_named_channel(tmp_path: Path) -> None:
    text = EXAMPLE + "channels:\n  hook: {type: webhook, url: 'http://127.0.0.1:9/x', secret_envv: S}\n"
    message = problems(tmp_path, text)
    assert "channels.hook.secret_envv: unknown key 'secret_envv'; did you mean 'secret_env'?" in message
    assert ".webhook." not in message
