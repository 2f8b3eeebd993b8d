"""The demo generator: the written files hold the planted events, and nothing else unusual.

Every assertion reads the files back (pyarrow/pandas); none re-calls the generator's helpers.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from monitor.demo import DemoEvents, generate_demo

START = date(2026, 3, 2)  # a Monday
DAYS = 30
ROWS_PER_DAY = 1500

EXPECTED_SCHEMA = pa.schema(
    [
        ("ts", pa.timestamp("us", tz="UTC")),
        ("request_id", pa.string()),
        ("income", pa.float64()),
        ("age", pa.int64()),
        ("debt_ratio", pa.float64()),
        ("credit_lines", pa.int64()),
        ("region", pa.string()),
        ("channel", pa.string()),
        ("employment", pa.string()),
        ("score", pa.float64()),
        ("label", pa.int64()),
        ("latency_ms", pa.float64()),
        ("model_version", pa.string()),
    ]
)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[Path, DemoEvents]:
    folder = tmp_path_factory.mktemp("demo")
    events = generate_demo(folder, days=DAYS, rows_per_day=ROWS_PER_DAY, start=START, reference_rows=10_000)
    return folder, events


@pytest.fixture(scope="module")
def log(demo) -> pd.DataFrame:
    """Every partition read on its own, with the partition's day beside its rows."""
    folder, _ = demo
    frames = []
    for part in sorted((folder / "logs").glob("date=*/part-0.parquet")):
        frame = pq.read_table(part).to_pandas()
        frame["day"] = date.fromisoformat(part.parent.name.removeprefix("date="))
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def reference(demo) -> pd.DataFrame:
    return pq.read_table(demo[0] / "reference.parquet").to_pandas()


def _shares(values: pd.Series) -> pd.Series:
    return values.value_counts(normalize=True)


# "Unchanged" means within 4.5 standard errors of sampling noise, so these tests hold for any seed
# (checked over many seeds) yet catch a real shift of a percentage point or a fraction of a standard deviation.
_NOISE = 4.5


def _assert_same_shares(current: pd.Series, expected: pd.Series) -> None:
    a, b = _shares(current), _shares(expected)
    assert set(a.index) == set(b.index)
    p = b.reindex(a.index)
    se = np.sqrt(p * (1 - p) * (1 / len(current) + 1 / len(expected)))
    assert ((a - p).abs() < _NOISE * se).all(), pd.DataFrame({"current": a, "expected": p, "se": se})


def _assert_same_mean(current: pd.Series, expected: pd.Series) -> None:
    se = np.sqrt(current.var() / len(current) + expected.var() / len(expected))
    assert abs(current.mean() - expected.mean()) < _NOISE * se, (current.mean(), expected.mean(), se)


def _day(events: DemoEvents, offset: int) -> date:
    return events.start + timedelta(days=offset)


# --- Layout, schema, ids, timestamps -----------------------------------------------------------


def test_events_of_a_30_day_demo_scale_the_60_day_plan(demo):
    _, events = demo
    assert events == DemoEvents(
        start=START,
        days=DAYS,
        drift_start=_day(events, 20),
        drifted_numeric=("income", "debt_ratio"),
        new_category=("channel", "partner_api"),
        latency_start=_day(events, 25),
        null_surge=("employment", _day(events, 13), _day(events, 15)),
        label_delay_days=7,
    )


def test_one_partition_per_day_with_the_log_schema(demo):
    folder, events = demo
    parts = sorted((folder / "logs").iterdir())
    assert [p.name for p in parts] == [f"date={_day(events, i).isoformat()}" for i in range(DAYS)]
    for part in parts:
        assert [f.name for f in part.iterdir()] == ["part-0.parquet"]
        assert pq.read_schema(part / "part-0.parquet").remove_metadata() == EXPECTED_SCHEMA
    assert pq.read_schema(folder / "reference.parquet").remove_metadata() == EXPECTED_SCHEMA


