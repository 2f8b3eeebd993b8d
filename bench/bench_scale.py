"""Scale benchmark: how Driftline's cost grows with rows and columns, from Parquet on disk to
stored results, next to a plain numpy pass and (with ``--peers``) Evidently, NannyML and whylogs.

    .venv/bin/python bench/bench_scale.py                  # 100k, 1M, 10M rows; ~10 min, 2.8 GB of temporary disk
    .venv/bin/python bench/bench_scale.py --quick          # smaller, ~2 min (~3 with --peers)
    .venv/bin/python bench/bench_scale.py --peers --json bench/out/scale.json

Every case runs in a fresh interpreter (``bench/scale/child.py``; the peers' in
``bench/peers/.venv`` with ``bench/scale/peers_child.py``): seconds are wall-clock inside that
process (imports excluded, everything from opening the Parquet files to the committed SQLite
transaction included), peak RSS is the process's own (``os.wait4``), CPU is all its threads.
Data (``bench/scale/data.py``): 25 features (20 numeric of five families, 5 categorical) plus
timestamp, score, label and latency; windows are one day of logs as Parquet files of 1M rows in
row groups of 131,072; the reference is a 1M-row training set (no timestamps: 20 row-order chunks).

Cases:

- check: one window of each ``--sizes`` against the stored reference (the reference fitted and
  stored first, in its own process: the "fit" rows);
- first run: a fresh store, fit the 1M reference and check a 1M window in one process;
- 30 days: a backfill of 30 daily windows of 100k rows (total and per window);
- columns: 1M rows with 5, 25 and 50 features (fit and check each);
- floor: a plain pyarrow + numpy single pass over the same files and columns (``np.histogram`` of
  each numeric column, ``np.bincount`` of each categorical one's codes), and Driftline's source
  alone (Parquet to pandas batches, nothing profiled);
- peers (``--peers``, when ``bench/peers/.venv`` exists): Evidently's data-drift report,
  NannyML's univariate drift fit + calculate (and calculate alone), whylogs' profiling of both
  data sets, on the 1M reference and 1M window already in memory; ratios are to Driftline's first
  run (or check) measured in the same invocation.

The machine is named at the top (cores, RAM, Python, load average): on a shared machine the load
moves wall times, so ``--repeat N`` runs every Driftline case N times and keeps the fastest, and
runs each peer as many times (``--peer-repeat`` to change that), keeping its fastest too.
Telemetry of the peers is switched off (``DO_NOT_TRACK`` and friends).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from scale.data import Layout, write_logs  # noqa: E402

PEERS_PYTHON = HERE / "peers" / ".venv" / "bin" / "python"
DAY = datetime(2026, 10, 1, tzinfo=timezone.utc)
TELEMETRY_OFF = {"DO_NOT_TRACK": "1", "EVIDENTLY_DISABLE_TELEMETRY": "1", "NML_DISABLE_USAGE_LOGGING": "1", "WHYLOGS_NO_ANALYTICS": "True"}


def parse_rows(text: str) -> int:
    """``100k``, ``1M``, ``2.5M``, ``250000``."""
    text = text.strip().lower().replace("_", "").replace(",", "")
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    number = float(text[:-1] if scale != 1 else text)
    rows = int(round(number * scale))
    if rows < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a row count")
    return rows


def rows_label(rows: int) -> str:
    if rows >= 1_000_000 and rows % 100_000 == 0:
        return f"{rows / 1_000_000:g}M"
    if rows >= 1_000 and rows % 1_000 == 0:
        return f"{rows // 1_000}k"
    return str(rows)


@dataclass
class Plan:
    sizes: list[int]
    reference_rows: int
    first_rows: int
    days: int
    day_rows: int
    slope_rows: int
    slope_columns: list[int]
    peer_rows: int
    repeat: int = 1
    peer_repeat: int = 1

    @classmethod
    def make(cls, args: argparse.Namespace) -> Plan:
        if args.quick:
            plan = cls(sizes=[100_000, 1_000_000], reference_rows=200_000, first_rows=200_000, days=30, day_rows=20_000,
                       slope_rows=200_000, slope_columns=[5, 25, 50], peer_rows=200_000)  # fmt: skip
        else:
            plan = cls(sizes=[100_000, 1_000_000, 10_000_000], reference_rows=1_000_000, first_rows=1_000_000, days=30,
                       day_rows=100_000, slope_rows=1_000_000, slope_columns=[5, 25, 50], peer_rows=1_000_000)  # fmt: skip
        if args.sizes:
            plan.sizes = args.sizes
        plan.repeat = max(1, args.repeat)
        plan.peer_repeat = max(1, args.peer_repeat if args.peer_repeat is not None else args.repeat)
        return plan


# ---------------------------------------------------------------------------------- data


@dataclass
class Data:
    """Generated data sets under ``root``, reused when their parameters match."""

    root: Path
    made: dict[str, float] = field(default_factory=dict)  # name -> seconds to generate

    def _dataset(self, name: str, params: dict, write) -> Path:
        folder = self.root / name
        marker = folder / ".params.json"
        if marker.exists() and json.loads(marker.read_text()) == params:
            return folder
        if folder.exists():
            for path in sorted(folder.rglob("*"), reverse=True):
                path.unlink() if path.is_file() else path.rmdir()
        started = time.perf_counter()
        log(f"writing {name} ...")
        write(folder)
        self.made[name] = time.perf_counter() - started
        marker.write_text(json.dumps(params))
        return folder

    def reference(self, layout: Layout, rows: int) -> Path:
        params = {"kind": "reference", "numeric": layout.numeric, "categorical": layout.categorical, "rows": rows, "seed": 1}
        return self._dataset(f"reference-{layout.features}c-{rows_label(rows)}", params, lambda f: write_logs(f, layout, rows, 1, start=None, prefix="train"))

    def window(self, layout: Layout, rows: int) -> Path:
        params = {"kind": "window", "numeric": layout.numeric, "categorical": layout.categorical, "rows": rows, "seed": 2}
        day = f"date={DAY.date().isoformat()}"
        return self._dataset(f"window-{layout.features}c-{rows_label(rows)}", params, lambda f: write_logs(f / day, layout, rows, 2, start=DAY, shift=0.3))

    def days(self, layout: Layout, days: int, rows: int) -> Path:
        params = {"kind": "days", "numeric": layout.numeric, "categorical": layout.categorical, "rows": rows, "days": days, "seed": 3}

        def write(folder: Path) -> None:
            for d in range(days):
                start = DAY + timedelta(days=d)
                # From day 20 on, the first features drift (so the backfill has breaches to store).
                write_logs(folder / f"date={start.date().isoformat()}", layout, rows, 100 + d, start=start, shift=0.3 if d >= 20 else 0.0)

        return self._dataset(f"days{days}-{layout.features}c-{rows_label(rows)}", params, write)


def files(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.rglob("*.parquet"))


CONFIG = """\
store: sqlite:///{store}
monitors:
  - name: scale
    source: {{type: parquet, path: "{source}"}}
    columns:
      timestamp: ts
      numeric: [{numeric}]
      categorical: [{categorical}]
      prediction: score
      prediction_kind: probability
      target: label
      latency: latency_ms
    reference: {{type: parquet, path: "{reference}"}}
    window: 1d
    checks: {{latency: {{p95_max_ms: 250}}}}
