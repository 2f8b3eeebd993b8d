"""How fast the dashboard pages render on a year of hourly results.

    python bench/bench_dashboards.py                 # fills bench/out/dashboards.db once, then measures
    python bench/bench_dashboards.py --rebuild       # refill the store
    python bench/bench_dashboards.py --days 30       # a smaller store, for a quick look

The store holds ``--monitors`` monitors (default 3) x ``--features`` features (default 50: 30
numeric, 20 categorical) x ``--days`` days (default 365) of hourly windows, with what a default
monitor stores per window and feature: the drift verdict and the further methods (ks, psi, chi2),
the quality shares (missing, invalid, out of range or unseen), a window profile per feature (50
histogram bins or the categories), plus prediction, latency, performance and two KPIs per window,
one run row per window, and a few alerts and deliveries. Some features drift for a while and one
has a null surge, so heat maps have breaches to mark. Segments are left out (``*`` only): a segment
multiplies the rows, and each page reads one segment at a time.

Each page is rendered server-side with Streamlit's AppTest (the script run, the queries, building
and serialising the figures: everything but the browser drawing them), **cold** (query cache
cleared) and **warm** (cached, as every rerun of a page and every visitor within the TTL sees it),
for the default range (the last 7 days of hourly windows) and for the whole year.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from monitor.store import Store  # noqa: E402

OUT = ROOT / "bench" / "out"
HOUR = timedelta(hours=1)
START = datetime(2025, 11, 1, tzinfo=timezone.utc)
NUMERIC_SHARE = 0.6
BINS = 50
CATEGORIES = ["a", "b", "c", "d", "e", "f", "g", "h"]
CHUNK = 200_000


# ------------------------------------------------------------------------------- the store


def _ts(moment: datetime) -> str:
    # How the store's UTCDateTime writes on SQLite (naive UTC, microseconds): the driver path below
    # bypasses SQLAlchemy's type processing for speed, so it must write exactly the same text.
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def _features(count: int) -> tuple[list[str], list[str]]:
    numeric = [f"num_{i:02d}" for i in range(round(count * NUMERIC_SHARE))]
    categorical = [f"cat_{i:02d}" for i in range(count - len(numeric))]
    return numeric, categorical


def _reference(numeric: list[str], categorical: list[str], rng: np.random.Generator) -> dict[str, Any]:
    binnings: dict[str, Any] = {}
    columns: dict[str, Any] = {}
    cuts = np.linspace(-2.5, 2.5, BINS - 1)
    for name in numeric:
        binnings[name] = {"kind": "numeric", "cuts": cuts.tolist(), "low": -4.0, "high": 4.0}
        counts = rng.multinomial(100_000, np.full(BINS, 1 / BINS))
        columns[name] = {"kind": "numeric", "count": 100_000, "missing": 0, "invalid": 0, "mean": 0.0, "m2": 100_000.0,
                         "min": -4.0, "max": 4.0, "counts": counts.tolist(), "below": 0, "above": 0, "sketch": None}  # fmt: skip
    for name in categorical:
        binnings[name] = {"kind": "categorical", "categories": CATEGORIES, "rare": [], "truncated": False}
        counts = rng.multinomial(100_000, np.full(len(CATEGORIES), 1 / len(CATEGORIES)))
        columns[name] = {"kind": "categorical", "counts": counts.tolist(), "other": 0, "unseen": 0, "unseen_values": {}, "missing": 0, "invalid": 0}
    profile = {"rows": 100_000, "binnings": binnings, "columns": columns, "performance": None, "kpis": {},
               "bad_timestamps": 0, "duplicate_ids": 0, "missing_columns": []}  # fmt: skip
    return {"roles": {"numeric": numeric, "categorical": categorical}, "binnings": binnings, "segment_values": {},
            "profiles": {"*": profile}, "warnings": []}  # fmt: skip


def fill(url: str, *, monitors: int, features: int, days: int, seed: int = 7) -> dict[str, int]:
    """Write the benchmark's store with bulk inserts (SQLite's executemany through SQLAlchemy)."""
    store = Store.open(url)
    engine = store.engine
    if engine.dialect.name != "sqlite":
        raise SystemExit("the fill writes SQLite's text timestamps directly; use a sqlite:/// URL")
    rng = np.random.default_rng(seed)
    numeric, categorical = _features(features)
    windows = days * 24
    starts = [START + i * HOUR for i in range(windows)]
    start_text = [_ts(t) for t in starts]
    end_text = [_ts(t + HOUR) for t in starts]
    totals = {"runs": 0, "metric_results": 0, "window_profiles": 0}
    with engine.connect() as connection:
        raw = connection.connection.driver_connection
        raw.execute("PRAGMA synchronous = OFF")
        raw.execute("PRAGMA cache_size = -400000")
    for m in range(monitors):
        name = f"model-{m + 1}"
        store.save_reference(name, f"bench-{m}", 100_000, _reference(numeric, categorical, rng))
        # --- what happens when: drift of a few features for a stretch, a null surge, a slow week
        drift = np.abs(rng.normal(0.03, 0.012, size=(windows, features)))
        drifting = slice(windows * 55 // 100 + m * 240, windows * 70 // 100 + m * 240)
        drift[drifting, : 3 + m] += 0.25
        drift[windows - 24 * 10 :, 3 + m] += 0.2  # one feature drifting lately
        missing = np.abs(rng.normal(0.004, 0.002, size=(windows, features)))
        missing[windows // 3 : windows // 3 + 48, 4] = 0.35
        rows = rng.poisson(5000, size=windows) * (1 + 0.3 * np.sin(np.arange(windows) * 2 * np.pi / 24))
        rows = rows.astype(int)
        p95 = 120 + rng.normal(0, 6, windows)
        p95[-24 * 5 :] *= 2.4
        breach_drift = drift > 0.1
        breach_missing = missing > 0.05
        breach_latency = p95 > 250
        status = np.where(breach_drift.any(axis=1) | breach_missing.any(axis=1) | breach_latency, "breach", "ok")
        with engine.begin() as connection:
            connection.exec_driver_sql(
                "INSERT INTO runs (monitor, window_start, window_end, status, \"trigger\", started_at, finished_at, rows, bad_rows, "
                "error, config_fingerprint, reference_version, driftline_version) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [(name, start_text[i], end_text[i], str(status[i]), "backfill", end_text[i], _ts(starts[i] + HOUR + timedelta(seconds=1.5)),
                  int(rows[i]), 0, None, "bench", 1, "bench") for i in range(windows)],
            )  # fmt: skip
            ids = dict(connection.exec_driver_sql("SELECT window_start, id FROM runs WHERE monitor = ?", (name,)).all())
        totals["runs"] += windows
        run_ids = [ids[t] for t in start_text]
        totals["metric_results"] += _metrics(engine, name, run_ids, start_text, end_text, numeric, categorical, drift, missing, rows, p95, rng)
        totals["window_profiles"] += _profiles(engine, name, run_ids, start_text, end_text, numeric, categorical, drift, rows, rng)
        _alerts(store, name, starts, breach_drift, numeric + categorical)
        print(f"  {name}: {windows:,} windows written", flush=True)
    with engine.begin() as connection:
        connection.exec_driver_sql("ANALYZE")
    store.dispose()
    return totals


def _insert(engine: Any, sql: str, rows: list[tuple]) -> None:
    with engine.begin() as connection:
        connection.exec_driver_sql(sql, rows)


METRIC_SQL = (
    "INSERT INTO metric_results (run_id, monitor, window_start, window_end, segment, \"check\", \"column\", metric, value, "
    "threshold, direction, status, details) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
)


def _metrics(engine, name, run_ids, starts, ends, numeric, categorical, drift, missing, rows, p95, rng) -> int:  # noqa: ANN001
    features = numeric + categorical
    n_numeric = len(numeric)
    p_info = rng.uniform(0, 1, size=drift.shape)
    batch: list[tuple] = []
    written = 0
    empty = "{}"
    for i, run_id in enumerate(run_ids):
        s, e = starts[i], ends[i]
        base = (run_id, name, s, e, "*")
        d, miss = drift[i].tolist(), missing[i].tolist()
        ranks = (-drift[i]).argsort().argsort() + 1
        for j, column in enumerate(features):
            numeric_column = j < n_numeric
            method = "wasserstein" if numeric_column else "jensen_shannon"
            breach = d[j] > 0.1
            p_value = 1e-12 if breach else float(p_info[i, j])
            details = (f'{{"p_value":{p_value:.6g},"p_value_max":0.01,"test":"{"ks" if numeric_column else "chi2"}",'
                       f'"n_current":{int(rows[i])},"n_reference":100000,"rank":{int(ranks[j])},"severity":{d[j] / 0.1:.4g}}}')  # fmt: skip
            batch.append((*base, "drift", column, method, d[j], 0.1, "max", "breach" if breach else "ok", details))
            batch.append((*base, "drift", column, "psi", d[j] * 2, None, "max", "info", empty))
            batch.append((*base, "drift", column, "chi2", p_value, None, "min", "info", empty))
            if numeric_column:
                batch.append((*base, "drift", column, "ks", p_value, None, "min", "info", empty))
            batch.append((*base, "quality", column, "missing_share", miss[j], 0.05, "max", "breach" if miss[j] > 0.05 else "ok", empty))
            batch.append((*base, "quality", column, "invalid_share", 0.0, 0.01, "max", "ok", empty))
            shares = "out_of_range_share" if numeric_column else "unseen_share"
            batch.append((*base, "quality", column, shares, d[j] / 10, 0.05, "max", "ok", empty))
        score = 0.3 + d[0]
        batch += [
            (*base, "quality", "", "row_count", float(rows[i]), None, None, "info", empty),
            (*base, "quality", "", "duplicate_id_share", 0.0, 0.01, "max", "ok", empty),
            (*base, "quality", "", "bad_timestamp_share", 0.0, 0.01, "max", "ok", empty),
            (*base, "prediction_drift", "score", "wasserstein", d[0] / 2, 0.1, "max", "ok", empty),
            (*base, "prediction_drift", "score", "psi", d[0], None, "max", "info", empty),
            *[(*base, "prediction", "score", metric, value, None, None, "info", empty)
              for metric, value in (("mean", score), ("p10", score - 0.2), ("p50", score), ("p90", score + 0.3), ("positive_share", score / 2))],
            *[(*base, "latency", "latency_ms", metric, value, threshold, direction, status, empty)
              for metric, value, threshold, direction, status in (
                  ("mean", p95[i] * 0.45, None, None, "info"), ("p50", p95[i] * 0.4, None, None, "info"),
                  ("p95", p95[i], 250.0, "max", "breach" if p95[i] > 250 else "ok"), ("p99", p95[i] * 1.5, None, None, "info"),
                  ("max", p95[i] * 3, None, None, "info"))],
            *[(*base, "performance", "label", metric, value, threshold, direction, "ok" if threshold else "info", empty)
              for metric, value, threshold, direction in (
                  ("label_coverage", 1.0, None, None), ("accuracy", 0.9, None, None), ("precision", 0.7, None, None),
                  ("recall", 0.6, None, None), ("f1", 0.65, None, None), ("roc_auc", 0.8 - d[1] / 4, 0.7, "min"),
                  ("log_loss", 0.3, None, None), ("brier", 0.08, None, None))],
            (*base, "kpi", "approval_rate", "share", 0.8 - d[0] / 3, 0.6, "min", "ok", empty),
            (*base, "kpi", "mean_score", "mean", score, 0.5, "max", "ok", empty),
        ]  # fmt: skip
        if len(batch) >= CHUNK:
            _insert(engine, METRIC_SQL, batch)
            written += len(batch)
            batch = []
    if batch:
        _insert(engine, METRIC_SQL, batch)
        written += len(batch)
    return written


PROFILE_SQL = "INSERT INTO window_profiles (run_id, monitor, window_start, window_end, segment, \"column\", payload) VALUES (?,?,?,?,?,?,?)"


def _profiles(engine, name, run_ids, starts, ends, numeric, categorical, drift, rows, rng) -> int:  # noqa: ANN001
    windows = len(run_ids)
    # Histogram counts shift to the right as a feature drifts.
    shift = np.clip(drift[:, : len(numeric)] * 40, 0, 20).astype(int)
    batch: list[tuple] = []
    written = 0
    for i, run_id in enumerate(run_ids):
        n = int(rows[i])
        hist = rng.multinomial(n, np.full(BINS, 1 / BINS), size=len(numeric))
        cats = rng.multinomial(n, np.full(len(CATEGORIES), 1 / len(CATEGORIES)), size=len(categorical))
        for j, column in enumerate(numeric):
            counts = np.roll(hist[j], shift[i, j])
            payload = ('{"kind":"numeric","count":%d,"missing":0,"invalid":0,"mean":%.4f,"m2":%.1f,"min":-4.0,"max":4.0,'
                       '"counts":[%s],"below":0,"above":%d,"sketch":null}') % (n, shift[i, j] / 10, float(n), ",".join(map(str, counts.tolist())), int(counts[-1] // 10))  # fmt: skip
            batch.append((run_id, name, starts[i], ends[i], "*", column, payload))
        for j, column in enumerate(categorical):
            payload = '{"kind":"categorical","counts":[%s],"other":0,"unseen":0,"unseen_values":{},"missing":0,"invalid":0}' % ",".join(map(str, cats[j].tolist()))
            batch.append((run_id, name, starts[i], ends[i], "*", column, payload))
        if len(batch) >= CHUNK // 2:
            _insert(engine, PROFILE_SQL, batch)
            written += len(batch)
            batch = []
    if batch:
        _insert(engine, PROFILE_SQL, batch)
        written += len(batch)
    assert windows == len(starts)
    return written


def complete(table: Any, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` plus a neutral value for each required column it lacks (the alert tables grow)."""
    out = dict(values)
    for column in table.columns:
        if column.name in out or column.nullable or column.primary_key or column.default is not None or column.server_default is not None:
            continue
        try:
            kind = column.type.python_type
        except NotImplementedError:
            kind = dict
        out[column.name] = {int: 0, float: 0.0, str: "", dict: {}, datetime: START}.get(kind)
    return out


