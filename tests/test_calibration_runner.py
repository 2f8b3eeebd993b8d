"""End to end through ``Runner`` on SQLite: calibrated drift thresholds and multivariate drift.

The reference is profiled chunk by chunk (its own windows, or 20 row-order chunks without a
timestamp), the variation those chunks show beyond sampling noise widens the thresholds, a PCA
model of the numeric features catches changes in how they move together, and an explicit
threshold switches calibration off. Each test builds a small project (config + parquet logs) in
``tmp_path`` and reads what the runner stored back from the store.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from monitor.config import load_config
from monitor.runner import ROW_ORDER_CHUNKS, Runner, reference_fingerprint
from monitor.store import Store
from monitor.windows import Window

UTC = timezone.utc
START = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday, midnight UTC
HOUR = timedelta(hours=1)

ColumnsFn = Callable[[np.random.Generator, np.ndarray, np.ndarray], dict[str, np.ndarray]]
"""(rng, seconds since START of each row, hour index of each row) -> feature columns."""


# ------------------------------------------------------------------------------ builders


def write_hourly_logs(folder: Path, hours: int, rows_per_hour: int, columns: ColumnsFn, seed: int) -> None:
    """``hours`` hours of logs from START on, ~``rows_per_hour`` rows an hour (uniform times), one
    parquet file per day."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for day in range(math.ceil(hours / 24)):
        day_hours = min(24, hours - 24 * day)
        n = day_hours * rows_per_hour
        seconds = 86400.0 * day + np.sort(rng.uniform(0, 3600.0 * day_hours, n))
        hour_index = (seconds // 3600).astype(int)
        frame = pd.DataFrame({"ts": START + pd.to_timedelta(seconds, unit="s"), **columns(rng, seconds, hour_index)})
        frame.to_parquet(folder / f"day-{day:02d}.parquet")


def monitor_config(
    name: str,
    numeric: list[str],
    reference: dict[str, Any],
    *,
    window: str = "1h",
    checks: dict[str, Any] | None = None,
    profile: dict[str, Any] | None = None,
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "name": name,
        "source": {"type": "parquet", "path": "logs"},
        "columns": {"timestamp": "ts", "numeric": numeric, "categorical": []},
        "reference": reference,
        "window": window,
    }
    if checks is not None:
        config["checks"] = checks
    if profile is not None:
        config["profile"] = profile
    return config


def reference_period(hours: int) -> dict[str, Any]:
    return {"window": {"start": START.isoformat(), "end": (START + hours * HOUR).isoformat()}}


def write_config(tmp_path: Path, *monitors: dict[str, Any]) -> Path:
    path = tmp_path / "driftline.yaml"
    path.write_text(yaml.safe_dump({"store": "sqlite:///driftline.db", "monitors": list(monitors)}, sort_keys=False))
    return path


def open_project(config: Path) -> tuple[Any, Store, Runner]:
    project = load_config(config)
    store = Store.open(project.store_url)
    return project, store, Runner(project, store)


def _window(hour: int) -> Window:
    """The hourly window ``hour`` hours after START."""
    return Window(START + hour * HOUR, START + (hour + 1) * HOUR)


def hours_after(moments: pd.Series, origin: datetime) -> list[int]:
    return sorted(int((t - origin) / HOUR) for t in moments)


def verdicts(store: Store, monitor: str, column: str) -> pd.DataFrame:
    """The feature's drift verdict rows (one per window; info rows of other methods left out)."""
    frame = store.metrics(monitor, check="drift", column=column, segment="*")
    frame = frame[frame["status"].isin(["ok", "breach"]) & frame["threshold"].notna()]
    assert frame["window_start"].is_unique, "one verdict row per window"
    return frame.reset_index(drop=True)


def dataset_rows(store: Store, monitor: str) -> pd.DataFrame:
    frame = store.metrics(monitor, check="drift", column="", metric="dataset_drift", segment="*")
    return frame.reset_index(drop=True)


# ----------------------------------------------------------- 1. a seasonal reference

REF_DAYS = 7
MONITORED_HOURS = 48
SHIFT_HOURS = 6  # the stationary feature's mean moves by 1 std in the last 6 monitored hours
ROWS_PER_HOUR = 2000
AMPLITUDE = 0.5  # the seasonal feature's daily sine, in standard deviations of its noise
REF_HOURS = REF_DAYS * 24
REF_END = START + REF_HOURS * HOUR
SHIFT_FROM = MONITORED_HOURS - SHIFT_HOURS  # in hours after REF_END


def seasonal_columns(rng: np.random.Generator, seconds: np.ndarray, hour_index: np.ndarray) -> dict[str, np.ndarray]:
    n = seconds.size
    season = AMPLITUDE * np.sin(2 * np.pi * seconds / 86400.0) + rng.normal(0.0, 1.0, n)
    shifted = hour_index >= REF_HOURS + SHIFT_FROM
    flat = rng.normal(0.0, 1.0, n) + np.where(shifted, 1.0, 0.0)
    return {"season": season, "flat": flat}


@pytest.fixture(scope="module")
def seasonal(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """7 days of reference (hourly windows) and 48 monitored hours of the same daily cycle,
    backfilled once for the tests of this scenario."""
    tmp_path = tmp_path_factory.mktemp("seasonal")
    write_hourly_logs(tmp_path / "logs", REF_HOURS + MONITORED_HOURS, ROWS_PER_HOUR, seasonal_columns, seed=7)
    config = write_config(tmp_path, monitor_config("hourly", ["season", "flat"], reference_period(REF_HOURS)))
    project, store, runner = open_project(config)
    mon = project.monitor("hourly")
    outcomes = runner.backfill(mon, REF_END, REF_END + MONITORED_HOURS * HOUR)
    assert len(outcomes) == MONITORED_HOURS
    assert all(o.run.status in ("ok", "breach") and not o.errors for o in outcomes)
    yield store
    store.dispose()


def test_seasonal_reference_learns_its_cycle_and_not_noise(seasonal: Store) -> None:
    record = seasonal.latest_reference("hourly")
    assert record is not None and record.version == 1
    payload = record.payload
    assert payload["chunking"] == "window"
    variation = payload["variation"]["*"]
    assert variation["chunks"] == REF_HOURS  # one chunk per reference hour
    season_excess = variation["excess"]["season"]["wasserstein"]
    flat_excess = variation["excess"]["flat"]["wasserstein"]
    assert season_excess > 0
    # The hourly means swing by +-0.5 std: an hour at the crest is ~0.45 reference std away from
    # the whole week, far more than 2000 rows of noise explain.
    assert season_excess > 0.2
    # The stationary column shows only sampling noise: its excess stays below its null quantile.
    flat_rows = verdicts(seasonal, "hourly", "flat")
    null_quantile = min(d["null_quantile"] for d in flat_rows["details"])
    assert flat_excess < null_quantile
    # The windows were judged with what the reference learned.
    for column, excess in (("season", season_excess), ("flat", flat_excess)):
        details = verdicts(seasonal, "hourly", column)["details"]
        assert all(d["threshold_mode"] == "calibrated" and d["excess_learned"] for d in details)
        assert all(d["excess"] == pytest.approx(excess) for d in details)


def test_seasonal_cycle_held_by_the_reference_never_alarms(seasonal: Store) -> None:
    season = verdicts(seasonal, "hourly", "season")
    assert len(season) == MONITORED_HOURS
    breached = season[season["status"] == "breach"]
    described = [
        (int((r.window_start - REF_END) / HOUR), round(r.value, 4), round(r.threshold, 4)) for r in breached.itertuples()
    ]
    assert breached.empty, f"the daily cycle alarmed (hour after reference, value, threshold): {described}"
    dataset = dataset_rows(seasonal, "hourly")
    named = [int((r.window_start - REF_END) / HOUR) for r in dataset.itertuples() if "season" in r.details["drifted"]]
    assert named == [], f"the run-level verdict named the seasonal column in hours {named}"


def test_stationary_control_stays_quiet_and_a_real_shift_is_caught(seasonal: Store) -> None:
    flat = verdicts(seasonal, "hourly", "flat")
    assert len(flat) == MONITORED_HOURS
    breach_hours = hours_after(flat.loc[flat["status"] == "breach", "window_start"], REF_END)
    assert breach_hours == list(range(SHIFT_FROM, MONITORED_HOURS))
    # before the shift the threshold is the minimum effect (nothing learned widened it)...
    before = flat[flat["window_start"] < REF_END + SHIFT_FROM * HOUR]
    assert before["threshold"].between(0.1, 0.11).all()  # the minimum effect, or just above it in a small hour
    # ...and the shifted hours are ~1 std away
    after = flat[flat["window_start"] >= REF_END + SHIFT_FROM * HOUR]
    assert (after["value"] > 0.8).all()
    # the run-level verdict names the shifted column in exactly those hours
    dataset = dataset_rows(seasonal, "hourly")
    flat_named = [int((r.window_start - REF_END) / HOUR) for r in dataset.itertuples() if "flat" in r.details["drifted"]]
    assert flat_named == list(range(SHIFT_FROM, MONITORED_HOURS))
    for r in dataset.itertuples():
        if r.window_start >= REF_END + SHIFT_FROM * HOUR:
            assert r.status == "breach" and r.details["drifted"][0] == "flat"


# ------------------------------------------------------------------ 2. row-order chunks


def test_reference_without_timestamps_is_chunked_in_row_order(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    rows = 5003  # not a multiple of 20, and more than one read batch (batch_rows 1000)
    pd.DataFrame({"x": rng.normal(0, 1, rows), "y": rng.normal(5, 2, rows)}).to_parquet(tmp_path / "reference.parquet")
    write_hourly_logs(
        tmp_path / "logs", 1, 1500, lambda r, s, h: {"x": r.normal(0, 1, s.size), "y": r.normal(5, 2, s.size)}, seed=4
    )
    config = write_config(
        tmp_path,
        monitor_config(
            "training", ["x", "y"], {"type": "parquet", "path": "reference.parquet"}, profile={"batch_rows": 1000}
        ),
    )
    project, store, runner = open_project(config)
    outcome = runner.run_window(project.monitor("training"), _window(0))
    assert outcome.run.status in ("ok", "breach") and not outcome.errors
    record = store.latest_reference("training")
    assert record is not None and record.rows == rows
    assert record.payload["chunking"] == "row_order"
    variation = record.payload["variation"]["*"]
    assert variation["chunks"] == ROW_ORDER_CHUNKS == 20
    assert set(variation["excess"]) == {"x", "y"}
    assert len(variation["multivariate_chunks"]) == 20
    assert sum(c["count"] for c in variation["multivariate_chunks"]) == rows
    for column in ("x", "y"):
        verdict = next(r for r in outcome.results if r.check == "drift" and r.column == column and r.segment == "*")
        assert verdict.details["threshold_mode"] == "calibrated" and verdict.details["excess_learned"]
    store.dispose()


# ---------------------------------------------------- 3. what the reference is fitted for


def test_false_alarm_rate_refits_the_reference_and_min_effect_does_not(tmp_path: Path) -> None:
    ref_hours = 24
    write_hourly_logs(
        tmp_path / "logs", ref_hours + 2, 500, lambda r, s, h: {"x": r.normal(0, 1, s.size), "y": r.normal(0, 1, s.size)}, seed=5
    )

    def config(drift: dict[str, Any]) -> Path:
        return write_config(tmp_path, monitor_config("m", ["x", "y"], reference_period(ref_hours), checks={"drift": drift}))

    def run(drift: dict[str, Any], hour: int) -> tuple[str, int | None]:
        project, store, runner = open_project(config(drift))
        mon = project.monitor("m")
        outcome = runner.run_window(mon, _window(hour))
        assert outcome.run.status in ("ok", "breach"), outcome.run.error
        store.dispose()
        return reference_fingerprint(mon), outcome.run.reference_version

    base, v_base = run({}, ref_hours)
    assert v_base == 1
    # min_effect applies per window: same fingerprint, the stored reference is reused
    effect, v_effect = run({"min_effect": {"wasserstein": 0.3}}, ref_hours + 1)
    assert effect == base and v_effect == 1
    # the variation is learned at the false-alarm rate: a new rate is a new reference
    rate, v_rate = run({"false_alarm_rate": 0.05}, ref_hours)
    assert rate != base and v_rate == 2
    store = Store.open(load_config(config({})).store_url)
    assert store.latest_reference("m").version == 2
    first, second = store.reference("m", 1), store.reference("m", 2)
    assert first.fingerprint == base and second.fingerprint == rate
    # the same data learned at two rates
    assert first.payload["variation"]["*"]["chunks"] == second.payload["variation"]["*"]["chunks"] == ref_hours
    # going back to the first settings finds version 1 again
    again, v_again = run({"min_effect": {"wasserstein": 0.2}}, ref_hours + 1)
    assert again == base and v_again == 1
    assert store.latest_reference("m").version == 2
    store.dispose()


# ------------------------------------------------------------- 4. multivariate end to end

MV_REF_HOURS = 24
MV_HOURS = 12
FLIP_FROM = 6  # monitored hours 6.. have the correlation flipped


def correlated_columns(rng: np.random.Generator, seconds: np.ndarray, hour_index: np.ndarray) -> dict[str, np.ndarray]:
    a = rng.normal(0, 1, seconds.size)
    noise = rng.normal(0, 1, seconds.size)
    sign = np.where(hour_index >= MV_REF_HOURS + FLIP_FROM, -1.0, 1.0)
    return {"a": a, "b": sign * 0.8 * a + 0.6 * noise}  # both N(0, 1); correlation +-0.8


def test_flipped_correlation_is_multivariate_drift_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_hourly_logs(tmp_path / "logs", MV_REF_HOURS + MV_HOURS, 2000, correlated_columns, seed=6)
    config = write_config(tmp_path, monitor_config("pair", ["a", "b"], reference_period(MV_REF_HOURS)))
    project, store, runner = open_project(config)
    mon = project.monitor("pair")
    monitored = START + MV_REF_HOURS * HOUR
    outcomes = runner.backfill(mon, monitored, monitored + MV_HOURS * HOUR)
    assert len(outcomes) == MV_HOURS and not any(o.errors for o in outcomes)

    record = store.latest_reference("pair")
    assert record is not None and record.version == 1
    pca = record.payload["pca"]
    assert pca is not None and list(pca["columns"]) == ["a", "b"]
    assert len(record.payload["variation"]["*"]["multivariate_chunks"]) == MV_REF_HOURS

    mv = store.metrics("pair", check="multivariate_drift", segment="*").reset_index(drop=True)
    assert len(mv) == MV_HOURS
    assert set(mv["column"]) == {""} and set(mv["metric"]) == {"pca_reconstruction_error"}
    assert hours_after(mv.loc[mv["status"] == "breach", "window_start"], monitored) == list(range(FLIP_FROM, MV_HOURS))
    assert set(mv.loc[mv["window_start"] < monitored + FLIP_FROM * HOUR, "status"]) == {"ok"}
    # the univariate checks see the same marginals: no breach of either feature, nor of the run
    for column in ("a", "b"):
        rows = verdicts(store, "pair", column)
        assert len(rows) == MV_HOURS and set(rows["status"]) == {"ok"}, column
    assert set(dataset_rows(store, "pair")["status"]) == {"ok"}

    # A new process: a new Runner on the same store reads the stored model, fits nothing.
    second = Runner(load_config(config), store)

    def no_refit(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the second runner refitted the reference")

    monkeypatch.setattr(second, "_fit", no_refit)
    for hour in (FLIP_FROM - 1, FLIP_FROM):
        window = _window(MV_REF_HOURS + hour)
        before = outcomes[hour]
        after = second.run_window(project.monitor("pair"), window)
        assert after.run.reference_version == before.run.reference_version == 1
        assert after.run.status == before.run.status
        assert _comparable(after.results) == _comparable(before.results)
    assert store.latest_reference("pair").version == 1
    store.dispose()


def _comparable(results: list[Any]) -> dict[tuple[str, str, str, str], tuple[Any, ...]]:
    return {(r.check, r.column, r.metric, r.segment): (r.status, r.value, r.threshold) for r in results}


# ------------------------------------------------------------ 5. explicit threshold: fixed


def test_explicit_threshold_is_fixed_and_the_default_is_calibrated(tmp_path: Path) -> None:
    ref_hours = 24
    write_hourly_logs(
        tmp_path / "logs", ref_hours + 2, 1000, lambda r, s, h: {"x": r.normal(0, 1, s.size), "y": r.lognormal(0, 0.5, s.size)}, seed=8
    )
    fixed_drift = {"numeric": {"method": "wasserstein", "threshold": 0.05}}
    config = write_config(
        tmp_path,
        monitor_config("fixed", ["x", "y"], reference_period(ref_hours), checks={"drift": fixed_drift}),
        monitor_config("calibrated", ["x", "y"], reference_period(ref_hours)),
    )
    project, store, runner = open_project(config)
    for name in ("fixed", "calibrated"):
        runner.backfill(project.monitor(name), START + ref_hours * HOUR, START + (ref_hours + 2) * HOUR)

    for column in ("x", "y"):
        fixed = verdicts(store, "fixed", column)
        assert len(fixed) == 2 and set(fixed["metric"]) == {"wasserstein"}
        assert all(d["threshold_mode"] == "fixed" for d in fixed["details"])
        assert (fixed["threshold"] == 0.05).all()
        assert all((r.status == "breach") == (r.value > 0.05) for r in fixed.itertuples())

        calibrated = verdicts(store, "calibrated", column)
        assert len(calibrated) == 2 and set(calibrated["metric"]) == {"wasserstein"}
        assert all(d["threshold_mode"] == "calibrated" for d in calibrated["details"])
        assert (calibrated["threshold"] >= 0.1).all()
        assert all(d["min_effect"] == 0.1 for d in calibrated["details"])
        assert all(r.status == "ok" for r in calibrated.itertuples())  # nothing changed
        # the same windows, the same values: only the thresholds differ
        assert fixed["value"].tolist() == pytest.approx(calibrated["value"].tolist())

    # a fixed threshold has nothing to learn from the reference's chunks
    assert store.latest_reference("fixed").payload["variation"]["*"]["excess"] == {}
    assert set(store.latest_reference("calibrated").payload["variation"]["*"]["excess"]) == {"x", "y"}
    store.dispose()
