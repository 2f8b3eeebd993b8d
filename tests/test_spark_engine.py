"""The Spark engine computes the pandas engine's profiles: same windows, same binnings, same
reference chunks, same stored results, over hive-partitioned Parquet (with the messes real logs
have), a Delta table with deletes, and a Spark SQL table.

One local SparkSession (``local[2]``) serves the whole module; it is configured so that small
files are split into several partitions and Arrow batches are small, so merging partials from
many partitions is what is tested. Spark tests are skipped locally without pyspark or Java, and
fail when ``CI`` is set.
"""

from __future__ import annotations

import math
import logging
import os
import shutil
import sys
import textwrap
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from checks.profiles import DatasetProfile, NumericBinning
from checks.results import ALL
from monitor.engine.base import ChunkSpec, PandasEngine, ReadJob
from monitor.engine.pandas_engine import ProfilePlan
from monitor.sources import FileSourceSpec, SourceError, open_source
from monitor.sources.spark_specs import SparkTableSpec
from monitor.windows import Window

START = datetime(2026, 3, 1, tzinfo=UTC)
DAYS = 6
ROWS = 1200
COLUMNS = ("income", "age", "channel", "region", "score", "label", "latency_ms", "model_version", "request_id")
NUMERIC = ["income", "age", "score", "latency_ms"]
CATEGORICAL = ["channel", "label"]


# PySpark 4.3 warns that it "does not yet fully support pandas >= 3"; what it is used for here works.
pytestmark = pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning")


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


# ----------------------------------------------------------------------------------- data


def make_day(rng: np.random.Generator, day: int, rows: int = ROWS) -> pd.DataFrame:
    ts = pd.Series(START + timedelta(days=day) + pd.to_timedelta(np.sort(rng.uniform(0, 86399, rows)), unit="s")).astype("datetime64[us, UTC]")
    shifted = day >= 4
    income = rng.lognormal(10.9, 0.45, rows) * (1.4 if shifted else 1.0)
    age = rng.integers(18, 80, rows).astype(float)
    score = 1 / (1 + np.exp(-(-1.0 - (np.log(income) - 10.9) + 0.01 * (age - 45))))
    label = (rng.uniform(size=rows) < score).astype(float)
    frame = pd.DataFrame(
        {
            "ts": ts,
            "income": income,
            "age": age,
            "channel": rng.choice(["web", "app", "branch"] + (["partner"] if shifted else []), rows),
            "region": rng.choice(["EU", "US", "APAC", "LATAM"], rows, p=[0.4, 0.3, 0.2, 0.1]),
            "score": score,
            "label": label,
            "latency_ms": rng.gamma(2.0, 30.0, rows),
            "model_version": np.where(rng.uniform(size=rows) < (0.8 if shifted else 0.05), "v2", "v1"),
            "request_id": [f"r{i}" for i in rng.integers(0, 40_000, rows)],  # duplicates within and across files
        }
    )
    frame.loc[::37, "income"] = np.nan
    frame.loc[5::41, "latency_ms"] = np.inf  # invalid
    frame.loc[::9, "label"] = np.nan  # labels not landed yet
    frame.loc[3::113, "ts"] = pd.NaT  # bad timestamps
    return frame


def write_logs(root: Path, seed: int = 7) -> dict[int, pd.DataFrame]:
    """Six daily hive partitions, each with a mess of its own, three row groups per file."""
    rng = np.random.default_rng(seed)
    frames = {}
    for day in range(DAYS):
        frame = make_day(rng, day)
        frames[day] = frame.copy()
        if day == 1:  # written by pandas < 3: nanosecond timestamps, naive (UTC)
            frame["ts"] = frame["ts"].dt.tz_convert(None).astype("datetime64[ns]")
        if day == 2:  # text in a numeric column
            frame["age"] = [("n/a" if i % 25 == 0 else str(int(v))) for i, v in enumerate(frame["age"])]
        if day == 3:  # ISO text timestamps, a few unparseable
            text = frame["ts"].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ").astype(object)
            text[frame["ts"].isna()] = None
            text[7::200] = "not a time"
            frame["ts"] = text
        if day == 4:  # a file without the latency column
            frame = frame.drop(columns=["latency_ms"])
        folder = root / f"date={(START + timedelta(days=day)):%Y-%m-%d}"
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), folder / "part-0.parquet", row_group_size=400)
    return frames


