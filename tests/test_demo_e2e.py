"""The core issue's acceptance test: the default demo's planted events are found in the right
windows and nowhere else (whole population), and `driftline demo` / `results` show them."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from monitor.cli import app
from monitor.config import load_config
from monitor.demo import generate_demo
from monitor.runner import Runner
from monitor.store import Store

START = date(2026, 9, 1)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    folder = tmp_path_factory.mktemp("demo")
    events = generate_demo(folder, start=START)  # the defaults `make demo` uses: 60 days x 4000 rows
    project = load_config(folder / "driftline.yaml")
    store = Store.open(project.store_url)
    runner = Runner(project, store)
    begin = datetime.combine(START, datetime.min.time(), tzinfo=timezone.utc)
    runner.backfill(project.monitors[0], begin, begin + timedelta(days=events.days))
    yield folder, events, store
    store.dispose()


def days_of(frame: pd.DataFrame) -> list[date]:
    return sorted({t.date() for t in frame["window_start"]})


def span(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


@pytest.mark.slow
def test_planted_events_and_nothing_else(demo) -> None:  # noqa: ANN001
    _, events, store = demo
    last = START + timedelta(days=events.days - 1)
    breaches = store.metrics("credit-risk", segment="*", status="breach")
    found = {(r.check, r.column, r.metric) for r in breaches.itertuples()}
    drifted = set(events.drifted_numeric) | {events.new_category[0]}
    expected = (
        {("drift", c, "wasserstein") for c in events.drifted_numeric}
        | {("drift", events.new_category[0], "jensen_shannon")}
        | {("quality", events.new_category[0], "unseen_share")}
        | {("prediction_drift", "score", "wasserstein")}  # the model's output follows its inputs
        | {("latency", "latency_ms", "p95")}
        | {("quality", events.null_surge[0], "missing_share")}
        | {("drift", "", "dataset_drift")}  # the run-level verdict
    )
    assert found == expected
    dataset = breaches[breaches["metric"] == "dataset_drift"]
    assert all(set(d["drifted"]) == drifted for d in dataset["details"])
    for (check, column, metric) in expected:
        rows = breaches[(breaches["check"] == check) & (breaches["column"] == column) & (breaches["metric"] == metric)]
        if check == "latency":
            assert days_of(rows) == span(events.latency_start, last)
        elif column == events.null_surge[0]:
            assert days_of(rows) == span(events.null_surge[1], events.null_surge[2])
        else:
            assert column in drifted | {"score", ""}
            assert days_of(rows) == span(events.drift_start, last)
    # labels: none for the last 7 days -> performance has no data there, values before
    perf = store.metrics("credit-risk", segment="*", check="performance", metric="roc_auc")
    no_labels = perf[perf["status"] == "no_data"]
    assert days_of(no_labels) == span(last - timedelta(days=events.label_delay_days - 1), last)
    assert (perf[perf["status"] != "no_data"]["value"] > 0.7).all()
    # nothing failed anywhere
    assert store.metrics("credit-risk", status="error").empty
    assert {r.status for r in store.runs("credit-risk")} <= {"ok", "breach"}


@pytest.mark.slow
def test_segments_false_alarms_are_rare(demo) -> None:  # noqa: ANN001
    """Per segment the same checks run on 5x smaller samples, where the calibrated thresholds'
    null quantile (not the minimum effect) decides: healthy windows breach at most 1% of segment
    verdicts (the false-alarm rate), and in practice far fewer."""
    _, events, store = demo
    frame = store.metrics("credit-risk", check="drift")
    frame = frame[(frame["segment"] != "*") & frame["status"].isin(["ok", "breach"])]
    healthy = frame[frame["window_start"].map(lambda t: t.date() < events.drift_start)]
    assert len(healthy) > 1000
    healthy = healthy[healthy["column"] != ""]
    assert (healthy["status"] == "breach").mean() <= 0.01


def test_results_export(demo, tmp_path: Path) -> None:  # noqa: ANN001
    folder, events, _ = demo
    config = str(folder / "driftline.yaml")
    runner = CliRunner()
    out = tmp_path / "breaches.csv"
    result = runner.invoke(app, ["results", "-c", config, "--status", "breach", "--check", "latency", "-o", str(out)])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out)
    assert list(frame.columns[:10]) == ["monitor", "window_start", "window_end", "segment", "check", "column", "metric", "value", "threshold", "direction"]
    assert set(frame["metric"]) == {"p95"} and (frame["value"] > frame["threshold"]).all()
    result = runner.invoke(app, ["results", "-c", config, "--check", "kpi", "--segment", "*", "-f", "json", "--since", "2026-10-01", "--until", "2026-10-03"])
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert {r["column"] for r in records} == {"approval_rate", "mean_score"}
    assert {r["window_start"][:10] for r in records} == {"2026-10-01", "2026-10-02"}
    assert all(isinstance(r["details"], dict) for r in records)


def test_cli_demo_runs_non_interactively(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["demo", "--dir", str(tmp_path / "d"), "--days", "20", "--rows-per-day", "400", "--no-dashboard"])
    assert result.exit_code == 0, result.output
    assert "credit-risk: 20 window(s)" in result.output
    assert (tmp_path / "d" / "driftline.db").exists()
    again = CliRunner().invoke(app, ["validate", "-c", str(tmp_path / "d" / "driftline.yaml")])
    assert again.exit_code == 0 and "credit-risk" in again.output


def test_cli_reports_a_bad_config_with_exit_code_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("store: sqlite:///x.db\nmonitors:\n  - name: m\n    sauce: {}\n")
    result = CliRunner().invoke(app, ["validate", "-c", str(bad)])
    assert result.exit_code == 2
    assert "bad.yaml" in result.output and "sauce" in result.output


def test_the_serving_model_version_is_recorded(demo) -> None:  # noqa: ANN001
    _, events, store = demo
    rows = store.metrics("credit-risk", check="prediction", metric="model_version", segment="*")
    by_day = {t.date(): d["model_version"] for t, d in zip(rows["window_start"], rows["details"])}
    assert len(by_day) == events.days
    assert by_day[events.latency_start] != by_day[events.latency_start - timedelta(days=1)]
    assert len({v for d, v in by_day.items() if d < events.latency_start}) == 1
    assert (rows["status"] == "info").all() and (rows["value"] == 1).all()


def test_results_export_with_several_checks_and_statuses(demo, tmp_path: Path) -> None:  # noqa: ANN001
    folder, _, store = demo
    out = tmp_path / "r.csv"
    args = ["results", "-c", str(folder / "driftline.yaml"), "--check", "latency", "--check", "quality",
            "--status", "breach", "--status", "ok", "--segment", "*", "-o", str(out)]  # fmt: skip
    assert CliRunner().invoke(app, args).exit_code == 0
    frame = pd.read_csv(out)
    assert set(frame["check"]) == {"latency", "quality"} and set(frame["status"]) == {"breach", "ok"}
    expected = store.metrics("credit-risk", segment="*")
    expected = expected[expected["check"].isin(["latency", "quality"]) & expected["status"].isin(["breach", "ok"])]
    assert len(frame) == len(expected)
    assert list(frame["window_start"]) == sorted(frame["window_start"])  # in window order, as one query gives
