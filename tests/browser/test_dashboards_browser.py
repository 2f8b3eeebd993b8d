"""The real server in headless Chromium: the Overview and a Drift drill-down of the demo, a heat map
click, page navigation keeping the selection, and the password gate keeping a deep link.

They skip only on a developer machine without ``/usr/bin/chromium``; with ``CI`` set a missing
browser fails the run (``.ci/run`` installs it). Screenshots are kept under ``tests/artifacts/``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from dashboards.screenshots import CHROMIUM, capture, chromium, open_view, running_server, settle
from monitor.config import load_config
from monitor.demo import DemoEvents, generate_demo
from monitor.runner import Runner
from monitor.store import Store

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"  # gitignored; kept by CI
MONITOR = "credit-risk"
START = date(2026, 9, 1)
DAYS = 30


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@dataclass(frozen=True)
class BrowserDemo:
    config: Path
    url: str
    events: DemoEvents
    base: str


@pytest.fixture(scope="session")
def chromium_available() -> None:
    if not Path(CHROMIUM).exists():
        if _in_ci():
            pytest.fail(f"{CHROMIUM} is required in CI (apt-get install -y chromium); browser tests may not skip there")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium)")


@pytest.fixture(scope="session")
def demo_server(chromium_available: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserDemo]:
    folder = tmp_path_factory.mktemp("browser-demo")
    events = generate_demo(folder, days=DAYS, rows_per_day=800, reference_rows=5000, start=START)
    config = folder / "driftline.yaml"
    project = load_config(config)
    with Store.open(project.store_url) as store:
        begin = datetime.combine(START, datetime.min.time(), tzinfo=timezone.utc)
        Runner(project, store).backfill(project.monitors[0], begin, begin + timedelta(days=DAYS), trigger="demo")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with running_server(config, log=ARTIFACTS / "server.log") as base:
        yield BrowserDemo(config, project.store_url, events, base)


@pytest.fixture
def page(chromium_available: None) -> Iterator[object]:
    with chromium() as opened:
        yield opened


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}


def svg_texts(locator) -> list[str]:  # noqa: ANN001
    """Text of SVG elements (plotly's ticks and legends have no innerText), each once, in order."""
    return list(dict.fromkeys(t.strip() for t in locator.evaluate_all("els => els.map(e => e.textContent)")))


def tiles(page) -> dict[str, str]:  # noqa: ANN001
    out = {}
    for metric in page.locator('[data-testid="stMetric"]').all():
        label = metric.locator('[data-testid="stMetricLabel"]').inner_text().strip()
        out[label] = metric.locator('[data-testid="stMetricValue"]').inner_text().strip()
    return out


def test_overview(demo_server, page) -> None:  # noqa: ANN001
    with Store(demo_server.url) as store:
        runs = store.runs(MONITOR)
    last = runs[-1]
    open_view(page, demo_server.base + "/", charts=1)
    shown = tiles(page)
    assert shown["Breaching"] == str(int(last.status == "breach"))
    assert shown["Healthy"] == f"{int(last.status == 'ok')} / 1"
    body = page.locator('[data-testid="stMain"]').inner_text()
    assert MONITOR in body and f"{last.rows:,} rows" in body
    # The volume sparkline: one bar per run.
    bars = page.locator(".js-plotly-plot .barlayer .point")
    assert bars.count() == len(runs)
    # The address bar now links to this very view.
    assert query(page.url) == {
        "monitor": MONITOR,
        "start": runs[0].window.start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "end": last.window.end.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    capture(page, ARTIFACTS / "overview.png")
    # The monitor's row links to its pages.
    page.locator('[data-testid="stMain"] [data-testid="stPageLink"] a', has_text="Drift").first.click()
    page.wait_for_url("**/drift?**", timeout=30_000)
    settle(page, charts=3)
    assert page.locator("h1").first.inner_text() == f"Drift · {MONITOR}"
    assert query(page.url)["monitor"] == MONITOR


def test_drift_drill_down_from_a_link(demo_server, page) -> None:  # noqa: ANN001
    when = datetime.combine(demo_server.events.drift_start, datetime.min.time(), tzinfo=timezone.utc) + timedelta(days=2)
    with Store(demo_server.url) as store:
        row = store.metrics(MONITOR, check="drift", column="income", metric="wasserstein", segment="*", start=when, end=when + timedelta(days=1)).iloc[0]
    link = f"{demo_server.base}/drift?monitor={MONITOR}&column=income&window={when:%Y-%m-%dT%H:%M:%SZ}"
    open_view(page, link, charts=3)
    shown = tiles(page)
    assert shown["Effect size (wasserstein)"] == f"{row['value']:.3g}"
    assert row["status"] == "breach" and "breach" in page.locator('[data-testid="stMetric"]', has_text="Effect size").inner_text()
    charts = page.locator('[data-testid="stPlotlyChart"]')
    assert charts.count() == 3
    # The distribution overlay: reference and window, in the legend of the second chart.
    legend = svg_texts(charts.nth(1).locator(".legendtext"))
    assert legend == ["reference", "window"]
    assert "income: reference vs window" in charts.nth(1).inner_text()
    # The heat map draws one row per checked column, the drifted ones on top.
    rows = svg_texts(charts.nth(0).locator("g.ytick text"))[::-1]  # plotly lists them bottom to top
    assert {"income", "debt_ratio", "channel"} <= set(rows[:4]) and len(rows) == 9
    assert query(page.url)["column"] == "income" and query(page.url)["window"] == f"{when:%Y-%m-%dT%H:%M:%SZ}"
    capture(page, ARTIFACTS / "drift.png")


def test_clicking_a_heat_map_cell_drills_down(demo_server, page) -> None:  # noqa: ANN001
    open_view(page, f"{demo_server.base}/drift?monitor={MONITOR}&column=income", charts=3)
    heat = page.locator('[data-testid="stPlotlyChart"]').first
    labels = svg_texts(heat.locator("g.ytick text"))  # bottom to top
    target = "age"
    area = heat.locator(".nsewdrag").first.bounding_box()
    row = labels.index(target)
    y = area["y"] + area["height"] * (1 - (row + 0.5) / len(labels))
    x = area["x"] + area["width"] * 0.25
    page.mouse.move(x, y)
    page.wait_for_timeout(300)
    page.mouse.click(x, y)
    page.wait_for_function("() => window.location.search.includes('column=age')", timeout=30_000)
    settle(page, charts=3)
    assert query(page.url)["column"] == target
    assert "age: reference vs window" in page.locator('[data-testid="stPlotlyChart"]').nth(1).inner_text()
    capture(page, ARTIFACTS / "drift-click.png", full=False)


def test_navigation_keeps_the_selection(demo_server, page) -> None:  # noqa: ANN001
    link = f"{demo_server.base}/quality?monitor={MONITOR}&segment=region%3DEU&start=2026-09-10T00:00:00Z&end=2026-09-25T00:00:00Z"
    open_view(page, link, charts=1)
    before = query(page.url)
    assert before["segment"] == "region=EU" and before["start"] == "2026-09-10T00:00:00Z"
    page.locator('[data-testid="stSidebarNav"] a', has_text="KPIs").click()
    page.wait_for_url("**/kpis?**", timeout=30_000)
    settle(page, charts=1)
    after = query(page.url)
    assert {k: after[k] for k in ("monitor", "segment", "start", "end")} == {k: before[k] for k in ("monitor", "segment", "start", "end")}
    assert page.locator("h1").first.inner_text().startswith("KPIs")
    assert "region=EU · 2026-09-10 → 2026-09-25 UTC" in page.locator('[data-testid="stMain"]').inner_text()


def test_password_gate_keeps_the_deep_link(demo_server, page) -> None:  # noqa: ANN001
    env = {"DRIFTLINE_DASHBOARD_PASSWORD": "correct horse"}
    with running_server(demo_server.config, env=env) as base:
        open_view(page, f"{base}/drift?monitor={MONITOR}&column=channel", selector='input[type="password"]')
        assert page.locator('[data-testid="stMetric"]').count() == 0
        page.fill('input[type="password"]', "correct horse")
        page.get_by_role("button", name="Sign in").click()
        settle(page, charts=3)
        assert page.locator("h1").first.inner_text() == f"Drift · {MONITOR}"
        assert query(page.url)["column"] == "channel"
        assert "channel: reference vs window" in page.locator('[data-testid="stPlotlyChart"]').nth(1).inner_text()