def window(first: int, last: int | None = None) -> Window:
    return Window(START + timedelta(days=first), START + timedelta(days=(first if last is None else last) + 1))


# ------------------------------------------------------------------------------ comparing


def assert_close(mine: Any, theirs: Any, where: str = "") -> None:
    """Equal JSON-like values: counts exactly, floats to 1e-9 (merge order moves the last bits)."""
    if isinstance(theirs, dict):
        assert isinstance(mine, dict) and mine.keys() == theirs.keys(), f"{where}: keys {sorted(mine)} != {sorted(theirs)}"
        for key in theirs:
            assert_close(mine[key], theirs[key], f"{where}.{key}")
    elif isinstance(theirs, (list, tuple)):
        assert isinstance(mine, (list, tuple)) and len(mine) == len(theirs), f"{where}: {mine} != {theirs}"
        for i, (a, b) in enumerate(zip(mine, theirs)):
            assert_close(a, b, f"{where}[{i}]")
    elif isinstance(theirs, float) and not isinstance(mine, bool):
        assert isinstance(mine, (int, float)), f"{where}: {mine!r} != {theirs!r}"
        assert (math.isnan(mine) and math.isnan(theirs)) or mine == pytest.approx(theirs, rel=1e-9, abs=1e-9), f"{where}: {mine} != {theirs}"
    else:
        assert mine == theirs and type(mine) is type(theirs), f"{where}: {mine!r} != {theirs!r}"


def assert_same_profiles(mine: dict[str, DatasetProfile], theirs: dict[str, DatasetProfile], where: str = "") -> None:
    assert list(mine) == list(theirs) or set(mine) == set(theirs), f"{where}: segments {sorted(mine)} != {sorted(theirs)}"
    for segment in theirs:
        assert_close(mine[segment].to_dict(), theirs[segment].to_dict(), f"{where}[{segment}]")


# ------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory):
    """One local session for the module; skipped without pyspark/Java locally, failing in CI."""
    logging.getLogger("py4j").setLevel(logging.WARNING)  # its INFO at interpreter exit hits closed streams
    reason = None
    try:
        import pyspark  # noqa: F401
    except ImportError as exc:
        reason = f"pyspark is not installed ({exc}); pip install -e '.[dev]'"
    if reason is None and shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        reason = "Java (17) is not installed: Spark needs a JVM"
    session = None
    if reason is None:
        try:
            from pyspark.sql import SparkSession

            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
            session = (
                SparkSession.builder.master("local[2]")
                .appName("driftline-tests")
                .config("spark.sql.session.timeZone", "UTC")
                .config("spark.sql.shuffle.partitions", "2")
                .config("spark.default.parallelism", "2")
                .config("spark.ui.enabled", "false")
                .config("spark.sql.warehouse.dir", str(tmp_path_factory.mktemp("warehouse")))
                # Small splits and Arrow batches: files cut into several partitions, partials merged.
                .config("spark.sql.files.maxPartitionBytes", "48k")
                .config("spark.sql.files.openCostInBytes", "16k")
                .config("spark.sql.execution.arrow.maxRecordsPerBatch", "300")
                .getOrCreate()
            )
            session.sparkContext.setLogLevel("ERROR")
        except Exception as exc:  # pragma: no cover - depends on the machine
            reason = f"a local SparkSession could not start: {exc}"
    if reason is not None:
        if _in_ci():
            pytest.fail(f"Spark tests must run in CI: {reason}")
        pytest.skip(reason)
    yield session
    session.stop()


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("spark_logs") / "logs"
    write_logs(root)
    return root


@pytest.fixture(scope="module")
def engines(spark):
    from monitor.engine.spark_engine import SparkEngine

    engine = SparkEngine()
    assert engine.spark is spark  # the active session, not a second one
    return engine, PandasEngine()


def job(root: Path, win: Window | None, columns: tuple[str, ...] = COLUMNS, timestamp: str | None = "ts", spec: Any = None) -> ReadJob:
    return ReadJob(spec or FileSourceSpec(type="parquet", path=str(root)), None, (*columns, *((timestamp,) if timestamp else ())), timestamp, win, 500)


@pytest.fixture(scope="module")
def plan(engines, logs: Path) -> ProfilePlan:
    from checks.roles import Roles

    _, pandas_engine = engines
    first = pandas_engine.first_pass(job(logs, window(0, 2)), NUMERIC, CATEGORICAL, bins=50, top_k=50, moments_of=None)
    return ProfilePlan(
        roles=Roles(numeric=("income", "age"), categorical=("channel",), prediction="score", prediction_kind="probability", target="label", latency="latency_ms"),
        binnings=first.binnings,
        id_column="request_id",
        segment_values={"region": ("EU", "US")},
    )


