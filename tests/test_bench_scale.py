"""Smoke tests of the scale benchmark's data generator and report (bench/bench_scale.py).

Fast on purpose: no Driftline run and no peer here; only that the data are what the benchmark
says (columns, kinds, chunked files, timestamps in the window) and that a report prints.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import bench_scale  # noqa: E402
from scale import child  # noqa: E402
from scale.data import Layout, make_chunk, write_logs  # noqa: E402

DAY = datetime(2026, 10, 1, tzinfo=timezone.utc)


def test_layouts_keep_four_numeric_to_one_categorical():
    assert Layout.for_columns(25) == Layout(20, 5)
    assert Layout.for_columns(5) == Layout(4, 1)
    assert Layout.for_columns(50) == Layout(40, 10)
    assert Layout(20, 5).numeric_names[:2] == ["x00", "x01"] and Layout(20, 5).categorical_names[-1] == "c04"


def test_chunk_has_every_column_of_its_kind_and_is_reproducible():
    layout = Layout()
    table = make_chunk(layout, np.random.default_rng(7), 5_000, start=DAY)
    assert table.column_names == ["ts", *layout.numeric_names, *layout.categorical_names, "score", "label", "latency_ms"]
    kinds = {name: str(table.schema.field(name).type) for name in table.column_names}
    assert kinds["ts"] == "timestamp[us, tz=UTC]"
    assert {kinds[n] for n in layout.numeric_names} == {"double", "int64"}  # counts and flags are integers
    assert {kinds[n] for n in layout.categorical_names} == {"string"}
    levels = [table.column(n).to_pandas().nunique() for n in layout.categorical_names]
    assert levels == [layout.levels(j) for j in range(layout.categorical)]
    score = table.column("score").to_numpy()
    assert ((score > 0) & (score < 1)).all() and set(np.unique(table.column("label").to_numpy())) <= {0, 1}
    assert make_chunk(layout, np.random.default_rng(7), 5_000, start=DAY).equals(table)


def test_shift_moves_the_first_features_only():
    layout = Layout()
    base = make_chunk(layout, np.random.default_rng(1), 50_000).to_pandas()
    moved = make_chunk(layout, np.random.default_rng(1), 50_000, shift=0.3).to_pandas()
    assert moved["x00"].mean() - base["x00"].mean() == pytest.approx(0.3 * 1.0, abs=0.05)
    assert moved["x05"].mean() == pytest.approx(base["x05"].mean(), abs=0.05 * base["x05"].std())


def test_logs_are_written_in_chunks_to_several_files(tmp_path: Path):
    layout = Layout(4, 1)
    paths = write_logs(tmp_path / "w", layout, 25_000, 3, start=DAY, rows_per_file=10_000, chunk_rows=4_000, row_group_rows=3_000)
    assert [p.name for p in paths] == ["part-000.parquet", "part-001.parquet", "part-002.parquet"]
    counts = [pq.ParquetFile(p).metadata.num_rows for p in paths]
    assert counts == [10_000, 10_000, 5_000]
    assert pq.ParquetFile(paths[0]).metadata.num_row_groups >= 4  # row groups within chunks
    stamps = np.concatenate([pq.read_table(p, columns=["ts"]).column("ts").to_numpy() for p in paths])
    assert (np.diff(stamps.astype(np.int64)) >= 0).all()  # in time order across files
    start, end = np.datetime64(DAY.replace(tzinfo=None), "us"), np.datetime64((DAY + timedelta(days=1)).replace(tzinfo=None), "us")
    assert stamps.min() >= start and stamps.max() < end
    training = write_logs(tmp_path / "r", layout, 1_000, 3, start=None, prefix="train")
    assert "ts" not in pq.read_schema(training[0]).names


def test_floor_pass_counts_every_row(tmp_path: Path):
    layout = Layout(4, 1)
    paths = write_logs(tmp_path, layout, 6_000, 5, start=DAY, rows_per_file=4_000)
    result = child.floor({"files": [str(p) for p in paths], "numeric": layout.numeric_names, "categorical": layout.categorical_names})
    assert result["rows"] == 6_000 and result["seconds"] >= 0


def test_sizes_parse_and_print():
    assert [bench_scale.parse_rows(t) for t in ("100k", "1M", "2.5M", "10_000")] == [100_000, 1_000_000, 2_500_000, 10_000]
    assert [bench_scale.rows_label(n) for n in (100_000, 1_000_000, 10_000_000, 1234)] == ["100k", "1M", "10M", "1234"]


def test_report_prints_tables_slopes_and_peer_ratios(capsys: pytest.CaptureFixture[str]):
    stages = {"read_wait": 0.1, "profile": 0.5, "evaluate_excl_calibration": 0.1, "calibration_in_evaluate": 0.05, "store": 0.02, "other": 0.0}

    def case(name: str, group: str, rows: int, seconds: float, columns: int = 25, **extra):
        return {"case": name, "group": group, "rows": rows, "columns": columns, "seconds": seconds, "cpu_seconds": seconds * 1.5, "peak_rss_mib": 500.0, "stages": stages, **extra}

    report = {
        "machine": {"cores": 2, "usable_cores": 2, "python": "3.11", "platform": "linux", "processor": "x86_64", "versions": {"numpy": "2"}},
        "plan": {"reference_rows": 1_000_000, "repeat": 1},
        "load_before": "1 1 1",
        "load_after": "1 1 1",
        "cases": [
            case("check one window", "check", 100_000, 0.1),
            case("check one window", "check", 1_000_000, 0.8),
            case("numpy floor (single pass)", "floor", 1_000_000, 0.3),
            case("first run: fit + check", "first", 1_000_000, 1.5, reference_rows=1_000_000),
            case("backfill 30 daily windows", "days", 3_000_000, 9.0, window_seconds=[0.5] + [0.3] * 29),
            case("check one window", "columns", 1_000_000, 0.3, columns=5),
            case("check one window", "columns", 1_000_000, 1.6, columns=50),
        ],
        "peers": {
            "rows": 1_000_000,
            "versions": {"nannyml": "0.13.1"},
            "tools": {"nannyml": {"seconds": 15.0, "calculate_seconds": 4.0, "peak_rss_mib": 900.0}, "evidently": {"error": "boom"}},
        },
    }
    bench_scale.print_report(report)
    out = capsys.readouterr().out
    assert "| check one window | 1,000,000 | 25 | 0.80 |" in out
    assert "10x faster" in out  # NannyML fit + calculate 15 s vs first run 1.5 s
    assert "5.0x faster" in out  # calculate alone 4 s vs check 0.8 s
    assert "8.0x the time for 10x the rows" in out and "5.3x the time for 10x the features" in out
    assert "check / numpy floor: 1M: 2.7x" in out
    assert "per window on average" in out and "boom" in out
    assert "medians" not in out.split("| tool |")[0]  # one run each: no medians to compare


def test_peer_ratios_also_compare_the_medians_of_the_runs(capsys: pytest.CaptureFixture[str]):
    # Fastest of 3 on both sides is 10x; the medians (13 / 1.4 s and 3 / 0.9 s) tell another story.
    def case(group: str, seconds: float, runs: list[float], **extra):
        return {"case": group, "group": group, "rows": 1_000_000, "columns": 25, "seconds": seconds, "runs": runs, "cpu_seconds": seconds, "peak_rss_mib": 500.0, **extra}

    report = {
        "plan": {"peer_repeat": 3},
        "cases": [case("check", 0.8, [0.8, 0.9, 1.0]), case("first", 1.2, [1.2, 1.4, 1.5], reference_rows=1_000_000)],
        "peers": {
            "rows": 1_000_000,
            "versions": {"nannyml": "0.13.1"},
            "tools": {
                "nannyml": {"seconds": 12.0, "runs": [12.0, 13.0, 14.0], "calculate_seconds": 2.5, "calculate_seconds_runs": [2.5, 3.0, 3.5], "peak_rss_mib": 900.0},
                "evidently": {"seconds": 80.0, "peak_rss_mib": 900.0},  # no runs listed: no median
            },
        },
    }
    bench_scale.print_peers(report)
    out = capsys.readouterr().out
    assert "compares the medians of the runs" in out
    lines = {line.split(" | ")[1]: line for line in out.splitlines() if line.startswith("| NannyML") or line.startswith("| Evidently")}
    assert lines["fit + calculate"].endswith("| 10x faster | 9.3x faster |")
    assert lines["calculate alone"].endswith("| 3.1x faster | 3.3x faster |")
    assert lines["DataDriftPreset report"].endswith("| 67x faster |  |")


def test_each_peer_is_run_as_often_as_driftline_and_keeps_its_fastest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # The peers' children need their own venv; what is checked here is the harness's choice among
    # the runs it gets back, so the child is replaced by canned results in the children's format.
    args = argparse.Namespace(quick=True, sizes=None, repeat=3, peer_repeat=None)
    plan = bench_scale.Plan.make(args)
    assert plan.peer_repeat == 3
    assert bench_scale.Plan.make(argparse.Namespace(quick=True, sizes=None, repeat=3, peer_repeat=1)).peer_repeat == 1
    canned = {
        "nannyml": iter([{"seconds": 14.0, "fit_seconds": 10.0, "calculate_seconds": 4.0}, {"seconds": 12.0, "fit_seconds": 9.5, "calculate_seconds": 2.5},
                         {"seconds": 13.0, "fit_seconds": 9.0, "calculate_seconds": 4.0}]),  # fmt: skip
        "whylogs": iter([{"seconds": s} for s in (40.0, 38.0, 39.0)]),
        "evidently": iter([{"seconds": s} for s in (90.0, 95.0, 80.0)]),
    }
    calls = []

    peers_python = tmp_path / "peers-python"
    peers_python.touch()

    def child(python, script, spec, env=None):  # noqa: ANN001, ANN202
        assert python == peers_python and "tool" in spec  # only peers are run here
        calls.append(spec["tool"])
        return {**next(canned[spec["tool"]]), "peak_rss_mib": 100.0}

    monkeypatch.setattr(bench_scale, "PEERS_PYTHON", peers_python)
    monkeypatch.setattr(bench_scale.subprocess, "run", lambda *a, **k: argparse.Namespace(stdout=json.dumps({"nannyml": "x", "whylogs": "y", "evidently": "z"})))
    monkeypatch.setattr(bench_scale, "run_child", child)
    monkeypatch.setattr(bench_scale.Data, "reference", lambda self, layout, rows: tmp_path)
    monkeypatch.setattr(bench_scale.Data, "window", lambda self, layout, rows: tmp_path)
    out = bench_scale.run_peers(plan, bench_scale.Data(tmp_path), bench_scale.Layout())
    assert calls.count("nannyml") == calls.count("whylogs") == calls.count("evidently") == 3
    nannyml = out["tools"]["nannyml"]
    assert (nannyml["seconds"], nannyml["fit_seconds"], nannyml["calculate_seconds"], nannyml["runs"]) == (12.0, 9.0, 2.5, [14.0, 12.0, 13.0])
    assert nannyml["calculate_seconds_runs"] == [4.0, 2.5, 4.0]  # every run's own, for the medians
    assert out["tools"]["evidently"]["seconds"] == 80.0 and out["tools"]["whylogs"]["seconds"] == 38.0
