"""Databricks Model Serving inference tables: JSON requests and responses unpacked into records.

The fixture is a legacy inference table as Databricks writes it (``databricks_request_id,
client_request_id, date, timestamp_ms, status_code, sampling_fraction, execution_time_ms, request,
response, request_metadata``; request and response JSON text, metadata a map), stored as a Delta
table, a Parquet folder or a SQLite table; the last test runs a whole monitor over one.
"""

from __future__ import annotations

import json
import sqlite3
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable, write_deltalake

from monitor.config import load_config, parse_config
from monitor.engine.pandas_engine import infer_features
from monitor.runner import Runner
from monitor.sources import (
    DeltaSourceSpec,
    FileSourceSpec,
    InferenceTableSource,
    ReadReport,
    SourceError,
    SqlSourceSpec,
    open_source,
)
from monitor.sources.inference_table import (
    _Notes,
    _records_arrow,
    model_versions,
    parse_requests,
    parse_responses,
    request_records,
    response_predictions,
)
from monitor.store import Store
from monitor.windows import Window

UTC = timezone.utc
T0 = datetime(2026, 3, 1, tzinfo=UTC)
DAY = timedelta(days=1)

LEGACY = pa.schema(
    [
        ("databricks_request_id", pa.string()),
        ("client_request_id", pa.string()),
        ("date", pa.date32()),
        ("timestamp_ms", pa.int64()),
        ("status_code", pa.int32()),
        ("sampling_fraction", pa.float64()),
        ("execution_time_ms", pa.int64()),
        ("request", pa.string()),
        ("response", pa.string()),
        ("request_metadata", pa.map_(pa.string(), pa.string())),
    ]
)


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def row(rid: str, moment: datetime, records: list[dict], predictions: list | None, *, status: int = 200,
        latency: int = 40, version: str | None = "3", request: str | None = None, response: str | None = None) -> dict:
    metadata = {"model_name": "risk", "endpoint_name": "risk-endpoint"}
    if version is not None:
        metadata["model_version"] = version
    return {
        "databricks_request_id": rid,
        "client_request_id": None,
        "date": moment.date(),
        "timestamp_ms": ms(moment),
        "status_code": status,
        "sampling_fraction": 1.0,
        "execution_time_ms": latency,
        "request": request if request is not None else json.dumps({"dataframe_records": records}),
        "response": response if response is not None else json.dumps({"predictions": predictions}),
        "request_metadata": list(metadata.items()),
    }


def small_table() -> list[dict]:
    """Six requests on 2026-03-01 and one the next day, each with something to check."""
    t = T0 + timedelta(hours=9)
    return [
        row("r1", t, [{"age": 30, "region": "EU"}], [0.1], latency=12),
        row("r2", t + timedelta(minutes=1), [{"age": 40, "region": "US"}, {"age": 50, "region": "EU"}, {"age": 60, "region": None}],
            [0.2, 0.3, 0.4], latency=30, version="4"),
        row("r3", t + timedelta(minutes=2), [{"age": 70, "region": "EU"}], None, status=500,
            response='{"error_code": "INTERNAL_ERROR", "message": "boom"}'),
        row("r4", t + timedelta(minutes=3), [], None, request='{"dataframe_records": [{"age": 1,'),  # cut off
        row("r5", t + timedelta(minutes=4), [{"age": 80, "region": "US"}], [0.5], version=None),
        row("r6", t + timedelta(minutes=5), [{"age": 90, "region": "EU", "extra": True}], [0.6]),
        row("r7", T0 + DAY + timedelta(hours=1), [{"age": 99, "region": "EU"}], [0.9]),
    ]


def write_delta(path: Path, rows: list[dict], mode: str = "append") -> Path:
    write_deltalake(path, pa.Table.from_pylist(rows, schema=LEGACY), partition_by=["date"], mode=mode)
    return path


def inference(spec_type: str, path: Path, **adapter: object) -> InferenceTableSource:
    if spec_type == "delta":
        spec = DeltaSourceSpec(type="delta", path=str(path), inference_table=adapter)
    else:
        spec = FileSourceSpec(type=spec_type, path=str(path), inference_table=adapter)
    source = open_source(spec)
    assert isinstance(source, InferenceTableSource)
    return source