# ---------------------------------------------------------------------------------- tests


@pytest.mark.spark
def test_first_pass_learns_the_same_binnings(engines, logs: Path) -> None:
    spark_engine, pandas_engine = engines
    read = job(logs, window(0, 2))
    mine = spark_engine.first_pass(read, NUMERIC, CATEGORICAL, bins=50, top_k=50, moments_of=["income", "age", "score"])
    theirs = pandas_engine.first_pass(read, NUMERIC, CATEGORICAL, bins=50, top_k=50, moments_of=["income", "age", "score"])
    assert mine.rows == theirs.rows > 3 * ROWS * 0.9
    assert (mine.first, mine.last) == (theirs.first, theirs.last)
    assert mine.binnings.keys() == theirs.binnings.keys()
    for name, binning in theirs.binnings.items():
        # Sketches merge by adding integer counts: the merged sketch, so the cuts, are identical
        # (not merely within the sketch's relative accuracy).
        if isinstance(binning, NumericBinning):
            assert np.array_equal(mine.binnings[name].cuts, binning.cuts), name
            assert (mine.binnings[name].low, mine.binnings[name].high) == (binning.low, binning.high)
        assert mine.binnings[name].fingerprint() == binning.fingerprint(), name
    assert mine.moments.count == theirs.moments.count and mine.moments.skipped == theirs.moments.skipped
    np.testing.assert_allclose(mine.moments.mean, theirs.moments.mean, rtol=1e-12)
    np.testing.assert_allclose(mine.moments.comoment, theirs.moments.comoment, rtol=1e-9)
    assert spark_engine.segment_values(read, ["region", "channel"], 2) == pandas_engine.segment_values(read, ["region", "channel"], 2)


@pytest.mark.spark
def test_window_profiles_are_the_pandas_engines(engines, logs: Path, plan: ProfilePlan) -> None:
    spark_engine, pandas_engine = engines
    # Day 1: nanosecond timestamps; 2: text in `age`; 3: text timestamps; 4: no latency column.
    reads = {}
    for day in (1, 2, 3, 4):
        read = job(logs, window(day))
        mine = reads[day] = spark_engine.window_profiles(read, plan, "model_version")
        theirs = pandas_engine.window_profiles(read, plan, "model_version")
        assert_same_profiles(mine.profiles, theirs.profiles, f"day {day}")
        assert mine.versions == theirs.versions and sum(theirs.versions.values()) == theirs.profiles[ALL].rows
        assert mine.report == theirs.report, day
        assert theirs.profiles[ALL].rows > 1000 and theirs.profiles[ALL].duplicate_ids > 0
    # The messes showed up (identically, as just checked).
    assert reads[2].profiles[ALL].columns["age"].invalid == 48  # "n/a" every 25th row, less those with a bad timestamp
    assert reads[3].report.bad_timestamps == 17  # 11 null, 6 unparseable text
    assert reads[4].report.missing_columns == {"latency_ms"}  # the day's file lacks it


@pytest.mark.spark
def test_reference_chunks_are_the_pandas_engines(engines, logs: Path, plan: ProfilePlan) -> None:
    spark_engine, pandas_engine = engines
    reference = replace_id(plan)
    by_time = ChunkSpec(timestamp="ts", length_us=6 * 3600 * 1_000_000)  # 6-hour chunks over three days
    mine_total, mine_chunks = spark_engine.reference_profiles(job(logs, window(0, 2)), reference, by_time)
    theirs_total, theirs_chunks = pandas_engine.reference_profiles(job(logs, window(0, 2)), reference, by_time)
    assert len(mine_chunks) == len(theirs_chunks) == 12
    assert_same_profiles(mine_total, theirs_total, "total")
    for i, (mine, theirs) in enumerate(zip(mine_chunks, theirs_chunks)):
        assert_same_profiles(mine, theirs, f"chunk {i}")
    # A training set without timestamps: chunks are runs of rows in the files' order, exact too.
    clean = replace(reference, binnings={k: v for k, v in reference.binnings.items() if k != "age"}, roles=replace(reference.roles, numeric=("income",)))
    by_rows = ChunkSpec(rows_per_chunk=700)
    columns = ("income", "channel", "region", "score", "label", "latency_ms")
    mine_total, mine_chunks = spark_engine.reference_profiles(job(logs, None, columns, None), clean, by_rows)
    theirs_total, theirs_chunks = pandas_engine.reference_profiles(job(logs, None, columns, None), clean, by_rows)
    assert len(mine_chunks) == len(theirs_chunks) == math.ceil(DAYS * ROWS / 700)
    assert_same_profiles(mine_total, theirs_total, "rows total")
    for i, (mine, theirs) in enumerate(zip(mine_chunks, theirs_chunks)):
        assert_same_profiles(mine, theirs, f"row chunk {i}")


