"""End to end: config -> source -> profiles -> checks -> store, on SQLite and PostgreSQL.

Each bad input of the core issue gets a clear result and never costs the other checks theirs.
"""

from __future__ import annotations

import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from checks.results import Status
from monitor.config import load_config
from monitor.runner import Runner
from monitor.store import Store
from monitor.windows import Window

UTC = timezone.utc
START = datetime(2026, 9, 1, tzinfo=UTC)
DAYS = 8
SHIFT_DAY = 5  # income shifts from this day on
ROWS = 3000


def make_log(rng: np.random.Generator, day: int, rows: int = ROWS, *, shifted: bool = False) -> pd.DataFrame:
    ts = START + timedelta(days=day) + pd.to_timedelta(np.sort(rng.uniform(0, 86399, rows)), unit="s")
    income = rng.lognormal(10.9, 0.45, rows) * (1.5 if shifted else 1.0)
    age = rng.integers(18, 80, rows)
    region = rng.choice(["NA", "EU", "APAC"], rows, p=[0.5, 0.3, 0.2])
    score = 1 / (1 + np.exp(-(-1.0 - (np.log(income) - 10.9) + 0.01 * (age - 45))))
    label = (rng.uniform(size=rows) < score).astype(float)
    return pd.DataFrame(
        {
            "ts": ts,
            "request_id": [f"d{day}-{i}" for i in range(rows)],
            "income": income,
            "age": age,
            "region": region,
            "score": score,
            "label": label,
            "latency_ms": rng.lognormal(3.8, 0.4, rows),
        }
    )


CONFIG = """
store: {store}
monitors:
  - name: scoring
    source: {{type: parquet, path: logs}}
    columns:
      timestamp: ts
      id: request_id
      numeric: [income, age]
      categorical: [region]
      prediction: score
      prediction_kind: probability
      target: label
      latency: latency_ms
      segments: [region]
    reference: {{type: parquet, path: reference.parquet}}
    window: 1d
    checks: {{drift: {{}}, quality: {{}}, latency: {{p95_max_ms: 250}}, performance: {{}}}}
    kpis:
      - {{name: approval_rate, column: score, agg: share, where: "< 0.5", min: 0.1}}
"""


def build(tmp_path: Path, store_url: str | None = None, mutate=None) -> Path:  # noqa: ANN001
    rng = np.random.default_rng(11)
    make_log(rng, -30, 20000).drop(columns=["ts"]).to_parquet(tmp_path / "reference.parquet")
    for day in range(DAYS):
        frame = make_log(rng, day, shifted=day >= SHIFT_DAY)
        if mutate is not None:
            frame = mutate(day, frame)
        folder = tmp_path / "logs" / f"date={(START + timedelta(days=day)):%Y-%m-%d}"
        folder.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(folder / "part-0.parquet")
    path = tmp_path / "driftline.yaml"
    path.write_text(textwrap.dedent(CONFIG.format(store=store_url or "sqlite:///driftline.db")))
    return path


def window(day: int) -> Window:
    return Window(START + timedelta(days=day), START + timedelta(days=day + 1))


def backfill(config: Path):  # noqa: ANN201
    project = load_config(config)
    store = Store.open(project.store_url)
    runner = Runner(project, store)
    mon = project.monitor("scoring")
    outcomes = runner.backfill(mon, START, START + timedelta(days=DAYS))
    return project, store, runner, mon, outcomes


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest) -> str | None:
    if request.param == "sqlite":
        return None
    return request.getfixturevalue("pg_url")


def test_drift_is_found_in_the_right_windows_only(tmp_path: Path, store_url: str | None) -> None:
    _, store, _, _, outcomes = backfill(build(tmp_path, store_url))
    assert [o.run.status for o in outcomes][:SHIFT_DAY] == ["ok"] * SHIFT_DAY
    frame = store.metrics("scoring", check="drift", segment="*")
    verdicts = frame[frame["status"].isin(["ok", "breach"])]
    breached = verdicts[verdicts["status"] == "breach"]
    assert set(breached["column"]) == {"income", ""}  # the column, and the run-level verdict naming it
    days = sorted({(t - START).days for t in breached["window_start"]})
    assert days == list(range(SHIFT_DAY, DAYS))
    dataset = breached[breached["metric"] == "dataset_drift"]
    assert sorted((t - START).days for t in dataset["window_start"]) == days
    assert all(d["drifted"] == ["income"] for d in dataset["details"])
    # every window stored its run with reproducibility data
    runs = store.runs("scoring")
    assert len(runs) == DAYS and all(r.reference_version == 1 and r.config_fingerprint and r.rows == ROWS for r in runs)
    store.dispose()