def test_the_log_reads_back_as_one_hive_dataset_with_expected_dtypes(demo, log):
    data = pd.read_parquet(demo[0] / "logs")
    assert len(data) == len(log)
    assert str(data["ts"].dtype).startswith("datetime64[") and str(data["ts"].dt.tz) == "UTC"
    for column in ("income", "debt_ratio", "score", "latency_ms"):
        assert data[column].dtype == np.float64
    for column in ("age", "credit_lines"):
        assert data[column].dtype == np.int64
    for column in ("request_id", "region", "channel", "employment", "model_version"):
        assert pd.api.types.is_string_dtype(data[column])
    assert pd.api.types.is_float_dtype(data["label"])  # int64 with nulls -> float with NaN in pandas


def test_request_ids_are_unique_across_log_and_reference(log, reference):
    ids = pd.concat([log["request_id"], reference["request_id"]])
    assert ids.is_unique
    assert ids.str.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}").all()


def test_timestamps_are_utc_sorted_and_inside_their_partition_day(log):
    assert str(log["ts"].dt.tz) == "UTC"
    assert (log["ts"].dt.date == log["day"]).all()
    assert log.groupby("day")["ts"].apply(lambda ts: ts.is_monotonic_increasing).all()
    # An intraday cycle: the busiest hour has well over twice the traffic of the quietest.
    hourly = log["ts"].dt.hour.value_counts()
    assert len(hourly) == 24 and hourly.max() > 2 * hourly.min()


def test_volume_has_a_weekly_cycle_around_rows_per_day(log):
    per_day = log.groupby("day").size()
    weekend = per_day[[d.weekday() >= 5 for d in per_day.index]]
    weekday = per_day[[d.weekday() < 5 for d in per_day.index]]
    assert 0.65 < weekend.mean() / weekday.mean() < 0.75
    assert abs(per_day.iloc[:28].mean() / ROWS_PER_DAY - 1) < 0.02  # four whole weeks
    assert weekday.max() / weekday.min() < 1.11 and weekend.max() / weekend.min() < 1.11
    assert weekday.max() / weekday.min() > 1.01  # days are not all alike


def test_only_employment_and_label_have_nulls(log, reference):
    for frame in (log, reference):
        nulls = frame.isna().sum()
        assert set(nulls[nulls > 0].index) <= {"employment", "label"}
    assert reference["label"].notna().all()


def test_value_ranges(log, reference):
    for frame in (log, reference):
        assert frame["age"].between(18, 80).all()
        assert frame["debt_ratio"].between(0, 1.5).all()
        assert (frame["credit_lines"] >= 0).all() and (frame["income"] > 0).all()
        assert frame["score"].between(0, 1).all()
        assert set(frame["label"].dropna().unique()) == {0, 1}
        assert set(frame["region"]) == {"NA", "EU", "LATAM", "APAC"}
        assert set(frame["employment"].dropna()) == {"salaried", "self_employed", "unemployed", "retired"}


# --- Planted events ---------------------------------------------------------------------------


def test_income_and_debt_ratio_shift_from_drift_start(log, demo):
    _, events = demo
    before, after = log[log["day"] < events.drift_start], log[log["day"] >= events.drift_start]
    assert 1.30 < after["income"].median() / before["income"].median() < 1.40
    log_income_sd = np.log(before["income"]).std()
    shift = np.log(after["income"]).median() - np.log(before["income"]).median()
    assert 0.45 < shift / log_income_sd < 0.7
    assert 0.13 < after["debt_ratio"].mean() - before["debt_ratio"].mean() < 0.17
    # The day before the drift is still healthy and the first drifted day already shifted.
    last_healthy = log[log["day"] == events.drift_start - timedelta(days=1)]
    first_drifted = log[log["day"] == events.drift_start]
    assert first_drifted["income"].median() / last_healthy["income"].median() > 1.2


def test_channel_gets_partner_api_from_drift_start(log, reference, demo):
    _, events = demo
    column, value = events.new_category
    before, after = log[log["day"] < events.drift_start], log[log["day"] >= events.drift_start]
    assert value not in set(before[column]) and value not in set(reference[column])
    assert 0.18 < (after[column] == value).mean() < 0.22
    assert after.groupby("day")[column].apply(lambda c: (c == value).mean()).min() > 0.14
    # The old channels keep their relative shares.
    _assert_same_shares(after.loc[after[column] != value, column], before[column])


