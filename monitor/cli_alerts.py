"""Alerting commands of the ``driftline`` CLI: silences, deliveries, sending, alert states.

Registered on ``monitor.cli.app`` by the import at the end of ``monitor/cli.py``.
"""

from __future__ import annotations

import getpass
import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Optional

import typer

from alerts.settings import parse_duration
from monitor.cli import ConfigOpt, _fail, _load, _open_store, _time, app

KNOWN_CHECKS = ("drift", "prediction_drift", "target_drift", "prediction", "quality", "latency", "performance", "kpi", "pipeline", "no_data")

silence_app = typer.Typer(help="Mute alerts of a monitor for a while (driftline silence add|list|remove).", no_args_is_help=True)
app.add_typer(silence_app, name="silence")


def _iso(moment: datetime | None) -> str:
    return "-" if moment is None else moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M")


def deliver_after_runs(project, store) -> None:  # noqa: ANN001
    """Send what the runs just queued (called by run, backfill and demo); one summary line."""
    if not project.config.channels or not any(m.alerts for m in project.monitors):
        return
    from monitor.notify import deliver_pending

    try:
        report = deliver_pending(project, store)
    except Exception as exc:  # noqa: BLE001 - the runs are stored; the outbox keeps what was not sent
        typer.secho(f"alerts: not sent now ({type(exc).__name__}: {str(exc).splitlines()[0]}); `driftline send` retries", fg=typer.colors.YELLOW, err=True)
        return
    if report.sent or report.retrying or report.failed:
        typer.echo(f"alerts: {report}" + (" (see `driftline deliveries`)" if report.retrying or report.failed else ""), err=True)


@silence_app.command("add")
def silence_add(
    monitor: Annotated[str, typer.Option("--monitor", "-m", help="The monitor to silence.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (shown in `silence list`).")],
    config: ConfigOpt = Path("driftline.yaml"),
    check: Annotated[Optional[str], typer.Option("--check", help="Only this check (drift, quality, latency, performance, kpi, pipeline, no_data...).")] = None,
    column: Annotated[Optional[str], typer.Option("--column", help="Only this column.")] = None,
    segment: Annotated[Optional[str], typer.Option("--segment", help="Only this segment, e.g. region=EU ('*' is the whole population).")] = None,
    until: Annotated[Optional[str], typer.Option("--until", help="End time (ISO 8601, UTC by default).")] = None,
    for_: Annotated[Optional[str], typer.Option("--for", help="Duration from now instead of --until: 4h, 2d, 1w.")] = None,
) -> None:
    """Silence matching alerts: no notifications and no retraining until the silence ends."""
    from monitor.notify import add_silence

    project = _load(config)
    try:
        project.monitor(monitor)
    except KeyError as exc:
        _fail(str(exc.args[0]))
    if check is not None and check not in KNOWN_CHECKS:
        _fail(f"--check {check!r} is not a check; checks: {', '.join(KNOWN_CHECKS)}")
    if (until is None) == (for_ is None):
        _fail("give exactly one of --until TIME or --for DURATION")
    now = datetime.now(timezone.utc)
    if for_ is not None:
        try:
            ends = now + parse_duration(for_)
        except ValueError as exc:
            _fail(f"--for: {exc}")
            raise
    else:
        ends = _time(until, "--until")
        assert ends is not None
    if ends <= now:
        _fail(f"--until {_iso(ends)} is in the past")
    store = _open_store(project)
    try:
        silence_id = add_silence(store, monitor, check=check, column=column, segment=segment, ends_at=ends, reason=reason, created_by=_user())
    finally:
        store.dispose()
    what = "/".join(part or "*" for part in (check, column, segment))
    typer.echo(f"silence {silence_id}: {monitor} {what} until {_iso(ends)} UTC ({reason})")


def _user() -> str | None:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        return None


@silence_app.command("list")
def silence_list(
    config: ConfigOpt = Path("driftline.yaml"),
    monitor: Annotated[Optional[str], typer.Option("--monitor", "-m", help="Only this monitor.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Include silences that have ended.")] = False,
) -> None:
    """List active silences (or all of them)."""
    from monitor.notify import silences

    project = _load(config)
    store = _open_store(project)
    try:
        found = silences(store, monitor=monitor, include_expired=all_)
    finally:
        store.dispose()
    if not found:
        typer.echo("no silences")
        return
    for s in found:
        what = "/".join(part or "*" for part in (s.check, s.column, s.segment))
        typer.echo(f"{s.id:5d}  {s.monitor}  {what}  {_iso(s.starts_at)} .. {_iso(s.ends_at)} UTC  {s.reason}")


@silence_app.command("remove")
def silence_remove(
    silence_id: Annotated[int, typer.Argument(help="The silence's id (see `silence list`).")],
    config: ConfigOpt = Path("driftline.yaml"),
) -> None:
    """End a silence now."""
    from monitor.notify import remove_silence

    project = _load(config)
    store = _open_store(project)
    try:
        ended = remove_silence(store, silence_id)
    finally:
        store.dispose()
    if not ended:
        _fail(f"no active silence {silence_id} (see `driftline silence list --all`)")
    typer.echo(f"silence {silence_id} ended")


