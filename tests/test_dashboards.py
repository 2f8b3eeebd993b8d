"""The dashboards, page by page, with Streamlit's AppTest on a demo store and on empty stores.

Every assertion compares what a page shows (tiles, chart traces, tables, messages) with what the
store holds, read through the Store's own API, so the pages are checked against the results and not
against themselves. The demo is small (30 days x 800 rows) and starts on a fixed day.
"""

from __future__ import annotations

import base64
import doctest
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas.testing as pd_testing
import pytest
from sqlalchemy import insert
from streamlit.testing.v1 import AppTest

import dashboards.app
from checks.profiles import CategoricalProfile, NumericProfile
from dashboards.common import fmt_number
from monitor import read
from monitor.config import load_config
from monitor.demo import DemoEvents, generate_demo
from monitor.runner import Runner
from monitor.store import RunRecord, Store
from monitor.windows import Window

APP = Path(dashboards.app.__file__)
START = date(2026, 9, 1)
DAY = timedelta(days=1)
MONITOR = "credit-risk"
TIMEOUT = 60


@dataclass(frozen=True)
class Demo:
    folder: Path
    config: Path
    url: str
    events: DemoEvents


def build_demo(folder: Path, days: int = 30, rows_per_day: int = 800) -> Demo:
    events = generate_demo(folder, days=days, rows_per_day=rows_per_day, reference_rows=5000, start=START)
    config = folder / "driftline.yaml"
    project = load_config(config)
    store = Store.open(project.store_url)
    begin = datetime.combine(START, datetime.min.time(), tzinfo=timezone.utc)
    # The config's own hooks: when it routes alerts, the alert tables fill as in production (the
    # deliveries stay queued: nothing sends them here).
    Runner(project, store).backfill(project.monitors[0], begin, begin + days * DAY, trigger="demo")
    store.dispose()
    return Demo(folder, config, project.store_url, events)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    return build_demo(tmp_path_factory.mktemp("dash-demo"))


@pytest.fixture(scope="module")
def store(demo: Demo) -> Iterator[Store]:
    with Store(demo.url) as opened:
        yield opened


def copy_demo(demo: Demo, folder: Path) -> Demo:
    """A private copy of the demo's config and store, for tests that write to it."""
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "driftline.db"
    with sqlite3.connect(demo.url.removeprefix("sqlite:///")) as source, sqlite3.connect(db) as target:
        source.backup(target)
    config = folder / "driftline.yaml"
    text = demo.config.read_text()
    config.write_text(text.replace("path: \"logs\"", f"path: \"{demo.folder / 'logs'}\"").replace("path: reference.parquet", f"path: {demo.folder / 'reference.parquet'}"))
    return Demo(folder, config, f"sqlite:///{db}", demo.events)


# ------------------------------------------------------------------------------------ helpers