def test_latency_regression_with_the_new_model_version(log, demo):
    _, events = demo
    before, after = log[log["day"] < events.latency_start], log[log["day"] >= events.latency_start]
    assert 40 < before["latency_ms"].median() < 50 and 110 < before["latency_ms"].quantile(0.95) < 130
    assert 270 < after["latency_ms"].quantile(0.95) < 330
    assert after.groupby("day")["latency_ms"].quantile(0.95).min() > 250  # breaches p95_max_ms every day
    assert before.groupby("day")["latency_ms"].quantile(0.95).max() < 160
    assert set(before["model_version"]) == {"2026.09"}
    assert set(after["model_version"]) == {"2026.10"}


def test_employment_null_surge(log, demo):
    _, events = demo
    column, first, last = events.null_surge
    missing = log[column].isna().groupby(log["day"]).mean()
    surge = missing[(missing.index >= first) & (missing.index <= last)]
    others = missing[(missing.index < first) | (missing.index > last)]
    assert len(surge) == 3 and surge.between(0.29, 0.41).all()
    assert others.max() < 0.02 and 0.002 < others.mean() < 0.008


def test_labels_arrive_late(log, demo):
    _, events = demo
    labelled = log["label"].notna().groupby(log["day"]).mean()
    days_before_end = [(events.start + timedelta(days=DAYS - 1) - d).days for d in labelled.index]
    labelled = pd.Series(labelled.to_numpy(), index=days_before_end).sort_index()  # 0 is the last day
    assert (labelled.loc[0 : events.label_delay_days - 1] == 0).all()
    assert abs(labelled.loc[7] - 0.50) < 0.06
    assert abs(labelled.loc[8] - 0.80) < 0.05
    assert abs(labelled.loc[9] - 0.95) < 0.03
    assert (labelled.loc[10:] == 1).all()


def test_scores_approximate_the_labels(reference):
    assert 0.08 < reference["label"].mean() < 0.12
    assert abs(reference["score"].mean() - reference["label"].mean()) < 0.015
    decile = pd.qcut(reference["score"], 10, labels=False)
    rates = reference["label"].groupby(decile).mean()
    assert rates.iloc[-1] > 4 * rates.iloc[0]


# --- Nothing else unusual (on the default-size demo, where small shifts would show) --------------


@pytest.fixture(scope="module")
def full(tmp_path_factory) -> tuple[DemoEvents, pd.DataFrame, pd.DataFrame]:
    """The default-size demo (60 days of ~4000 rows, 20,000 reference rows): enough rows that an
    unplanted shift of a percentage point, or a few hundredths of a standard deviation, fails a test."""
    folder = tmp_path_factory.mktemp("full")
    events = generate_demo(folder, start=START)
    log = pd.read_parquet(folder / "logs")
    log["day"] = log["ts"].dt.date
    return events, log, pd.read_parquet(folder / "reference.parquet")


def _binned(values: pd.Series, reference: pd.Series) -> pd.Series:
    """Values in the reference's deciles, as categories to compare shares of."""
    edges = np.unique(reference.quantile(np.linspace(0, 1, 11)).to_numpy())
    edges[0], edges[-1] = -np.inf, np.inf
    return pd.Series(pd.cut(values, edges, labels=False), index=values.index)


def _healthy(events: DemoEvents, log: pd.DataFrame) -> pd.DataFrame:
    return log[log["day"] < events.drift_start]


UNTOUCHED = ["age", "credit_lines", "region", "employment"]


def _comparable(column: str, values: pd.Series) -> pd.Series:
    """Rare tail values share a bucket, so a share comparison never meets a value one sample lacks."""
    tails = {"age": 75, "credit_lines": 10}
    return values.clip(upper=tails[column]) if column in tails else values.dropna()


@pytest.mark.parametrize("column", UNTOUCHED)
def test_untouched_columns_do_not_move_when_the_drift_starts(full, column):
    events, log, _ = full
    healthy, drifted = _healthy(events, log), log[log["day"] >= events.drift_start]
    _assert_same_shares(_comparable(column, drifted[column]), _comparable(column, healthy[column]))
    if column in ("age", "credit_lines"):
        _assert_same_mean(drifted[column], healthy[column])