def replace_id(plan: ProfilePlan) -> ProfilePlan:
    return replace(plan, id_column=None)


@pytest.mark.spark
def test_a_delta_table_is_read_at_its_current_version(engines, tmp_path: Path, plan: ProfilePlan) -> None:
    deltalake = pytest.importorskip("deltalake")
    from monitor.sources import DeltaSourceSpec

    spark_engine, pandas_engine = engines
    rng = np.random.default_rng(3)
    table = tmp_path / "delta"
    for day in (0, 1):
        frame = make_day(rng, day, 800)
        frame["day"] = f"2026-03-0{day + 1}"
        deltalake.write_deltalake(str(table), frame, partition_by=["day"], mode="append")
    deltalake.DeltaTable(str(table)).delete("region = 'LATAM'")  # rewrites files: the old ones stay on disk
    spec = DeltaSourceSpec(type="delta", path=str(table))
    read = job(tmp_path, window(0, 1), spec=spec)
    mine = spark_engine.window_profiles(read, plan, "model_version")
    theirs = pandas_engine.window_profiles(read, plan, "model_version")
    assert_same_profiles(mine.profiles, theirs.profiles, "delta")
    assert mine.report == theirs.report and mine.versions == theirs.versions
    assert theirs.profiles["region=__other__"].rows > 0 and theirs.profiles[ALL].rows < 1600 - 100  # APAC only: LATAM is gone
    everything = open_source(spec).read_all(["region"])
    assert "LATAM" not in set(pd.concat(list(everything))["region"])