def _alerts(store: Store, name: str, starts: list[datetime], breaches: np.ndarray, features: list[str]) -> None:
    """An alert per feature that ever drifted, and one notification per day of breaches."""
    try:
        from sqlalchemy import insert

        from monitor.store.alert_models import AlertRow, DeliveryRow
    except ImportError:  # a store without alerting: the Alerts page says so
        return
    alerts, deliveries = [], []
    for j in np.flatnonzero(breaches.any(axis=0)):
        hours = np.flatnonzero(breaches[:, j])
        firing = hours[-1] == len(starts) - 1
        alerts.append(dict(
            monitor=name, check="drift", column=features[j], segment="*", status="firing" if firing else "resolved",
            severity="critical", consecutive=int(len(hours)), since=starts[hours[0]], last_window_end=starts[hours[-1]] + HOUR,
            fired_at=starts[hours[0]] + 2 * HOUR, resolved_at=None if firing else starts[hours[-1]] + 2 * HOUR,
            last_notified_at=starts[hours[-1]] + HOUR, incident=f"{name}-{j}", reason="first", breaches={"breaches": []},
            updated_at=starts[hours[-1]] + HOUR,
        ))  # fmt: skip
    for day_start in range(0, len(starts), 24):
        if breaches[day_start : day_start + 24].any():
            t = starts[day_start]
            deliveries.append(dict(
                channel="slack", channel_type="slack", kind="notify", monitor=name, window_start=t, window_end=t + HOUR, run_id=None,
                thread=None, payload={"reason": "repeat_due", "alerts": [{}]}, idempotency_key=f"{name}-{day_start}", status="sent",
                attempts=1, next_attempt_at=t + HOUR, last_error=None, created_at=t + HOUR, sent_at=t + HOUR, external_id=None,
            ))  # fmt: skip
    with store.session() as session:
        if alerts:
            session.execute(insert(AlertRow), [complete(AlertRow.__table__, a) for a in alerts])
        if deliveries:
            session.execute(insert(DeliveryRow), [complete(DeliveryRow.__table__, d) for d in deliveries])


