"""Inference-log sources: files (Parquet, CSV, JSON lines) and SQL (SQLite, PostgreSQL).

Logs are built in tmp_path; every test asserts what a reader of the window would see.
"""

from __future__ import annotations

import gzip
import json
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pydantic
import pytest
import sqlalchemy as sa

from monitor.sources import (
    FileSourceSpec,
    ReadReport,
    Source,
    SourceError,
    SourceSpec,
    SqlSource,
    SqlSourceSpec,
    open_source,
    redact_url,
)
from monitor.sources.partitions import may_overlap, parse_hive, partition_span
from monitor.windows import Window

UTC = timezone.utc
T0 = datetime(2026, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


# ---------------------------------------------------------------------------------------------- helpers


def read(source: Source, columns: Iterable[str] = ("x",), *, window: Window | None = None, timestamp: str = "ts",
         batch_rows: int = 100_000) -> tuple[pd.DataFrame, ReadReport, list[pd.DataFrame]]:
    report = ReadReport()
    frames = list(source.read(list(columns), timestamp=timestamp, window=window, batch_rows=batch_rows, report=report))
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return frame, report, frames


def files(kind: str, path: str | list[str], base: Path, **options: object) -> Source:
    return open_source(FileSourceSpec(type=kind, path=path, **options), base_dir=base)


def log_frame(start: datetime, rows: int, step: timedelta = timedelta(minutes=1)) -> pd.DataFrame:
    """Naive-UTC timestamps (what most writers produce), a number, a category."""
    stamps = pd.date_range(start.replace(tzinfo=None), periods=rows, freq=step).as_unit("us")
    return pd.DataFrame({"ts": stamps, "x": np.arange(rows, dtype="float64"), "cat": [f"c{i % 3}" for i in range(rows)]})


def write_parquet(frame: pd.DataFrame, path: Path, row_group_size: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=row_group_size)
    return path


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


def write_jsonl(records: Iterable[dict], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(record, default=str) + "\n" for record in records))
    return path


def write_log(kind: str, frame: pd.DataFrame, path: Path) -> Path:
    if kind == "parquet":
        return write_parquet(frame, path)
    if kind == "csv":
        return write_csv(frame, path)
    records = frame.assign(ts=frame["ts"].map(lambda t: t.isoformat())).to_dict("records")
    return write_jsonl(records, path)


def utc(*args: int) -> pd.Timestamp:
    return pd.Timestamp(datetime(*args, tzinfo=UTC))


# ---------------------------------------------------------------------------------------------- specs


def test_spec_rejects_unknown_keys_and_ambiguous_sql() -> None:
    with pytest.raises(pydantic.ValidationError, match="partitions"):
        FileSourceSpec.model_validate({"type": "parquet", "path": "logs", "partitions": "hive"})
    with pytest.raises(pydantic.ValidationError, match="exactly one of `table`"):
        SqlSourceSpec(type="sql", url="sqlite:///x.db")
    with pytest.raises(pydantic.ValidationError, match="exactly one of `table`"):
        SqlSourceSpec(type="sql", url="sqlite:///x.db", table="t", query="select 1")
    with pytest.raises(pydantic.ValidationError, match="`schema` applies to `table` only"):
        SqlSourceSpec.model_validate({"type": "sql", "url": "sqlite:///x.db", "query": "select 1", "schema": "s"})
    with pytest.raises(pydantic.ValidationError):
        FileSourceSpec(type="parquet", path=[])
    with pytest.raises(pydantic.ValidationError):
        FileSourceSpec(type="parquet", path="logs", timestamp_unit="minutes")  # type: ignore[arg-type]


def test_spec_normalises_postgres_urls_and_reads_schema_key() -> None:
    spec = SqlSourceSpec.model_validate(
        {"type": "sql", "url": "postgresql://u:p@h/db", "table": "logs", "schema": "analytics", "query": None}
    )
    assert spec.url == "postgresql+psycopg://u:p@h/db"
    assert spec.db_schema == "analytics"
    assert SqlSourceSpec(type="sql", url="postgres://h/db", query="select 1;").url == "postgresql+psycopg://h/db"
    assert SqlSourceSpec(type="sql", url="postgres://h/db", query="select 1 ;  ").query == "select 1"
    assert SqlSourceSpec(type="sql", url="postgresql+psycopg2://h/db", table="t").url == "postgresql+psycopg2://h/db"


def test_source_spec_union_picks_by_type_and_every_field_is_documented() -> None:
    adapter = pydantic.TypeAdapter(SourceSpec)
    assert isinstance(adapter.validate_python({"type": "csv", "path": "a.csv"}), FileSourceSpec)
    assert isinstance(adapter.validate_python({"type": "sql", "url": "sqlite:///a.db", "table": "t"}), SqlSourceSpec)
    with pytest.raises(pydantic.ValidationError):
        adapter.validate_python({"type": "excel", "path": "a.xlsx"})
    for model in (FileSourceSpec, SqlSourceSpec):
        undocumented = [name for name, info in model.model_fields.items() if not info.description]
        assert undocumented == [], f"{model.__name__} fields without a description: {undocumented}"


# ---------------------------------------------------------------------------------------------- formats


@pytest.mark.parametrize("kind,name", [("parquet", "log.parquet"), ("csv", "log.csv"), ("jsonl", "log.jsonl")])
def test_each_format_reads_every_row_with_utc_timestamps(tmp_path: Path, kind: str, name: str) -> None:
    frame = log_frame(T0, 50)
    write_log(kind, frame, tmp_path / name)
    source = files(kind, name, tmp_path)
    assert isinstance(source, Source)
    got, report, _ = read(source, ["x", "cat"])
    assert list(got.columns) == ["x", "cat", "ts"]
    assert str(got["ts"].dtype) == "datetime64[us, UTC]"
    assert got["ts"].tolist() == [t.tz_localize("UTC") for t in frame["ts"]]
    assert got["x"].astype(float).tolist() == frame["x"].tolist()
    assert got["cat"].tolist() == frame["cat"].tolist()
    assert (report.files, report.rows_scanned, report.rows, report.bad_timestamps) == (1, 50, 50, 0)
    assert report.missing_columns == set() and report.warnings == []