def read(source, columns, window=None, *, batch_rows=100_000, timestamp="timestamp"):
    report = ReadReport()
    frames = list(source.read(columns, timestamp=timestamp, window=window, batch_rows=batch_rows, report=report))
    return (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()), report, frames


ALL = ["age", "region", "prediction", "latency_ms", "model_version", "status_code", "request_id", "record_id"]
DAY0 = Window(T0, T0 + DAY)


@pytest.fixture(params=[True, False], ids=["arrow-json", "json-loads"])
def fast(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    monkeypatch.setattr(InferenceTableSource, "fast_json", request.param)
    return request.param


# ---------------------------------------------------------------------------------------------- unpacking


def test_legacy_table_unpacks_one_row_per_record(tmp_path: Path, fast: bool) -> None:
    source = inference("delta", write_delta(tmp_path / "t", small_table()), )
    frame, report, _ = read(source, ALL, DAY0)
    assert list(frame.columns) == [*ALL, "timestamp"]
    # r1 (1 record) + r2 (3) + r5 (1) + r6 (1); r3 failed, r4 is malformed, r7 is another day
    assert frame["request_id"].tolist() == ["r1", "r2", "r2", "r2", "r5", "r6"]
    assert frame["record_id"].tolist() == ["r1:0", "r2:0", "r2:1", "r2:2", "r5:0", "r6:0"]
    assert frame["age"].tolist() == [30, 40, 50, 60, 80, 90]
    assert frame["region"].tolist()[:3] == ["EU", "US", "EU"] and pd.isna(frame["region"].iloc[3])
    assert frame["prediction"].tolist() == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    assert frame["latency_ms"].tolist() == [12, 30, 30, 30, 40, 40]  # the request's, on each record
    assert frame["model_version"].tolist()[:4] == ["3", "4", "4", "4"] and pd.isna(frame["model_version"].iloc[4])
    assert set(frame["status_code"]) == {200}
    assert str(frame["timestamp"].dtype) == "datetime64[us, UTC]"
    assert frame["timestamp"].iloc[1] == frame["timestamp"].iloc[3] == pd.Timestamp(T0 + timedelta(hours=9, minutes=1))
    # the report: requests scanned by the Delta source, records yielded, what was dropped and why
    assert report.files == 1 and report.rows_scanned == 6 and report.rows == 6 and report.bad_timestamps == 0
    assert report.missing_columns == set()
    assert any("1 of 6 requests failed (status code other than 200; 500: 1) and were dropped" in w for w in report.warnings)
    assert any("1 requests hold no readable records" in w for w in report.warnings)


def test_arrow_and_row_by_row_parsing_agree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    rows = []
    for i in range(300):
        n = int(rng.integers(1, 4))
        records = [{"age": int(rng.integers(18, 90)), "income": float(rng.lognormal(10, 0.5)), "region": str(rng.choice(["EU", "US"])),
                    "since": "2020-01-0" + str(1 + i % 9)} for _ in range(n)]
        if i % 7 == 0:
            records[0]["income"] = None
        rows.append(row(f"r{i}", T0 + timedelta(minutes=i), records, [float(v) for v in rng.uniform(size=n)]))
    path = write_delta(tmp_path / "t", rows)
    requests = DeltaTable(path).to_pyarrow_dataset().to_table(columns=["request"]).column(0).to_pandas()
    assert _records_arrow(requests, None) is not None  # the batch really takes the Arrow path
    assert _records_arrow(pd.concat([requests, pd.Series(["{broken"])]), None) is None  # and a bad row leaves it
    columns = ["age", "income", "region", "since", "prediction", "model_version"]
    monkeypatch.setattr(InferenceTableSource, "fast_json", True)
    arrow, _, _ = read(inference("delta", path), columns, DAY0)
    monkeypatch.setattr(InferenceTableSource, "fast_json", False)
    python, _, _ = read(inference("delta", path), columns, DAY0)
    pd.testing.assert_frame_equal(arrow, python)
    assert len(arrow) == sum(len(json.loads(r["request"])["dataframe_records"]) for r in rows)
    assert arrow["since"].iloc[0] == "2020-01-01"  # date-like text stays text (Arrow would invent a timestamp)


def test_batches_hold_at_most_batch_rows_records(tmp_path: Path, fast: bool) -> None:
    rows = [row(f"r{i}", T0 + timedelta(minutes=i), [{"age": i, "region": "EU"}] * 5, [0.5] * 5) for i in range(20)]
    _, report, frames = read(inference("delta", write_delta(tmp_path / "t", rows)), ["age"], DAY0, batch_rows=7)
    assert max(len(part) for part in frames) <= 7 and sum(len(part) for part in frames) == 100 == report.rows


def test_request_formats(fast: bool) -> None:
    assert request_records({"dataframe_records": [{"a": 1}, {"a": 2}]}) == [{"a": 1}, {"a": 2}]
    assert request_records({"dataframe_split": {"index": [0, 1], "columns": ["a", "b"], "data": [[1, "x"], [2, "y"]]}}) == [
        {"a": 1, "b": "x"}, {"a": 2, "b": "y"},
    ]
    assert request_records({"instances": [{"a": 1}, {"a": 2}]}) == [{"a": 1}, {"a": 2}]
    assert request_records({"instances": [[1, 2], [3, 4]]}) == [{"input_0": 1, "input_1": 2}, {"input_0": 3, "input_1": 4}]
    assert request_records({"inputs": {"a": [1, 2], "b": ["x", "y"]}}) == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]
    assert request_records({"inputs": {"a": 1, "b": "x"}}) == [{"a": 1, "b": "x"}]
    assert request_records({"inputs": {"a": [1, 2], "b": ["x"]}}) is None  # ragged columns
    assert request_records({"dataframe_split": {"columns": ["a"], "data": [[1, 2]]}}) is None
    assert request_records({"prompt": "hello"}) is None and request_records("text") is None
    values = pd.Series([
        json.dumps({"dataframe_split": {"columns": ["a"], "data": [[1], [2]]}}),
        json.dumps({"instances": [{"a": 3}]}),
        "not json",
        None,
        json.dumps({"dataframe_records": [{"a": 4}]}),
    ])
    counts, records = parse_requests(values, fast=fast)
    assert counts.tolist() == [2, 1, -1, -1, 1] and records["a"].tolist() == [1, 2, 3, 4]