"""


def case_folder(root: Path, name: str, layout: Layout, source: Path, reference: Path, *, fresh: bool = True) -> Path:
    folder = root / "cases" / name
    folder.mkdir(parents=True, exist_ok=True)
    store = folder / "bench.db"
    if fresh:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{store}{suffix}").unlink(missing_ok=True)
    (folder / "driftline.yaml").write_text(
        CONFIG.format(
            store=store, source=source, reference=reference,
            numeric=", ".join(layout.numeric_names), categorical=", ".join(layout.categorical_names),
        )  # fmt: skip
    )
    return folder


# ------------------------------------------------------------------------------ measuring


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_child(python: Path | str, script: Path, spec: dict, env: dict[str, str] | None = None) -> dict:
    """Run one measured step in a fresh interpreter; its JSON, plus its peak RSS from wait4."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen([str(python), str(script), json.dumps(spec)], stdout=out, stderr=err, cwd=ROOT, env={**os.environ, **TELEMETRY_OFF, **(env or {})})
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        stdout, stderr = out.read(), err.read()
    if child.returncode != 0:
        raise RuntimeError(f"{script.name} {spec.get('mode') or spec.get('tool')} failed ({child.returncode}):\n{stderr[-3000:]}")
    result = json.loads(stdout.strip().splitlines()[-1])
    result["peak_rss_mib"] = usage.ru_maxrss / 1024
    return result


