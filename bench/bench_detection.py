"""Detection benchmark: false alarms, detection and delay of Driftline's defaults on seeded data,
side by side with Evidently's and NannyML's defaults on the same data.

Data: 20 numeric columns (normals, lognormals, bimodal mixtures, Poisson counts, a 0/1 flag) and
5 categorical ones (3-30 values, Zipf-like shares), drawn with numpy from ``--seed``.

Scenarios (``bench/detection/scenarios.py``):

1. stationary: windows of 200 rows to 1M from the reference's own distribution (reference 100k
   rows, or 10x the window, at most 1M) -- every flag is a false alarm;
2. seasonal: numeric means follow a daily sine of amplitude 0.3 std; the reference is 14 days of
   hourly windows, the monitored windows are the next hours -- every flag is a false alarm;
3. sudden: a 0.25-std mean shift, a 1.5x scale change, a new category at 5% (and a 1-std shift on
   small windows) after a few unchanged windows -- detection in the first window after the
   change, over all windows after it, and the delay until the first flag;
4. gradual: means move linearly from 0 to 0.5 std over 20 windows -- delay until the first flag;
5. negligible: a 0.03-std mean shift and 1 point of share moved, on 1M-row windows -- must not
   be flagged (every flag is a false alarm).

A *column-window* is one feature in one window: rates are over column-windows, and every cell says
how many it rests on. Driftline runs in-process (``detection/driftline_adapter.py``); the peers run
in their own venv (``bench/peers/``), in a subprocess, on the same data written as Parquet.

    .venv/bin/python bench/bench_detection.py --quick              # Driftline alone, < 2 min
    .venv/bin/python bench/bench_detection.py --quick --peers      # + Evidently and NannyML
    .venv/bin/python bench/bench_detection.py --peers --json bench/out/detection.json

Prints a markdown table on stdout (progress goes to stderr).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import scipy  # noqa: E402

import monitor  # noqa: E402
from detection import peers  # noqa: E402
from detection import scenarios as sc  # noqa: E402
from detection.driftline_adapter import driftline_flags, driftline_mode  # noqa: E402
from detection.scoring import Score, mark, rows_for, score  # noqa: E402

SCENARIOS = ("stationary", "seasonal", "sudden", "gradual", "negligible")
TOOLS = ("driftline", *peers.TOOLS)
TOOL_NAMES = {"driftline": "Driftline", "evidently": "Evidently", "nannyml": "NannyML"}


# ---------------------------------------------------------------------------------- plans


@dataclass
class Plan:
    stationary_sizes: list[int]
    stationary_windows: Callable[[int], int]
    seasonal_hour_rows: list[int]
    sudden_sizes: list[int]
    sudden_reps: Callable[[int], int]
    sudden_pre: int
    sudden_post: int
    gradual_sizes: list[int]
    gradual_reps: Callable[[int], int]
    gradual_plateau: int
    negligible_sizes: list[int]
    negligible_windows: int
    peers_max_windows: int | None
    seasonal_days: int = 14
    seasonal_hours: int = 48


FULL = Plan(
    stationary_sizes=[200, 1_000, 10_000, 100_000, 1_000_000],
    stationary_windows=lambda size: 40 if size <= 100_000 else 5,
    seasonal_hour_rows=[1_000, 10_000],
    sudden_sizes=[200, 10_000, 100_000],
    sudden_reps=lambda size: 5 if size <= 10_000 else 2,
    sudden_pre=5,
    sudden_post=10,
    gradual_sizes=[200, 10_000, 100_000],
    gradual_reps=lambda size: 3 if size <= 10_000 else 1,
    gradual_plateau=5,
    negligible_sizes=[1_000_000],
    negligible_windows=3,
    peers_max_windows=None,
)
QUICK = Plan(  # 1M-row windows only in the negligible case
    stationary_sizes=[200, 1_000, 10_000, 100_000],
    stationary_windows=lambda size: 40 if size <= 10_000 else (10 if size <= 100_000 else 1),
    seasonal_hour_rows=[1_000],
    sudden_sizes=[200, 10_000, 100_000],
    sudden_reps=lambda size: 2 if size <= 10_000 else 1,
    sudden_pre=2,
    sudden_post=5,
    gradual_sizes=[10_000],
    gradual_reps=lambda size: 1,
    gradual_plateau=0,
    negligible_sizes=[1_000_000],
    negligible_windows=1,
    peers_max_windows=10,
)


def build_cases(plan: Plan, scenario: str, seed: int) -> list[sc.Case]:
    if scenario == "stationary":
        return sc.stationary(plan.stationary_sizes, {s: plan.stationary_windows(s) for s in plan.stationary_sizes}, seed)
    if scenario == "seasonal":
        return sc.seasonal(plan.seasonal_hour_rows, plan.seasonal_days, plan.seasonal_hours, seed)
    if scenario == "sudden":
        return sc.sudden(plan.sudden_sizes, {s: plan.sudden_reps(s) for s in plan.sudden_sizes}, plan.sudden_pre, plan.sudden_post, seed)
    if scenario == "gradual":
        return sc.gradual(plan.gradual_sizes, {s: plan.gradual_reps(s) for s in plan.gradual_sizes}, plan.gradual_plateau, seed)
    if scenario == "negligible":
        return sc.negligible(plan.negligible_sizes, plan.negligible_windows, seed)
    raise ValueError(scenario)


# ---------------------------------------------------------------------------------- running


@dataclass
class CaseRun:
    case: sc.Case
    reference_rows: int
    reference_chunks: int
    scores: dict[str, Score | str] = field(default_factory=dict)  # tool -> score, or why there is none
    flags: dict[str, list[dict[str, bool]]] = field(default_factory=dict)
    extra: dict[str, dict] = field(default_factory=dict)  # tool -> methods, thresholds, seconds...


@dataclass
class Timer:
    seconds: float = 0.0


def drawn(cases: list[sc.Case], timer: Timer, writers: dict[str, tuple[peers.CaseWriter, int]]) -> Iterator[pd.DataFrame]:
    """The windows of ``cases`` one at a time, in order; drawing them (and writing the first ones
    of each case for the peers) is timed apart from Driftline's work."""
    for case in cases:
        writer, limit = writers.get(case.id, (None, 0))
        for i, spec in enumerate(case.windows):
            started = time.perf_counter()
            frame = sc.make_frame(spec)
            if writer is not None and i < limit:
                writer.add_window(frame)
            timer.seconds += time.perf_counter() - started
            yield frame
            del frame


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_scenario(name: str, cases: list[sc.Case], args: argparse.Namespace, plan: Plan, with_peers: bool) -> tuple[list[CaseRun], dict]:
    timing = {"data": 0.0, "driftline": 0.0, "peers": 0.0, "evidently": 0.0, "nannyml": 0.0}
    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix=f"driftline-detection-{name}-"))
    batch = peers.Batch(tmp)
    runs: list[CaseRun] = []
    peer_cases: dict[str, sc.Case] = {}
    max_windows = args.peers_max_windows if args.peers_max_windows is not None else plan.peers_max_windows
    try:
        # Cases on the same reference are checked in one call: the reference is fitted once.
        groups: dict[sc.ReferenceSpec, list[sc.Case]] = {}
        for case in cases:
            groups.setdefault(case.reference, []).append(case)
        for spec, group in groups.items():
            setup = time.perf_counter()
            reference, chunks = sc.make_reference(spec)
            writers: dict[str, tuple[peers.CaseWriter, int]] = {}
            group_runs = [CaseRun(case, len(reference), len(chunks)) for case in group]
            reference_path = None
            for run in group_runs:
                case = run.case
                if not with_peers:
                    continue
                if case.size <= args.peers_max_rows and len(reference) <= 10 * args.peers_max_rows:
                    peer_case = case.limited(max_windows)
                    peer_cases[case.id] = peer_case
                    if reference_path is None:
                        reference_path = batch.add_reference(reference, chunks)
                    writers[case.id] = (batch.add_case(case.id, reference_path, sc.NUMERIC, sc.CATEGORICAL), len(peer_case.windows))
                else:
                    for tool in peers.TOOLS:
                        run.scores[tool] = "skipped (budget)"
            windows = Timer()  # drawing (and writing) the windows, inside Driftline's loop
            checked = time.perf_counter()
            flags = driftline_flags(reference, chunks, drawn(group, windows, writers), sc.NUMERIC, sc.CATEGORICAL)
            done = time.perf_counter()
            del reference, chunks
            data_seconds = (checked - setup) + windows.seconds
            driftline_seconds = (done - checked) - windows.seconds
            timing["data"] += data_seconds
            timing["driftline"] += driftline_seconds
            offset = 0
            for run in group_runs:
                n = len(run.case.windows)
                run.flags["driftline"] = flags[offset : offset + n]
                run.scores["driftline"] = score(run.case.windows, run.flags["driftline"], sc.COLUMNS)
                offset += n
            assert offset == len(flags), "every window gets its flags"
            names = ", ".join(f"{r.case.size:,} rows: {r.case.label}" for r in group_runs)
            log(f"  reference {len(group_runs[0].case.reference.parts)} part(s), {group_runs[0].reference_rows:,} rows [{names}]: "
                f"{len(flags)} windows, Driftline {driftline_seconds:.1f}s (data {data_seconds:.1f}s)")
            runs += group_runs
        order = {case.id: i for i, case in enumerate(cases)}
        runs.sort(key=lambda r: order[r.case.id])
        if peer_cases:
            log(f"  peers: {len(peer_cases)} case(s) of {name} ...")
            try:
                output, seconds = batch.run(args.peers_python)
            except (RuntimeError, OSError, ValueError) as exc:
                log(f"  peers failed on {name}: {exc}")
                output, seconds = {"cases": {}}, 0.0
            timing["peers"] = seconds
            for run in runs:
                if run.case.id not in peer_cases:
                    continue
                peer_case = peer_cases[run.case.id]
                for tool in peers.TOOLS:
                    result = output["cases"].get(run.case.id, {}).get(tool, {"error": "the peers' run failed"})
                    timing[tool] += result.get("seconds", 0.0)
                    flags = peers.flags_of(result, sc.COLUMNS)
                    run.extra[tool] = {k: v for k, v in result.items() if k != "flags"}
                    if flags is None:
                        run.scores[tool] = "error"
                        log(f"  {tool} failed on {run.case.id}: {result.get('error')}\n{result.get('traceback', '')}")
                        continue
                    run.flags[tool] = flags
                    run.scores[tool] = score(peer_case.windows, flags, sc.COLUMNS)
            return runs, {**timing, "peer_versions": output.get("versions"), "wall": time.perf_counter() - started}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return runs, {**timing, "wall": time.perf_counter() - started}


