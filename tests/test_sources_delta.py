"""Delta Lake tables as inference-log sources (delta-rs, no Spark).

Tables are written in tmp_path with ``deltalake.write_deltalake`` (several commits, partitioned by
date); every test asserts what a reader of a window would see, and how much was opened to see it.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pydantic
import pytest
from deltalake import DeltaTable, WriterProperties, write_deltalake

from monitor.config import ConfigError, parse_config
from monitor.sources import (
    DeltaSource,
    DeltaSourceSpec,
    FileSourceSpec,
    ReadReport,
    SourceError,
    SourceSpec,
    open_source,
)
from monitor.windows import Window

UTC = timezone.utc
T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)
ROWS_PER_DAY = 48  # one every 30 minutes


def day_frame(day: int, rows: int = ROWS_PER_DAY, *, offset: int = 0) -> pd.DataFrame:
    start = T0 + day * DAY
    stamps = pd.date_range(start, periods=rows, freq=DAY / rows).as_unit("us")
    return pd.DataFrame(
        {
            "ts": stamps,
            "x": np.arange(rows, dtype="float64") + 1000 * day + offset,
            "cat": [f"c{i % 3}" for i in range(rows)],
            "date": stamps.strftime("%Y-%m-%d"),
        }
    )


def write_days(path: Path, days: Iterable[int], **options: object) -> None:
    """One commit per day, partitioned by date."""
    for day in days:
        write_deltalake(path, day_frame(day), partition_by=["date"], mode="append", **options)


def delta(path: Path | str, base: Path | None = None, **options: object) -> DeltaSource:
    return open_source(DeltaSourceSpec(type="delta", path=str(path), **options), base_dir=base)  # type: ignore[return-value]


def read(source, columns=("x",), *, window: Window | None = None, timestamp: str = "ts", batch_rows: int = 100_000):
    report = ReadReport()
    frames = list(source.read(list(columns), timestamp=timestamp, window=window, batch_rows=batch_rows, report=report))
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return frame, report, frames


def day_window(day: int, days: int = 1) -> Window:
    return Window(T0 + day * DAY, T0 + (day + days) * DAY)


@pytest.fixture
def table(tmp_path: Path) -> Path:
    path = tmp_path / "logs"
    write_days(path, range(4))
    return path


# ---------------------------------------------------------------------------------------------- specs


def test_spec_is_part_of_the_source_union_and_documented() -> None:
    adapter = pydantic.TypeAdapter(SourceSpec)
    spec = adapter.validate_python({"type": "delta", "path": "logs", "version": 3, "timestamp_unit": "ms"})
    assert isinstance(spec, DeltaSourceSpec) and spec.version == 3
    with pytest.raises(pydantic.ValidationError, match="greater than or equal to 0"):
        adapter.validate_python({"type": "delta", "path": "logs", "version": -1})
    with pytest.raises(pydantic.ValidationError, match="partitioning"):
        adapter.validate_python({"type": "delta", "path": "logs", "partitioning": "hive"})
    undocumented = [name for name, info in DeltaSourceSpec.model_fields.items() if not info.description]
    assert undocumented == []


def test_config_accepts_delta_source_and_reference_and_names_bad_keys(tmp_path: Path) -> None:
    base = {
        "store": "sqlite:///d.db",
        "monitors": [
            {
                "name": "m",
                "source": {"type": "delta", "path": "logs", "version": 2},
                "columns": {"timestamp": "ts"},
                "reference": {"type": "delta", "path": "reference", "version": 0},
            }
        ],
    }
    config = parse_config(base, tmp_path / "d.yaml")
    monitor = config.monitors[0]
    assert isinstance(monitor.source, DeltaSourceSpec) and monitor.source.version == 2
    assert isinstance(monitor.reference, DeltaSourceSpec) and monitor.reference.version == 0
    base["monitors"][0]["source"] = {"type": "delta", "pth": "logs"}
    with pytest.raises(ConfigError) as error:
        parse_config(base, tmp_path / "d.yaml")
    assert "monitors[0].source.pth: unknown key 'pth'; did you mean 'path'?" in error.value.problems


def test_plain_source_dumps_are_unchanged_by_the_adapter_key() -> None:
    # Config and reference fingerprints hash these dumps: an unset adapter must not change them.
    dumped = FileSourceSpec(type="parquet", path="logs").model_dump(mode="json")
    assert dumped == {"type": "parquet", "path": "logs", "partitioning": "hive", "timestamp_unit": None}
    with_adapter = FileSourceSpec(type="parquet", path="logs", inference_table={}).model_dump(mode="json")
    assert with_adapter["inference_table"]["timestamp"] == "timestamp_ms"


# ---------------------------------------------------------------------------------------------- windows


def test_window_reads_only_its_rows_as_utc_and_skips_other_files(table: Path) -> None:
    frame, report, _ = read(delta(table), ["x", "cat"], window=day_window(2))
    assert list(frame.columns) == ["x", "cat", "ts"]
    assert str(frame["ts"].dtype) == "datetime64[us, UTC]"
    assert len(frame) == ROWS_PER_DAY
    assert frame["x"].tolist() == [2000.0 + i for i in range(ROWS_PER_DAY)]
    assert frame["ts"].min() == pd.Timestamp(T0 + 2 * DAY) and frame["ts"].max() < pd.Timestamp(T0 + 3 * DAY)
    # file skipping: one file of the four is opened, and only its rows are materialised
    assert report.files == 1 and report.rows_scanned == ROWS_PER_DAY and report.rows == ROWS_PER_DAY
    assert report.missing_columns == set() and report.bad_timestamps == 0


def test_window_is_half_open_and_spans_files(table: Path) -> None:
    window = Window(T0 + DAY + timedelta(hours=23), T0 + 2 * DAY + timedelta(minutes=30))
    frame, report, _ = read(delta(table), window=window)
    assert frame["ts"].tolist() == [
        pd.Timestamp(T0 + DAY + timedelta(hours=23)),
        pd.Timestamp(T0 + DAY + timedelta(hours=23, minutes=30)),
        pd.Timestamp(T0 + 2 * DAY),
    ]
    assert report.files == 2


def test_statistics_skip_files_without_partitions(tmp_path: Path) -> None:
    path = tmp_path / "flat"
    for day in range(3):
        write_deltalake(path, day_frame(day).drop(columns=["date"]), mode="append")
    frame, report, _ = read(delta(path), window=day_window(1))
    assert len(frame) == ROWS_PER_DAY and report.files == 1


def test_partition_column_is_projected_and_other_columns_are_not(table: Path) -> None:
    frame, _, frames = read(delta(table), ["date"], window=day_window(1), batch_rows=10)
    assert list(frame.columns) == ["date", "ts"]
    assert set(frame["date"]) == {"2026-01-02"}
    assert [len(part) for part in frames] == [10, 10, 10, 10, 8]


def test_row_group_statistics_skip_rows_inside_a_file(tmp_path: Path) -> None:
    path = tmp_path / "groups"
    frame = pd.concat([day_frame(day) for day in range(4)], ignore_index=True).drop(columns=["date"])
    write_deltalake(path, frame, writer_properties=WriterProperties(max_row_group_size=ROWS_PER_DAY))
    assert len(DeltaTable(path).file_uris()) == 1
    got, report, _ = read(delta(path), window=day_window(3))
    assert len(got) == ROWS_PER_DAY and report.files == 1
    assert report.rows_scanned == ROWS_PER_DAY  # one row group of four decoded


def test_epoch_timestamps_need_a_unit_and_are_pushed_down(tmp_path: Path) -> None:
    path = tmp_path / "epochs"
    for day in range(3):
        frame = day_frame(day)
        frame["ts_ms"] = frame["ts"].astype("int64") // 1000  # microseconds -> ms
        write_deltalake(path, frame.drop(columns=["ts"]), partition_by=["date"], mode="append")
    with pytest.raises(SourceError, match="timestamp_unit"):
        read(delta(path), window=day_window(1), timestamp="ts_ms")
    frame, report, _ = read(delta(path, timestamp_unit="ms"), window=day_window(1), timestamp="ts_ms")
    assert len(frame) == ROWS_PER_DAY and report.files == 1
    assert frame["ts_ms"].min() == pd.Timestamp(T0 + DAY)


def test_naive_timestamps_are_utc_and_dates_cover_their_day(tmp_path: Path) -> None:
    naive = tmp_path / "naive"
    frame = day_frame(0)
    table = pa.table({"ts": pa.array(frame["ts"].dt.tz_localize(None)), "x": pa.array(frame["x"])})
    write_deltalake(naive, table)
    got, _, _ = read(delta(naive), window=Window(T0 + timedelta(hours=1), T0 + timedelta(hours=2)))
    assert got["ts"].tolist() == [pd.Timestamp(T0 + timedelta(hours=1)), pd.Timestamp(T0 + timedelta(hours=1, minutes=30))]
    dates = tmp_path / "dates"
    write_deltalake(dates, pa.table({"ts": pa.array([(T0 + i * DAY).date() for i in range(5)], pa.date32()), "x": pa.array([float(i) for i in range(5)])}))
    got, _, _ = read(delta(dates), window=day_window(2, days=2))
    assert got["x"].tolist() == [2.0, 3.0]
    assert str(got["ts"].dtype) == "datetime64[us, UTC]"


# ---------------------------------------------------------------------------------------------- messy input


def test_null_and_unparseable_timestamps_are_counted_and_dropped(tmp_path: Path) -> None:
    path = tmp_path / "nulls"
    frame = day_frame(0)
    frame.loc[frame.index[:5], "ts"] = pd.NaT
    write_deltalake(path, frame, partition_by=["date"])
    got, report, _ = read(delta(path), window=day_window(0))
    assert len(got) == ROWS_PER_DAY - 5 and report.bad_timestamps == 5 and got["ts"].notna().all()
    # text timestamps: junk is counted, the rest read (no pushdown for text, the exact filter still runs)
    text = tmp_path / "text"
    stamps = [t.isoformat() for t in day_frame(0)["ts"]]
    stamps[3] = "yesterday-ish"
    write_deltalake(text, pd.DataFrame({"ts": stamps, "x": np.arange(ROWS_PER_DAY, dtype="float64")}))
    got, report, _ = read(delta(text), window=day_window(0))
    assert len(got) == ROWS_PER_DAY - 1 and report.bad_timestamps == 1 and 3.0 not in set(got["x"])


def test_a_file_of_null_timestamps_is_read_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "allnull"
    write_days(path, [0])
    nulls = day_frame(0, 7)
    nulls["ts"] = pd.Series([pd.NaT] * 7, dtype="datetime64[us, UTC]")
    write_deltalake(path, nulls, partition_by=["date"], mode="append")
    got, report, _ = read(delta(path), window=day_window(0))
    assert len(got) == ROWS_PER_DAY and report.bad_timestamps == 7 and report.files == 2


def test_missing_columns_are_reported_and_added_columns_are_null_in_old_files(tmp_path: Path) -> None:
    path = tmp_path / "evolving"
    write_days(path, [0])
    newer = day_frame(1).assign(score=0.5)
    write_deltalake(path, newer, partition_by=["date"], mode="append", schema_mode="merge")
    got, report, _ = read(delta(path), ["x", "score", "nope"], window=day_window(0, days=2))
    assert report.missing_columns == {"nope"}
    assert list(got.columns) == ["x", "score", "ts"]
    assert got["score"].isna().sum() == ROWS_PER_DAY and (got["score"].dropna() == 0.5).all()


def test_missing_timestamp_column_raises_with_the_columns_there(table: Path) -> None:
    with pytest.raises(SourceError, match=r"timestamp column 'when' not found in delta table .*columns there: ts, x, cat, date"):
        read(delta(table), window=day_window(0), timestamp="when")


def test_errors_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"'nothing' does not exist \(looked for .*nothing\).*relative"):
        read(delta("nothing", tmp_path))
    plain = tmp_path / "plain"
    plain.mkdir()
    day_frame(0).to_parquet(plain / "part-0.parquet")
    with pytest.raises(SourceError, match=r"plain is not a Delta table \(it has no _delta_log folder\).*type: parquet"):
        delta(plain).columns()
    write_days(tmp_path / "t", range(2))
    with pytest.raises(SourceError, match=r"cannot load version 7"):
        read(delta(tmp_path / "t", version=7))


def test_relative_path_resolves_against_the_config_folder(table: Path) -> None:
    source = delta("logs", table.parent)
    assert "relative to" in source.description
    assert read(source, window=day_window(0))[1].rows == ROWS_PER_DAY


# ---------------------------------------------------------------------------------------------- Delta semantics


def test_deleted_rows_are_not_read_although_the_parquet_files_remain(table: Path) -> None:
    DeltaTable(table).delete("x >= 1010 AND x < 1020")  # ten rows of day 1
    got, _, _ = read(delta(table), window=day_window(1))
    assert len(got) == ROWS_PER_DAY - 10
    assert not set(got["x"]) & {1010.0 + i for i in range(10)}
    # the reason for this source: read as plain Parquet, the folder still returns the deleted rows
    as_parquet = open_source(FileSourceSpec(type="parquet", path=str(table)))
    stale, _, _ = read(as_parquet, window=day_window(1))
    assert len(stale) == 2 * ROWS_PER_DAY - 10  # the old file and its rewrite


def test_time_travel_reads_an_older_version(table: Path) -> None:
    DeltaTable(table).delete("x < 10")
    latest, _, _ = read(delta(table), window=day_window(0, days=4))
    first, _, _ = read(delta(table, version=0), window=day_window(0, days=4))
    second, _, _ = read(delta(table, version=1), window=day_window(0, days=4))
    assert len(latest) == 4 * ROWS_PER_DAY - 10
    assert len(first) == ROWS_PER_DAY and first["x"].min() == 0.0  # day 0 only, before the delete
    assert len(second) == 2 * ROWS_PER_DAY
    assert delta(table, version=0).max_timestamp("ts") < T0 + DAY


def test_deletion_vectors_are_honoured_through_the_query_engine(tmp_path: Path) -> None:
    path = tmp_path / "dv"
    write_days(path, range(3), configuration={"delta.enableDeletionVectors": "true"})
    DeltaTable(path).delete("x >= 1000 AND x < 1005")
    assert "deletionVectors" in (DeltaTable(path).protocol().reader_features or [])
    got, report, frames = read(delta(path), ["x", "cat", "date"], window=day_window(1), batch_rows=16)
    assert len(got) == ROWS_PER_DAY - 5 and got["x"].min() == 1005.0
    assert list(got.columns) == ["x", "cat", "date", "ts"] and str(got["ts"].dtype) == "datetime64[us, UTC]"
    assert max(len(part) for part in frames) <= 16
    assert report.rows_scanned == ROWS_PER_DAY - 5  # the window went into the query
    assert delta(path).max_timestamp("ts") == T0 + 3 * DAY - DAY / ROWS_PER_DAY


# ---------------------------------------------------------------------------------------------- the rest of the protocol


def test_columns_are_the_table_schema_kinds(table: Path) -> None:
    assert delta(table).columns() == {"ts": "timestamp", "x": "numeric", "cat": "string", "date": "string"}


def test_max_timestamp_is_exact_and_reads_only_the_newest_file(tmp_path: Path) -> None:
    path = tmp_path / "fresh"
    write_days(path, range(3))
    newest = T0 + 5 * DAY + timedelta(microseconds=1234)  # statistics keep milliseconds only
    write_deltalake(path, pd.DataFrame({"ts": [pd.Timestamp(newest)], "x": [1.0], "cat": ["a"], "date": ["2026-01-06"]}).astype({"ts": "datetime64[us, UTC]"}), partition_by=["date"], mode="append")
    source = delta(path)
    assert source.max_timestamp("ts") == newest
    # the older files are not opened: removing one from storage changes nothing
    oldest = next(p for p in (path / "date=2026-01-01").iterdir() if p.suffix == ".parquet")
    oldest.unlink()
    assert source.max_timestamp("ts") == newest
    with pytest.raises(SourceError, match="timestamp column 'when'"):
        source.max_timestamp("when")


def test_max_timestamp_of_an_empty_or_all_null_table_is_none(tmp_path: Path) -> None:
    path = tmp_path / "empty"
    write_deltalake(path, pa.table({"ts": pa.array([None, None], pa.timestamp("us", "UTC")), "x": pa.array([1.0, 2.0])}))
    assert delta(path).max_timestamp("ts") is None


def test_read_all_needs_no_timestamp(tmp_path: Path) -> None:
    path = tmp_path / "reference"
    write_deltalake(path, day_frame(0).drop(columns=["ts"]))
    frame = pd.concat(delta(path).read_all(["x", "cat", "absent"], batch_rows=20), ignore_index=True)
    assert list(frame.columns) == ["x", "cat"] and len(frame) == ROWS_PER_DAY
    report = ReadReport()
    list(delta(path).read_all(["x", "absent"], report=report))
    assert report.missing_columns == {"absent"} and report.rows == ROWS_PER_DAY


def test_new_commits_are_seen_by_an_open_source(table: Path) -> None:
    source = delta(table)
    assert read(source, window=day_window(5))[1].rows == 0
    write_days(table, [5])
    assert read(source, window=day_window(5))[1].rows == ROWS_PER_DAY
    shutil.rmtree(table)
    with pytest.raises(SourceError, match="does not exist"):
        source.columns()
