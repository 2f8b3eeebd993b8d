"""One measured step of the scale benchmark, in a fresh interpreter (Driftline's venv).

    python bench/scale/child.py '{"mode": "check", "folder": "...", ...}'

Prints one JSON line: seconds (wall), cpu_seconds (all threads), peak_rss_mib (this process),
rows, and ``stages``: wall seconds inside each part of the pipeline, found by wrapping the
functions that do them (so the numbers follow the code, not a model of it):

- ``read_wait``: time the profiling loop waited for the source's next batch (Parquet decoding that
  did not overlap with profiling; the rest of the read runs on a thread of its own);
- ``profile``: folding batches into profiles, read wait excluded;
- ``evaluate`` (of which ``calibration``: drawing the bootstrap nulls for drift thresholds);
- ``store``: writing results (and the reference);
- fit steps: ``first_pass``, ``segment_values``, ``reference_profiles``, ``reference_variation``.

Modes: ``fit`` (fit and store the reference), ``check`` (one window against the stored
reference), ``first`` (a fresh store: fit + check of one window), ``backfill`` (every daily window
of ``days``), ``read`` (the source alone: Parquet to pandas batches, no profiling), ``floor`` (a
plain pyarrow + numpy pass: histogram of every numeric column, counts of every categorical one).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


class Stages:
    """Wall seconds per stage; nested calls of one stage count once (per thread)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self._depth = threading.local()

    def wrap(self, owner: object, name: str, stage: str) -> None:
        original = getattr(owner, name, None)
        if original is None or getattr(original, "_bench_stage", None) == stage:
            return
        stages = self

        def timed(*args, **kwargs):
            depth = getattr(stages._depth, stage, 0)
            setattr(stages._depth, stage, depth + 1)
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                setattr(stages._depth, stage, depth)
                if depth == 0:
                    stages.add(stage, time.perf_counter() - started)

        timed._bench_stage = stage  # type: ignore[attr-defined]
        setattr(owner, name, timed)

    def add(self, stage: str, seconds: float) -> None:
        self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds
        self.calls[stage] = self.calls.get(stage, 0) + 1


def instrument(stages: Stages) -> None:
    import checks.calibration as calibration
    import monitor.runner as runner
    from monitor.store import Store

    for module in (runner, calibration, sys.modules.get("checks.evaluate"), sys.modules.get("checks.drift")):
        if module is not None:
            stages.wrap(module, "null_distribution", "calibration")
            stages.wrap(module, "null_from_counts", "calibration")
    stages.wrap(runner, "evaluate", "evaluate")
    stages.wrap(runner, "reference_variation", "reference_variation")
    stages.wrap(Store, "save_run", "store")
    stages.wrap(Store, "save_reference", "store")
    try:
        from monitor.engine.base import PandasEngine
    except ImportError:  # an older runner without engines: stage times are partial
        return
    for name, stage in (
        ("first_pass", "first_pass"),
        ("segment_values", "segment_values"),
        ("reference_profiles", "reference_profiles"),
        ("window_profiles", "window_profiles"),
    ):
        stages.wrap(PandasEngine, name, stage)
    batches = getattr(PandasEngine, "_batches", None)
    if batches is not None:

        def timed_batches(self, *args, **kwargs):
            iterator = batches(self, *args, **kwargs)
            while True:
                started = time.perf_counter()
                try:
                    frame = next(iterator)
                except StopIteration:
                    stages.add("read_wait", time.perf_counter() - started)
                    return
                stages.add("read_wait", time.perf_counter() - started)
                yield frame

        PandasEngine._batches = timed_batches