# ---------------------------------------------------------------------------------- output


def rows_text(n: int) -> str:
    for unit, div in (("M", 1_000_000), ("k", 1_000)):
        if n >= div and n % (div // 10 or 1) == 0:
            value = n / div
            return f"{value:g}{unit}"
    return f"{n:,}"


def checks_fingerprint() -> str:
    """A hash of the sources of ``checks`` (what decides drift), to tie numbers to a code state."""
    import hashlib

    import checks

    digest = hashlib.sha1()
    for path in sorted(Path(checks.__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:12]


def machine() -> dict:
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        ram = math.nan
    return {
        "cores": os.cpu_count(),
        "ram_gib": round(ram, 1),
        "machine": platform.machine(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "scipy": scipy.__version__,
        "driftline": monitor.__version__,
        "checks_sources": checks_fingerprint(),
    }


def table(runs: list[CaseRun], tools: list[str]) -> list[str]:
    head = ["scenario", "change", "window rows", "reference rows", "metric", "target", *(TOOL_NAMES[t] for t in tools)]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for run in runs:
        case = run.case
        window = f"{rows_text(case.size)}/hour" if case.scenario == "seasonal" else rows_text(case.size)
        for row in rows_for(case):
            cells = []
            for tool in tools:
                result = run.scores.get(tool, "–")
                cells.append(result if isinstance(result, str) else mark(row, result))
            lines.append("| " + " | ".join([case.scenario, case.label, window, rows_text(run.reference_rows), row.metric, row.target, *cells]) + " |")
    return lines


def timing_table(timings: dict[str, dict], tools: list[str]) -> list[str]:
    peer = [t for t in tools if t != "driftline"]
    head = ["scenario", "wall s", "data s", "Driftline s", *(f"{TOOL_NAMES[t]} s" for t in peer)]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---:" if i else "---" for i in range(len(head))) + "|"]
    for name, t in timings.items():
        cells = [name, f"{t['wall']:.1f}", f"{t['data']:.1f}", f"{t['driftline']:.1f}", *(f"{t[p]:.1f}" for p in peer)]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def to_json(runs: list[CaseRun]) -> list[dict]:
    out = []
    for run in runs:
        case = run.case
        results = {}
        for tool, result in run.scores.items():
            if isinstance(result, str):
                results[tool] = {"status": result, **run.extra.get(tool, {})}
                continue
            flagged = [[c for c, hit in f.items() if hit] for f in run.flags[tool]]
            results[tool] = {"score": result.to_dict(), "flagged": flagged, **run.extra.get(tool, {})}
        out.append(
            {
                "id": case.id,
                "scenario": case.scenario,
                "change": case.label,
                "window_rows": case.size,
                "windows": len(case.windows),
                "reference_rows": run.reference_rows,
                "reference_chunks": run.reference_chunks,
                "notes": case.notes,
                "results": results,
            }
        )
    return out


# ---------------------------------------------------------------------------------- main


def sizes_arg(text: str) -> list[int]:
    out = []
    for part in text.replace(",", " ").split():
        part = part.strip().lower().replace("_", "")
        factor = 1
        if part.endswith("k"):
            factor, part = 1_000, part[:-1]
        elif part.endswith("m"):
            factor, part = 1_000_000, part[:-1]
        out.append(int(float(part) * factor))
    if not out or min(out) < 10:
        raise argparse.ArgumentTypeError("sizes are rows per window, at least 10")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes and few windows (Driftline alone: < 2 min)")
    parser.add_argument("--peers", action="store_true", help="also run Evidently and NannyML (bench/peers/.venv)")
    parser.add_argument("--sizes", type=sizes_arg, help="window rows of the stationary, sudden and gradual scenarios, e.g. 200,10k,1M")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help=f"comma-separated subset of {', '.join(SCENARIOS)}")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, help="also write every number (and every flagged column) here")
    parser.add_argument("--peers-max-rows", type=int, default=100_000, help="peers run on windows up to this many rows (and references up to 10x); default 100k")
    parser.add_argument("--peers-max-windows", type=int, help="peers check at most this many windows per case (default: 10 with --quick, all otherwise)")
    parser.add_argument("--peers-python", type=Path, default=peers.PEERS_PYTHON, help="python of the peers' venv")
    args = parser.parse_args(argv)

    plan = QUICK if args.quick else FULL
    if args.sizes:
        plan.stationary_sizes = plan.sudden_sizes = plan.gradual_sizes = args.sizes
    chosen = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = sorted(set(chosen) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; valid: {', '.join(SCENARIOS)}")

    header = [f"# Driftline detection benchmark ({'quick' if args.quick else 'full'}, seed {args.seed})", ""]
    info = machine()
    header.append(
        f"- machine: {info['cores']} cores, {info['ram_gib']} GiB RAM, {info['machine']}; Python {info['python']}, "
        f"numpy {info['numpy']}, pandas {info['pandas']}, scipy {info['scipy']}"
    )
    header.append(f"- Driftline {info['driftline']} (checks/*.py sha1 {info['checks_sources']}): default settings, {driftline_mode()}")
    with_peers = False
    peers_status = "not requested (--peers)"
    if args.peers:
        if peers.available(args.peers_python):
            with_peers = True
            peers_status = "run"
        else:
            peers_status = f"not installed: {peers.HOW_TO_INSTALL}"
            header.append(f"- peers: not installed, Driftline alone. Create their venv with: `{peers.HOW_TO_INSTALL}`")
            log(f"peers venv missing ({args.peers_python}); running Driftline alone. Create it with: {peers.HOW_TO_INSTALL}")
    tools = list(TOOLS) if with_peers else ["driftline"]

    runs: list[CaseRun] = []
    timings: dict[str, dict] = {}
    peer_versions = None
    started = time.perf_counter()
    for name in chosen:
        cases = build_cases(plan, name, args.seed)
        log(f"{name}: {len(cases)} case(s)")
        scenario_runs, timing = run_scenario(name, cases, args, plan, with_peers)
        peer_versions = timing.pop("peer_versions", None) or peer_versions
        runs += scenario_runs
        timings[name] = timing
    total = time.perf_counter() - started

    if with_peers:
        if peer_versions is None:
            peer_versions = peers.versions(args.peers_python)
        max_windows = args.peers_max_windows if args.peers_max_windows is not None else plan.peers_max_windows
        header.append(
            f"- peers (own venv, defaults): Evidently {peer_versions['evidently']} (ValueDrift per column = DataDriftPreset's "
            f"per-column verdicts), NannyML {peer_versions['nannyml']} (UnivariateDriftCalculator, one chunk per window); "
            f"pandas {peer_versions['pandas']}; windows up to {rows_text(args.peers_max_rows)} rows"
            + (f", at most {max_windows} windows per case" if max_windows else "")
        )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    header.append(f"- total {total:.0f} s; peak RSS of the benchmark process {rss:.2f} GiB")
    header.append("- cells: rate (flagged/column-windows); delay: windows after the change until the first flag, median / max over (repetition, column); ✗ = misses the target")

    lines = [*header, "", *table(runs, tools), "", *timing_table(timings, tools)]
    print("\n".join(lines))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "machine": info,
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "driftline_mode": driftline_mode(),
            "peers": {"status": peers_status, "versions": peer_versions},
            "seconds": {"total": total, **timings},
            "peak_rss_gib": rss,
            "cases": to_json(runs),
        }
        args.json.write_text(json.dumps(payload, indent=1, default=str))
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
