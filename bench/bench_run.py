"""Benchmark: one window from Parquet on disk to stored results.

Writes a reference and one window of N rows x 25 feature columns (20 numeric, 5 categorical)
plus a probability score, a label and a latency column, then measures in a fresh subprocess each:

- fit:   fitting the reference profile (two passes over the reference) and storing it;
- check: one window checked against the stored reference profile, results stored (SQLite).

Prints rows/s, seconds and the subprocess's peak RSS. Usage:

    .venv/bin/python bench/bench_run.py                # 100k and 1M rows
    .venv/bin/python bench/bench_run.py --rows 10000000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

NUMERIC, CATEGORICAL = 20, 5
DAY = datetime(2026, 10, 1, tzinfo=timezone.utc)


def write_table(path: Path, rows: int, seed: int, start: datetime, *, shift: float = 0.0) -> None:
    rng = np.random.default_rng(seed)
    writer = None
    chunk = 500_000
    for offset in range(0, rows, chunk):
        n = min(chunk, rows - offset)
        cols: dict[str, pa.Array] = {}
        seconds = np.sort(rng.uniform(0, 86_399, n))
        cols["ts"] = pa.array((np.datetime64(start.replace(tzinfo=None), "us") + (seconds * 1e6).astype("timedelta64[us]")), pa.timestamp("us", tz="UTC"))
        for i in range(NUMERIC):
            cols[f"x{i}"] = pa.array(rng.normal(shift if i < 3 else 0.0, 1.0 + 0.1 * i, n))
        for i in range(CATEGORICAL):
            cols[f"c{i}"] = pa.array(rng.choice([f"v{k}" for k in range(8 + 4 * i)], n))
        score = 1 / (1 + np.exp(-(cols["x0"].to_numpy() - 1)))
        cols["score"] = pa.array(score)
        cols["label"] = pa.array((rng.uniform(size=n) < score).astype(np.int64))
        cols["latency_ms"] = pa.array(rng.lognormal(3.8, 0.4, n))
        table = pa.table(cols)
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema)
        writer.write_table(table, row_group_size=128_000)
    assert writer is not None
    writer.close()


CONFIG = """
store: sqlite:///bench.db
monitors:
  - name: bench
    source: {{type: parquet, path: window.parquet}}
    columns:
      timestamp: ts
      numeric: [{numeric}]
      categorical: [{categorical}]
      prediction: score
      prediction_kind: probability
      target: label
      latency: latency_ms
    reference: {{type: parquet, path: reference.parquet}}
    window: 1d
    checks: {{latency: {{p95_max_ms: 250}}}}
"""


def measure(folder: Path, step: str) -> dict:
    """Run one step in a fresh interpreter so its peak memory is its own."""
    code = textwrap.dedent(
        f"""
        import json, resource, time
        from datetime import datetime, timezone
        from monitor.config import load_config
        from monitor.runner import Runner
        from monitor.store import Store
        from monitor.windows import Window
        project = load_config({str(folder / 'driftline.yaml')!r})
        store = Store.open(project.store_url)
        mon = project.monitors[0]
        runner = Runner(project, store)
        t0 = time.perf_counter()
        if {step!r} == "fit":
            runner.reference(mon, refit=True)
            results = 0
        else:
            day = datetime.fromisoformat({DAY.isoformat()!r})
            from datetime import timedelta
            outcome = runner.run_window(mon, Window(day, day + timedelta(days=1)))
            assert outcome.run.status != "failed", outcome.run.error
            results = len(outcome.results)
        seconds = time.perf_counter() - t0
        print(json.dumps({{"seconds": seconds, "results": results,
                          "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=folder, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="*", default=[100_000, 1_000_000])
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.platform()}")
    print(f"columns: {NUMERIC} numeric + {CATEGORICAL} categorical features, score, label, latency")
    print(f"{'rows':>10} {'step':>6} {'seconds':>8} {'rows/s':>12} {'peak RSS MiB':>13} {'results':>8}")
    for rows in args.rows:
        with tempfile.TemporaryDirectory(prefix="driftline-bench-") as tmp:
            folder = Path(tmp)
            write_table(folder / "reference.parquet", rows, 1, DAY - timedelta(days=30))
            write_table(folder / "window.parquet", rows, 2, DAY, shift=0.3)
            names = lambda prefix, n: ", ".join(f"{prefix}{i}" for i in range(n))  # noqa: E731
            (folder / "driftline.yaml").write_text(CONFIG.format(numeric=names("x", NUMERIC), categorical=names("c", CATEGORICAL)))
            for step in ("fit", "check"):
                m = measure(folder, step)
                print(f"{rows:>10,} {step:>6} {m['seconds']:>8.2f} {rows / m['seconds']:>12,.0f} {m['peak_rss_mib']:>13,.0f} {m['results']:>8}")


if __name__ == "__main__":
    main()
