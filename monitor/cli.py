"""The ``driftline`` command line."""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Optional

import typer

import monitor
from monitor.config import ConfigError, MonitorConfig, Project, load_config
from monitor.windows import as_utc, latest_complete, window_containing

app = typer.Typer(
    name="driftline",
    help="Watch ML models in production: drift, data quality, latency, performance and KPIs from inference logs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="The YAML config file.", envvar="DRIFTLINE_CONFIG")]
MonitorOpt = Annotated[Optional[list[str]], typer.Option("--monitor", "-m", help="Only these monitors (repeatable).")]


def _fail(message: str, code: int = 2) -> None:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _load(config: Path) -> Project:
    try:
        return load_config(config)
    except ConfigError as exc:
        _fail(str(exc))
        raise  # unreachable, for type checkers


def _selected(project: Project, names: list[str] | None) -> list[MonitorConfig]:
    if not names:
        return project.monitors
    try:
        return [project.monitor(n) for n in names]
    except KeyError as exc:
        _fail(str(exc.args[0]))
        raise


def _time(text: str | None, option: str) -> datetime | None:
    if text is None:
        return None
    try:
        return as_utc(text)
    except ValueError:
        _fail(f"{option}: {text!r} is not a time; write ISO 8601, e.g. 2026-10-01 or 2026-10-01T06:00:00Z")
        raise


def _open_store(project: Project):
    from monitor.store import Store

    try:
        return Store.open(project.store_url)
    except Exception as exc:  # an unreachable database is the user's to fix: say which and why
        from sqlalchemy.engine import make_url

        url = make_url(project.store_url).render_as_string(hide_password=True)
        _fail(f"cannot open the store {url}: {type(exc).__name__}: {exc}".split("\n")[0])
        raise


@app.callback()
def main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress to stderr.")] = False,
) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


@app.command()
def version() -> None:
    """Print Driftline's version."""
    typer.echo(monitor.__version__)


@app.command()
def validate(config: ConfigOpt = Path("driftline.yaml")) -> None:
    """Check a config file without running anything."""
    project = _load(config)
    typer.echo(f"{config}: ok — store {_redacted(project.store_url)}, {len(project.monitors)} monitor(s)")
    for mon in project.monitors:
        cols = mon.columns
        features = "inferred from the reference" if cols.numeric is None and cols.categorical is None else (
            f"{len(cols.numeric or [])} numeric, {len(cols.categorical or [])} categorical"
        )
        typer.echo(
            f"  {mon.name}: {mon.source.type} source, window {mon.window}, schedule {mon.schedule or '-'}, "
            f"features {features}, prediction {cols.prediction or '-'} ({cols.prediction_kind or '-'}), "
            f"{len(mon.kpis)} KPI(s)"
        )
    from monitor.notify import config_warnings

    for warning in config_warnings(project):
        typer.secho(f"warning: {warning}", fg=typer.colors.YELLOW, err=True)


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _summary_line(outcome) -> str:  # noqa: ANN001
    run = outcome.run
    text = f"{run.monitor} {run.window.start:%Y-%m-%d %H:%M}..{run.window.end:%Y-%m-%d %H:%M} {run.status:8s} rows={run.rows}"
    breaches = outcome.breaches
    if breaches:
        names = sorted({f"{b.check}:{b.column or '-'}" + ("" if b.segment == "*" else f"[{b.segment}]") for b in breaches})
        shown = ", ".join(names[:8]) + (f" (+{len(names) - 8})" if len(names) > 8 else "")
        text += f" breaches: {shown}"
    if run.error:
        text += f" error: {run.error}"
    return text


@app.command()
def run(
    config: ConfigOpt = Path("driftline.yaml"),
    monitors: MonitorOpt = None,
    at: Annotated[Optional[str], typer.Option("--at", help="Check the window containing this time instead of the latest complete window.")] = None,
) -> None:
    """Check one window of each monitor: the latest complete one, or the one containing --at."""
    from monitor.runner import Runner

    project = _load(config)
    store = _open_store(project)
    runner = Runner(project, store)
    moment = _time(at, "--at")
    failed = False
    for mon in _selected(project, monitors):
        window = window_containing(moment, mon.window_size) if moment else latest_complete(datetime.now(timezone.utc), mon.window_size)
        outcome = runner.run_window(mon, window, trigger="run")
        failed |= outcome.run.status == "failed"
        typer.echo(_summary_line(outcome))
    from monitor.cli_alerts import deliver_after_runs

    deliver_after_runs(project, store)  # send what the runs queued
    store.dispose()
    if failed:
        raise typer.Exit(1)