def driftline(spec: dict, repeat: int = 1) -> dict:
    """The fastest of ``repeat`` fresh processes (all of them listed in ``runs``)."""
    runs = [run_child(sys.executable, HERE / "scale" / "child.py", spec) for _ in range(repeat)]
    best = dict(min(runs, key=lambda r: r["seconds"]))
    if repeat > 1:
        best["runs"] = [round(r["seconds"], 3) for r in runs]
    return best


# ------------------------------------------------------------------------------- the cases


def machine() -> dict:
    info = {
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
    }
    try:
        meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
        info["ram_gib"] = round(int(meminfo["MemTotal"].split()[0]) / 2**20, 1)
        info["cpu_model"] = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name"))
    except (OSError, KeyError, StopIteration):
        pass
    import numpy
    import pandas
    import pyarrow

    info["versions"] = {"numpy": numpy.__version__, "pandas": pandas.__version__, "pyarrow": pyarrow.__version__}
    return info


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def run_cases(plan: Plan, root: Path, use_peers: bool) -> dict:
    data = Data(root / "data")
    standard = Layout()
    report: dict = {"machine": machine(), "plan": plan.__dict__, "load_before": load_average(), "cases": []}

    def add(case: str, rows: int, columns: int, result: dict, **extra) -> dict:
        entry = {"case": case, "rows": rows, "columns": columns, **result, **extra}
        report["cases"].append(entry)
        log(f"  {case:<34} {rows:>11,} rows x {columns:>2}  {result['seconds']:8.2f} s  {result['peak_rss_mib']:7.0f} MiB")
        return entry

    reference = data.reference(standard, plan.reference_rows)

    # One window per size, against the stored reference.
    for rows in plan.sizes:
        window = data.window(standard, rows)
        folder = case_folder(root, f"check-{rows_label(rows)}", standard, window, reference)
        fit = driftline({"mode": "fit", "folder": str(folder), "day": DAY.isoformat()})
        add("fit reference", plan.reference_rows, standard.features, fit, group="fit")
        add("check one window", rows, standard.features, driftline({"mode": "check", "folder": str(folder), "day": DAY.isoformat()}, plan.repeat), group="check")
        add("read only (Driftline source)", rows, standard.features, driftline({"mode": "read", "folder": str(folder), "day": DAY.isoformat()}, plan.repeat), group="floor")
        spec = {"mode": "floor", "files": files(window), "numeric": standard.numeric_names, "categorical": standard.categorical_names}
        add("numpy floor (single pass)", rows, standard.features, driftline(spec, plan.repeat), group="floor")

    # The first run: nothing stored yet.
    first_window = data.window(standard, plan.first_rows)
    first_reference = data.reference(standard, plan.first_rows)
    runs = []
    for _ in range(plan.repeat):  # each needs a fresh store
        folder = case_folder(root, "first-run", standard, first_window, first_reference)
        runs.append(run_child(sys.executable, HERE / "scale" / "child.py", {"mode": "first", "folder": str(folder), "day": DAY.isoformat()}))
    first = dict(min(runs, key=lambda r: r["seconds"]))
    if plan.repeat > 1:
        first["runs"] = [round(r["seconds"], 3) for r in runs]
    add("first run: fit + check", plan.first_rows, standard.features, first, group="first", reference_rows=plan.first_rows)

    # A month of daily windows.
    days = data.days(standard, plan.days, plan.day_rows)
    folder = case_folder(root, "backfill", standard, days, reference)
    driftline({"mode": "fit", "folder": str(folder), "day": DAY.isoformat()})
    backfill = driftline({"mode": "backfill", "folder": str(folder), "day": DAY.isoformat(), "days": plan.days})
    add(f"backfill {plan.days} daily windows", plan.days * plan.day_rows, standard.features, backfill, group="days", days=plan.days)

    # Columns.
    for columns in plan.slope_columns:
        layout = Layout.for_columns(columns)
        window = data.window(layout, plan.slope_rows)
        folder = case_folder(root, f"columns-{columns}", layout, window, data.reference(layout, plan.reference_rows))
        driftline({"mode": "fit", "folder": str(folder), "day": DAY.isoformat()})
        add("check one window", plan.slope_rows, columns, driftline({"mode": "check", "folder": str(folder), "day": DAY.isoformat()}, plan.repeat), group="columns")

    report["generated_seconds"] = data.made
    if use_peers:
        report["peers"] = run_peers(plan, data, standard)
    report["load_after"] = load_average()
    return report