def summarise(stages: dict[str, float], total: float) -> dict[str, float]:
    """The stages as parts of the total: profile excludes its read wait, other is the rest."""
    out = dict(stages)
    profiled = stages.get("window_profiles", 0.0) + stages.get("first_pass", 0.0) + stages.get("segment_values", 0.0) + stages.get("reference_profiles", 0.0)
    out["profile"] = max(0.0, profiled - stages.get("read_wait", 0.0))
    out["evaluate_excl_calibration"] = max(0.0, stages.get("evaluate", 0.0) - stages.get("calibration_in_evaluate", 0.0))
    known = profiled + stages.get("evaluate", 0.0) + stages.get("reference_variation", 0.0) + stages.get("store", 0.0)
    out["other"] = max(0.0, total - known)
    return out


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(spec: dict) -> dict:
    mode = spec["mode"]
    if mode == "floor":
        return floor(spec)
    os.chdir(spec["folder"])
    from monitor.config import load_config
    from monitor.runner import Runner
    from monitor.store import Store
    from monitor.windows import Window

    project = load_config(spec.get("config", "driftline.yaml"))
    mon = project.monitors[0]
    store = Store.open(project.store_url)
    runner = Runner(project, store)
    day = datetime.fromisoformat(spec["day"])
    stages = Stages()
    if mode == "read":
        return read_only(project, mon, day)
    if mode == "check":
        runner.reference(mon)  # the stored reference: loaded before the clock starts
    instrument(stages)
    # Calibration inside evaluate, apart from calibration while fitting (reference variation).
    import monitor.runner as runner_module

    evaluate = runner_module.evaluate

    def evaluate_with_calibration(*args, **kwargs):
        before = stages.seconds.get("calibration", 0.0)
        try:
            return evaluate(*args, **kwargs)
        finally:
            stages.seconds["calibration_in_evaluate"] = stages.seconds.get("calibration_in_evaluate", 0.0) + stages.seconds.get("calibration", 0.0) - before

    runner_module.evaluate = evaluate_with_calibration
    rows = results = 0
    windows: list[float] = []
    started, cpu = time.perf_counter(), time.process_time()
    if mode == "fit":
        fitted = runner.reference(mon, refit=True)
        rows = fitted.rows
    elif mode in ("check", "first"):
        outcome = runner.run_window(mon, Window(day, day + timedelta(days=1)))
        if outcome.run.status == "failed":
            raise SystemExit(f"the run failed: {outcome.run.error}")
        rows, results = outcome.run.rows, len(outcome.results)
    elif mode == "backfill":
        def progress(window, outcome):
            windows.append(time.perf_counter())

        outcomes = runner.backfill(mon, day, day + timedelta(days=int(spec["days"])), progress=progress)
        failed = [o.run.error for o in outcomes if o.run.status == "failed"]
        if failed:
            raise SystemExit(f"{len(failed)} window(s) failed, e.g. {failed[0]}")
        rows, results = sum(o.run.rows for o in outcomes), sum(len(o.results) for o in outcomes)
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    out = {"mode": mode, "seconds": seconds, "cpu_seconds": cpu, "rows": rows, "results": results, "peak_rss_mib": peak_rss_mib()}
    out["stages"] = summarise(stages.seconds, seconds)
    if windows:
        marks = [started, *windows]
        out["window_seconds"] = [b - a for a, b in zip(marks, marks[1:])]
    return out


def read_only(project, mon, day: datetime) -> dict:
    """The source alone: the window's batches as the runner asks for them, nothing profiled."""
    from monitor.engine.pandas_engine import ProfilePlan
    from monitor.runner import Runner
    from monitor.sources import ReadReport, open_source
    from monitor.store import Store
    from monitor.windows import Window

    plan: ProfilePlan = Runner(project, Store.open(project.store_url)).reference(mon).plan
    columns = plan.columns_to_read(mon.columns.timestamp)
    started, cpu = time.perf_counter(), time.process_time()
    source = open_source(mon.source, project.base_dir)
    rows = 0
    for frame in source.read(columns, timestamp=mon.columns.timestamp, window=Window(day, day + timedelta(days=1)), batch_rows=mon.profile.batch_rows, report=ReadReport()):
        rows += len(frame)
    source.close()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"mode": "read", "seconds": seconds, "cpu_seconds": cpu, "rows": rows, "peak_rss_mib": peak_rss_mib()}


def floor(spec: dict) -> dict:
    """A plain single pass over the same Parquet files and columns: pyarrow reads batches, numpy
    bins every numeric column (``np.histogram``, 50 equal bins over the file's min..max from its
    statistics) and counts every categorical one (``np.bincount`` of its dictionary codes). No
    missing-value handling, no quantile bins, no segments, no checks, nothing stored: the least
    any tool must do to look at every value once."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    numeric, categorical = spec["numeric"], spec["categorical"]
    paths = [Path(p) for p in spec["files"]]
    started, cpu = time.perf_counter(), time.process_time()
    rows = 0
    for path in paths:
        reader = pq.ParquetFile(path, read_dictionary=categorical)
        meta = reader.metadata
        ranges = {}
        for j in range(meta.num_columns):
            name = meta.schema.column(j).path
            if name in numeric:
                lows, highs = zip(*((meta.row_group(g).column(j).statistics.min, meta.row_group(g).column(j).statistics.max) for g in range(meta.num_row_groups)))
                ranges[name] = (float(min(lows)), float(max(highs)))
        for batch in reader.iter_batches(batch_size=131_072, columns=numeric + categorical):
            rows += batch.num_rows
            for name in numeric:
                np.histogram(batch.column(name).to_numpy(zero_copy_only=False), bins=50, range=ranges[name])
            for name in categorical:
                column = batch.column(name)
                codes = column.indices if isinstance(column, pa.DictionaryArray) else column.dictionary_encode().indices
                np.bincount(codes.fill_null(-1).to_numpy(zero_copy_only=False) + 1)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"mode": "floor", "seconds": seconds, "cpu_seconds": cpu, "rows": rows, "peak_rss_mib": peak_rss_mib()}


if __name__ == "__main__":
    print(json.dumps(run(json.loads(sys.argv[1]))))
