"""Drive the real dashboard in headless Chromium: the browser tests and the README's screenshots.

    python -m dashboards.screenshots --config demo/driftline.yaml --out docs/

starts ``streamlit run`` on the config (as ``driftline dashboard`` does), waits for
``/_stcore/health``, opens pages in Debian's Chromium (``/usr/bin/chromium``, driven by Playwright's
Python package: never a browser Playwright downloads) and saves PNGs. Every wait is bounded.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"]
SERVER_START_S = 60.0
PAGE_S = 30.0
MAX_HEIGHT = 6000  # px of a full-page screenshot


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running_server(
    config: str | Path, *, port: int | None = None, env: Mapping[str, str] | None = None, log: Path | None = None
) -> Iterator[str]:
    """The dashboard served on 127.0.0.1 for the duration of the block; yields its base URL."""
    from dashboards.app import streamlit_command

    port = port or free_port()
    environment = {**os.environ, "DRIFTLINE_CONFIG": str(Path(config).resolve()), **(env or {})}
    output = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
    process = subprocess.Popen(streamlit_command(port=port), env=environment, stdout=output, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base, process)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)
        if log:
            output.close()  # type: ignore[union-attr]


def _wait_healthy(base: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the dashboard server exited with code {process.returncode} before answering")
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as answer:
                if answer.read().strip() == b"ok":
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.25)
    raise TimeoutError(f"the dashboard at {base} did not answer /_stcore/health within {SERVER_START_S:.0f} s")


@contextmanager
def chromium(width: int = 1440, height: int = 1000) -> Iterator[Any]:
    """A Playwright page in Debian's headless Chromium."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise FileNotFoundError(f"{CHROMIUM} is missing: apt-get install -y chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(PAGE_S * 1000)
            yield page
        finally:
            browser.close()


def settle(page: Any, *, selector: str = '[data-testid="stMetric"], [data-testid="stAlert"]', charts: int = 0) -> None:
    """Wait (bounded) until the app has drawn ``selector``, at least ``charts`` plotly charts, and
    is no longer running a script."""
    page.wait_for_selector(selector, timeout=PAGE_S * 1000)
    if charts:
        page.wait_for_function(
            "n => document.querySelectorAll('.js-plotly-plot .main-svg').length >= n", arg=charts, timeout=PAGE_S * 1000
        )
    deadline = time.monotonic() + PAGE_S
    while time.monotonic() < deadline:
        # The status widget shows "Running..." while a script run is in progress.
        if not page.locator('[data-testid="stStatusWidget"]').is_visible():
            break
        page.wait_for_timeout(200)
    page.wait_for_timeout(600)  # plotly's last relayout


def open_view(page: Any, url: str, *, charts: int = 0, selector: str | None = None) -> None:
    page.goto(url, timeout=PAGE_S * 1000)
    if selector:
        settle(page, selector=selector, charts=charts)
    else:
        settle(page, charts=charts)


def capture(page: Any, path: str | Path, *, full: bool = True) -> Path:
    """A PNG of the page; ``full`` grows the window to the app's whole height first (the app scrolls
    inside its main block, so a plain full-page screenshot would cut it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if full:
        height = page.evaluate(
            "() => { const m = document.querySelector('[data-testid=\"stMain\"]');"
            " const b = m && m.querySelector('[data-testid=\"stMainBlockContainer\"]');"
            " return Math.ceil((b || m || document.body).scrollHeight) + 80; }"
        )
        width = page.viewport_size["width"]
        page.set_viewport_size({"width": width, "height": int(min(max(height, 600), MAX_HEIGHT))})
        page.wait_for_timeout(1200)  # charts redraw at the new size
    page.screenshot(path=str(path))
    return path


def readme_screenshots(config: str | Path, out: str | Path, *, monitor: str = "credit-risk", column: str = "income") -> list[Path]:
    """The README's pictures of a demo: the overview, a drift drill-down and the KPIs."""
    out = Path(out)
    taken = []
    with running_server(config) as base, chromium() as page:
        open_view(page, f"{base}/?monitor={monitor}", charts=1)
        taken.append(capture(page, out / "overview.png"))
        page.set_viewport_size({"width": 1440, "height": 1000})
        open_view(page, f"{base}/drift?monitor={monitor}&column={column}", charts=3)
        taken.append(capture(page, out / "drift.png"))
        page.set_viewport_size({"width": 1440, "height": 1000})
        open_view(page, f"{base}/kpis?monitor={monitor}", charts=5)
        taken.append(capture(page, out / "kpis.png"))
    return taken


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Screenshots of the dashboard for the README.")
    parser.add_argument("--config", default="demo/driftline.yaml")
    parser.add_argument("--out", default="docs")
    parser.add_argument("--monitor", default="credit-risk")
    parser.add_argument("--column", default="income", help="the drift drill-down's column")
    args = parser.parse_args(argv)
    for path in readme_screenshots(args.config, args.out, monitor=args.monitor, column=args.column):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