def run_peers(plan: Plan, data: Data, layout: Layout) -> dict:
    if not PEERS_PYTHON.exists():
        log(f"peers: {PEERS_PYTHON} does not exist; see bench/peers/README.md")
        return {"skipped": f"{PEERS_PYTHON} does not exist"}
    script = HERE / "scale" / "peers_child.py"
    versions = json.loads(subprocess.run([str(PEERS_PYTHON), str(script), "--versions"], capture_output=True, text=True, env={**os.environ, **TELEMETRY_OFF}, check=True).stdout)
    reference, window = data.reference(layout, plan.peer_rows), data.window(layout, plan.peer_rows)
    spec = {"reference": files(reference), "window": files(window), "numeric": layout.numeric_names, "categorical": layout.categorical_names, "chunks": 20}
    out: dict = {"versions": versions, "rows": plan.peer_rows, "tools": {}}
    for tool in ("nannyml", "whylogs", "evidently"):
        if str(versions.get(tool, "")).startswith("unavailable"):
            out["tools"][tool] = {"error": versions[tool]}
            continue
        log(f"peers: {tool} on {plan.peer_rows:,} + {plan.peer_rows:,} rows ...")
        try:
            # The fastest of as many runs as each Driftline case gets, so a slow minute of the
            # host favours neither side.
            runs = [run_child(PEERS_PYTHON, script, {**spec, "tool": tool}) for _ in range(plan.peer_repeat)]
            best = dict(min(runs, key=lambda r: r["seconds"]))
            for key in ("fit_seconds", "calculate_seconds", "reference_seconds", "window_seconds"):
                if all(key in r for r in runs):
                    best[key] = min(r[key] for r in runs)  # each step's own fastest
                    if len(runs) > 1:
                        best[f"{key}_runs"] = [round(r[key], 3) for r in runs]
            if len(runs) > 1:
                best["runs"] = [round(r["seconds"], 3) for r in runs]
            out["tools"][tool] = best
            log(f"  {tool:<34} {best['seconds']:8.2f} s  {best['peak_rss_mib']:7.0f} MiB" + (f"  (runs {best['runs']})" if len(runs) > 1 else ""))
        except RuntimeError as exc:
            out["tools"][tool] = {"error": str(exc)[-500:]}
            log(f"  {tool}: {exc}")
    return out


# ------------------------------------------------------------------------------- printing


def fmt_rate(rows: int, seconds: float) -> str:
    rate = rows / seconds if seconds > 0 else float("inf")
    return f"{rate / 1e6:.2f} M" if rate >= 1e6 else f"{rate / 1e3:.0f} k"