@pytest.mark.parametrize("column", UNTOUCHED + ["income", "debt_ratio", "score", "latency_ms", "channel"])
def test_healthy_log_comes_from_the_reference_distribution(full, column):
    events, log, reference = full
    healthy = _healthy(events, log)
    current, expected = _comparable(column, healthy[column]), _comparable(column, reference[column])
    if pd.api.types.is_float_dtype(expected):
        _assert_same_mean(current, expected)
        current, expected = _binned(current, expected), _binned(expected, expected)
    _assert_same_shares(current, expected)


def test_no_healthy_day_stands_out(full):
    """Day by day, as a daily monitor sees them: every healthy day within 5 standard errors of the reference."""
    events, log, reference = full
    _, surge_first, surge_last = events.null_surge
    for day, rows in _healthy(events, log).groupby("day"):
        for column in ("income", "age", "debt_ratio", "credit_lines", "score", "latency_ms"):
            se = np.sqrt(rows[column].var() / len(rows) + reference[column].var() / len(reference))
            assert abs(rows[column].mean() - reference[column].mean()) < 5 * se, (day, column)
        for column in ("region", "channel", "employment"):
            shares, p = _shares(rows[column].dropna()), _shares(reference[column].dropna())
            se = np.sqrt(p * (1 - p) * (1 / len(rows) + 1 / len(reference)))
            assert ((shares - p).abs() < 5 * se).all(), (day, column)
        if not surge_first <= day <= surge_last:
            assert rows["employment"].isna().mean() < 0.015, day


def test_events_do_not_leak_into_each_other(full):
    events, log, _ = full
    _, surge_first, surge_last = events.null_surge
    healthy = _healthy(events, log)
    surge = healthy["day"].between(surge_first, surge_last)
    # The employment nulls are a logging fault: scores and other columns are as on other days.
    for column in ("score", "income", "latency_ms"):
        _assert_same_mean(healthy.loc[surge, column], healthy.loc[~surge, column])
    # The latency regression's model version has the same weights: scores do not move with it.
    drifted = log[log["day"] >= events.drift_start]
    slow = drifted["day"] >= events.latency_start
    _assert_same_shares(_binned(drifted.loc[slow, "score"], drifted["score"]),
                        _binned(drifted.loc[~slow, "score"], drifted["score"]))
    # Latency does not move with the feature drift, only from latency_start.
    _assert_same_mean(drifted.loc[~slow, "latency_ms"], healthy["latency_ms"])


def test_full_demo_event_magnitudes(full):
    events, log, reference = full
    healthy, drifted = _healthy(events, log), log[log["day"] >= events.drift_start]
    assert abs(drifted["income"].median() / healthy["income"].median() - 1.35) < 0.02
    assert abs(drifted["debt_ratio"].mean() - healthy["debt_ratio"].mean() - 0.15) < 0.005
    assert abs((drifted["channel"] == "partner_api").mean() - 0.20) < 0.01
    slow = log[log["day"] >= events.latency_start]
    assert abs(slow["latency_ms"].quantile(0.95) / healthy["latency_ms"].quantile(0.95) - 2.5) < 0.1
    assert abs(healthy["latency_ms"].quantile(0.95) - 120) < 5 and abs(healthy["latency_ms"].median() - 45) < 1
    assert 53_000 < reference["income"].median() < 57_000


def test_reference_has_no_planted_event(reference, demo):
    _, events = demo
    ts = reference["ts"]
    reference_start = datetime.combine(events.start - timedelta(days=30), datetime.min.time(), timezone.utc)
    log_start = datetime.combine(events.start, datetime.min.time(), timezone.utc)
    assert ts.min() >= reference_start and ts.max() < log_start
    assert ts.dt.date.nunique() == 30
    assert len(reference) == 10_000 and reference["label"].notna().all()
    assert reference["employment"].isna().mean() < 0.01
    assert "partner_api" not in set(reference["channel"])
    assert set(reference["model_version"]) == {"2026.09"}
    assert reference["latency_ms"].quantile(0.95) < 135


