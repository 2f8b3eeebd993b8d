"""``driftline serve`` and ``driftline status`` (registered on the ``driftline`` app by ``monitor.cli``)."""

from __future__ import annotations

import json
import logging
import sys
import threading
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer

from monitor import cli
from monitor.cli import ConfigOpt, MonitorOpt, _fail, _load, _open_store, _selected
from monitor.windows import parse_duration


def _apps() -> list[typer.Typer]:
    """The app(s) to register on. Under ``python -m monitor.cli`` the running app is the one of
    ``__main__``, a second copy of ``monitor.cli``: both get the commands."""
    apps = [cli.app]
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if main is not None and spec is not None and spec.name == "monitor.cli" and getattr(main, "app", None) is not None:
        apps.append(main.app)
    return apps


def _command(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def register(function: Callable[..., Any]) -> Callable[..., Any]:
        for app in _apps():
            app.command(name)(function)
        return function

    return register


def _duration(text: str, option: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as exc:
        _fail(f"{option}: {exc}")
        raise


@_command("serve")
def serve(
    config: ConfigOpt = Path("driftline.yaml"),
    monitors: MonitorOpt = None,
    log_json: Annotated[bool, typer.Option("--log-json", help="Log JSON lines (one object per event) instead of key=value lines.")] = False,
    lease_ttl: Annotated[str, typer.Option("--lease-ttl", help="How long a monitor's lease outlives its last heartbeat (renewed every third of it).")] = "60s",
    deliver_every: Annotated[str, typer.Option("--deliver-every", help="How often queued alert deliveries are sent; 0 to never.")] = "30s",
    exit_if_locked: Annotated[bool, typer.Option("--exit-if-locked", help="Exit (code 3) when another process serves one of the monitors, instead of waiting for its lease.")] = False,
    mlflow_experiment: Annotated[Optional[str], typer.Option("--mlflow-experiment", envvar="DRIFTLINE_MLFLOW_EXPERIMENT", help="Log each run's metrics to this MLflow experiment (needs mlflow installed).")] = None,
) -> None:
    """Run every monitor on its schedule until SIGTERM/SIGINT: catches up missed windows in order,
    retries failures with backoff, re-checks windows whose labels arrive late, sends alerts."""
    from monitor.service import EXIT_LOCKED, Service, ServiceOptions, install_stop_handlers, open_store
    from monitor.service.logs import configure, event

    configure(json_lines=log_json)
    log = logging.getLogger("driftline.service")
    project = _load(config)
    selected = _selected(project, monitors)
    options = ServiceOptions(
        lease_ttl=_duration(lease_ttl, "--lease-ttl"),
        deliver_every=None if deliver_every.strip() in ("0", "0s") else _duration(deliver_every, "--deliver-every"),
        mlflow_experiment=mlflow_experiment,
    )
    stop = threading.Event()
    install_stop_handlers(stop)
    store = open_store(project.store_url, stop)
    if store is None:
        raise typer.Exit(0)
    try:
        service = Service(project, store, selected, options, stop_event=stop)
        if exit_if_locked:
            others = service.locked_by_others()
            if others:
                held = "; ".join(f"{name} by {s.owner} until {s.expires_at:%Y-%m-%d %H:%M:%S} UTC" for name, s in others.items())
                event(log, logging.ERROR, "locked", f"another process serves these monitors ({held}); exiting (--exit-if-locked)")
                typer.secho(f"driftline serve: already served by another process: {held}", fg=typer.colors.RED, err=True)
                raise typer.Exit(EXIT_LOCKED)
        code = service.serve_forever(install_signals=False)
    finally:
        store.dispose()
    raise typer.Exit(code)


@_command("status")
def status(
    config: ConfigOpt = Path("driftline.yaml"),
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines, one per monitor.")] = False,
) -> None:
    """Every monitor's last window, its status, lag, last error, next scheduled run and lease holder."""
    from monitor.service.status import monitor_statuses, table
    from monitor.store.types import utcnow

    project = _load(config)
    store = _open_store(project)
    now = utcnow()
    try:
        rows = monitor_statuses(project, store, now)
    finally:
        store.dispose()
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row.as_dict()))
    else:
        typer.echo(table(rows, now))