def print_report(report: dict) -> None:
    m = report["machine"]
    print(f"machine: {m.get('cpu_model', m['processor'])}, {m['cores']} cores ({m['usable_cores']} usable), "
          f"{m.get('ram_gib', '?')} GiB RAM, Python {m['python']}, {m['platform']}")  # fmt: skip
    print(f"versions: {', '.join(f'{k} {v}' for k, v in m['versions'].items())}; load average before {report['load_before']}, after {report['load_after']}")
    plan = report["plan"]
    repeat = "" if plan["repeat"] == 1 else f", fastest of {plan['repeat']}"
    print(f"data: 25 features (20 numeric, 5 categorical) + ts, score, label, latency; reference {plan['reference_rows']:,} rows "
          f"(a training set, 20 row-order chunks); each Driftline case in a fresh process{repeat}")  # fmt: skip
    print()
    print("| case | rows | features | seconds | CPU s | rows/s | peak RSS MiB |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for c in report["cases"]:
        print(f"| {c['case']} | {c['rows']:,} | {c['columns']} | {c['seconds']:.2f} | {c.get('cpu_seconds', float('nan')):.2f} | {fmt_rate(c['rows'], c['seconds'])} | {c['peak_rss_mib']:,.0f} |")
    print()
    print_stages(report)
    print_slopes(report)
    print_days(report)
    if "peers" in report:
        print_peers(report)


STAGES = (
    ("read_wait", "read wait"),
    ("profile", "profile"),
    ("evaluate_excl_calibration", "evaluate"),
    ("calibration_in_evaluate", "(calibration)"),
    ("reference_variation", "reference variation"),
    ("store", "store"),
    ("other", "other"),
)


def print_stages(report: dict) -> None:
    rows = [c for c in report["cases"] if c.get("group") in ("check", "first", "days", "fit") and "stages" in c]
    if not rows:
        return
    print("Where the seconds go (wall seconds inside each stage; read wait = the profiling loop waiting for Parquet decoding that")
    print("did not overlap with it; calibration = drawing drift-threshold nulls, part of evaluate's time and not counted in it here):")
    print()
    print("| case | rows | " + " | ".join(label for _, label in STAGES) + " | total |")
    print("|---|---:|" + "---:|" * (len(STAGES) + 1))
    for c in rows:
        s = c["stages"]
        print(f"| {c['case']} | {c['rows']:,} | " + " | ".join(f"{s.get(key, 0.0):.2f}" for key, _ in STAGES) + f" | {c['seconds']:.2f} |")
    print()


def print_slopes(report: dict) -> None:
    checks = [c for c in report["cases"] if c.get("group") == "check"]
    columns = [c for c in report["cases"] if c.get("group") == "columns"]
    if len(checks) > 1:
        base = checks[0]
        parts = [f"{rows_label(c['rows'])}: {c['seconds'] / c['rows'] * 1e6:.2f} s per M rows" for c in checks]
        print(f"rows slope (check, 25 features): {'; '.join(parts)} — {checks[-1]['seconds'] / base['seconds']:.1f}x the time for {checks[-1]['rows'] / base['rows']:.0f}x the rows")
    if len(columns) > 1:
        parts = [f"{c['columns']} features: {c['seconds']:.2f} s ({c['seconds'] / c['columns'] * 1000:.0f} ms per feature)" for c in columns]
        print(f"columns slope (check, {rows_label(columns[0]['rows'])} rows): {'; '.join(parts)} — {columns[-1]['seconds'] / columns[0]['seconds']:.1f}x the time for {columns[-1]['columns'] / columns[0]['columns']:.0f}x the features")
    floors = {c["rows"]: c for c in report["cases"] if c["case"].startswith("numpy floor")}
    if checks and floors:
        parts = [f"{rows_label(c['rows'])}: {c['seconds'] / floors[c['rows']]['seconds']:.1f}x" for c in checks if c["rows"] in floors]
        print(f"check / numpy floor: {'; '.join(parts)}")
    print()


def print_days(report: dict) -> None:
    for c in report["cases"]:
        if c.get("group") == "days" and c.get("window_seconds"):
            w = c["window_seconds"]
            rest = sorted(w[1:]) or w
            print(f"{c['case']}: {c['seconds']:.2f} s in all, {c['seconds'] / len(w):.2f} s per window on average "
                  f"(first {w[0]:.2f} s, median of the others {rest[len(rest) // 2]:.2f} s), {c['rows']:,} rows")  # fmt: skip
            print()


def print_peers(report: dict) -> None:
    peers = report["peers"]
    if "skipped" in peers:
        print(f"peers: skipped ({peers['skipped']})")
        return
    first = next((c for c in report["cases"] if c.get("group") == "first"), None)
    check = next((c for c in report["cases"] if c.get("group") == "check" and c["rows"] == peers["rows"]), None)
    versions = ", ".join(f"{k} {v}" for k, v in peers["versions"].items())
    print(f"Peers on the same data already in memory ({peers['rows']:,}-row reference + {peers['rows']:,}-row window, 25 features; {versions}).")
    repeat = report["plan"].get("peer_repeat", 1)
    print("Driftline's seconds include reading Parquet and storing results; the peers' do not include loading the data."
          + (f" Each peer's seconds are its fastest of {repeat} runs, as Driftline's are." if repeat > 1 else ""))  # fmt: skip
    print()
    if repeat > 1:
        print("The last column compares the medians of the runs instead: the fastest run of each side can be a lucky minute of a noisy host.")
    print()
    print("| tool | work | seconds | peak RSS MiB | Driftline, same run | Driftline is | medians |")
    print("|---|---|---:|---:|---|---:|---:|")
    tools = peers["tools"]
    same_size = first is not None and first.get("reference_rows") == peers["rows"] and first["rows"] == peers["rows"]

    def times(ratio: float) -> str:
        return f"{ratio:.1f}x faster" if ratio >= 1 else f"{1 / ratio:.1f}x slower"

    def row(key: str, work: str, seconds: float | None, rss: float | None, mine: dict | None, label: str, runs: list[float] | None) -> None:
        name = {"nannyml": "NannyML", "evidently": "Evidently", "whylogs": "whylogs"}[key]
        if seconds is None:
            print(f"| {name} | {work} | {tools.get(key, {}).get('error', 'n/a')[:120]} | | | | |")
        elif mine is None:
            print(f"| {name} | {work} | {seconds:.2f} | {rss:,.0f} | n/a | n/a | n/a |")
        else:
            ratio = seconds / mine["seconds"]
            verdict = f"{ratio:.0f}x faster" if ratio >= 9.5 else times(ratio)
            medians = times(statistics.median(runs) / statistics.median(mine["runs"])) if runs and mine.get("runs") else ""
            print(f"| {name} | {work} | {seconds:.2f} | {rss:,.0f} | {label}: {mine['seconds']:.2f} s | {verdict} | {medians} |")

    mine_first = first if same_size else None
    n = tools.get("nannyml", {})
    row("nannyml", "fit + calculate", n.get("seconds"), n.get("peak_rss_mib"), mine_first, "first run (fit + check)", n.get("runs"))
    if "calculate_seconds" in n:
        row("nannyml", "calculate alone", n["calculate_seconds"], n.get("peak_rss_mib"), check, "check one window", n.get("calculate_seconds_runs"))
    e = tools.get("evidently", {})
    row("evidently", "DataDriftPreset report", e.get("seconds"), e.get("peak_rss_mib"), mine_first, "first run (fit + check)", e.get("runs"))
    w = tools.get("whylogs", {})
    row("whylogs", "profile reference + window", w.get("seconds"), w.get("peak_rss_mib"), mine_first, "first run (fit + check)", w.get("runs"))
    print()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", type=parse_rows, help="window sizes to check (e.g. 100k 1M 10M)")
    parser.add_argument("--quick", action="store_true", help="smaller data: windows of 100k and 1M, a 200k reference, peers on 200k + 200k rows")
    parser.add_argument("--peers", action="store_true", help="also run Evidently, NannyML and whylogs (bench/peers/.venv)")
    parser.add_argument("--json", type=Path, help="write every measurement to this file")
    parser.add_argument("--repeat", type=int, default=1, help="run each Driftline case N times, keep the fastest (for busy machines)")
    parser.add_argument("--peer-repeat", type=int, help="run each peer N times, keep the fastest (default: as --repeat)")
    parser.add_argument("--workdir", type=Path, help="keep data and stores here and reuse the data next time (default: a temporary folder)")
    args = parser.parse_args(argv)
    plan = Plan.make(args)
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        report = run_cases(plan, args.workdir.resolve(), args.peers)
    else:
        with tempfile.TemporaryDirectory(prefix="driftline-scale-") as tmp:
            report = run_cases(plan, Path(tmp), args.peers)
    print_report(report)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2, default=str))
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
