"""``driftline dashboard``: start the dashboards on a config's store (registered on ``monitor.cli.app``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from monitor.cli import ConfigOpt, _load, app


@app.command()
def dashboard(
    config: ConfigOpt = Path("driftline.yaml"),
    port: Annotated[int, typer.Option("--port", "-p", help="Port to listen on.")] = 8501,
    address: Annotated[
        str, typer.Option("--address", help="Address to listen on: 127.0.0.1 (this machine only) or 0.0.0.0 (every interface).")
    ] = "127.0.0.1",
) -> None:
    """Open the dashboards (Overview, KPIs, Drift, Data quality, Alerts, Runs) on the config's store.

    Set DRIFTLINE_DASHBOARD_PASSWORD to ask for a password, or DRIFTLINE_DASHBOARD_AUTH=oidc to use
    Streamlit's OpenID Connect login (README: Dashboards).
    """
    _load(config)  # a broken config fails here, with its key paths, not inside the browser
    from dashboards.app import serve  # the dashboards sit above monitor: imported only to start them

    raise typer.Exit(serve(config, port=port, address=address))