# ------------------------------------------------------------------------------ measuring

PAGES = ("overview", "kpis", "drift", "quality", "alerts", "runs")


def _timed(at: Any) -> float:
    began = time.perf_counter()
    at.run()
    if at.exception:
        raise SystemExit(f"the page raised: {at.exception[0].value}")
    return time.perf_counter() - began


def measure(url: str, monitor: str, *, repeat: int, timeout: float) -> list[dict[str, Any]]:
    """Median cold and warm render times of each page, on one AppTest session per scenario.

    A first, untimed run registers the pages and loads Streamlit's component registry (work the
    real server does once at start). Cold: ``st.cache_data`` cleared just before the run, so every
    query goes to the store. Warm: the same page again, queries answered from the cache.
    """
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    os.environ["DRIFTLINE_STORE_URL"] = url
    os.environ.pop("DRIFTLINE_CONFIG", None)
    app = ROOT / "dashboards" / "app.py"
    year = {"start": START.strftime("%Y-%m-%dT%H:%M:%SZ")}
    scenarios = [(page, "last 7 days (default)", {"monitor": monitor}) for page in PAGES]
    scenarios.append(("drift", "drill-down num_00, 7 days", {"monitor": monitor, "column": "num_00"}))
    scenarios += [(page, "whole year", {"monitor": monitor, **year}) for page in PAGES]
    scenarios.append(("drift", "drill-down num_00, year", {"monitor": monitor, "column": "num_00", **year}))
    results = []
    for page, label, params in scenarios:
        at = AppTest.from_file(str(app), default_timeout=timeout)
        at.query_params.update(params)
        at.run()
        if page != "overview":
            at.switch_page(f"views/{page}.py")
            _timed(at)
        colds, warms = [], []
        for _ in range(repeat):
            st.cache_data.clear()
            colds.append(_timed(at))
            warms.append(_timed(at))
        results.append({"page": page, "range": label, "cold_s": statistics.median(colds), "warm_s": statistics.median(warms),
                        "charts": len(at.get("plotly_chart"))})  # fmt: skip
        print(f"  {page:9s} {label:28s} cold {results[-1]['cold_s']:6.2f} s   warm {results[-1]['warm_s']:6.2f} s", flush=True)
    return results


