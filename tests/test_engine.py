"""The pandas engine's reference pass: chunked profiles that merge into the whole, and the PCA
reconstruction errors folded batch by batch."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from checks.multivariate import ErrorProfile, Moments, PcaModel
from checks.profiles import NumericProfile
from checks.results import ALL
from checks.roles import Roles
from monitor.engine.pandas_engine import ProfilePlan, fit_pass, numeric_matrix, profile_batches, profile_chunks


def frames(rows: int = 6000, batch: int = 1000, seed: int = 0) -> list[pd.DataFrame]:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=rows)
    frame = pd.DataFrame(
        {
            "hour": np.arange(rows) // 700,  # chunks straddle batches
            "x": a,
            "y": 0.8 * a + 0.6 * rng.normal(size=rows),
            "c": rng.choice(["u", "v", "w"], rows),
            "region": rng.choice(["EU", "US"], rows),
        }
    )
    frame.loc[5, "x"] = np.nan
    return [frame.iloc[i : i + batch] for i in range(0, rows, batch)]


@pytest.fixture(scope="module")
def plan() -> ProfilePlan:
    fitted = fit_pass(frames(), ["x", "y"], ["c"], bins=50, top_k=10, moments_of=["x", "y"], timestamp="hour")
    binnings, rows, moments = fitted.binnings, fitted.rows, fitted.moments
    assert (fitted.first, fitted.last) == (0, 8)
    assert rows == 6000 and moments is not None and moments.count == 5999 and moments.skipped == 1
    roles = Roles(numeric=("x", "y"), categorical=("c",))
    return ProfilePlan(roles=roles, binnings=binnings, segment_values={"region": ("EU",)}, pca=PcaModel.fit(moments, ["x", "y"]))


def test_chunks_merge_into_exactly_the_plain_profile(plan: ProfilePlan) -> None:
    totals, chunks = profile_chunks(frames(), plan, lambda frame, offset: frame["hour"].to_numpy())
    plain = profile_batches(frames(), plan)
    assert len(chunks) == 9  # hours 0..8
    assert [c[ALL].rows for c in chunks] == [700] * 8 + [400]
    for segment in plain:
        assert totals[segment].rows == plain[segment].rows
        for name, column in plain[segment].columns.items():
            mine_column = totals[segment].columns[name]
            assert mine_column.count == column.count
            if isinstance(column, NumericProfile):
                assert np.array_equal(mine_column.counts, column.counts) and mine_column.mean == pytest.approx(column.mean)
            else:
                assert np.array_equal(mine_column.frequencies(), column.frequencies())
        mine, theirs = totals[segment].multivariate, plain[segment].multivariate
        assert mine.count == theirs.count and mine.mean == pytest.approx(theirs.mean) and mine.m2 == pytest.approx(theirs.m2)
    assert sum(c["region=EU"].rows for c in chunks) == plain["region=EU"].rows


def test_too_many_chunks_are_merged_in_runs(plan: ProfilePlan) -> None:
    totals, chunks = profile_chunks(frames(), plan, lambda frame, offset: (offset + np.arange(len(frame))) // 10, max_chunks=40)
    assert len(chunks) <= 40 and sum(c[ALL].rows for c in chunks) == 6000 == totals[ALL].rows


def test_errors_are_the_models_on_the_imputed_matrix(plan: ProfilePlan) -> None:
    whole = pd.concat(frames())
    matrix = numeric_matrix(whole, ["x", "y", "absent"])
    assert np.isnan(matrix[:, 2]).all() and np.isnan(matrix[5, 0])
    expected = ErrorProfile.from_errors(plan.pca.errors(numeric_matrix(whole, ["x", "y"])))
    profile = profile_batches(frames(), plan)[ALL].multivariate
    assert profile.count == expected.count == 6000 and profile.mean == pytest.approx(expected.mean)
    assert Moments.from_array(matrix[:, :2]).count == 5999


# ------------------------------------------------------------ pass one keeps, pass two reuses


@pytest.fixture
def reference_job(tmp_path):
    from monitor.engine.base import ReadJob
    from monitor.sources.specs import FileSourceSpec

    frame = pd.concat(frames(rows=9000, batch=9000), ignore_index=True)
    frame["region"] = frame["region"].astype("string")
    frame["c"] = frame["c"].astype("string")
    for part in range(3):
        frame.iloc[part * 3000 : (part + 1) * 3000].to_parquet(tmp_path / f"part-{part}.parquet", index=False)
    spec = FileSourceSpec(type="parquet", path=str(tmp_path))
    return ReadJob(spec, tmp_path, ("hour", "x", "y", "c", "region"), None, None, 1000, ("c", "region"))


def _fit_twice(job, monkeypatch) -> tuple[dict, list, int, dict]:
    """Pass one and pass two on a fresh pandas engine; the number of reads of the source."""
    from monitor.engine.base import ChunkSpec, PandasEngine

    engine = PandasEngine()
    reads = []
    batches = PandasEngine._batches
    monkeypatch.setattr(PandasEngine, "_batches", lambda self, j, report=None: reads.append(j) or batches(self, j, report))
    first = engine.first_pass(job, ["x", "y"], ["c"], bins=20, top_k=10, moments_of=["x", "y"], count_values=["region"])
    roles = Roles(numeric=("x", "y"), categorical=("c",))
    plan = ProfilePlan(roles=roles, binnings=first.binnings, segment_values={"region": ("EU",)}, pca=PcaModel.fit(first.moments, ["x", "y"]))
    totals, chunks = engine.reference_profiles(job, plan, ChunkSpec(rows_per_chunk=700))
    monkeypatch.undo()
    return totals, chunks, len(reads), first.value_counts


def _as_dicts(profiles: dict) -> dict:
    return {s: (p.rows, {c: v.to_dict() for c, v in p.columns.items()}, p.multivariate.count) for s, p in profiles.items()}


def test_pass_two_reuses_what_pass_one_kept(reference_job, monkeypatch) -> None:
    from dataclasses import replace

    kept_totals, kept_chunks, kept_reads, counts = _fit_twice(replace(reference_job, keep_bytes=64 << 20), monkeypatch)
    read_totals, read_chunks, read_reads, _ = _fit_twice(replace(reference_job, keep_bytes=0), monkeypatch)
    # Over budget: nothing kept, the source is read again, the same profiles come out.
    over_totals, _, over_reads, _ = _fit_twice(replace(reference_job, keep_bytes=50_000), monkeypatch)
    assert (kept_reads, read_reads, over_reads) == (1, 2, 2)
    assert _as_dicts(kept_totals) == _as_dicts(read_totals) == _as_dicts(over_totals)
    assert [_as_dicts(c) for c in kept_chunks] == [_as_dicts(c) for c in read_chunks]
    assert len(kept_chunks) == 13 and kept_totals[ALL].rows == 9000
    # The segment column was counted in pass one: no pass of its own.
    whole = pd.concat(frames(rows=9000, batch=9000))
    assert counts == {"region": whole["region"].value_counts().to_dict()}


def test_a_kept_reference_is_released(reference_job, monkeypatch) -> None:
    """After release_reference, pass two reads the source again (nothing is held)."""
    from dataclasses import replace

    from monitor.engine.base import ChunkSpec, PandasEngine

    job = replace(reference_job, keep_bytes=64 << 20)
    engine = PandasEngine()
    first = engine.first_pass(job, ["x"], ["c"], bins=10, top_k=5, moments_of=None)
    engine.release_reference()
    reads = []
    batches = PandasEngine._batches
    monkeypatch.setattr(PandasEngine, "_batches", lambda self, j, report=None: reads.append(j) or batches(self, j, report))
    plan = ProfilePlan(roles=Roles(numeric=("x",), categorical=("c",)), binnings=first.binnings)
    totals, _ = engine.reference_profiles(job, plan, ChunkSpec(rows_per_chunk=700))
    assert len(reads) == 1 and totals[ALL].rows == 9000


def _openblas_threads() -> list[int]:
    from threadpoolctl import threadpool_info

    return [info["num_threads"] for info in threadpool_info() if info["internal_api"] == "openblas"]


def test_blas_stays_on_one_thread_whichever_thread_enters_and_leaves() -> None:
    # Monitors run on the scheduler's threads, so two threads may profile at once: the limit
    # must hold for both, whichever thread set it first, and the last to leave restores the
    # setting (threadpoolctl ignores a thread that is not the one in control, so a second
    # thread's limit was silently dropped before).
    import threading

    from monitor.engine.pandas_engine import _ONE_BLAS_THREAD

    before = _openblas_threads()
    if not before or max(before) == 1:
        pytest.skip("needs OpenBLAS with more than one thread")  # numpy wheels bundle it; 2+ cores here
    with _ONE_BLAS_THREAD:  # the caller sets and restores the limit first (and keeps control)
        assert max(_openblas_threads()) == 1
    assert _openblas_threads() == before
    entered, release, seen = threading.Event(), threading.Event(), {}

    def other() -> None:  # another monitor's thread: enters first, leaves first
        with _ONE_BLAS_THREAD:
            seen["other"] = _openblas_threads()
            entered.set()
            release.wait(10)

    worker = threading.Thread(target=other)
    worker.start()
    assert entered.wait(10)
    with _ONE_BLAS_THREAD:
        seen["caller"] = _openblas_threads()
        release.set()
        worker.join(10)
        seen["after the other left"] = _openblas_threads()
    assert {name: max(threads) for name, threads in seen.items()} == {"other": 1, "caller": 1, "after the other left": 1}
    assert _openblas_threads() == before  # restored by the caller, which did not set the limit


def test_whole_number_columns_profile_as_their_floats() -> None:
    # Integer columns are counted by value (np.bincount, no float copy); every profile, in pass
    # one, for segments and for chunks, must be the one their float64 copies get row by row.
    rng = np.random.default_rng(5)
    rows = 9000
    ints = {
        "small": rng.integers(-120, 120, rows).astype(np.int8),  # negative low: offsets must not wrap
        "count": rng.poisson(3, rows).astype(np.int32),
        "rating": rng.integers(1, 6, rows).astype(np.uint16),
        "flag": (rng.uniform(size=rows) < 0.2).astype(np.int64),
        "wide": rng.integers(0, 10**7, rows),  # spans too much: the float path
    }
    whole = pd.DataFrame({**ints, **{f"{k}_f": v.astype(np.float64) for k, v in ints.items()}, "region": rng.choice(["EU", "US"], rows)})
    batches = [whole.iloc[i : i + 2500].reset_index(drop=True) for i in range(0, rows, 2500)]
    names = list(ints)
    as_int = fit_pass(batches, names, [], bins=50, top_k=10)
    as_float = fit_pass(batches, [f"{n}_f" for n in names], [], bins=50, top_k=10)
    for name in names:
        assert np.array_equal(as_int.binnings[name].cuts, as_float.binnings[f"{name}_f"].cuts), name
    binnings = {**as_int.binnings, **{f"{n}_f": as_int.binnings[n] for n in names}}
    roles = Roles(numeric=tuple(binnings))
    plan = ProfilePlan(roles=roles, binnings=binnings, segment_values={"region": ("EU",)})
    plain = profile_batches(batches, plan)
    totals, chunks = profile_chunks(batches, plan, lambda frame, offset: (offset + np.arange(len(frame))) // 1000)
    for profiles in (plain, totals, *chunks):
        for segment, profile in profiles.items():
            for name in names:
                mine, theirs = profile.columns[name].to_dict(), profile.columns[f"{name}_f"].to_dict()
                assert mine.pop("mean") == pytest.approx(theirs.pop("mean"), rel=1e-12, abs=1e-12), (segment, name)
                assert mine.pop("m2") == pytest.approx(theirs.pop("m2"), rel=1e-12, abs=1e-9), (segment, name)
                assert mine == theirs, (segment, name)
    assert plain[ALL].columns["small"].min < 0 and plain[ALL].columns["small"].count == rows


def test_kept_batches_hold_the_frame_not_its_copies() -> None:
    # Pass one's batches are kept for pass two with only the frame's own memory: converted copies
    # (floats of an integer column, category codes) are made again in pass two from freed memory
    # instead of holding fresh pages through the whole fit.
    from monitor.engine.pandas_engine import KeptBatches, _Batch

    frame = pd.DataFrame({"x": np.linspace(0, 1, 500), "n": pd.array(np.arange(500), dtype="Int64"), "c": ["a", "b"] * 250})
    batch = _Batch(frame)
    view, copied = batch.numeric("x").values, batch.numeric("n").values
    assert np.shares_memory(view, frame["x"].to_numpy()) and copied.base is None
    batch.codes("c")
    kept = KeptBatches(1 << 20)
    kept.add(batch)
    assert set(batch._numeric) == {"x"} and batch._numeric["x"].values is view and not batch._codes
    assert kept.used == int(frame.memory_usage(index=False).sum())
    again = next(kept.drain())
    np.testing.assert_array_equal(again.numeric("n").values, np.arange(500.0))
    assert again.codes("c").labels == ["a", "b"]