@pytest.mark.parametrize("kind,name", [("parquet", "log.parquet"), ("csv", "log.csv"), ("jsonl", "log.jsonl")])
def test_window_is_half_open_at_both_edges(tmp_path: Path, kind: str, name: str) -> None:
    tick = timedelta(microseconds=1)
    stamps = [T0 + HOUR - tick, T0 + HOUR, T0 + 2 * HOUR - tick, T0 + 2 * HOUR]
    frame = pd.DataFrame({"ts": pd.DatetimeIndex([s.replace(tzinfo=None) for s in stamps]).as_unit("us"),
                          "x": [1.0, 2.0, 3.0, 4.0]})
    write_log(kind, frame, tmp_path / name)
    got, report, _ = read(files(kind, name, tmp_path), window=Window(T0 + HOUR, T0 + 2 * HOUR))
    assert got["x"].astype(float).tolist() == [2.0, 3.0]
    assert got["ts"].tolist() == [pd.Timestamp(T0 + HOUR), pd.Timestamp(T0 + 2 * HOUR - tick)]
    assert report.rows == 2 and report.rows_scanned == 4


def test_glob_reads_matching_files_only_and_relative_to_base_dir(tmp_path: Path) -> None:
    write_parquet(log_frame(T0, 10), tmp_path / "logs" / "a.parquet")
    write_parquet(log_frame(T0 + HOUR, 5), tmp_path / "logs" / "b.parquet")
    write_parquet(log_frame(T0 + 2 * HOUR, 7), tmp_path / "logs" / "old" / "c.parquet")  # not matched by *
    (tmp_path / "logs" / "notes.txt").write_text("not a log")
    got, report, _ = read(files("parquet", "logs/*.parquet", tmp_path))
    assert (report.files, len(got)) == (2, 15)
    got, report, _ = read(files("parquet", "logs/**/*.parquet", tmp_path))
    assert (report.files, len(got)) == (3, 22)
    got, report, _ = read(files("parquet", ["logs/a.parquet", str(tmp_path / "logs" / "old")], tmp_path))
    assert (report.files, len(got)) == (2, 17)


def test_folder_skips_hidden_and_bookkeeping_files(tmp_path: Path) -> None:
    write_parquet(log_frame(T0, 10), tmp_path / "logs" / "part-0.parquet")
    (tmp_path / "logs" / "_SUCCESS").write_text("")
    (tmp_path / "logs" / ".part-0.parquet.crc").write_bytes(b"\x00\x01")
    write_parquet(log_frame(T0, 99), tmp_path / "logs" / "_temporary" / "part-1.parquet")
    got, report, _ = read(files("parquet", "logs", tmp_path))
    assert (report.files, len(got), report.warnings) == (1, 10, [])


def test_compressed_csv_and_jsonl(tmp_path: Path) -> None:
    frame = log_frame(T0, 20)
    with gzip.open(tmp_path / "log.csv.gz", "wt") as handle:
        frame.to_csv(handle, index=False)
    with gzip.open(tmp_path / "log.jsonl.gz", "wt") as handle:
        for record in frame.assign(ts=frame["ts"].astype(str)).to_dict("records"):
            handle.write(json.dumps(record) + "\n")
    for kind in ("csv", "jsonl"):
        got, report, _ = read(files(kind, ".", tmp_path), ["x"])
        assert len(got) == 20 and got["x"].sum() == frame["x"].sum(), kind


# ---------------------------------------------------------------------------------------------- partitions


def hive_days(
    root: Path, days: int, rows_per_day: int = 240, row_group_size: int | None = 24, kind: str = "parquet"
) -> None:
    for day in range(days):
        start = T0 + timedelta(days=day)
        frame = log_frame(start, rows_per_day, timedelta(days=1) / rows_per_day)
        folder = root / f"date={start.date().isoformat()}"
        if kind == "parquet":
            write_parquet(frame, folder / "part-0.parquet", row_group_size)
        else:
            write_csv(frame, folder / "part-0.csv")


@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_hive_partitions_become_columns_and_prune_files(tmp_path: Path, kind: str) -> None:
    hive_days(tmp_path / "logs", 10, row_group_size=None, kind=kind)
    source = files(kind, "logs", tmp_path)
    everything, full, _ = read(source, ["x", "date"])
    assert (full.files, full.rows_scanned, len(everything)) == (10, 2400, 2400)
    day = Window(T0 + timedelta(days=4), T0 + timedelta(days=5))
    got, report, _ = read(source, ["x", "date"], window=day)
    assert len(got) == 240 and set(got["date"]) == {"2026-01-05"}
    assert got["ts"].min() == pd.Timestamp(day.start) and got["ts"].max() < pd.Timestamp(day.end)
    # Its own day and the two neighbours a local-time label could spill into; never the other seven.
    assert report.files == 3
    # CSV reads the three files whole; Parquet's statistics also skip the neighbours' rows.
    assert report.rows_scanned == (240 if kind == "parquet" else 3 * 240)


def test_pruning_keeps_partitions_labelled_in_local_time(tmp_path: Path) -> None:
    # 23:30 UTC on Jan 3 is 01:30 on Jan 4 in Europe/Helsinki: a writer in Helsinki files it under Jan 4.
    late = pd.DataFrame({"ts": [pd.Timestamp("2026-01-03 23:30")], "x": [1.0]})
    write_parquet(late, tmp_path / "logs" / "date=2026-01-04" / "p.parquet")
    early = late.assign(x=[2.0], ts=[pd.Timestamp("2026-01-01 12:00")])
    write_parquet(early, tmp_path / "logs" / "date=2026-01-01" / "p.parquet")
    got, report, _ = read(files("parquet", "logs", tmp_path), window=Window(T0 + timedelta(days=2), T0 + timedelta(days=3)))
    assert got["x"].tolist() == [1.0]
    assert report.files == 1  # Jan 1 cannot hold a Jan 3 row in any time zone


def test_partitioning_none_ignores_folder_names(tmp_path: Path) -> None:
    hive_days(tmp_path / "logs", 3)
    source = files("parquet", "logs", tmp_path, partitioning="none")
    got, report, _ = read(source, ["x", "date"], window=Window(T0, T0 + HOUR))
    assert "date" not in got.columns and report.missing_columns == {"date"}
    assert report.files == 3 and len(got) == 10


