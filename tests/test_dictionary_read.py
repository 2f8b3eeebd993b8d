"""Columns that are only counted are read as the Parquet file's own dictionary codes (pandas
Categorical), and every profile built from them equals the profile built from plain text."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from checks.profiles import CategoricalBinning, NumericBinning
from checks.results import ALL
from checks.roles import Roles
from monitor.engine.pandas_engine import ProfilePlan, category_counts, fit_pass, numeric_values, profile_batches
from monitor.sources import ReadReport, open_source
from monitor.sources._timestamps import TimestampParser
from monitor.sources.specs import FileSourceSpec
from monitor.windows import Window

DAY = datetime(2026, 3, 1, tzinfo=timezone.utc)


def write_groups(path: Path, groups: list[pd.DataFrame]) -> None:
    """One row group per frame: each gets a dictionary of its own."""
    writer = None
    for frame in groups:
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    assert writer is not None
    writer.close()


def logs(rows: int, seed: int, start: datetime = DAY) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "ts": pd.date_range(start, periods=rows, freq="10s", tz="UTC").astype("datetime64[us, UTC]"),
            "x": rng.normal(size=rows),
            "c": pd.array(rng.choice(["a", "b", "c", None], rows, p=[0.5, 0.3, 0.15, 0.05]), dtype="string"),
            "region": pd.array(rng.choice(["EU", "US", "APAC"], rows), dtype="string"),
            # Numbers written as text, some not numbers at all: counted as invalid, not dropped.
            "amount": pd.array(rng.choice(["1.5", "2", "n/a", None], rows), dtype="string"),
            "predicted": pd.array(rng.choice(["yes", "no"], rows), dtype="string"),
            "actual": pd.array(rng.choice(["yes", "no"], rows), dtype="string"),
            "n": rng.integers(0, 5, rows),
        }
    )
    return frame


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    # Row groups whose dictionaries differ ("z" only in the second), read in batches that span both.
    first, second = logs(700, 1), logs(900, 2, DAY + timedelta(seconds=7000))
    second.loc[::7, "c"] = "z"
    write_groups(tmp_path / "part-0.parquet", [first, second])
    return tmp_path


def read(folder: Path, categories=(), window: Window | None = None, batch_rows: int = 500) -> tuple[list[pd.DataFrame], ReadReport]:
    source = open_source(FileSourceSpec(type="parquet", path=str(folder)), folder)
    report = ReadReport()
    columns = ["x", "c", "region", "amount", "predicted", "actual", "n"]
    try:
        frames = list(source.read(columns, timestamp="ts", window=window, batch_rows=batch_rows, report=report, categories=categories))
    finally:
        source.close()
    return frames, report


def test_counted_text_columns_arrive_as_the_files_codes(folder: Path) -> None:
    coded, _ = read(folder, categories=("c", "region", "n", "ts"))
    plain, _ = read(folder)
    assert isinstance(coded[0]["c"].dtype, pd.CategoricalDtype) and isinstance(coded[0]["region"].dtype, pd.CategoricalDtype)
    # Not text, or the timestamp: left as they are.
    assert coded[0]["n"].dtype == np.int64 and str(coded[0]["ts"].dtype) == "datetime64[us, UTC]"
    assert not isinstance(plain[0]["c"].dtype, pd.CategoricalDtype)
    both = pd.concat(coded, ignore_index=True), pd.concat(plain, ignore_index=True)
    assert len(both[0]) == len(both[1]) == 1600
    for name in ("c", "region"):
        assert both[0][name].astype(object).where(both[0][name].notna(), None).tolist() == both[1][name].astype(object).where(
            both[1][name].notna(), None
        ).tolist()
    assert "z" in set(both[0]["c"].dropna())


def test_codes_count_and_convert_like_text(folder: Path) -> None:
    # (Batches may be cut differently: dictionary pages end with their row group.)
    coded, _ = read(folder, categories=("c", "amount"))
    plain, _ = read(folder)
    assert isinstance(coded[0]["amount"].dtype, pd.CategoricalDtype)

    def counts(frames: list[pd.DataFrame]) -> tuple[dict[str, int], int]:
        total: dict[str, int] = {}
        missing = 0
        for frame in frames:
            values, absent = category_counts(frame["c"])
            missing += absent
            for value, n in values.items():
                total[value] = total.get(value, 0) + n
        return total, missing

    assert counts(coded) == counts(plain)
    mine = [numeric_values(f["amount"]) for f in coded]
    theirs = [numeric_values(f["amount"]) for f in plain]
    np.testing.assert_array_equal(np.concatenate([m[0] for m in mine]), np.concatenate([t[0] for t in theirs]))
    assert sum(m[1] for m in mine) == sum(t[1] for t in theirs) > 0  # "n/a" is not a number


def test_profiles_from_codes_equal_profiles_from_text(folder: Path) -> None:
    plain, _ = read(folder, batch_rows=10_000)
    fitted = fit_pass(plain, ["x"], ["c", "region"], bins=20, top_k=10)
    roles = Roles(numeric=("x",), categorical=("c", "region"), prediction="predicted", target="actual", prediction_kind="class")
    binnings = {**fitted.binnings, "predicted": CategoricalBinning.fit({"yes": 1, "no": 1}, 10)}
    plan = ProfilePlan(roles=roles, binnings=binnings, segment_values={"region": ("EU", "US")})
    assert set(plan.categories) == {"c", "region", "predicted", "actual"}
    assert isinstance(plan.binnings["x"], NumericBinning)
    mine = profile_batches(read(folder, categories=plan.categories)[0], plan)
    theirs = profile_batches(read(folder)[0], plan)
    assert set(mine) == set(theirs) == {ALL, "region=EU", "region=US", "region=__other__"}
    for segment in theirs:
        assert mine[segment].rows == theirs[segment].rows > 0
        for name in ("c", "region", "predicted"):
            assert mine[segment].columns[name].to_dict() == theirs[segment].columns[name].to_dict()
        assert mine[segment].performance.to_dict() == theirs[segment].performance.to_dict()


def test_fit_pass_learns_the_same_categories_from_codes(folder: Path) -> None:
    coded = fit_pass(read(folder, categories=("c",))[0], ["x"], ["c"], bins=20, top_k=10)
    plain = fit_pass(read(folder)[0], ["x"], ["c"], bins=20, top_k=10)
    assert coded.binnings["c"].to_dict() == plain.binnings["c"].to_dict()
    assert "z" in coded.binnings["c"].to_dict()["categories"]


@pytest.mark.parametrize(
    "window, rows",
    [
        (Window(DAY, DAY + timedelta(days=1)), 1600),  # every batch inside: no timestamp parsed
        (Window(DAY + timedelta(seconds=3000), DAY + timedelta(seconds=9000)), 400 + 200),  # batches cut
    ],
)
def test_window_filter_with_and_without_the_inside_shortcut(
    folder: Path, window: Window, rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed: list[int] = []
    parse = TimestampParser.parse
    monkeypatch.setattr(TimestampParser, "parse", lambda self, values, where: parsed.append(len(values)) or parse(self, values, where))
    frames, report = read(folder, window=window)
    # A batch wholly inside the window is not parsed; one across its edges is.
    assert (sum(parsed) == 0) if rows == 1600 else sum(parsed) > 0
    frame = pd.concat(frames, ignore_index=True)
    assert len(frame) == report.rows == rows and report.bad_timestamps == 0
    assert str(frame["ts"].dtype) == "datetime64[us, UTC]"
    assert frame["ts"].min() >= pd.Timestamp(window.start) and frame["ts"].max() < pd.Timestamp(window.end)


def test_null_timestamps_still_count_as_bad(tmp_path: Path) -> None:
    frame = logs(300, 3)
    frame.loc[[5, 250], "ts"] = pd.NaT
    write_groups(tmp_path / "part-0.parquet", [frame])
    frames, report = read(tmp_path, window=Window(DAY, DAY + timedelta(days=1)))
    assert sum(len(f) for f in frames) == 298 and report.bad_timestamps == 2


@pytest.mark.parametrize(
    "values",
    [
        np.array([-3, 0, 2, 2, -3, 7], dtype=np.int8),  # negatives: offsets must not wrap
        np.array([1, 1, 0, 1], dtype=np.uint16),
        np.array([0, 10_000, 5, 5], dtype=np.int64),  # too wide to code by offset: hashed
    ],
)
def test_whole_numbers_count_as_their_text(values: np.ndarray) -> None:
    # Integer columns counted as categories (class labels, flags) are coded by offset when they
    # span few values; the counts must be those of their text, however coded.
    counted, missing = category_counts(pd.Series(values))
    assert missing == 0
    assert counted == pd.Series(values.astype(str)).value_counts().to_dict()
    assert counted == category_counts(pd.Series(values.astype(object)))[0]  # the text path
