"""Driftline's dashboard: the Streamlit entry script, and ``serve()`` that starts it.

``streamlit run dashboards/app.py`` (what ``serve()`` and ``driftline dashboard`` do) runs
:func:`main`; importing this module does nothing else, so the CLI can import :func:`serve`.

Pages (``st.navigation``; URL paths are part of the contract alert links use)::

    /overview (default, also /)  every monitor's health at a glance
    /kpis                        volume, predictions, performance, latency, business KPIs
    /drift                       column x window drift heat map, drill-down into one column
    /quality                     missing, out-of-range, unseen values, row counts
    /alerts                      alert history, deliveries, silences, retrain triggers
    /runs                        pipeline health: each run's status, duration, rows, errors

Every page takes ``?monitor=&column=&segment=&start=ISO&end=ISO`` (all optional).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

if not __package__:  # run by Streamlit as a script from a checkout that is not installed
    try:
        import dashboards  # noqa: F401
    except ImportError:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

APP = Path(__file__).resolve()
PAGES = (
    ("overview", "Overview", ":material/monitor_heart:"),
    ("kpis", "KPIs", ":material/query_stats:"),
    ("drift", "Drift", ":material/grid_on:"),
    ("quality", "Data quality", ":material/rule:"),
    ("alerts", "Alerts", ":material/notifications:"),
    ("runs", "Runs", ":material/schedule:"),
)


def main() -> None:
    """Build the app: settings, access control, navigation, the shared pickers, then the page."""
    import streamlit as st

    from dashboards import auth, common, data
    from monitor.config import ConfigError

    st.set_page_config(page_title="Driftline", page_icon="📈", layout="wide")
    try:
        conf = common.settings()
    except (common.SettingsError, ConfigError) as exc:
        st.error(str(exc))
        return
    allowed = auth.gate()
    pages = [
        st.Page(f"views/{name}.py", title=title, icon=icon, url_path=name, default=name == "overview")
        for name, title, icon in PAGES
    ]
    page = st.navigation(pages, position="sidebar" if allowed else "hidden")
    if not allowed:
        return
    common.start_page()
    try:
        selected = common.sidebar()
    except Exception as exc:  # an unreachable database: say which (password masked) and why
        st.error(
            f"Cannot read the store `{common.safe_url(conf.store_url)}`: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
        )
        return
    if selected is None:
        common.empty_store_message(conf)
        return
    if not selected.monitors:
        common.empty_store_message(conf)
        return
    page.run()
    common.write_url()
    st.sidebar.caption(f"Store: `{common.safe_url(conf.store_url)}` · cached {data.TTL} s")


def streamlit_command(
    *, port: int = 8501, address: str = "127.0.0.1", python: str | None = None
) -> list[str]:
    """The ``streamlit run`` command line of the dashboard (headless, no usage statistics)."""
    return [
        python or sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.address", address,
        "--server.port", str(port),
        "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
        "--client.toolbarMode", "viewer",  # no "Deploy" button: this app is deployed already
        "--server.fileWatcherType", "none",  # a service, not a notebook: no reload on file changes
    ]  # fmt: skip


def serve(config_path: str | Path, *, port: int = 8501, address: str = "127.0.0.1") -> int:
    """Run the dashboard on ``config_path`` until it stops (Ctrl+C); its exit code."""
    config = Path(config_path).resolve()
    env = {**os.environ, "DRIFTLINE_CONFIG": str(config)}
    shown = "localhost" if address in ("127.0.0.1", "0.0.0.0") else address
    print(f"Driftline dashboard on http://{shown}:{port}/ for {config} (Ctrl+C to stop)", flush=True)
    process = subprocess.Popen(streamlit_command(port=port, address=address), env=env)
    try:
        return process.wait()
    except KeyboardInterrupt:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        return 0


if __name__ == "__main__":
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    if get_script_run_ctx() is not None:
        main()
    else:
        print("Start the dashboard with `driftline dashboard --config driftline.yaml`.", file=sys.stderr)