def test_partition_span_rules() -> None:
    day = (utc(2026, 1, 5), utc(2026, 1, 6))
    assert partition_span({"date": "2026-01-05"}) == day
    assert partition_span({"dt": "20260105"}) == day
    assert partition_span({"event_date": "2026-01-05", "model": "v2"}) == day
    assert partition_span({"date": "2026-01-05", "hour": "07"}) == (utc(2026, 1, 5, 7), utc(2026, 1, 5, 8))
    assert partition_span({"year": "2026", "month": "02"}) == (utc(2026, 2, 1), utc(2026, 3, 1))
    assert partition_span({"year": "2026", "month": "12", "day": "31", "hour": "23"}) == (utc(2026, 12, 31, 23), utc(2027, 1, 1))
    assert partition_span({"year": "2026", "day": "05"}) == (utc(2026, 1, 1), utc(2027, 1, 1))  # no month: the year
    assert partition_span({"day": "Monday"}) is None
    assert partition_span({"date": "2026-02-30"}) is None
    assert partition_span({"date": "2026-01-05", "month": "02", "year": "2026"}) is None  # contradiction: read it
    assert partition_span({"model": "v2"}) is None
    assert partition_span({"date": None}) is None
    assert parse_hive(["date=2026-01-05", "raw", "model=v%202", "k=__HIVE_DEFAULT_PARTITION__"]) == {
        "date": "2026-01-05", "model": "v 2", "k": None}
    window = Window(T0 + timedelta(days=4), T0 + timedelta(days=4, hours=1))  # Jan 5, 00:00-01:00
    assert may_overlap(day, window) and may_overlap(None, window)
    assert may_overlap((utc(2026, 1, 4), utc(2026, 1, 5)), window)  # could be a UTC-12 label
    assert not may_overlap((utc(2026, 1, 3), utc(2026, 1, 4)), window)
    assert may_overlap((utc(2026, 1, 5, 13), utc(2026, 1, 5, 14)), window)  # UTC+14 label of 13:00
    assert not may_overlap((utc(2026, 1, 5, 15), utc(2026, 1, 5, 16)), window)


# ---------------------------------------------------------------------------------------------- push-down