def test_every_family_reports(tmp_path: Path) -> None:
    _, store, _, _, _ = backfill(build(tmp_path))
    frame = store.metrics("scoring", start=window(0).start, end=window(0).end, segment="*")
    families = set(frame["check"])
    assert {"drift", "prediction_drift", "target_drift", "prediction", "quality", "latency", "performance", "kpi"} <= families
    latency = frame[(frame["check"] == "latency") & (frame["metric"] == "p95")]
    assert latency["threshold"].iloc[0] == 250 and latency["status"].iloc[0] == "ok"
    auc = frame[(frame["check"] == "performance") & (frame["metric"] == "roc_auc")]["value"].iloc[0]
    assert 0.6 < auc < 0.95
    # segments: every check also runs per region
    segments = set(store.metrics("scoring", check="drift")["segment"])
    assert {"*", "region=NA", "region=EU", "region=APAC"} <= segments
    store.dispose()


def test_rerun_replaces_results(tmp_path: Path, store_url: str | None) -> None:
    project, store, runner, mon, _ = backfill(build(tmp_path, store_url))
    before = store.metrics("scoring")
    again = runner.run_window(mon, window(2))
    after = store.metrics("scoring")
    assert len(after) == len(before)
    assert len(store.runs("scoring")) == DAYS
    assert store.run_for("scoring", window(2)).id == again.run.id
    # a second backfill skips done windows; --force redoes them
    assert runner.backfill(mon, START, START + timedelta(days=DAYS)) == []
    assert len(runner.backfill(mon, START, START + timedelta(days=2), force=True)) == 2
    store.dispose()


def test_reference_is_fitted_once_and_reused(tmp_path: Path) -> None:
    project, store, _, mon, _ = backfill(build(tmp_path))
    second = Runner(project, store)
    assert second.reference(mon).version == 1
    assert store.latest_reference("scoring").version == 1
    store.dispose()


def test_empty_window_is_no_data(tmp_path: Path) -> None:
    def drop_day_3(day: int, frame: pd.DataFrame) -> pd.DataFrame:
        return frame.iloc[0:0] if day == 3 else frame

    _, store, _, _, outcomes = backfill(build(tmp_path, mutate=drop_day_3))
    assert outcomes[3].run.status == "no_data"
    results = store.metrics("scoring", start=window(3).start, end=window(3).end, segment="*")
    row_count = results[(results["check"] == "quality") & (results["metric"] == "row_count")]
    assert row_count["status"].iloc[0] == "no_data"
    assert (results["status"] != "error").all()
    store.dispose()


def test_bad_rows_are_counted_not_fatal(tmp_path: Path) -> None:
    def corrupt(day: int, frame: pd.DataFrame) -> pd.DataFrame:
        if day != 2:
            return frame
        frame = frame.copy()
        frame["age"] = frame["age"].astype(str)  # this day's file has ages as text...
        frame.loc[frame.index[:300], "age"] = "unknown"  # ...and some are not numbers at all
        frame.loc[frame.index[300:400], "income"] = np.inf  # infinities
        frame.loc[frame.index[400:700], "income"] = np.nan  # a null surge
        frame.loc[frame.index[700:760], "request_id"] = "dup"  # duplicate ids
        return frame

    _, store, _, _, outcomes = backfill(build(tmp_path, mutate=corrupt))
    assert outcomes[2].run.status == "breach"
    q = store.metrics("scoring", check="quality", start=window(2).start, end=window(2).end, segment="*")
    value = {(r.column, r.metric): (r.value, r.status) for r in q.itertuples()}
    assert value[("age", "invalid_share")][0] == pytest.approx(300 / ROWS)
    assert value[("age", "invalid_share")][1] == "breach"
    assert value[("income", "invalid_share")][0] == pytest.approx(100 / ROWS)
    assert value[("income", "missing_share")][0] == pytest.approx(300 / ROWS)
    assert value[("income", "missing_share")][1] == "breach"
    assert value[("", "duplicate_id_share")][0] == pytest.approx(59 / ROWS)
    # the other families still reported for that window
    other = store.metrics("scoring", start=window(2).start, end=window(2).end, segment="*")
    assert {"drift", "latency", "performance"} <= set(other["check"])
    assert outcomes[1].run.status == "ok"
    store.dispose()