@app.command()
def deliveries(
    config: ConfigOpt = Path("driftline.yaml"),
    status: Annotated[Optional[str], typer.Option("--status", help="Only pending, sending, sent or failed.")] = None,
    monitor: Annotated[Optional[str], typer.Option("--monitor", "-m", help="Only this monitor.")] = None,
    retry: Annotated[Optional[int], typer.Option("--retry", help="Make this delivery due again now (a failed one gets fresh attempts), then send.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many, newest first.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines, with payloads.")] = False,
) -> None:
    """List the alert outbox (pending, sent and failed deliveries), or retry one."""
    from monitor.notify import DELIVERY_STATUSES, deliver_pending, deliveries as list_deliveries, retry_delivery

    if status is not None and status not in DELIVERY_STATUSES:
        _fail(f"--status must be one of {', '.join(DELIVERY_STATUSES)}")
    project = _load(config)
    store = _open_store(project)
    try:
        if retry is not None:
            try:
                typer.echo(retry_delivery(store, retry))
            except (LookupError, ValueError) as exc:
                _fail(str(exc.args[0]))
            typer.echo(f"alerts: {deliver_pending(project, store)}")
            return
        found = list_deliveries(store, status=status, monitor=monitor, limit=limit)
    finally:
        store.dispose()
    if as_json:
        for d in found:
            sys.stdout.write(json.dumps({**d.__dict__, "window_start": d.window_start, "window_end": d.window_end}, default=str) + "\n")
        return
    if not found:
        typer.echo("no deliveries")
        return
    for d in found:
        detail = {"sent": f"sent {_iso(d.sent_at)}" + (f" id={d.external_id}" if d.external_id else ""),
                  "pending": f"next attempt {_iso(d.next_attempt_at)}", "sending": f"in flight until {_iso(d.next_attempt_at)}",
                  "failed": "failed"}[d.status]  # fmt: skip
        line = f"{d.id:5d}  {d.status:7s}  {d.kind:7s}  {d.channel:14s}  {d.monitor}  {_iso(d.window_start)}..{_iso(d.window_end)}  attempts={d.attempts}  {detail}"
        if d.last_error:
            line += f"\n       last error: {d.last_error}"
        typer.echo(line)


@app.command()
def send(
    config: ConfigOpt = Path("driftline.yaml"),
    limit: Annotated[int, typer.Option("--limit", help="At most this many deliveries.")] = 100,
) -> None:
    """Deliver the pending alert notifications and retrain triggers that are due now."""
    from monitor.notify import deliver_pending

    project = _load(config)
    store = _open_store(project)
    try:
        report = deliver_pending(project, store, limit=limit)
    finally:
        store.dispose()
    typer.echo(str(report))
    for error in report.errors:
        typer.echo(f"  {error}", err=True)
    if report.failed:
        raise typer.Exit(1)


@app.command("alerts")
def alerts_command(
    config: ConfigOpt = Path("driftline.yaml"),
    monitor: Annotated[Optional[str], typer.Option("--monitor", "-m", help="Only this monitor.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Also pending, resolved and ok alerts.")] = False,
) -> None:
    """Show the alerts that are firing (with --all: every alert state kept)."""
    from monitor.notify import alerts

    project = _load(config)
    store = _open_store(project)
    try:
        found = [a for a in alerts(store, monitor) if all_ or a.firing]
    finally:
        store.dispose()
    if not found:
        typer.echo("no alerts firing" if not all_ else "no alerts")
        return
    for a in found:
        breach = "; ".join(f"{b.metric}={b.value:.4g}" if b.value is not None else b.metric for b in a.breaches)
        typer.echo(f"{a.status.value:8s} {a.severity or '-':8s} {a.key}  since {_iso(a.since)}  windows={a.consecutive}  {breach}")


# ---------------------------------------------------------------------------------- the demo

DEMO_SECRET_ENV = "DRIFTLINE_DEMO_SECRET"
DEMO_PORT_ENV = "DRIFTLINE_DEMO_RECEIVER_PORT"
DEMO_DASHBOARD_ENV = "DRIFTLINE_DASHBOARD_URL"


def start_demo_receiver(dashboard_port: int = 8501):  # noqa: ANN201
    """A local webhook receiver for the demo's `local` channel; the demo config reads its port,
    signing secret and the dashboard URL from these environment variables."""
    import os
    import secrets

    from alerts.receiver import LocalReceiver

    secret = os.environ.setdefault(DEMO_SECRET_ENV, secrets.token_hex(16))
    receiver = LocalReceiver(secret)
    os.environ[DEMO_PORT_ENV] = str(receiver.port)
    os.environ.setdefault(DEMO_DASHBOARD_ENV, f"http://localhost:{dashboard_port}")
    return receiver


def finish_demo_receiver(project, store, receiver, shown: int = 8) -> None:  # noqa: ANN001
    """Send what the demo's backfill queued to the local receiver and show what arrived."""
    from alerts.receiver import describe

    try:
        deliver_after_runs(project, store)
        got = receiver.received
        typer.echo(f"alerts: the local webhook receiver ({receiver.url}) got {len(got)} signed message(s), one per monitor run with news:")
        for payload in got[:shown]:
            typer.echo(f"  {describe(payload)}")
        if len(got) > shown:
            typer.echo(f"  ... {len(got) - shown} more: driftline deliveries --config {project.path} --json")
    finally:
        receiver.close()