# --- Determinism, defaults, config, files -----------------------------------------------------


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_other_seed_other_data(tmp_path):
    small = dict(days=15, rows_per_day=200, start=START, reference_rows=500)
    first = _files_of(tmp_path, "a", seed=3, **small)
    assert _files_of(tmp_path, "b", seed=3, **small) == first
    other = _files_of(tmp_path, "c", seed=4, **small)
    assert other.keys() == first.keys()
    assert all(other[name] != first[name] for name in first if name.endswith(".parquet"))


def _files_of(tmp_path: Path, name: str, **kwargs) -> dict[str, bytes]:
    generate_demo(tmp_path / name, **kwargs)
    return _files(tmp_path / name)


def test_default_log_ends_yesterday_with_events_on_days_40_50_and_25_to_27(tmp_path):
    before = datetime.now(timezone.utc).date()
    events = generate_demo(tmp_path, rows_per_day=20, reference_rows=100)
    after = datetime.now(timezone.utc).date()
    assert events.start in {before - timedelta(days=60), after - timedelta(days=60)}
    assert events.days == 60
    assert events.drift_start == events.start + timedelta(days=40)
    assert events.latency_start == events.start + timedelta(days=50)
    assert events.null_surge == ("employment", events.start + timedelta(days=25), events.start + timedelta(days=27))
    last = sorted((tmp_path / "logs").iterdir())[-1].name
    assert last == f"date={(events.start + timedelta(days=59)).isoformat()}"


def test_config_parses_and_names_columns_of_the_log(demo, log):
    folder, _ = demo
    text = (folder / "driftline.yaml").read_text()
    assert text.startswith("# Driftline demo")
    config = yaml.safe_load(text)
    assert config["store"] == "sqlite:///driftline.db"
    (monitor,) = config["monitors"]
    assert monitor["name"] == "credit-risk"
    assert monitor["source"] == {"type": "parquet", "path": "logs"}
    assert monitor["reference"] == {"type": "parquet", "path": "reference.parquet"}
    assert (folder / monitor["source"]["path"]).is_dir() and (folder / monitor["reference"]["path"]).is_file()
    assert monitor["window"] == "1d" and monitor["schedule"] == "15 0 * * *"
    assert monitor["checks"] == {"drift": {}, "quality": {}, "latency": {"p95_max_ms": 250}, "performance": {}}
    assert [k["name"] for k in monitor["kpis"]] == ["approval_rate", "mean_score"]
    columns = monitor["columns"]
    named = [v for k, v in columns.items() if k != "prediction_kind"]
    named = [c for v in named for c in (v if isinstance(v, list) else [v])]
    assert set(named) <= set(log.columns)
    assert set(columns["numeric"]) | set(columns["categorical"]) == {
        "income", "age", "debt_ratio", "credit_lines", "region", "channel", "employment"
    }
    for kpi in monitor["kpis"]:
        assert kpi["column"] in log.columns


def test_rerun_replaces_an_earlier_demo(tmp_path):
    generate_demo(tmp_path, days=15, rows_per_day=20, start=START, reference_rows=50)
    generate_demo(tmp_path, days=15, rows_per_day=20, start=START + timedelta(days=3), reference_rows=50)
    names = sorted(p.name for p in (tmp_path / "logs").iterdir())
    assert names[0] == f"date={(START + timedelta(days=3)).isoformat()}" and len(names) == 15
    assert sorted(p.name for p in tmp_path.iterdir()) == ["driftline.yaml", "logs", "reference.parquet"]


def test_refuses_to_replace_a_logs_folder_it_did_not_write(tmp_path):
    precious = tmp_path / "logs" / "events.jsonl"
    precious.parent.mkdir()
    precious.write_text("{}\n")
    with pytest.raises(FileExistsError, match="not a Driftline demo"):
        generate_demo(tmp_path, days=15, rows_per_day=20, start=START, reference_rows=50)
    assert precious.read_text() == "{}\n"


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        (dict(days=10), ValueError),
        (dict(rows_per_day=0), ValueError),
        (dict(start=datetime(2026, 3, 2, tzinfo=timezone.utc)), TypeError),
    ],
)
def test_rejects_bad_arguments(tmp_path, kwargs, error):
    with pytest.raises(error):
        generate_demo(tmp_path, **kwargs)