def test_response_formats_and_prediction_field(fast: bool) -> None:
    assert response_predictions({"predictions": [1, 0]}) == [1, 0]
    assert response_predictions({"outputs": [0.3]}) == [0.3]
    assert response_predictions([0.1, 0.2]) == [0.1, 0.2]
    assert response_predictions({"error_code": "BAD_REQUEST"}) is None
    notes = _Notes()
    objects = pd.Series([json.dumps({"predictions": [{"label": 1, "score": 0.8}, {"label": 0, "score": 0.1}]})])
    counts, values = parse_responses(objects, "score", notes, fast=fast)
    assert counts.tolist() == [2] and values.tolist() == [0.8, 0.1] and not notes.unpicked
    counts, values = parse_responses(objects, None, notes, fast=fast)
    assert values.isna().all() and any("set inference_table.prediction_field" in note for note in notes.unpicked)
    single = pd.Series([json.dumps({"predictions": [{"score": 0.7}]})])
    assert parse_responses(single, None, _Notes(), fast=fast)[1].tolist() == [0.7]
    probabilities = pd.Series([json.dumps({"predictions": [[0.2, 0.8], [0.9, 0.1]]})])
    assert parse_responses(probabilities, 1, _Notes(), fast=fast)[1].tolist() == [0.8, 0.1]