@pytest.mark.parametrize("stored", ["naive-us", "naive-ns", "aware-paris", "date-in-string"])
def test_row_group_statistics_skip_rows_outside_the_window(tmp_path: Path, stored: str) -> None:
    frame = log_frame(T0, 10_000)  # one row a minute, sorted
    if stored == "naive-ns":
        frame["ts"] = frame["ts"].astype("datetime64[ns]")
    elif stored == "aware-paris":
        frame["ts"] = frame["ts"].dt.tz_localize("UTC").dt.tz_convert("Europe/Paris")
    elif stored == "date-in-string":
        frame["ts"] = frame["ts"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")  # text has no usable statistics
    write_parquet(frame, tmp_path / "big.parquet", row_group_size=100)
    window = Window(T0 + timedelta(minutes=250), T0 + timedelta(minutes=370))
    got, report, _ = read(files("parquet", "big.parquet", tmp_path), window=window)
    assert got["x"].tolist() == list(np.arange(250.0, 370.0))
    # Row groups 200-299 and 300-399 of 100 row groups; text timestamps must be read whole.
    assert report.rows_scanned == (10_000 if stored == "date-in-string" else 200)
    assert report.files == 1


def test_row_group_statistics_work_for_epoch_columns(tmp_path: Path) -> None:
    frame = log_frame(T0, 1_000)
    frame["ts"] = frame["ts"].astype("int64") // 1_000  # us -> ms
    write_parquet(frame, tmp_path / "epoch.parquet", row_group_size=100)
    window = Window(T0 + timedelta(minutes=100), T0 + timedelta(minutes=150))
    got, report, _ = read(files("parquet", "epoch.parquet", tmp_path, timestamp_unit="ms"), window=window)
    assert got["x"].tolist() == list(np.arange(100.0, 150.0))
    assert report.rows_scanned == 100


def test_row_groups_of_null_timestamps_are_read_and_counted(tmp_path: Path) -> None:
    good = log_frame(T0, 100)
    nulls = log_frame(T0, 50).assign(ts=pd.Series([pd.NaT] * 50, dtype="datetime64[us]"))
    table = pa.Table.from_pandas(pd.concat([good, nulls], ignore_index=True), preserve_index=False)
    pq.write_table(table, tmp_path / "n.parquet", row_group_size=50)
    got, report, _ = read(files("parquet", "n.parquet", tmp_path), window=Window(T0, T0 + timedelta(minutes=10)))
    assert len(got) == 10
    assert report.bad_timestamps == 50 and report.rows_scanned == 100  # one row group of 50 rows skipped


# ---------------------------------------------------------------------------------------------- columns and batches


@pytest.mark.parametrize("kind,name", [("parquet", "a.parquet"), ("csv", "a.csv"), ("jsonl", "a.jsonl")])
def test_only_requested_columns_in_batches_of_bounded_size(tmp_path: Path, kind: str, name: str) -> None:
    write_log(kind, log_frame(T0, 103).assign(extra=1.5), tmp_path / name)
    got, report, frames = read(files(kind, name, tmp_path), ["cat"], batch_rows=10)
    assert [list(frame.columns) for frame in frames] == [["cat", "ts"]] * 11
    assert [len(frame) for frame in frames] == [10] * 10 + [3]
    assert len(got) == 103
    got, _, frames = read(files(kind, name, tmp_path), ["ts", "x"], batch_rows=50, window=Window(T0, T0 + timedelta(minutes=70)))
    assert list(got.columns) == ["ts", "x"] and len(got) == 70 and max(len(f) for f in frames) <= 50


def test_parquet_batches_follow_row_group_edges(tmp_path: Path) -> None:
    """No batch straddles two row groups (stitching them copies every column): a row group of at
    least ``batch_rows`` is read alone in even pieces, smaller neighbours together while they fit."""
    from monitor.sources.files import _row_group_runs

    frame = log_frame(T0, 470)
    sizes = [40, 50, 300, 60, 20]
    writer = pq.ParquetWriter(tmp_path / "g.parquet", pa.Table.from_pandas(frame, preserve_index=False).schema)
    start = 0
    for size in sizes:
        writer.write_table(pa.Table.from_pandas(frame.iloc[start : start + size], preserve_index=False), row_group_size=size)
        start += size
    writer.close()
    metadata = pq.ParquetFile(tmp_path / "g.parquet").metadata
    assert [metadata.row_group(g).num_rows for g in range(metadata.num_row_groups)] == sizes
    assert _row_group_runs(metadata, None, 100) == [([0, 1], 90), ([2], 100), ([3, 4], 80)]
    assert _row_group_runs(metadata, None, 130) == [([0, 1], 90), ([2], 100), ([3, 4], 80)]  # 300 in 3 even pieces
    assert _row_group_runs(metadata, [2, 4], 1000) == [([2, 4], 320)]
    got, report, frames = read(files("parquet", "g.parquet", tmp_path), ["x"], batch_rows=100)
    assert [len(f) for f in frames] == [90, 100, 100, 100, 80]
    assert got["x"].tolist() == frame["x"].tolist() and report.rows_scanned == 470


def test_only_the_reads_first_batch_is_decoded_on_all_cores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """At a read's start nothing is profiled yet, so its first batch is decoded in parallel; every
    later batch, of this file or the next, on the one read-ahead thread (the pool has the cores)."""
    hive_days(tmp_path / "logs", 3, rows_per_day=240, row_group_size=100)
    calls: list[bool] = []
    iter_batches = pq.ParquetFile.iter_batches

    def recording(self: pq.ParquetFile, *args: object, use_threads: bool = True, **kwargs: object):  # noqa: ANN202
        calls.append(use_threads)
        return iter_batches(self, *args, use_threads=use_threads, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", recording)
    got, report, frames = read(files("parquet", "logs", tmp_path), ["x"], batch_rows=100)
    assert report.files == 3 and len(got) == 720
    assert calls == [True] + [False] * 8  # 3 files of 3 row groups (100, 100, 40 rows)
    calls.clear()
    got, _, _ = read(files("parquet", "logs", tmp_path), ["x"], batch_rows=100, window=Window(T0 + timedelta(days=1), T0 + timedelta(days=2)))
    assert len(got) == 240 and calls == [True, False, False]  # the first file with rows in the window


def test_missing_column_is_reported_not_raised(tmp_path: Path) -> None:
    write_parquet(log_frame(T0, 10), tmp_path / "a.parquet")
    got, report, _ = read(files("parquet", "a.parquet", tmp_path), ["x", "income"])
    assert "income" not in got.columns and len(got) == 10
    assert report.missing_columns == {"income"}
    assert report.warnings == []  # missing everywhere: missing_columns says it all


def test_files_with_differing_schemas(tmp_path: Path) -> None:
    base = log_frame(T0, 4)
    write_parquet(base.assign(income=[1.0, 2.0, 3.0, 4.0]), tmp_path / "logs" / "a.parquet")
    write_parquet(base.assign(income=["5", "n/a", "7", "8"]), tmp_path / "logs" / "b.parquet")
    write_parquet(base, tmp_path / "logs" / "c.parquet")  # an older writer: no income at all
    report = ReadReport()
    frames = list(files("parquet", "logs", tmp_path).read(["income"], timestamp="ts", report=report))
    assert [list(frame.columns) for frame in frames] == [["income", "ts"], ["income", "ts"], ["ts"]]
    assert frames[0]["income"].tolist() == [1.0, 2.0, 3.0, 4.0]
    assert frames[1]["income"].tolist() == ["5", "n/a", "7", "8"]  # as written: the engine coerces
    assert report.rows == 12 and report.missing_columns == {"income"}
    assert any("'income' is missing from 1 of 3 files" in w and "c.parquet" in w for w in report.warnings)
    assert any("'income' has different types" in w and "string in 1 file (b.parquet)" in w for w in report.warnings)


def test_csv_column_with_junk_in_a_later_block_does_not_fail(tmp_path: Path) -> None:
    rows = 300_000  # several CSV blocks
    frame = log_frame(T0, rows, timedelta(seconds=1))
    frame["x"] = frame["x"].astype("int64").astype(object)
    frame.loc[rows - 1, "x"] = "oops"
    write_csv(frame, tmp_path / "a.csv")
    got, report, frames = read(files("csv", "a.csv", tmp_path), ["x"], batch_rows=100_000)
    assert len(got) == rows and report.bad_timestamps == 0
    assert str(frames[0]["x"].dtype) == "int64"  # typed where every value is a number
    assert frames[-1]["x"].iloc[-1] == "oops"  # the batch holding junk stays text
    assert any("'x' has different types" in w for w in report.warnings)


def test_csv_rows_with_wrong_field_counts_are_skipped_and_counted(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("ts,x\n2026-01-01T00:00:00,1\n2026-01-01T00:01:00,2,extra\n2026-01-01T00:02:00,3\n")
    got, report, _ = read(files("csv", "a.csv", tmp_path))
    assert got["x"].tolist() == [1, 3]
    assert report.rows_scanned == 3 and report.bad_timestamps == 1
    assert any("1 rows have the wrong number of fields" in w for w in report.warnings)


def test_jsonl_malformed_lines_missing_keys_and_mixed_types(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text(
        '{"ts": "2026-01-01T00:00:00Z", "x": 1, "label": "a"}\n'
        '{"ts": "2026-01-01T00:01:00Z", "x": "n/a"}\n'
        "\n"
        '{"ts": "2026-01-01T00:02:00Z", "x": 3\n'  # a writer cut off mid-line
        "[1, 2]\n"
        '{"ts": "2026-01-01T00:03:00Z", "x": 4.5, "label": "b"}'  # no newline at the end
    )
    got, report, _ = read(files("jsonl", "a.jsonl", tmp_path), ["x", "label"])
    assert got["x"].tolist() == [1, "n/a", 4.5]
    assert got["label"].isna().tolist() == [False, True, False]
    assert report.rows_scanned == 5 and report.bad_timestamps == 2 and report.rows == 3
    assert any("2 lines are not JSON objects" in w for w in report.warnings)


# ---------------------------------------------------------------------------------------------- timestamps

INSTANTS = pd.DatetimeIndex(
    ["2026-01-01 00:00", "2026-01-01 06:30:15.250", "2026-01-02 23:59:59.999999"], tz="UTC"
).as_unit("us")

# The same three instants as writers store them: (values, timestamp_unit, the instants expected back).
TIMESTAMP_FORMS: dict[str, tuple[pd.Series, str | None, pd.DatetimeIndex]] = {
    "naive": (pd.Series(INSTANTS.tz_localize(None)), None, INSTANTS),
    "naive-ns": (pd.Series(INSTANTS.tz_localize(None)).astype("datetime64[ns]"), None, INSTANTS),
    "aware-paris": (pd.Series(INSTANTS.tz_convert("Europe/Paris")), None, INSTANTS),
    "iso-offsets": (pd.Series([t.isoformat() for t in INSTANTS.tz_convert("Asia/Kolkata")]), None, INSTANTS),
    "mixed-text": (
        pd.Series(["2026-01-01T00:00:00Z", "2026-01-01 07:30:15.250+01:00", "Sat, 03 Jan 2026 00:59:59.999999 +0100"]),
        None,
        INSTANTS,
    ),
    "epoch-s": (pd.Series(INSTANTS.asi8 / 1e6), "s", INSTANTS),
    "epoch-ms": (pd.Series([1767225600000, 1767249015250, 1767398399999]), "ms", INSTANTS.floor("ms")),
    "epoch-us": (pd.Series(INSTANTS.asi8), "us", INSTANTS),
    "epoch-ns": (pd.Series(INSTANTS.asi8 * 1000), "ns", INSTANTS),
}


@pytest.mark.parametrize("form", sorted(TIMESTAMP_FORMS))
@pytest.mark.parametrize("kind", ["parquet", "csv", "jsonl"])
def test_every_timestamp_form_gives_the_same_utc_instants(tmp_path: Path, kind: str, form: str) -> None:
    stamps, unit, expected = TIMESTAMP_FORMS[form]
    frame = pd.DataFrame({"ts": stamps, "x": [1.0, 2.0, 3.0]})
    if kind == "parquet":
        write_parquet(frame, tmp_path / "log.parquet")
    elif kind == "csv":
        write_csv(frame, tmp_path / "log.csv")  # pandas writes datetimes as '2026-01-01 01:00:00+01:00'
    else:
        write_jsonl([{"ts": ts, "x": x} for ts, x in zip(stamps.tolist(), frame["x"])], tmp_path / "log.jsonl")
    got, report, _ = read(files(kind, f"log.{kind}", tmp_path, timestamp_unit=unit))
    assert str(got["ts"].dtype) == "datetime64[us, UTC]"
    assert got["ts"].tolist() == list(expected)
    assert report.bad_timestamps == 0


@pytest.mark.parametrize("kind", ["parquet", "csv", "jsonl"])
def test_epoch_numbers_without_a_unit_ask_for_one(tmp_path: Path, kind: str) -> None:
    frame = pd.DataFrame({"ts": [1767225600, 1767225660], "x": [1.0, 2.0]})
    if kind == "jsonl":
        write_jsonl(frame.to_dict("records"), tmp_path / "e.jsonl")
    else:
        write_log(kind, frame, tmp_path / f"e.{kind}")
    with pytest.raises(SourceError, match=r"set `timestamp_unit`.*looks like s|looks like s.*timestamp_unit"):
        read(files(kind, f"e.{kind}", tmp_path))


@pytest.mark.parametrize("kind", ["parquet", "csv", "jsonl"])
def test_unparseable_and_null_timestamps_are_counted_and_dropped(tmp_path: Path, kind: str) -> None:
    frame = pd.DataFrame({"ts": ["2026-01-01T00:00:00", "garbage", None, "2026-13-45", "2026-01-01T00:05:00"],
                          "x": [1.0, 2.0, 3.0, 4.0, 5.0]})
    if kind == "jsonl":
        write_jsonl(frame.to_dict("records"), tmp_path / "b.jsonl")
    else:
        write_log(kind, frame, tmp_path / f"b.{kind}")
    got, report, _ = read(files(kind, f"b.{kind}", tmp_path))
    assert got["x"].tolist() == [1.0, 5.0]
    assert (report.rows_scanned, report.bad_timestamps, report.rows) == (5, 3, 2)
    # A window sees the same bad rows: they belong to no window, but were scanned for it.
    _, windowed, _ = read(files(kind, f"b.{kind}", tmp_path), window=Window(T0, T0 + timedelta(minutes=1)))
    assert (windowed.rows, windowed.bad_timestamps) == (1, 3)


def test_epochs_mixed_into_text_without_a_unit_are_bad_with_a_hint(tmp_path: Path) -> None:
    write_jsonl([{"ts": "2026-01-01T00:00:00Z", "x": 1}, {"ts": 1767225600, "x": 2}], tmp_path / "m.jsonl")
    got, report, _ = read(files("jsonl", "m.jsonl", tmp_path))
    assert got["x"].tolist() == [1] and report.bad_timestamps == 1
    assert any("set `timestamp_unit` (probably s)" in w for w in report.warnings)
    got, report, _ = read(files("jsonl", "m.jsonl", tmp_path, timestamp_unit="s"))
    assert got["ts"].tolist() == [pd.Timestamp(T0)] * 2 and report.bad_timestamps == 0


def test_absurd_epochs_are_bad_timestamps_not_crashes(tmp_path: Path) -> None:
    frame = pd.DataFrame({"ts": [1767225600.0, float("inf"), 1e300, -1e20], "x": [1.0, 2.0, 3.0, 4.0]})
    write_parquet(frame, tmp_path / "a.parquet")
    got, report, _ = read(files("parquet", "a.parquet", tmp_path, timestamp_unit="s"))
    assert got["x"].tolist() == [1.0] and report.bad_timestamps == 3


# ---------------------------------------------------------------------------------------------- errors


def test_missing_timestamp_column_raises_with_the_columns_there(tmp_path: Path) -> None:
    write_parquet(log_frame(T0, 5), tmp_path / "a.parquet")
    with pytest.raises(SourceError, match=r"timestamp column 'time' not found.*columns there: cat, ts, x"):
        read(files("parquet", "a.parquet", tmp_path), timestamp="time")


def test_timestamp_column_missing_from_some_files_counts_their_rows_as_bad(tmp_path: Path) -> None:
    write_csv(log_frame(T0, 5), tmp_path / "logs" / "a.csv")
    write_csv(log_frame(T0, 3).drop(columns="ts"), tmp_path / "logs" / "b.csv")
    got, report, _ = read(files("csv", "logs", tmp_path))
    assert len(got) == 5 and report.rows_scanned == 8 and report.bad_timestamps == 3
    assert any("timestamp column 'ts' is missing from 1 of 2 files read (b.csv)" in w for w in report.warnings)


def test_missing_paths_raise_clear_errors(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    with pytest.raises(SourceError, match=r"no files match 'logs/\*.parquet' \(looked in .*logs\)"):
        read(files("parquet", "logs/*.parquet", tmp_path))
    with pytest.raises(SourceError, match=r"'nope.parquet' does not exist \(looked for .*nope.parquet\).*resolved against"):
        read(files("parquet", "nope.parquet", tmp_path))
    with pytest.raises(SourceError, match=r"folder .*logs holds no csv files"):
        read(files("csv", "logs", tmp_path))
    with pytest.raises(SourceError, match=r"folder .*missing does not exist"):
        read(files("csv", "missing/*.csv", tmp_path))


def test_unreadable_file_is_skipped_with_a_warning(tmp_path: Path) -> None:
    write_parquet(log_frame(T0, 5), tmp_path / "logs" / "a.parquet")
    (tmp_path / "logs" / "b.parquet").write_bytes(b"PAR1 still being written")
    got, report, _ = read(files("parquet", "logs", tmp_path))
    assert len(got) == 5 and report.files == 1
    assert any("b.parquet could not be read" in w for w in report.warnings)


def test_empty_window_yields_nothing(tmp_path: Path) -> None:
    write_parquet(log_frame(T0, 60), tmp_path / "a.parquet")
    got, report, frames = read(files("parquet", "a.parquet", tmp_path), window=Window(T0 + 5 * HOUR, T0 + 6 * HOUR))
    assert frames == [] and report.rows == 0 and report.warnings == []


# ---------------------------------------------------------------------------------------------- columns(), max_timestamp()


def test_columns_kinds_union_over_files_and_partitions(tmp_path: Path) -> None:
    base = log_frame(T0, 3).assign(flag=[True, False, True], n=[1, 2, 3], tags=[[1], [2], []])
    write_parquet(base, tmp_path / "logs" / "model=v1" / "a.parquet")
    write_parquet(base.drop(columns="tags").assign(late=1.5), tmp_path / "logs" / "model=v2" / "b.parquet")
    kinds = files("parquet", "logs", tmp_path).columns()
    assert kinds == {"ts": "timestamp", "x": "numeric", "cat": "string", "flag": "bool", "n": "numeric",
                     "tags": "other", "late": "numeric", "model": "string"}
    write_csv(base.drop(columns="tags").assign(when=["2026-01-01T00:00:00Z"] * 3), tmp_path / "c.csv")
    assert files("csv", "c.csv", tmp_path).columns() == {
        "ts": "timestamp", "x": "numeric", "cat": "string", "flag": "bool", "n": "numeric", "when": "timestamp"}
    write_jsonl([{"ts": "2026-01-01", "x": 1.5, "ok": True, "s": "a", "d": {"k": 1}, "e": "x"},
                 {"ts": "2026-01-02", "x": 2, "ok": False, "s": "b", "d": {"k": 2}, "e": 5}], tmp_path / "j.jsonl")
    assert files("jsonl", "j.jsonl", tmp_path).columns() == {
        "ts": "timestamp", "x": "numeric", "ok": "bool", "s": "string", "d": "other", "e": "string"}


def test_columns_majority_kind_wins(tmp_path: Path) -> None:
    for name, values in (("a", [1.0]), ("b", [2.0]), ("c", ["3"])):
        write_parquet(pd.DataFrame({"v": values}), tmp_path / f"{name}.parquet")
    assert files("parquet", ".", tmp_path).columns() == {"v": "numeric"}


def test_max_timestamp_files(tmp_path: Path) -> None:
    hive_days(tmp_path / "logs", 4)
    assert files("parquet", "logs", tmp_path).max_timestamp("ts") == datetime(2026, 1, 4, 23, 54, tzinfo=UTC)
    write_csv(log_frame(T0, 30), tmp_path / "c" / "a.csv")
    assert files("csv", "c", tmp_path).max_timestamp("ts") == datetime(2026, 1, 1, 0, 29, tzinfo=UTC)
    write_jsonl([{"ts": "2026-01-01T05:00:00+05:00"}, {"ts": "2026-01-01T01:00:00Z"}, {"ts": "junk"}], tmp_path / "j.jsonl")
    assert files("jsonl", "j.jsonl", tmp_path).max_timestamp("ts") == datetime(2026, 1, 1, 1, tzinfo=UTC)
    write_parquet(pd.DataFrame({"ts": pd.Series([pd.NaT], dtype="datetime64[us]")}), tmp_path / "none.parquet")
    assert files("parquet", "none.parquet", tmp_path).max_timestamp("ts") is None
    with pytest.raises(SourceError, match="timestamp column 'when' not found"):
        files("parquet", "logs", tmp_path).max_timestamp("when")


@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_max_timestamp_reads_newest_partitions_only(tmp_path: Path, kind: str) -> None:
    hive_days(tmp_path / "logs", 5, kind=kind)
    # A row misfiled under an old date: a full read sees it, but max_timestamp stops at the newest
    # partitions, because a Jan 1 label cannot hold a Jan 9 row (the documented assumption).
    misfiled = pd.DataFrame({"ts": [pd.Timestamp("2026-01-09")], "x": [0.0], "cat": ["c0"]})
    write_log(kind, misfiled, tmp_path / "logs" / "date=2026-01-01" / f"late.{kind}")
    source = files(kind, "logs", tmp_path)
    assert source.max_timestamp("ts") == datetime(2026, 1, 5, 23, 54, tzinfo=UTC)
    everything, _, _ = read(source)
    assert everything["ts"].max() == pd.Timestamp("2026-01-09", tz="UTC")


def test_jsonl_partitions_and_offsets(tmp_path: Path) -> None:
    # Whole seconds with offsets: Arrow's JSON reader types these itself; the instants must not move.
    write_jsonl([{"ts": "2026-01-01T05:30:00+05:30", "x": 1}, {"ts": "2026-01-01T00:00:00Z", "x": 2}],
                tmp_path / "logs" / "model=v1" / "a.jsonl")
    write_jsonl([{"ts": "2025-12-31T19:00:00-05:00", "x": 3}], tmp_path / "logs" / "model=v2" / "b.jsonl")
    got, report, _ = read(files("jsonl", "logs", tmp_path), ["model", "x"])
    assert list(got.columns) == ["model", "x", "ts"]
    assert got["model"].tolist() == ["v1", "v1", "v2"] and got["x"].tolist() == [1, 2, 3]
    assert got["ts"].tolist() == [pd.Timestamp(T0)] * 3


def test_read_all_needs_no_timestamp(tmp_path: Path) -> None:
    write_parquet(log_frame(T0, 5).drop(columns="ts"), tmp_path / "train.parquet")
    source = files("parquet", "train.parquet", tmp_path)
    report = ReadReport()
    got = pd.concat(source.read_all(["x", "gone"], report=report))  # type: ignore[attr-defined]
    assert list(got.columns) == ["x"] and len(got) == 5
    assert report.missing_columns == {"gone"} and report.bad_timestamps == 0
    url = sqlite_table(tmp_path / "t.db", [(None, 1.0, "a"), ("junk", 2.0, "b")])
    got = pd.concat(sql(tmp_path, url, table="logs").read_all(["x", "cat"]))  # type: ignore[attr-defined]
    assert list(got.columns) == ["x", "cat"] and got["x"].tolist() == [1.0, 2.0]


# ---------------------------------------------------------------------------------------------- SQL


def sqlite_table(path: Path, rows: list[tuple], ts_type: str = "DATETIME") -> str:
    with sqlite3.connect(path) as connection:
        connection.execute(f"create table logs (ts {ts_type}, x real, cat text)")
        connection.executemany("insert into logs values (?, ?, ?)", rows)
    return f"sqlite:///{path.name}"


_OPENED: list[Source] = []


@pytest.fixture(autouse=True)
def _close_sql_sources() -> Iterator[None]:
    """Dispose of connection pools, so no connection outlives its test."""
    yield
    while _OPENED:
        _OPENED.pop().close()


def sql(base: Path | None, url: str, **options: object) -> Source:
    source = open_source(SqlSourceSpec.model_validate({"type": "sql", "url": url, **options}), base_dir=base)
    _OPENED.append(source)
    return source


def test_sqlite_sqlalchemy_datetimes_window_edges(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'logs.db'}")
    table = sa.Table("logs", sa.MetaData(), sa.Column("ts", sa.DateTime), sa.Column("x", sa.Float), sa.Column("cat", sa.String))
    table.metadata.create_all(engine)
    tick = timedelta(microseconds=1)
    stamps = [T0 + HOUR - tick, T0 + HOUR, T0 + 2 * HOUR - tick, T0 + 2 * HOUR, None]
    with engine.begin() as connection:
        connection.execute(table.insert(), [{"ts": s and s.replace(tzinfo=None), "x": float(i), "cat": "a"} for i, s in enumerate(stamps)])
    engine.dispose()
    source = sql(tmp_path, "sqlite:///logs.db", table="logs")
    assert isinstance(source, SqlSource) and isinstance(source, Source)
    got, report, _ = read(source, ["x"], window=Window(T0 + HOUR, T0 + 2 * HOUR))
    assert got["x"].tolist() == [1.0, 2.0]
    assert got["ts"].tolist() == [pd.Timestamp(T0 + HOUR), pd.Timestamp(T0 + 2 * HOUR - tick)]
    assert str(got["ts"].dtype) == "datetime64[us, UTC]"
    assert report.rows_scanned == 2  # the WHERE clause ran in SQLite
    everything, full, _ = read(source, ["x", "cat"])
    assert len(everything) == 4 and full.bad_timestamps == 1  # the NULL belongs to no window
    assert source.max_timestamp("ts") == T0 + 2 * HOUR
    assert source.columns() == {"ts": "timestamp", "x": "numeric", "cat": "string"}


@pytest.mark.parametrize(
    "texts",
    [
        ["2026-01-01 00:59:59", "2026-01-01 01:00:00", "2026-01-01 01:59:59.999999", "2026-01-01 02:00:00"],  # sqlite3's str()
        ["2026-01-01T00:59:59", "2026-01-01T01:00:00", "2026-01-01T01:59:59.5", "2026-01-01T02:00:00"],  # ISO with T
        ["2026-01-01 00:59:59Z", "2026-01-01T01:00:00.000Z", "2026-01-01 01:59:59Z", "2026-01-01T02:00:00Z"],  # both, Z
        ["2026-01-01T02:59:59+02:00", "2026-01-01T03:00:00+02:00", "2026-01-01T00:59:00-01:00", "2026-01-01T04:00:00+02:00"],
        ["2026-01-01 00:59", "2026-01-01 01:00", "2026-01-01 01:59", "2026-01-01 02:00"],  # no seconds
    ],
    ids=["space", "T", "mixed-separators", "offsets", "minutes"],
)
def test_sqlite_text_timestamps_filter_correctly(tmp_path: Path, texts: list[str]) -> None:
    url = sqlite_table(tmp_path / "t.db", [(text, float(i), "a") for i, text in enumerate(texts)], ts_type="TEXT")
    got, report, _ = read(sql(tmp_path, url, table="logs"), ["x"], window=Window(T0 + HOUR, T0 + 2 * HOUR))
    assert got["x"].tolist() == [1.0, 2.0]
    assert report.warnings == []


def test_sqlite_epoch_numbers_and_query_source(tmp_path: Path) -> None:
    epochs = [(int((T0 + timedelta(minutes=30 * i)).timestamp() * 1000), float(i), "ab"[i % 2]) for i in range(10)]
    url = sqlite_table(tmp_path / "e.db", epochs, ts_type="INTEGER")
    window = Window(T0 + HOUR, T0 + 2 * HOUR)
    with pytest.raises(SourceError, match="set `timestamp_unit`"):
        read(sql(tmp_path, url, table="logs"), window=window)
    got, report, _ = read(sql(tmp_path, url, table="logs", timestamp_unit="ms"), ["x"], window=window)
    assert got["x"].tolist() == [2.0, 3.0] and report.rows_scanned == 2
    query = sql(tmp_path, url, query="select ts, x * 10 as x10, cat from logs where cat = 'a';", timestamp_unit="ms")
    got, report, _ = read(query, ["x10", "nope"], window=Window(T0, T0 + 3 * HOUR))
    assert got["x10"].tolist() == [0.0, 20.0, 40.0]
    assert report.missing_columns == {"nope"}
    assert query.max_timestamp("ts") == T0 + timedelta(minutes=240)
    assert query.columns() == {"ts": "numeric", "x10": "numeric", "cat": "string"}


def test_sql_text_that_is_not_iso_is_read_whole_and_filtered_after(tmp_path: Path) -> None:
    url = sqlite_table(tmp_path / "t.db", [("Jan 1 2026 01:30", 1.0, "a"), ("Jan 1 2026 03:30", 2.0, "a")], ts_type="TEXT")
    got, report, _ = read(sql(tmp_path, url, table="logs"), ["x"], window=Window(T0 + HOUR, T0 + 2 * HOUR))
    assert got["x"].tolist() == [1.0] and report.rows_scanned == 2
    assert any("cannot compare" in w for w in report.warnings)


def test_sql_max_timestamp_of_text_with_offsets_is_the_newest_instant(tmp_path: Path) -> None:
    url = sqlite_table(tmp_path / "t.db", [("2026-01-01T23:00:00+05:00", 1.0, "a"), ("2026-01-01T20:00:00Z", 2.0, "a")], ts_type="TEXT")
    assert sql(tmp_path, url, table="logs").max_timestamp("ts") == datetime(2026, 1, 1, 20, tzinfo=UTC)


def test_sql_batches_are_bounded(tmp_path: Path) -> None:
    url = sqlite_table(tmp_path / "t.db", [((T0 + timedelta(minutes=i)).isoformat(), float(i), "a") for i in range(25)])
    _, report, frames = read(sql(tmp_path, url, table="logs"), ["x"], batch_rows=10)
    assert [len(frame) for frame in frames] == [10, 10, 5] and report.rows == 25


def test_sql_errors_are_clear(tmp_path: Path) -> None:
    url = sqlite_table(tmp_path / "t.db", [("2026-01-01 00:00:00", 1.0, "a")])
    with pytest.raises(SourceError, match=r"table 'analytics.logs' not found in the default schema .*tables there: logs.*schema: analytics"):
        read(sql(tmp_path, url, table="analytics.logs"))
    with pytest.raises(SourceError, match=r"timestamp column 'time' not found in sql table logs .*columns there: ts, x, cat"):
        read(sql(tmp_path, url, table="logs"), timestamp="time")
    with pytest.raises(SourceError, match=r"SQLite database .*missing.db does not exist"):
        read(sql(tmp_path, "sqlite:///missing.db", table="logs"))
    assert not (tmp_path / "missing.db").exists()
    with pytest.raises(SourceError, match=r"the query failed: .*no such table"):
        read(sql(tmp_path, url, query="select * from nowhere"))


def test_passwords_never_appear_in_messages() -> None:
    assert redact_url("postgresql+psycopg://bob:s3cret@db:5432/logs") == "postgresql+psycopg://bob:***@db:5432/logs"
    assert "s3cret" not in redact_url("mssql+pyodbc://h/db?password=s3cret&driver=x")
    source = open_source(SqlSourceSpec(type="sql", url="postgresql://bob:s3cret@127.0.0.1:1/logs", table="t"))
    assert "s3cret" not in source.description and "bob:***@" in source.description
    with pytest.raises(SourceError) as caught:
        source.columns()
    message = str(caught.value)
    assert message.startswith("cannot connect to postgresql+psycopg://bob:***@127.0.0.1:1/logs")
    assert "s3cret" not in message


# ---------------------------------------------------------------------------------------------- PostgreSQL


def _pg_logs(url: str) -> None:
    engine = sa.create_engine(url)
    table = sa.Table(
        "logs", sa.MetaData(),
        sa.Column("naive_ts", sa.DateTime(timezone=False)),
        sa.Column("aware_ts", sa.DateTime(timezone=True)),
        sa.Column("x", sa.Float), sa.Column("cat", sa.String), sa.Column("flag", sa.Boolean), sa.Column("n", sa.Numeric(10, 2)),
    )
    table.metadata.create_all(engine)
    tick = timedelta(microseconds=1)
    stamps = [T0 + HOUR - tick, T0 + HOUR, T0 + 2 * HOUR - tick, T0 + 2 * HOUR]
    with engine.begin() as connection:
        connection.execute(table.insert(), [
            {"naive_ts": s.replace(tzinfo=None), "aware_ts": s.astimezone(timezone(timedelta(hours=-5))),
             "x": float(i), "cat": "ab"[i % 2], "flag": i % 2 == 0, "n": i}
            for i, s in enumerate(stamps)
        ] + [{"naive_ts": None, "aware_ts": None, "x": 9.0, "cat": "z", "flag": None, "n": None}])
    engine.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("column", ["naive_ts", "aware_ts"])
def test_postgres_timestamp_and_timestamptz_windows(pg_url: str, column: str) -> None:
    _pg_logs(pg_url)
    # A session time zone far from UTC: a bound compared through it would shift the window by 9 hours.
    tokyo = pg_url + "%20-ctimezone%3DAsia/Tokyo"
    for url in (pg_url, tokyo):
        source = sql(None, url, table="logs")
        got, report, _ = read(source, ["x"], timestamp=column, window=Window(T0 + HOUR, T0 + 2 * HOUR))
        assert got["x"].tolist() == [1.0, 2.0], url
        assert got[column].tolist() == [pd.Timestamp(T0 + HOUR), pd.Timestamp(T0 + 2 * HOUR - timedelta(microseconds=1))]
        assert str(got[column].dtype) == "datetime64[us, UTC]"
        assert report.rows_scanned == 2
        assert source.max_timestamp(column) == T0 + 2 * HOUR


@pytest.mark.postgres
def test_postgres_query_source_streams_batches_and_reports(pg_url: str) -> None:
    _pg_logs(pg_url)
    query = sql(None, pg_url, query="select aware_ts as ts, x, cat, n from logs where cat <> 'z'")
    got, report, frames = read(query, ["x", "n", "missing"], batch_rows=3)
    assert [len(frame) for frame in frames] == [3, 1]
    assert sorted(got["x"]) == [0.0, 1.0, 2.0, 3.0] and report.missing_columns == {"missing"}
    got, report, _ = read(query, ["cat"], window=Window(T0, T0 + HOUR))
    assert got["cat"].tolist() == ["a"]
    table = sql(None, pg_url, table="logs")
    assert table.columns() == {"naive_ts": "timestamp", "aware_ts": "timestamp", "x": "numeric", "cat": "string",
                               "flag": "bool", "n": "numeric"}
    assert query.columns() == {"ts": "timestamp", "x": "numeric", "cat": "string", "n": "numeric"}
    with pytest.raises(SourceError, match=r"table 'nope' not found in the default schema .*tables there: logs"):
        read(sql(None, pg_url, table="nope"))


@pytest.mark.postgres
def test_postgres_schema_key_and_empty_table(pg_url: str) -> None:
    engine = sa.create_engine(pg_url)
    with engine.begin() as connection:
        schema = connection.execute(sa.text("select current_schema()")).scalar()
        connection.execute(sa.text('create table "Empty Logs" (ts timestamptz, x float)'))
    engine.dispose()
    source = sql(None, pg_url, table="Empty Logs", schema=schema)
    got, report, frames = read(source, ["x"], window=Window(T0, T0 + HOUR))
    assert frames == [] and report.rows == 0
    assert source.max_timestamp("ts") is None