@pytest.mark.spark
def test_a_spark_table_source(spark, engines, logs: Path, tmp_path: Path, plan: ProfilePlan) -> None:
    spark_engine, pandas_engine = engines
    # The same rows as a Parquet file and as a table, timestamps as epoch milliseconds.
    frames = write_logs(tmp_path / "unused", seed=7)
    rows = pd.concat([frames[0], frames[1]], ignore_index=True)
    rows["ts_ms"] = (rows["ts"].astype("int64") // 1000).astype("Int64").where(rows["ts"].notna())
    rows = rows.drop(columns=["ts"])
    rows.to_parquet(tmp_path / "same.parquet")
    spark.createDataFrame(pa.Table.from_pandas(rows, preserve_index=False).to_pandas()).write.saveAsTable("inference_log")
    table = SparkTableSpec(type="spark_table", table="inference_log", timestamp_unit="ms")
    kinds = spark_engine.columns(job(tmp_path, None, spec=table))
    assert kinds["income"] == "numeric" and kinds["channel"] == "string" and kinds["ts_ms"] == "numeric"
    read_table = job(tmp_path, window(1), timestamp="ts_ms", spec=table)
    read_file = job(tmp_path, window(1), timestamp="ts_ms", spec=FileSourceSpec(type="parquet", path=str(tmp_path / "same.parquet"), timestamp_unit="ms"))
    mine = spark_engine.window_profiles(read_table, plan, "model_version")
    theirs = pandas_engine.window_profiles(read_file, plan, "model_version")
    assert_same_profiles(mine.profiles, theirs.profiles, "table")
    assert mine.versions == theirs.versions and mine.report.rows == theirs.report.rows == theirs.profiles[ALL].rows
    # As a SQL table: the window is pushed into Spark, NULL timestamps are outside every window.
    assert mine.report.bad_timestamps == 0 and theirs.report.bad_timestamps > 0
    assert mine.report.missing_columns == set()
    missing = SparkTableSpec(type="spark_table", table="no_such_table")
    with pytest.raises(SourceError, match="no_such_table"):
        spark_engine.window_profiles(job(tmp_path, window(1), spec=missing), plan)


@pytest.mark.spark
def test_a_missing_path_is_a_source_error(engines, tmp_path: Path, plan: ProfilePlan) -> None:
    spark_engine, _ = engines
    spec = FileSourceSpec(type="parquet", path="nowhere/*.parquet")
    with pytest.raises(SourceError, match="no files match"):
        spark_engine.window_profiles(ReadJob(spec, tmp_path, ("income", "ts"), "ts", window(0)), plan)


CONFIG = """
store: sqlite:///driftline.db
monitors:
{monitors}
"""

MONITOR = """
  - name: {name}
    engine: {engine}
    spark: {{master: "local[2]", conf: {{spark.sql.shuffle.partitions: "2"}}}}
    source: {{type: parquet, path: logs}}
    columns:
      timestamp: ts
      id: request_id
      numeric: [income, age]
      categorical: [channel]
      prediction: score
      prediction_kind: probability
      target: label
      latency: latency_ms
      model_version: model_version
      segments: [region]
    reference: {{window: {{start: "2026-03-01", end: "2026-03-04"}}}}
    window: 1d
    profile: {{segment_top_k: 2}}
    checks: {{latency: {{p95_max_ms: 150}}}}
    kpis:
      - {{name: approval_rate, column: score, agg: share, where: "< 0.5", min: 0.1}}
"""


@pytest.mark.spark
def test_a_monitor_stores_the_same_results_with_either_engine(spark, tmp_path: Path) -> None:
    from monitor.config import load_config
    from monitor.runner import Runner
    from monitor.store import Store

    write_logs(tmp_path / "logs")
    text = CONFIG.format(monitors="".join(MONITOR.format(name=f"by-{e}", engine=e) for e in ("pandas", "spark")))
    (tmp_path / "driftline.yaml").write_text(textwrap.dedent(text))
    project = load_config(tmp_path / "driftline.yaml")
    store = Store.open(project.store_url)
    runner = Runner(project, store)
    for name in ("by-pandas", "by-spark"):
        outcomes = runner.backfill(project.monitor(name), START + timedelta(days=4), START + timedelta(days=DAYS))
        assert [o.run.status for o in outcomes] == ["breach"] * 2  # drift from day 4, and day 4 lacks latency_ms
    assert runner.engine(project.monitor("by-spark")).name == "spark"
    keys = ["window_start", "segment", "check", "column", "metric"]
    frames = {}
    for name in ("by-pandas", "by-spark"):
        frame = store.metrics(name).sort_values(keys).reset_index(drop=True)
        frames[name] = frame
    theirs, mine = frames["by-pandas"], frames["by-spark"]
    assert len(theirs) > 300 and mine[keys].equals(theirs[keys])
    assert list(mine["status"]) == list(theirs["status"])
    np.testing.assert_allclose(mine["value"].to_numpy(float), theirs["value"].to_numpy(float), rtol=1e-7, atol=1e-9, equal_nan=True)
    # Thresholds too, calibrated ones included: their draws are seeded from the reference at 9
    # significant digits, so merge order (Spark's partitions vs pandas' batches) cannot move them.
    np.testing.assert_allclose(mine["threshold"].to_numpy(float), theirs["threshold"].to_numpy(float), rtol=1e-7, atol=1e-9, equal_nan=True)
    breached = set(theirs[theirs["status"] == "breach"][["check", "column"]].itertuples(index=False, name=None))
    assert {("drift", "income"), ("quality", "latency_ms")} <= breached
    runs = {name: [(r.rows, r.bad_rows, r.status) for r in store.runs(name)] for name in ("by-pandas", "by-spark")}
    assert runs["by-pandas"] == runs["by-spark"]
    store.dispose()


def test_the_pandas_engine_refuses_a_spark_table() -> None:
    from monitor.config import MonitorConfig

    mon = MonitorConfig.model_validate(
        {
            "name": "uc",
            "engine": "spark",
            "source": {"type": "spark_table", "table": "main.ml.inference_log", "timestamp_unit": "ms"},
            "columns": {"timestamp": "timestamp_ms"},
            "reference": {"window": {"start": "2026-01-01", "end": "2026-01-08"}},
        }
    )
    spec = mon.source
    assert isinstance(spec, SparkTableSpec) and spec.timestamp_unit == "ms"
    with pytest.raises(SourceError, match="spark_table sources need engine: spark"):
        open_source(spec)
    with pytest.raises(ValueError, match="not a table name"):
        SparkTableSpec(type="spark_table", table="drop table x;")