def test_prediction_field_setting_and_count_mismatch_and_bad_responses(tmp_path: Path, fast: bool) -> None:
    t = T0 + timedelta(hours=1)
    objects = lambda *scores: json.dumps({"predictions": [{"label": int(s > 0.5), "score": s} for s in scores]})
    rows = [
        row("ok", t, [{"age": 1}, {"age": 2}], None, response=objects(0.2, 0.9)),
        row("short", t, [{"age": 3}, {"age": 4}], None, response=objects(0.4)),  # one prediction for two records
        row("garbled", t, [{"age": 5}], None, response="<html>502 Bad Gateway</html>"),
    ]
    source = inference("delta", write_delta(tmp_path / "t", rows), prediction_field="score")
    frame, report, _ = read(source, ["age", "prediction"], DAY0)
    assert frame["age"].tolist() == [1, 2, 3, 4, 5]  # records of unreadable responses are kept...
    assert frame["prediction"].tolist()[:2] == [0.2, 0.9] and frame["prediction"].iloc[2:].isna().all()  # ...without one
    assert any("1 responses hold a different number of predictions" in w for w in report.warnings)
    assert any("1 responses hold no readable predictions" in w for w in report.warnings)


def test_model_version_from_json_metadata_and_unreadable_metadata(fast: bool) -> None:
    notes = _Notes()
    values = pd.Series([json.dumps({"model_version": "7"}), json.dumps({"model_version": 8}), "{oops", None, json.dumps({"x": 1}),
                        json.dumps({"model_version": "7"})])
    assert model_versions(values, notes).tolist() == ["7", "8", pd.NA, pd.NA, pd.NA, "7"]
    assert notes.bad_metadata == 1
    assert model_versions(pd.Series([[("model_version", "2")], None]), _Notes()).tolist() == ["2", pd.NA]


def test_missing_columns_and_wrong_timestamp_name(tmp_path: Path) -> None:
    source = inference("delta", write_delta(tmp_path / "t", small_table()), request_metadata=None)
    frame, report, _ = read(source, ["age", "salary", "prediction", "model_version"], DAY0)
    assert report.missing_columns == {"salary", "model_version"}
    assert list(frame.columns) == ["age", "prediction", "timestamp"]
    with pytest.raises(SourceError, match=r"the request time is the column 'timestamp' .*columns.timestamp: timestamp"):
        read(source, ["age"], DAY0, timestamp="timestamp_ms")
    renamed = inference("delta", tmp_path / "t", latency="execution_duration_ms")
    assert read(renamed, ["latency_ms", "age"], DAY0)[1].missing_columns == {"latency_ms"}
    gateway = inference("delta", tmp_path / "t", timestamp="request_time")
    with pytest.raises(SourceError, match=r"'request_time' not found .*Set `inference_table.timestamp` to the table's request-time"):
        read(gateway, ["age"], DAY0)
    with pytest.raises(SourceError, match=r"Set `inference_table.timestamp`"):
        gateway.max_timestamp("timestamp")


def test_columns_are_the_unpacked_kinds_and_feed_feature_inference(tmp_path: Path) -> None:
    source = inference("delta", write_delta(tmp_path / "t", small_table()))
    kinds = source.columns()
    assert kinds == {
        "timestamp": "timestamp",
        "prediction": "numeric",
        "latency_ms": "numeric",
        "model_version": "string",
        "status_code": "other",
        "request_id": "other",
        "record_id": "other",
        "age": "numeric",
        "region": "string",
        "extra": "bool",
    }
    reserved = {"timestamp", "record_id", "prediction", "latency_ms", "model_version"}
    assert infer_features(kinds, reserved) == (["age"], ["region", "extra"])


def test_window_is_pushed_into_the_delta_table_and_freshness(tmp_path: Path) -> None:
    path = write_delta(tmp_path / "t", small_table())
    for day in range(2, 5):
        write_delta(path, [row(f"d{day}", T0 + day * DAY + timedelta(hours=2), [{"age": day}], [0.5])])
    source = inference("delta", path)
    frame, report, _ = read(source, ["age"], Window(T0 + 3 * DAY, T0 + 4 * DAY))
    assert frame["age"].tolist() == [3] and report.files == 1 and report.rows_scanned == 1
    assert source.max_timestamp("timestamp") == T0 + 4 * DAY + timedelta(hours=2)
    DeltaTable(path).delete("databricks_request_id = 'd4'")
    assert source.max_timestamp("timestamp") == T0 + 3 * DAY + timedelta(hours=2)