def test_missing_column_and_unparseable_timestamps(tmp_path: Path) -> None:
    config = build(tmp_path)
    # day 4 of a CSV log: text timestamps, some garbage; the region column is gone
    rng = np.random.default_rng(5)
    frame = make_log(rng, 4).drop(columns=["region"])
    frame["ts"] = frame["ts"].astype(str)
    frame.loc[frame.index[:150], "ts"] = "not a time"
    (tmp_path / "csvlogs").mkdir()
    frame.to_csv(tmp_path / "csvlogs" / "day4.csv", index=False)
    config.write_text(config.read_text().replace("{type: parquet, path: logs}", "{type: csv, path: csvlogs}"))
    project = load_config(config)
    store = Store.open(project.store_url)
    outcome = Runner(project, store).run_window(project.monitor("scoring"), window(4))
    assert outcome.run.status == "breach"
    q = {(r.column, r.metric): r for r in outcome.results if r.check == "quality" and r.segment == "*"}
    assert q[("region", "column_missing")].status is Status.BREACH
    assert q[("", "bad_timestamp_share")].value == pytest.approx(150 / ROWS)
    assert outcome.run.rows == ROWS - 150
    assert any(r.check == "drift" and r.column == "income" for r in outcome.results)
    store.dispose()


def test_missing_source_is_a_failed_run_with_its_error(tmp_path: Path) -> None:
    config = build(tmp_path)
    config.write_text(config.read_text().replace("path: logs}", "path: nowhere/*.parquet}"))
    project = load_config(config)
    store = Store.open(project.store_url)
    outcome = Runner(project, store).run_window(project.monitor("scoring"), window(1))
    assert outcome.run.status == "failed"
    assert "nowhere" in outcome.run.error
    assert store.run_for("scoring", window(1)).status == "failed"
    # The reference (a file of its own) was fitted and kept although its first window failed.
    assert store.latest_reference("scoring") is not None
    store.dispose()


def test_constant_reference_column_does_not_crash(tmp_path: Path) -> None:
    config = build(tmp_path)
    ref = pd.read_parquet(tmp_path / "reference.parquet")
    ref["age"] = 40
    ref.to_parquet(tmp_path / "reference.parquet")
    project = load_config(config)
    store = Store.open(project.store_url)
    outcome = Runner(project, store).run_window(project.monitor("scoring"), window(0))
    age = [r for r in outcome.results if r.check == "drift" and r.column == "age" and r.segment == "*"]
    assert age and all(r.status is not Status.ERROR for r in age)
    assert any(r.status is Status.BREACH for r in age)  # ages vary now: that is drift from a constant
    store.dispose()


def test_a_check_that_raises_becomes_an_error_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import checks.evaluate as evaluate_module

    config = build(tmp_path)
    project = load_config(config)
    store = Store.open(project.store_url)

    def broken(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise RuntimeError("latency exploded")

    name = next(n for n in dir(evaluate_module) if "latency" in n and callable(getattr(evaluate_module, n)))
    monkeypatch.setattr(evaluate_module, name, broken)
    outcome = Runner(project, store).run_window(project.monitor("scoring"), window(0))
    errors = [r for r in outcome.results if r.status is Status.ERROR and r.segment == "*"]
    assert errors and "latency exploded" in errors[0].details["error"]
    assert any(r.check == "drift" for r in outcome.results)
    store.dispose()


def test_a_column_missing_from_some_files_counts_as_missing(tmp_path: Path) -> None:
    config = build(tmp_path)
    # day 6 arrives in two files, one of which lacks `age` (an upstream schema change mid-day)
    folder = tmp_path / "logs" / f"date={(START + timedelta(days=6)):%Y-%m-%d}"
    frame = pd.read_parquet(folder / "part-0.parquet")
    frame.iloc[:1000].drop(columns=["age"]).to_parquet(folder / "part-0.parquet")
    frame.iloc[1000:].to_parquet(folder / "part-1.parquet")
    project = load_config(config)
    store = Store.open(project.store_url)
    outcome = Runner(project, store).run_window(project.monitor("scoring"), window(6))
    q = {(r.column, r.metric): r for r in outcome.results if r.check == "quality" and r.segment == "*"}
    assert q[("age", "missing_share")].value == pytest.approx(1000 / ROWS)
    assert ("age", "column_missing") not in q  # the column exists in the window, partly
    store.dispose()


def test_sql_schema_key_suggestion_uses_its_name(tmp_path: Path) -> None:
    from monitor.config import ConfigError

    config = build(tmp_path)
    config.write_text(config.read_text().replace("{type: parquet, path: logs}", "{type: sql, url: 'sqlite:///x.db', table: t, shema: public}"))
    with pytest.raises(ConfigError) as info:
        load_config(config)
    assert "did you mean 'schema'" in str(info.value)