@app.command()
def backfill(
    start: Annotated[str, typer.Option("--start", help="First time to cover (ISO 8601, UTC by default).")],
    end: Annotated[Optional[str], typer.Option("--end", help="End (exclusive); default: now.")] = None,
    config: ConfigOpt = Path("driftline.yaml"),
    monitors: MonitorOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Re-run windows that are already done.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or per-window lines.")] = False,
) -> None:
    """Check every complete window between --start and --end, in order."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from monitor.runner import Runner
    from monitor.windows import windows_between

    project = _load(config)
    begin = _time(start, "--start")
    finish = _time(end, "--end") or datetime.now(timezone.utc)
    assert begin is not None
    if finish <= begin:
        _fail("--end must be after --start")
    store = _open_store(project)
    runner = Runner(project, store)
    totals = {"ran": 0, "skipped": 0, "breach": 0, "failed": 0}
    for mon in _selected(project, monitors):
        count = len(list(windows_between(begin, finish, mon.window_size)))
        with Progress(
            TextColumn(f"{mon.name}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
            disable=quiet or not sys.stderr.isatty(), transient=True,
        ) as bar:
            task = bar.add_task(mon.name, total=count)

            def tick(window, outcome) -> None:  # noqa: ANN001
                bar.advance(task)
                if outcome is None:
                    totals["skipped"] += 1
                    return
                totals["ran"] += 1
                totals["breach"] += outcome.run.status == "breach"
                totals["failed"] += outcome.run.status == "failed"
                if not quiet:
                    bar.console.print(_summary_line(outcome), highlight=False, soft_wrap=True)

            runner.backfill(mon, begin, finish, force=force, progress=tick)
    from monitor.cli_alerts import deliver_after_runs

    deliver_after_runs(project, store)  # send what the runs queued
    store.dispose()
    typer.echo(
        f"{totals['ran']} window(s) checked, {totals['skipped']} already done (use --force to redo), "
        f"{totals['breach']} with breaches, {totals['failed']} failed"
    )
    if totals["failed"]:
        raise typer.Exit(1)


RESULT_COLUMNS = ["monitor", "window_start", "window_end", "segment", "check", "column", "metric", "value", "threshold", "direction", "status", "details"]


@app.command()
def results(
    config: ConfigOpt = Path("driftline.yaml"),
    monitors: MonitorOpt = None,
    check: Annotated[Optional[list[str]], typer.Option("--check", help="Only these checks (drift, prediction_drift, target_drift, prediction, quality, latency, performance, kpi).")] = None,
    column: Annotated[Optional[str], typer.Option("--column", help="Only this column.")] = None,
    segment: Annotated[Optional[str], typer.Option("--segment", help="Only this segment ('*' is the whole population, e.g. region=EU).")] = None,
    status: Annotated[Optional[list[str]], typer.Option("--status", help="Only these statuses (ok, breach, info, no_data, error).")] = None,
    since: Annotated[Optional[str], typer.Option("--since", "--start", help="Windows starting at or after this time.")] = None,
    until: Annotated[Optional[str], typer.Option("--until", "--end", help="Windows ending at or before this time.")] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="csv or json (JSON lines).")] = "csv",
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write to this file instead of stdout.")] = None,
) -> None:
    """Export stored metric results."""
    import pandas as pd

    if fmt not in ("csv", "json"):
        _fail("--format must be csv or json")
    project = _load(config)
    store = _open_store(project)
    names = [m.name for m in _selected(project, monitors)]
    # Filters go to the store's SQL (one query per monitor, check and status asked for), so an
    # export of one check never loads a monitor's whole history.
    begin, finish = _time(since, "--since"), _time(until, "--until")
    frames = [
        store.metrics(name, check=c, column=column, segment=segment, status=st, start=begin, end=finish)
        for name in names
        for c in (check or [None])
        for st in (status or [None])
    ]
    store.dispose()
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=RESULT_COLUMNS)
    if len(frames) > 1 and not frame.empty:
        frame = frame.sort_values(["monitor", "window_start", "check", "column", "metric", "segment"], kind="stable")
    frame = frame.reindex(columns=RESULT_COLUMNS)
    for col in ("window_start", "window_end"):
        frame[col] = frame[col].map(lambda t: t.isoformat() if hasattr(t, "isoformat") else t)
    frame["details"] = frame["details"].map(lambda d: json.dumps(d, sort_keys=True, default=str) if isinstance(d, dict) else d)
    if fmt == "csv":
        text = frame.to_csv(index=False)
    else:
        records = frame.to_dict(orient="records")
        for r in records:
            r["details"] = json.loads(r["details"]) if isinstance(r["details"], str) else r["details"]
            r["value"] = None if pd.isna(r["value"]) else r["value"]
            r["threshold"] = None if pd.isna(r["threshold"]) else r["threshold"]
        text = "".join(json.dumps(r, default=str) + "\n" for r in records)
    if output:
        output.write_text(text)
        typer.echo(f"{len(frame)} result(s) written to {output}", err=True)
    else:
        sys.stdout.write(text)


@app.command()
def demo(
    directory: Annotated[Path, typer.Option("--dir", help="Where to write the demo (logs, reference, config, store).")] = Path("demo"),
    days: Annotated[int, typer.Option(help="Days of inference log.")] = 60,
    rows_per_day: Annotated[int, typer.Option(help="Predictions per day.")] = 4000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
    no_dashboard: Annotated[bool, typer.Option("--no-dashboard", help="Stop after the backfill instead of starting the dashboard.")] = False,
    port: Annotated[int, typer.Option(help="Dashboard port.")] = 8501,
) -> None:
    """Write a realistic demo (a credit-risk model with planted drift, latency and null events) and check every window."""
    from monitor.demo import generate_demo
    from monitor.runner import Runner

    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("driftline.db*"):
        stale.unlink()
    events = generate_demo(directory, days=days, rows_per_day=rows_per_day, seed=seed)
    typer.echo(f"demo written to {directory}/ ({days} days x ~{rows_per_day} rows); checking every window...")
    from monitor.cli_alerts import finish_demo_receiver, start_demo_receiver

    receiver = start_demo_receiver(port)  # the demo config's `local` channel posts alerts to it
    project = _load(directory / "driftline.yaml")
    store = _open_store(project)
    runner = Runner(project, store)
    start = datetime.combine(events.start, datetime.min.time(), tzinfo=timezone.utc)
    end = start + timedelta(days=events.days)
    for mon in project.monitors:
        runner.backfill(mon, start, end, trigger="demo")
    finish_demo_receiver(project, store, receiver)
    typer.echo(breach_summary(store, [m.name for m in project.monitors]))
    typer.echo(
        "planted events: "
        f"feature drift ({', '.join(events.drifted_numeric)}; new {events.new_category[0]} value "
        f"{events.new_category[1]!r}) from {events.drift_start}, latency regression from {events.latency_start}, "
        f"{events.null_surge[0]} nulls {events.null_surge[1]}..{events.null_surge[2]}, labels {events.label_delay_days} days late"
    )
    store.dispose()
    typer.echo(f"explore: driftline results --config {directory / 'driftline.yaml'} --status breach")
    if no_dashboard:
        return
    try:
        from dashboards.app import serve  # type: ignore[import-not-found]
    except ImportError:
        typer.echo("(the dashboard is not part of this version yet)")
        return
    serve(directory / "driftline.yaml", port=port)


def breach_summary(store, monitors: list[str]) -> str:  # noqa: ANN001
    """What breached and when, one line per (check, column) over the whole population."""
    lines = []
    for name in monitors:
        frame = store.metrics(name, segment="*", status="breach")
        runs = store.runs(name)
        lines.append(f"{name}: {len(runs)} window(s), {sum(r.status == 'breach' for r in runs)} with breaches")
        if frame.empty:
            continue
        for (check, column), group in frame.groupby(["check", "column"], sort=True):
            starts = sorted(group["window_start"].unique())
            span = f"{starts[0]:%Y-%m-%d}..{starts[-1]:%Y-%m-%d}" if len(starts) > 1 else f"{starts[0]:%Y-%m-%d}"
            metrics = ", ".join(sorted(group["metric"].unique()))
            lines.append(f"  {check:17s} {column or '-':14s} {len(starts):3d} window(s) {span}  [{metrics}]")
    return "\n".join(lines)


from monitor import cli_service  # noqa: E402,F401
from monitor import cli_alerts  # noqa: E402,F401
from monitor import cli_dashboard  # noqa: E402,F401

if __name__ == "__main__":  # pragma: no cover
    app()