def run_app(
    monkeypatch: pytest.MonkeyPatch,
    *,
    config: Path | None = None,
    store_url: str | None = None,
    page: str | None = None,
    params: dict[str, str] | None = None,
) -> AppTest:
    monkeypatch.delenv("DRIFTLINE_CONFIG", raising=False)
    monkeypatch.delenv("DRIFTLINE_STORE_URL", raising=False)
    if config is not None:
        monkeypatch.setenv("DRIFTLINE_CONFIG", str(config))
    if store_url is not None:
        monkeypatch.setenv("DRIFTLINE_STORE_URL", store_url)
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.query_params.update(params or {})
    at.run()
    if page is not None and page != "overview":
        at.switch_page(f"views/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _decoded(node: object) -> object:
    """Plotly 7 writes numpy arrays as typed arrays ({"dtype", "bdata", "shape"}): back to lists."""
    if isinstance(node, dict):
        if set(node) >= {"dtype", "bdata"}:
            values = np.frombuffer(base64.b64decode(node["bdata"]), dtype=np.dtype(node["dtype"]))
            if "shape" in node:
                values = values.reshape([int(n) for n in str(node["shape"]).split(",")])
            return values.tolist()
        return {key: _decoded(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_decoded(value) for value in node]
    return node


def figures(at: AppTest) -> dict[str, dict]:
    """The page's plotly figures by their widget key (``...-dl_heatmap`` -> ``dl_heatmap``)."""
    out = {}
    for chart in at.get("plotly_chart"):
        key = chart.proto.id.split("-", 2)[-1] if chart.proto.id else str(len(out))
        out[key] = _decoded(json.loads(chart.proto.spec))
    return out


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def deltas(at: AppTest) -> dict[str, str]:
    return {m.label: m.proto.delta for m in at.metric}


def texts(at: AppTest) -> str:
    parts = [e.value for kind in ("markdown", "caption", "info", "warning", "error", "success", "title", "subheader") for e in at.get(kind)]
    return "\n".join(str(p) for p in parts)


def trace(figure: dict, name: str) -> dict:
    found = [t for t in figure["data"] if t.get("name") == name]
    assert found, f"no trace {name!r}: {[t.get('name') for t in figure['data']]}"
    return found[0]


def day(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


# ----------------------------------------------------------------------------- doctests


@pytest.mark.parametrize("module", ["monitor.read", "dashboards.charts", "dashboards.common", "dashboards.auth"])
def test_doctests(module: str) -> None:
    import importlib

    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0


def test_modules_import_without_building_the_app() -> None:
    # Importing the entry script (as `driftline dashboard` does for serve()) draws nothing.
    import importlib

    app = importlib.reload(dashboards.app)
    assert callable(app.serve) and callable(app.main)
    command = app.streamlit_command(port=8600, address="0.0.0.0")
    for flag, value in (("--server.port", "8600"), ("--server.address", "0.0.0.0"), ("--server.headless", "true"), ("--browser.gatherUsageStats", "false")):
        assert command[command.index(flag) + 1] == value
    assert command[1:5] == ["-m", "streamlit", "run", str(APP)]


# ----------------------------------------------------------------------------- read API


def test_grid_matches_the_stored_verdicts(store: Store) -> None:
    stored = store.metrics(MONITOR, segment="*")
    # Column verdicts: the run-level rows (column "") are no column of a heat map.
    verdicts = stored[stored["check"].isin(read.VERDICT_CHECKS) & stored["status"].isin(["ok", "breach"]) & (stored["column"] != "")]
    grid = read.metric_grid(store, MONITOR, read.VERDICT_CHECKS, statuses=read.VERDICT_STATUSES)
    assert grid.windows_per_bucket == 1
    merged = grid.frame.merge(verdicts, left_on=["check", "column", "bucket_start"], right_on=["check", "column", "window_start"])
    assert len(merged) == len(verdicts) == len(grid.frame)
    np.testing.assert_allclose(merged["value_x"], merged["value_y"])
    assert (merged["breaches"] == (merged["status"] == "breach")).all()
    # Bucketed: 5 buckets of 6 windows; a cell holds its bucket's largest value and counts its breaches.
    coarse = read.metric_grid(store, MONITOR, read.VERDICT_CHECKS, statuses=read.VERDICT_STATUSES, max_buckets=5)
    assert coarse.windows_per_bucket == 6
    income = verdicts[verdicts["column"] == "income"].sort_values("window_start")
    cells = coarse.frame[coarse.frame["column"] == "income"].sort_values("bucket_start")
    assert cells["windows"].tolist() == [6] * 5
    np.testing.assert_allclose(cells["value"], income["value"].to_numpy().reshape(5, 6).max(axis=1))
    assert cells["breaches"].tolist() == (income["status"] == "breach").to_numpy().reshape(5, 6).sum(axis=1).tolist()


def test_series_bucketing_keeps_the_worst_window(store: Store) -> None:
    fine = read.metric_series(store, MONITOR, "latency", metrics=["p95"])
    coarse = read.metric_series(store, MONITOR, "latency", metrics=["p95"], max_points=10)
    assert len(fine) == 30 and len(coarse) == 10 and (coarse["windows"] == 3).all()
    np.testing.assert_allclose(coarse["value"], fine["value"].to_numpy().reshape(10, 3).max(axis=1))
    assert coarse["breaches"].sum() == fine["breaches"].sum() == (fine["status"] == "breach").sum()
    assert set(coarse.loc[coarse["breaches"] > 0, "status"]) == {"breach"}


def test_runs_and_distributions_come_from_the_store(store: Store, demo: Demo) -> None:
    runs = read.runs(store, MONITOR)
    stored = store.runs(MONITOR)
    assert runs["rows"].tolist() == [r.rows for r in stored]
    assert runs["status"].tolist() == [r.status for r in stored]
    drifted = datetime.combine(demo.events.drift_start, datetime.min.time(), tzinfo=timezone.utc) + 2 * DAY
    dist = read.column_distribution(store, MONITOR, "channel", window_start=drifted)
    assert dist.kind == "categorical" and dist.window == Window(drifted, drifted + DAY)
    (window, payload), = store.profiles(MONITOR, "channel", start=drifted, end=drifted + DAY)
    assert isinstance(dist.current, CategoricalProfile)
    assert dist.current.counts.tolist() == payload["counts"] and dist.current.unseen == payload["unseen"] > 0
    assert "partner_api" in dist.current.unseen_values
    numeric = read.column_distribution(store, MONITOR, "income", segment="region=EU")
    assert isinstance(numeric.reference, NumericProfile) and numeric.reference_segment == "region=EU"
    reference = store.latest_reference(MONITOR).payload["profiles"]["region=EU"]["columns"]["income"]
    assert numeric.reference.counts.tolist() == reference["counts"]
    unseen = read.unseen_values(store, MONITOR, ["channel", "region"], window_start=drifted)
    assert unseen.to_dict("records") == [{"column": "channel", "value": "partner_api", "count": payload["unseen"]}]


def test_health_lag_and_staleness(store: Store) -> None:
    last = store.last_run(MONITOR)
    fresh, missing = read.health(store, [MONITOR, "nope"], now=last.window.end + timedelta(hours=3))
    assert fresh.last_status == last.status and fresh.lag == timedelta(hours=3) and not fresh.stale
    assert set(fresh.breaching) == {
        f"{r.check}:{r.column} {r.metric}" if r.column else f"{r.check} {r.metric}"
        for r in store.metrics(MONITOR, segment="*", status="breach").itertuples()
        if r.window_start == last.window.start
    }
    (late,) = read.health(store, [MONITOR], now=last.window.end + 4 * DAY)
    assert late.stale
    assert missing.last_window is None and missing.last_status is None


def test_page_urls_follow_the_contract() -> None:
    start, end = datetime(2026, 9, 1, tzinfo=timezone.utc), datetime(2026, 9, 8, tzinfo=timezone.utc)
    url = read.page_url("https://dl.example/", "drift", monitor="m", column="income", segment="region=EU", start=start, end=end)
    assert url == "https://dl.example/drift?monitor=m&column=income&segment=region%3DEU&start=2026-09-01T00%3A00%3A00Z&end=2026-09-08T00%3A00%3A00Z"
    assert read.page_url(None, "overview", segment="*") == "/overview"
    with pytest.raises(ValueError, match="pages: overview, kpis, drift, quality, alerts, runs"):
        read.page_url(None, "nope")
    assert read.parse_time("2026-09-01T02:00:00+02:00") == datetime(2026, 9, 1, tzinfo=timezone.utc)
    assert read.parse_time("2026-09-01T02:00:00 02:00") == datetime(2026, 9, 1, tzinfo=timezone.utc)  # "+" lost in a URL


# ------------------------------------------------------------------------------ overview


def test_overview_shows_each_monitor_health(monkeypatch: pytest.MonkeyPatch, demo: Demo, store: Store) -> None:
    at = run_app(monkeypatch, config=demo.config)
    runs = store.runs(MONITOR)
    last = runs[-1]
    tiles = metrics(at)
    assert tiles["Healthy"] == f"{int(last.status == 'ok')} / 1"
    assert tiles["Breaching"] == str(int(last.status == "breach"))
    assert tiles["Failed"] == "0"
    body = texts(at)
    assert f"#### {MONITOR} :red-badge[breach]" in body
    assert f"Latest window **{last.window.start:%Y-%m-%d} → {last.window.end:%Y-%m-%d}**" in body
    assert f"{last.rows:,} rows" in body
    breached = store.metrics(MONITOR, segment="*", status="breach")
    latest = breached[breached["window_start"] == last.window.start]
    listed = [f"`{row.check}:{row.column} {row.metric}`" if row.column else f"`{row.check} {row.metric}`" for row in latest.itertuples()]
    assert sum(item in body for item in listed) == min(6, len(listed))  # the first six, then "and N more"
    if len(listed) > 6:
        assert f"and {len(listed) - 6} more" in body
    # The volume sparkline: one bar per run of the range, coloured by its status.
    (spark,) = [f for key, f in figures(at).items() if key.startswith("dl_spark_")]
    bars = spark["data"][0]
    assert bars["y"] == [r.rows for r in runs]
    assert bars["marker"]["color"].count("#d32f2f") == sum(r.status == "breach" for r in runs)
    # The URL carries the selection, so it can be shared.
    assert at.query_params["monitor"] == MONITOR
    assert at.query_params["start"] == runs[0].window.start.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert at.query_params["end"] == last.window.end.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_query_parameters_set_the_pickers(monkeypatch: pytest.MonkeyPatch, demo: Demo) -> None:
    params = {"monitor": MONITOR, "segment": "region=EU", "start": "2026-09-10T00:00:00Z", "end": "2026-09-20T00:00:00Z"}
    at = run_app(monkeypatch, config=demo.config, page="runs", params=params)
    assert at.selectbox(key="dl_segment").value == "region=EU"
    assert at.selectbox(key="dl_range").value == "Custom"
    assert metrics(at)["Runs"] == "10"
    assert {k: at.query_params[k] for k in params} == params
    # Unknown names and bad times are reported, not crashed on.
    at = run_app(monkeypatch, config=demo.config, params={"monitor": "nope", "start": "yesterday-ish", "segment": "region=XX"})
    warnings = " ".join(w.value for w in at.warning)
    assert "no monitor named **nope**" in warnings and "`start=yesterday-ish` is not a time" in warnings
    assert "has no segment **region=XX**" in warnings
    assert at.selectbox(key="dl_monitor").value == MONITOR


# ---------------------------------------------------------------------------------- KPIs


def test_kpis_page(monkeypatch: pytest.MonkeyPatch, demo: Demo, store: Store) -> None:
    at = run_app(monkeypatch, config=demo.config, page="kpis")
    tiles, notes = metrics(at), deltas(at)
    latest = store.runs(MONITOR)[-1]
    assert tiles["Rows (latest window)"] == f"{latest.rows:,}"
    latency = store.metrics(MONITOR, check="latency", segment="*", metric="p95")
    last_p95 = latency.iloc[-1]
    assert tiles["Latency p95"] == f"{last_p95['value']:.3g} ms"
    assert notes["Latency p95"] == f"{last_p95['status']} · ceiling {last_p95['threshold']:g} ms"
    figs = figures(at)
    # Latency: the three percentiles, the stored p95 threshold and every breach marked.
    lat = figs["dl_latency"]
    assert {"p50", "p95", "p99", "p95 threshold", "p95 breach"} <= {t["name"] for t in lat["data"]}
    assert set(trace(lat, "p95 threshold")["y"]) == {250.0}
    assert len(trace(lat, "p95 breach")["y"]) == int((latency["status"] == "breach").sum()) > 0
    # Volume: the stored row counts.
    rows = store.metrics(MONITOR, check="quality", metric="row_count", segment="*")
    assert figs["dl_volume"]["data"][0]["y"] == rows["value"].tolist()
    # Predictions: a p10-p90 band, the median and the mean.
    band = figs["dl_prediction_band"]
    assert {"p10–p90", "p50", "mean"} <= {t["name"] for t in band["data"]}
    # Performance where labels arrived, with the last 7 days waiting for theirs.
    assert "roc_auc" in {t["name"] for t in figs["dl_perf_scores"]["data"]}
    labelled_until = START + timedelta(days=30 - demo.events.label_delay_days - 1)
    assert f"Labels reach up to the window of {labelled_until:%Y-%m-%d}" in texts(at)
    # Business KPIs with their configured bounds.
    approval = figs["dl_kpi_approval_rate"]
    assert [s["y0"] for s in approval["layout"]["shapes"]] == [0.6]
    kpi = store.metrics(MONITOR, check="kpi", column="approval_rate", segment="*")
    assert approval["data"][0]["y"] == kpi["value"].tolist()
    assert [s["y0"] for s in figs["dl_kpi_mean_score"]["layout"]["shapes"]] == [0.5]
    assert notes["approval_rate"].endswith("min 0.6")


# --------------------------------------------------------------------------------- drift


def test_drift_heat_map_and_default_drill_down(monkeypatch: pytest.MonkeyPatch, demo: Demo, store: Store) -> None:
    at = run_app(monkeypatch, config=demo.config, page="drift")
    stored = store.metrics(MONITOR, segment="*")
    # Column verdicts: the run-level rows (column "") are no column of a heat map.
    verdicts = stored[stored["check"].isin(read.VERDICT_CHECKS) & stored["status"].isin(["ok", "breach"]) & (stored["column"] != "")]
    breaches = verdicts[verdicts["status"] == "breach"]
    tiles = metrics(at)
    assert tiles["Columns checked"] == str(verdicts["column"].nunique())
    assert tiles["Columns that drifted"] == str(breaches["column"].nunique())
    assert tiles["Drift breaches"] == str(len(breaches))
    heat = figures(at)["dl_heatmap"]
    z = np.array(heat["data"][0]["z"], dtype=float)
    assert z.shape == (verdicts["column"].nunique(), verdicts["window_start"].nunique())
    assert len(trace(heat, "breach")["x"]) == len(breaches)
    assert len(trace(heat, "cells")["customdata"]) == len(verdicts)
    # The most drifted columns are on top (the last rows of the y axis, which plotly draws upwards).
    top = heat["data"][0]["y"][-1]
    assert top in set(breaches["column"]) | {f"{c} (prediction)" for c in breaches["column"]}
    # Without a column in the URL the drill-down opens on the most breached column, latest window.
    column = at.selectbox(key="dl_column").value
    counts = breaches.groupby("column").size()
    assert counts[column] == counts.max()
    assert at.query_params["column"] == column
    assert at.query_params["window"] == stored["window_start"].max().strftime("%Y-%m-%dT%H:%M:%SZ")


def test_drift_drill_down_numeric(monkeypatch: pytest.MonkeyPatch, demo: Demo, store: Store) -> None:
    when = datetime.combine(demo.events.drift_start, datetime.min.time(), tzinfo=timezone.utc) + 3 * DAY
    params = {"column": "income", "window": when.strftime("%Y-%m-%dT%H:%M:%SZ")}
    at = run_app(monkeypatch, config=demo.config, page="drift", params=params)
    assert at.selectbox(key="dl_column").value == "income"
    row = store.metrics(MONITOR, check="drift", column="income", metric="wasserstein", segment="*", start=when, end=when + DAY).iloc[0]
    tiles, notes = metrics(at), deltas(at)
    assert tiles["Effect size (wasserstein)"] == f"{row['value']:.3g}"
    assert notes["Effect size (wasserstein)"] == f"{row['status']} · threshold {fmt_number(row['threshold'])}"
    assert tiles["Rows in the window"] == f"{row['details']['n_current']:,}"
    figs = figures(at)
    bars = {t["name"]: t for t in figs["dl_distribution"]["data"]}
    assert set(bars) == {"reference", "window"}
    (_, payload), = store.profiles(MONITOR, "income", start=when, end=when + DAY)
    shares = [c[2] for c in bars["window"]["customdata"]]
    np.testing.assert_allclose(shares, np.array(payload["counts"]) / payload["count"])
    assert len(bars["reference"]["x"]) == len(payload["counts"])
    # The history: the stored values, the threshold band and the breaches.
    history = figs["dl_history"]
    stored = store.metrics(MONITOR, check="drift", column="income", metric="wasserstein", segment="*")
    np.testing.assert_allclose(trace(history, "wasserstein")["y"], stored["value"])
    assert set(trace(history, "threshold")["y"]) == set(stored["threshold"])
    assert len(trace(history, "breach")["y"]) == int((stored["status"] == "breach").sum())


def test_drift_drill_down_categorical_shows_unseen_values(monkeypatch: pytest.MonkeyPatch, demo: Demo, store: Store) -> None:
    when = datetime.combine(demo.events.drift_start, datetime.min.time(), tzinfo=timezone.utc) + DAY
    params = {"column": "channel", "window": when.strftime("%Y-%m-%dT%H:%M:%SZ"), "segment": "region=NA"}
    at = run_app(monkeypatch, config=demo.config, page="drift", params=params)
    bars = {t["name"]: t for t in figures(at)["dl_distribution"]["data"]}
    (_, payload), = store.profiles(MONITOR, "channel", segment="region=NA", start=when, end=when + DAY)
    categories = list(store.latest_reference(MONITOR).payload["binnings"]["channel"]["categories"])
    assert bars["window"]["x"][: len(categories)] == categories
    assert "partner_api (unseen)" in bars["window"]["x"]
    i = bars["window"]["x"].index("partner_api (unseen)")
    total = sum(payload["counts"]) + payload["other"] + payload["unseen"]
    assert bars["window"]["y"][i] == pytest.approx(payload["unseen_values"]["partner_api"] / total)
    assert bars["reference"]["y"][i] == 0
    assert "rows hold values the reference never had" in texts(at)


# ------------------------------------------------------------------------------- quality


def test_quality_page(monkeypatch: pytest.MonkeyPatch, demo: Demo, store: Store) -> None:
    at = run_app(monkeypatch, config=demo.config, page="quality")
    quality = store.metrics(MONITOR, check="quality", segment="*")
    breached = quality[quality["status"] == "breach"]
    tiles = metrics(at)
    assert tiles["Missing: columns breaching"] == str(breached.loc[breached["metric"] == "missing_share", "column"].nunique())
    assert tiles["Unseen categories: columns breaching"] == str(breached.loc[breached["metric"] == "unseen_share", "column"].nunique())
    assert tiles["Quality breaches"] == str(len(breached))
    figs = figures(at)
    missing = figs["dl_quality_missing_share"]
    surge = breached[breached["metric"] == "missing_share"]
    assert len(trace(missing, "breach")["x"]) == len(surge) >= 3
    assert set(trace(missing, "breach")["y"]) == {demo.events.null_surge[0]}
    rows = quality[quality["metric"] == "row_count"]
    assert figs["dl_quality_rows"]["data"][0]["y"] == rows["value"].tolist()
    # The latest window's unseen values, read from its stored profiles.
    (table,) = [d for d in at.dataframe if "value" in d.value.columns]
    last = store.runs(MONITOR)[-1].window
    (_, payload), = store.profiles(MONITOR, "channel", start=last.start, end=last.end)
    assert table.value.to_dict("records") == [{"column": "channel", "value": "partner_api", "rows": payload["unseen_values"]["partner_api"]}]
    # One column over time, picked by the URL.
    at = run_app(monkeypatch, config=demo.config, page="quality", params={"column": "employment"})
    column = figures(at)["dl_quality_column"]
    stored = quality[(quality["column"] == "employment") & (quality["metric"] == "missing_share")]
    assert trace(column, "missing_share")["y"] == stored["value"].tolist()
    assert at.query_params["column"] == "employment"


# ---------------------------------------------------------------------------------- runs


def test_runs_page_with_a_failed_run(monkeypatch: pytest.MonkeyPatch, demo: Demo, tmp_path: Path) -> None:
    copy = copy_demo(demo, tmp_path / "failed")
    with Store(copy.url) as store:
        last = store.runs(MONITOR)[-1]
        window = Window(last.window.end, last.window.end + DAY)
        now = datetime.now(timezone.utc)
        store.save_run(RunRecord(MONITOR, window, "failed", now, now, error="SourceError: logs/date=2026-10-01 is unreadable"), [])
        runs = store.runs(MONITOR)
    at = run_app(monkeypatch, config=copy.config, page="runs")
    tiles = metrics(at)
    assert tiles["Runs"] == str(len(runs))
    assert tiles["Failed"] == "1"
    assert tiles["OK"] == str(sum(r.status == "ok" for r in runs))
    assert tiles["With breaches"] == str(sum(r.status == "breach" for r in runs))
    assert any("logs/date=2026-10-01 is unreadable" in e.value for e in at.error)
    (table,) = at.dataframe
    assert len(table.value) == len(runs) and table.value.iloc[0]["status"] == "failed"
    timeline = figures(at)["dl_runs_timeline"]
    assert len(trace(timeline, "failed")["x"]) == 1
    # The overview says so too.
    at = run_app(monkeypatch, config=copy.config)
    assert metrics(at)["Failed"] == "1"
    assert ":violet-badge[failed]" in texts(at)
    assert any("is unreadable" in e.value for e in at.error)


# -------------------------------------------------------------------------------- alerts


def test_alerts_page_without_alert_tables(monkeypatch: pytest.MonkeyPatch, demo: Demo, tmp_path: Path) -> None:
    copy = copy_demo(demo, tmp_path / "no-alerts")
    with sqlite3.connect(copy.url.removeprefix("sqlite:///")) as connection:
        for table in read.ALERT_TABLES:
            connection.execute(f"DROP TABLE IF EXISTS {table}")
    for page in read.PAGES:
        at = run_app(monkeypatch, config=copy.config, page=page)
        assert at.title, page
    at = run_app(monkeypatch, config=copy.config, page="alerts")
    assert "Alerting is not configured" in texts(at)
    assert "Open alerts" not in metrics(at)


def test_alerts_page_when_the_monitor_has_no_alerts_section(monkeypatch: pytest.MonkeyPatch, demo: Demo, tmp_path: Path) -> None:
    import yaml

    copy = copy_demo(demo, tmp_path / "no-routes")
    config = yaml.safe_load(copy.config.read_text())
    config.pop("channels", None)
    config["monitors"][0].pop("alerts", None)
    copy.config.write_text(yaml.safe_dump(config))
    with sqlite3.connect(copy.url.removeprefix("sqlite:///")) as connection:
        for table in read.ALERT_TABLES:
            connection.execute(f"DELETE FROM {table}")
    at = run_app(monkeypatch, config=copy.config, page="alerts")
    assert "Alerting is not configured for this monitor" in texts(at)
    at = run_app(monkeypatch, config=copy.config)
    assert "Open alerts" not in metrics(at)


SECRET = "xoxb-SECRET-TOKEN-123"


def complete(table: object, values: dict) -> dict:
    """``values`` plus a neutral value for each required column it lacks (the alert tables grow)."""
    out = dict(values)
    for column in table.columns:
        if column.name in out or column.nullable or column.primary_key or column.default is not None or column.server_default is not None:
            continue
        try:
            kind = column.type.python_type
        except NotImplementedError:
            kind = dict
        out[column.name] = {int: 0, float: 0.0, str: "", dict: {}, datetime: datetime(2026, 9, 1, tzinfo=timezone.utc)}.get(kind)
    return out


def _fill_alerts(url: str, now: datetime) -> None:
    from monitor.store.alert_models import AlertRow, DeliveryRow, SilenceRow

    w = lambda d: datetime(2026, 9, d, tzinfo=timezone.utc)  # noqa: E731
    with Store(url) as store, store.engine.begin() as connection:
        for table in (AlertRow, DeliveryRow, SilenceRow):  # what the demo's own alerting wrote
            connection.execute(table.__table__.delete())
        alerts = [
            dict(monitor=MONITOR, check="drift", column="income", segment="*", status="firing", severity="critical", consecutive=9,
                 since=w(21), last_window_end=w(30), fired_at=w(22), resolved_at=None, last_notified_at=w(29), incident="inc-1",
                 reason="repeat_due", breaches={"breaches": [{"metric": "wasserstein"}]}, updated_at=w(30)),
            dict(monitor=MONITOR, check="quality", column="employment", segment="*", status="resolved", severity="warning", consecutive=0,
                 since=w(14), last_window_end=w(17), fired_at=w(15), resolved_at=w(17), last_notified_at=w(17), incident="inc-0",
                 reason="resolved", breaches={"breaches": []}, updated_at=w(17)),
            dict(monitor=MONITOR, check="latency", column="latency_ms", segment="region=EU", status="pending", severity="warning",
                 consecutive=1, since=w(29), last_window_end=w(30), fired_at=None, resolved_at=None, last_notified_at=None,
                 incident=None, reason="first", breaches={"breaches": [{"metric": "p95"}]}, updated_at=w(30)),
        ]  # fmt: skip
        connection.execute(insert(AlertRow), [complete(AlertRow.__table__, a) for a in alerts])
        payload = {"reason": "first", "incident": "inc-1", "alerts": [{"check": "drift"}, {"check": "quality"}],
                   "resolved": [], "retrain": None, "links": {"secret": SECRET}}  # fmt: skip
        deliveries = [
            dict(channel="slack-ml", channel_type="slack", kind="notify", monitor=MONITOR, window_start=w(21), window_end=w(22), run_id=None,
                 thread="inc-1", payload=payload, idempotency_key="k1", status="sent", attempts=1, next_attempt_at=w(22),
                 last_error=None, created_at=w(22), sent_at=w(22), external_id="1790000000.0001"),
            dict(channel="hook", channel_type="webhook", kind="notify", monitor=MONITOR, window_start=w(22), window_end=w(23), run_id=None,
                 thread="inc-1", payload=payload, idempotency_key="k2", status="failed", attempts=5, next_attempt_at=w(23),
                 last_error="HTTP 500 from https://hooks.example/*** (redacted)", created_at=w(23), sent_at=None, external_id=None),
            dict(channel="retrain-job", channel_type="databricks_job", kind="retrain", monitor=MONITOR, window_start=w(24), window_end=w(25),
                 run_id=None, thread=None, payload={**payload, "reason": "retrain", "retrain": {"sustained_windows": 3, "checks": ["drift"]}},
                 idempotency_key="k3", status="sent", attempts=1, next_attempt_at=w(25), last_error=None, created_at=w(25),
                 sent_at=w(25), external_id="run-42"),
        ]  # fmt: skip
        connection.execute(insert(DeliveryRow), [complete(DeliveryRow.__table__, d) for d in deliveries])
        connection.execute(insert(SilenceRow), [complete(SilenceRow.__table__, r) for r in [
            dict(monitor=MONITOR, check="latency", column=None, segment=None, starts_at=now - DAY, ends_at=now + DAY,
                 reason="known slow deploy", created_by="ana", created_at=now - DAY),
            dict(monitor=MONITOR, check=None, column=None, segment=None, starts_at=w(1), ends_at=w(2), reason="old",
                 created_by=None, created_at=w(1)),
        ]])  # fmt: skip


def test_alerts_page_with_alerts(monkeypatch: pytest.MonkeyPatch, demo: Demo, tmp_path: Path) -> None:
    copy = copy_demo(demo, tmp_path / "alerts")
    with Store.open(copy.url):  # the alert tables of the store's migrations
        pass
    _fill_alerts(copy.url, datetime.now(timezone.utc))
    at = run_app(monkeypatch, config=copy.config, page="alerts")
    tiles = metrics(at)
    assert (tiles["Firing"], tiles["Pending"], tiles["Notifications"], tiles["Failed deliveries"], tiles["Retrain triggers"], tiles["Active silences"]) == (
        "1", "1", "2", "1", "1", "1",
    )
    tables = {tuple(d.value.columns): d.value for d in at.dataframe}
    states = next(v for v in tables.values() if "severity" in v.columns)
    assert states["status"].tolist() == ["firing", "pending", "resolved"]
    notify = next(v for v in tables.values() if "attempts" in v.columns and "retrain" not in v.columns)
    assert notify["status"].tolist() == ["failed", "sent"] and notify["channel"].tolist() == ["hook", "slack-ml"]
    assert "HTTP 500 from https://hooks.example/*** (redacted)" in "".join(e.value for e in at.error)
    retrain = next(v for v in tables.values() if "retrain" in v.columns)
    assert retrain["external_id"].tolist() == ["run-42"] and retrain["retrain"].tolist() == ["3 windows: drift"]
    silences = next(v for v in tables.values() if "active" in v.columns)
    assert silences["active"].tolist() == [True, False]
    # Secrets never reach the page: the payload is not shown, only counts taken from it.
    shown = json.dumps([d.value.astype(str).to_dict("records") for d in at.dataframe]) + texts(at)
    assert SECRET not in shown
    timeline = figures(at)["dl_alert_timeline"]
    assert {t["name"] for t in timeline["data"]} == {"firing", "pending", "resolved"}
    # The overview counts open alerts per monitor.
    at = run_app(monkeypatch, config=copy.config)
    assert metrics(at)["Open alerts"] == "2"
    # A segment lists its own alerts only.
    at = run_app(monkeypatch, config=copy.config, page="alerts", params={"segment": "region=EU"})
    assert metrics(at)["Pending"] == "1" and metrics(at)["Firing"] == "0"


# ---------------------------------------------------------------------------- empty stores


@pytest.mark.parametrize("page", read.PAGES)
def test_every_page_on_an_empty_store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, page: str) -> None:
    # A database no run has touched yet: no tables at all.
    at = run_app(monkeypatch, store_url=f"sqlite:///{tmp_path / 'new.db'}", page=page)
    assert "No results yet" in texts(at)
    assert not at.get("plotly_chart")
    # A migrated store without runs.
    with Store.open(f"sqlite:///{tmp_path / 'migrated.db'}"):
        pass
    at = run_app(monkeypatch, store_url=f"sqlite:///{tmp_path / 'migrated.db'}", page=page)
    assert "No results yet" in texts(at)


@pytest.mark.parametrize("page", read.PAGES)
def test_every_page_for_a_monitor_without_data(monkeypatch: pytest.MonkeyPatch, demo: Demo, tmp_path: Path, page: str) -> None:
    # The demo's config on a fresh store: the monitor is configured but has never run.
    config = tmp_path / "driftline.yaml"
    text = demo.config.read_text().replace("store: sqlite:///driftline.db", f"store: sqlite:///{tmp_path / 'fresh.db'}")
    config.write_text(text.replace('path: "logs"', f'path: "{demo.folder / "logs"}"'))
    with Store.open(f"sqlite:///{tmp_path / 'fresh.db'}"):
        pass
    at = run_app(monkeypatch, config=config, page=page)
    body = texts(at)
    if page == "overview":
        assert "**No data yet**" in body and metrics(at)["Stale or no data"] == "1"
    elif page == "alerts":
        configured = load_config(config).monitors[0].alerts is not None
        assert ("No alert has been raised for this monitor" if configured else "Alerting is not configured") in body
    else:
        assert f"Monitor **{MONITOR}** has no" in body
    assert not at.get("plotly_chart")


def test_a_config_error_is_shown_not_raised(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "driftline.yaml"
    config.write_text("monitors: [{name: x, sorce: {}}]\n")
    at = run_app(monkeypatch, config=config)
    assert "invalid configuration" in at.error[0].value
    monkeypatch.delenv("DRIFTLINE_CONFIG")
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT).run()
    assert "driftline dashboard --config" in at.error[0].value


def test_an_unreachable_store_names_it_without_its_password(monkeypatch: pytest.MonkeyPatch) -> None:
    at = run_app(monkeypatch, store_url="postgresql+psycopg://ana:hunter2@127.0.0.1:1/nowhere")
    message = at.error[0].value
    assert "Cannot read the store" in message and "ana:***@127.0.0.1:1" in message and "hunter2" not in message


# ---------------------------------------------------------------------------- access control


def test_password_gate(monkeypatch: pytest.MonkeyPatch, demo: Demo) -> None:
    monkeypatch.setenv("DRIFTLINE_DASHBOARD_PASSWORD", "correct horse")
    monkeypatch.setattr("dashboards.auth.FAILED_ATTEMPT_DELAY_S", 0.0)
    at = run_app(monkeypatch, config=demo.config, page=None)
    assert not at.metric and not at.get("plotly_chart") and at.text_input(key="dl_password")
    at.text_input(key="dl_password").input("battery staple")
    at.button[0].click().run()
    assert at.error[0].value == "Wrong password." and not at.metric
    at.text_input(key="dl_password").input("correct horse")
    at.button[0].click().run()
    assert at.title[0].value == "Overview" and metrics(at)["Breaching"] in ("0", "1")
    at.switch_page("views/drift.py").run()  # signed in for the whole session
    assert at.title[0].value == f"Drift · {MONITOR}"


def test_alerts_page_on_the_demo(monkeypatch: pytest.MonkeyPatch, demo: Demo) -> None:
    """The demo routes alerts: its backfill fills the alert tables through the real alert hook."""
    if load_config(demo.config).monitors[0].alerts is None:
        pytest.skip("this demo config routes no alerts")  # an older demo: covered by the tests above
    with sqlite3.connect(demo.url.removeprefix("sqlite:///")) as connection:
        states = dict(connection.execute("SELECT status, count(*) FROM alerts WHERE monitor = ? GROUP BY status", (MONITOR,)).fetchall())
        kinds = dict(connection.execute("SELECT kind, count(*) FROM deliveries WHERE monitor = ? GROUP BY kind", (MONITOR,)).fetchall())
    assert states.get("firing", 0) > 0
    at = run_app(monkeypatch, config=demo.config, page="alerts")
    tiles = metrics(at)
    assert tiles["Firing"] == str(states.get("firing", 0)) and tiles["Pending"] == str(states.get("pending", 0))
    assert tiles["Notifications"] == str(kinds.get("notify", 0)) and tiles["Retrain triggers"] == str(kinds.get("retrain", 0))
    table = next(d.value for d in at.dataframe if "severity" in d.value.columns)
    assert len(table) == sum(n for status, n in states.items() if status != "ok")
    at = run_app(monkeypatch, config=demo.config)
    assert metrics(at)["Open alerts"] == str(states.get("firing", 0) + states.get("pending", 0))


def test_oidc_login(monkeypatch: pytest.MonkeyPatch, demo: Demo) -> None:
    monkeypatch.setenv("DRIFTLINE_DASHBOARD_AUTH", "oidc")
    monkeypatch.setenv("DRIFTLINE_CONFIG", str(demo.config))
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.user = {"is_logged_in": False}
    at.run()
    assert [b.label for b in at.button] == ["Log in"] and not at.metric
    monkeypatch.setenv("DRIFTLINE_DASHBOARD_ALLOWED_EMAILS", "ana@example.com")
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.user = {"is_logged_in": True, "email": "eve@example.com"}
    at.run()
    assert "eve@example.com may not open this dashboard" in at.error[0].value and not at.metric
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.user = {"is_logged_in": True, "email": "Ana@example.com"}
    at.run()
    assert at.title[0].value == "Overview" and "Log out" in [b.label for b in at.sidebar.button]


def test_dashboard_command(monkeypatch: pytest.MonkeyPatch, demo: Demo, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from monitor.cli import app

    calls = []
    monkeypatch.setattr("dashboards.app.serve", lambda config, port, address: calls.append((Path(config), port, address)) or 0)
    result = CliRunner().invoke(app, ["dashboard", "--config", str(demo.config), "--port", "8600", "--address", "0.0.0.0"])
    assert result.exit_code == 0, result.output
    assert calls == [(demo.config, 8600, "0.0.0.0")]
    broken = tmp_path / "broken.yaml"
    broken.write_text("monitors: [{name: x, sorce: {}}]\n")
    result = CliRunner().invoke(app, ["dashboard", "--config", str(broken)])
    assert result.exit_code == 2 and "invalid configuration" in result.output and not calls[1:]


@pytest.mark.postgres
def test_read_api_and_pages_on_postgresql(monkeypatch: pytest.MonkeyPatch, demo: Demo, pg_url: str, tmp_path: Path) -> None:
    """The same demo checked into PostgreSQL reads back as it does from SQLite (bucketing, times)."""
    config = tmp_path / "driftline.yaml"
    text = demo.config.read_text().replace("store: sqlite:///driftline.db", f'store: "{pg_url}"')
    config.write_text(text.replace('path: "logs"', f'path: "{demo.folder / "logs"}"').replace("path: reference.parquet", f"path: {demo.folder / 'reference.parquet'}"))
    project = load_config(config)
    begin = datetime.combine(START, datetime.min.time(), tzinfo=timezone.utc)
    with Store.open(project.store_url) as pg, Store(demo.url) as lite:
        Runner(project, pg, hooks=[]).backfill(project.monitors[0], begin, begin + 30 * DAY, trigger="demo")
        for max_buckets in (240, 7):
            a = read.metric_grid(lite, MONITOR, read.VERDICT_CHECKS, statuses=read.VERDICT_STATUSES, max_buckets=max_buckets)
            b = read.metric_grid(pg, MONITOR, read.VERDICT_CHECKS, statuses=read.VERDICT_STATUSES, max_buckets=max_buckets)
            assert a.windows_per_bucket == b.windows_per_bucket
            pd_testing.assert_frame_equal(a.frame, b.frame, check_exact=False, rtol=1e-9)
        a = read.metric_series(lite, MONITOR, "latency", max_points=8)
        b = read.metric_series(pg, MONITOR, "latency", max_points=8)
        pd_testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9)
        assert read.runs(lite, MONITOR)[["window_start", "rows", "status"]].equals(read.runs(pg, MONITOR)[["window_start", "rows", "status"]])
        pd_testing.assert_frame_equal(read.run_buckets(lite, MONITOR, max_points=4), read.run_buckets(pg, MONITOR, max_points=4))
        pd_testing.assert_frame_equal(read.breach_counts(lite, MONITOR), read.breach_counts(pg, MONITOR))
        assert read.extent(lite, MONITOR) == read.extent(pg, MONITOR) and read.window_size(pg, MONITOR) == DAY
        x, y = read.column_distribution(lite, MONITOR, "channel"), read.column_distribution(pg, MONITOR, "channel")
        assert x.window == y.window and x.current.counts.tolist() == y.current.counts.tolist()
    at = run_app(monkeypatch, config=config, page="drift", params={"column": "income"})
    lite_at = run_app(monkeypatch, config=demo.config, page="drift", params={"column": "income"})
    assert metrics(at) == metrics(lite_at)
