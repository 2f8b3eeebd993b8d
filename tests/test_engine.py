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