def machine(url: str) -> dict[str, Any]:
    import sqlite3

    import pandas
    import plotly
    import sqlalchemy
    import streamlit

    cpu = platform.processor()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    memory = None
    try:
        memory = round(int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    db = Path(url.removeprefix("sqlite:///"))
    return {
        "cpu": cpu, "cores": os.cpu_count(), "memory_gib": memory, "platform": platform.platform(),
        "python": platform.python_version(), "streamlit": streamlit.__version__, "plotly": plotly.__version__,
        "pandas": pandas.__version__, "sqlalchemy": sqlalchemy.__version__, "sqlite": sqlite3.sqlite_version,
        "store_gib": round(db.stat().st_size / 2**30, 2) if db.exists() else None,
    }  # fmt: skip


def counts(url: str) -> dict[str, int]:
    with Store(url) as store, store.engine.connect() as connection:
        return {table: connection.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one() for table in ("runs", "metric_results", "window_profiles")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=f"sqlite:///{OUT / 'dashboards.db'}", help="SQLite store to fill and read")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--monitors", type=int, default=3)
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--rebuild", action="store_true", help="refill the store even when it exists")
    parser.add_argument("--repeat", type=int, default=3, help="renders per page (the median is reported)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds a render may take before it counts as failed")
    args = parser.parse_args(argv)
    path = Path(args.url.removeprefix("sqlite:///"))
    path.parent.mkdir(parents=True, exist_ok=True)
    if args.rebuild or not path.exists():
        for stale in path.parent.glob(path.name + "*"):
            stale.unlink()
        print(f"filling {args.url}: {args.monitors} monitors x {args.features} features x {args.days} days of hourly windows", flush=True)
        began = time.perf_counter()
        fill(args.url, monitors=args.monitors, features=args.features, days=args.days)
        print(f"  filled in {time.perf_counter() - began:.0f} s", flush=True)
    rows = counts(args.url)
    info = machine(args.url)
    print("store:", ", ".join(f"{k} {v:,}" for k, v in rows.items()), f"({info['store_gib']} GiB)")
    print("machine:", ", ".join(f"{k} {v}" for k, v in info.items() if k != "store_gib"))
    print(f"server-side render time per page (median of {args.repeat} renders; cold = empty query cache):")
    results = measure(args.url, "model-1", repeat=args.repeat, timeout=args.timeout)
    slowest_warm = max(r["warm_s"] for r in results)
    slowest_cold = max(r["cold_s"] for r in results)
    print(f"slowest page: warm {slowest_warm:.2f} s, cold {slowest_cold:.2f} s (target: every page under 2 s warm)")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "dashboards.json").write_text(json.dumps({"rows": rows, "machine": info, "pages": results}, indent=2))
    return 0 if slowest_warm < 2.0 else 1


if __name__ == "__main__":
    sys.exit(main())