def test_gateway_table_on_parquet_with_renamed_columns(tmp_path: Path, fast: bool) -> None:
    # An AI-gateway style table: a real timestamp column, other names, JSON metadata, extra columns kept.
    t = T0 + timedelta(hours=3)
    frame = pd.DataFrame(
        {
            "request_time": pd.to_datetime([t, t + timedelta(minutes=1)]).as_unit("us"),
            "databricks_request_id": ["g1", "g2"],
            "status_code": [200, 429],
            "execution_duration_ms": [25, 5],
            "request": [json.dumps({"inputs": {"age": [1, 2]}}), json.dumps({"inputs": {"age": [3]}})],
            "response": [json.dumps({"outputs": [0.1, 0.2]}), json.dumps({"error_code": "RATE_LIMIT"})],
            "requester": ["alice", "bob"],
            "metadata_json": [json.dumps({"model_version": "12"})] * 2,
        }
    )
    (tmp_path / "logs").mkdir()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp_path / "logs" / "part-0.parquet")
    source = inference(
        "parquet", tmp_path / "logs", timestamp="request_time", latency="execution_duration_ms",
        request_metadata="metadata_json", extra_columns=["requester"],
    )
    got, report, _ = read(source, ["age", "prediction", "latency_ms", "model_version", "requester"], DAY0)
    assert got["age"].tolist() == [1, 2] and got["prediction"].tolist() == [0.1, 0.2]
    assert got["latency_ms"].tolist() == [25, 25] and got["model_version"].tolist() == ["12", "12"]
    assert got["requester"].tolist() == ["alice", "alice"]
    assert any("429: 1" in w for w in report.warnings)
    assert source.columns()["requester"] == "string"


def test_sql_inference_table(tmp_path: Path) -> None:
    database = tmp_path / "logs.db"
    with sqlite3.connect(database) as connection:
        connection.execute(
            "create table inference (databricks_request_id text, timestamp_ms integer, status_code integer, "
            "execution_time_ms integer, request text, response text, request_metadata text)"
        )
        connection.executemany(
            "insert into inference values (?, ?, ?, ?, ?, ?, ?)",
            [
                ("a", ms(T0 + timedelta(hours=1)), 200, 10, json.dumps({"dataframe_records": [{"x": 1.5}, {"x": 2.5}]}),
                 json.dumps({"predictions": [1, 0]}), json.dumps({"model_version": "5"})),
                ("b", ms(T0 + 2 * DAY), 200, 10, json.dumps({"dataframe_records": [{"x": 9.0}]}), json.dumps({"predictions": [1]}), "{}"),
            ],
        )
    spec = SqlSourceSpec(type="sql", url="sqlite:///logs.db", table="inference", inference_table={})
    source = open_source(spec, tmp_path)
    got, _, _ = read(source, ["x", "prediction", "model_version"], DAY0)
    assert got["x"].tolist() == [1.5, 2.5] and got["prediction"].tolist() == [1, 0] and got["model_version"].tolist() == ["5", "5"]


def test_config_accepts_the_adapter_on_any_source(tmp_path: Path) -> None:
    config = parse_config(
        {
            "store": "sqlite:///d.db",
            "monitors": [
                {
                    "name": "m",
                    "source": {"type": "delta", "path": "t", "inference_table": {"latency": "execution_duration_ms", "prediction_field": "score"}},
                    "columns": {"timestamp": "timestamp", "prediction": "prediction", "prediction_kind": "probability"},
                    "reference": {"window": {"start": "2026-01-01", "end": "2026-01-08"}},
                }
            ],
        },
        tmp_path / "d.yaml",
    )
    adapter = config.monitors[0].source.inference_table
    assert adapter.latency == "execution_duration_ms" and adapter.prediction_field == "score" and adapter.timestamp == "timestamp_ms"
    with pytest.raises(Exception, match="inference_table.requests: unknown key 'requests'; did you mean 'request'"):
        parse_config(
            {
                "store": "sqlite:///d.db",
                "monitors": [{"name": "m", "source": {"type": "parquet", "path": "t", "inference_table": {"requests": "r"}},
                              "columns": {"timestamp": "timestamp"}, "reference": {"type": "parquet", "path": "r.parquet"}}],
            },
            tmp_path / "d.yaml",
        )


# ---------------------------------------------------------------------------------------------- end to end


CONFIG = """
store: sqlite:///driftline.db
monitors:
  - name: risk-endpoint
    source: {type: delta, path: inference, inference_table: {}}
    columns:
      timestamp: timestamp
      id: record_id
      prediction: prediction
      prediction_kind: probability
      latency: latency_ms
      model_version: model_version
    reference: {window: {start: "2026-03-01T00:00:00Z", end: "2026-03-04T00:00:00Z"}}
    window: 1d
    checks: {drift: {}, quality: {}, latency: {p95_max_ms: 250}}
"""


def test_runner_over_a_delta_inference_table(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    path = tmp_path / "inference"
    days, shifted_from = 6, 4
    for day in range(days):
        shifted = day >= shifted_from
        rows = []
        for i in range(700):
            n = int(rng.integers(1, 4))
            income = rng.lognormal(10.9, 0.4, n) * (1.6 if shifted else 1.0)
            region = rng.choice(["EU", "US", "APAC"], n, p=[0.5, 0.3, 0.2])
            records = [{"income": float(income[k]), "age": int(rng.integers(18, 80)), "region": str(region[k])} for k in range(n)]
            scores = [float(1 / (1 + np.exp(np.log(v) - 10.9))) for v in income]
            moment = T0 + day * DAY + timedelta(seconds=float(rng.uniform(0, 86_399)))
            latency = int(rng.lognormal(3.7, 0.3) * (8 if shifted else 1))
            rows.append(row(f"{day}-{i}", moment, records, scores, latency=latency, version="4" if shifted else "3"))
        rows.append(row(f"{day}-failed", T0 + day * DAY + timedelta(hours=5), [{"income": 1.0}], None, status=503,
                        response='{"error_code": "UNAVAILABLE"}'))
        rows.append(row(f"{day}-garbled", T0 + day * DAY + timedelta(hours=6), [], None, request="{\"dataframe_records\": [{"))
        write_delta(path, rows)
    config_path = tmp_path / "driftline.yaml"
    config_path.write_text(textwrap.dedent(CONFIG))
    project = load_config(config_path)
    store = Store.open(project.store_url)
    try:
        runner = Runner(project, store)
        mon = project.monitor("risk-endpoint")
        outcomes = runner.backfill(mon, T0, T0 + days * DAY)
        assert [o.run.status for o in outcomes][:shifted_from] == ["ok"] * shifted_from
        assert [o.run.status for o in outcomes][shifted_from:] == ["breach"] * (days - shifted_from)
        assert all(o.run.rows > 700 for o in outcomes)  # records, not requests
        metrics = store.metrics("risk-endpoint", segment="*")
        drift = metrics[(metrics["check"] == "drift") & (metrics["status"] == "breach") & (metrics["column"] != "")]
        assert set(drift["column"]) == {"income"}  # features inferred from the unpacked records
        assert sorted({(t - T0).days for t in drift["window_start"]}) == list(range(shifted_from, days))
        checked = set(metrics[metrics["check"] == "drift"]["column"])
        assert {"income", "age", "region"} <= checked and "status_code" not in checked
        p95 = metrics[(metrics["check"] == "latency") & (metrics["metric"] == "p95")].sort_values("window_start")
        assert p95["status"].tolist() == ["ok"] * shifted_from + ["breach"] * (days - shifted_from)
        predictions = metrics[(metrics["check"] == "prediction_drift") & (metrics["status"] == "breach")]
        assert {(t - T0).days for t in predictions["window_start"]} == set(range(shifted_from, days))
        versions = metrics[(metrics["check"] == "prediction") & (metrics["metric"] == "model_version")].sort_values("window_start")
        assert [d["model_version"] for d in versions["details"]] == ["3"] * shifted_from + ["4"] * (days - shifted_from)
        quality = metrics[(metrics["check"] == "quality") & (metrics["metric"].isin(["bad_timestamp_share", "duplicate_id_share"]))]
        assert len(quality) == 2 * days and (quality["value"] == 0).all()  # record ids are unique
    finally:
        store.dispose()
