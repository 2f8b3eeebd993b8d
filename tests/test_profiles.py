"""Profiles: merging is associative, commutative and equals profiling the concatenated data;
serialisation round-trips; the sketch keeps its relative-error promise."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from checks.profiles import (
    BinaryPerformance,
    CategoricalBinning,
    CategoricalProfile,
    ClassPerformance,
    DatasetProfile,
    KpiProfile,
    NumericBinning,
    NumericProfile,
    RegressionPerformance,
    column_from_dict,
    performance_from_dict,
)
from checks.sketch import DEFAULT_ALPHA, QuantileSketch

FAST = settings(max_examples=60, deadline=None)

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
cell = st.one_of(finite, finite, finite, st.just(float("nan")), st.sampled_from([float("inf"), -float("inf")]))
column = st.lists(cell, min_size=0, max_size=40).map(lambda xs: np.asarray(xs, dtype=np.float64))

BINNING = NumericBinning(np.array([-100.0, -1.0, 0.0, 0.5, 10.0, 1e4]), -1e5, 1e5)
CATEGORIES = CategoricalBinning(("a", "b", "c"), frozenset({"d", "e"}))
words = st.lists(st.sampled_from(["a", "b", "c", "d", "e", "x", "y", "z"]), max_size=40)


def numeric(values: np.ndarray) -> NumericProfile:
    return NumericProfile.from_values(values, BINNING, sketch=True)


def categorical(values: list[str], missing: int = 0) -> CategoricalProfile:
    counts: dict[str, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return CategoricalProfile.from_counts(counts, CATEGORIES, missing=missing)


def exact_part(p: NumericProfile) -> dict:
    d = p.to_dict()
    return {k: v for k, v in d.items() if k not in ("mean", "m2")}


def assert_same_numeric(a: NumericProfile, b: NumericProfile) -> None:
    assert exact_part(a) == exact_part(b)
    scale = max(1.0, abs(a.mean), abs(b.mean))
    assert a.mean == pytest.approx(b.mean, rel=1e-9, abs=1e-9 * scale)
    assert a.m2 == pytest.approx(b.m2, rel=1e-7, abs=1e-6 * scale * scale)


# ------------------------------------------------------------------------------ numeric


@FAST
@given(column, column)
def test_numeric_merge_is_commutative(a: np.ndarray, b: np.ndarray) -> None:
    assert_same_numeric(numeric(a).merge(numeric(b)), numeric(b).merge(numeric(a)))


@FAST
@given(column, column, column)
def test_numeric_merge_is_associative(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> None:
    left = numeric(a).merge(numeric(b)).merge(numeric(c))
    right = numeric(a).merge(numeric(b).merge(numeric(c)))
    assert_same_numeric(left, right)


@FAST
@given(column, column)
def test_numeric_merge_equals_profiling_the_concatenation(a: np.ndarray, b: np.ndarray) -> None:
    merged = numeric(a).merge(numeric(b))
    whole = numeric(np.concatenate([a, b]))
    assert_same_numeric(merged, whole)
    assert merged.sketch == whole.sketch
    assert merged.rows == a.size + b.size


@FAST
@given(column)
def test_numeric_round_trip(a: np.ndarray) -> None:
    p = numeric(a)
    back = column_from_dict(p.to_dict(), BINNING)
    assert back.to_dict() == p.to_dict()
    assert NumericBinning.from_dict(BINNING.to_dict()).fingerprint() == BINNING.fingerprint()


def test_numeric_profile_counts() -> None:
    p = NumericProfile.from_values(np.array([1.0, np.nan, np.inf, -2e5, 3.0, np.nan]), BINNING, invalid=1)
    assert (p.count, p.missing, p.invalid, p.below, p.above) == (3, 1, 2, 1, 0)
    assert p.mean == pytest.approx((1 + 3 - 2e5) / 3)


def test_binning_keeps_distinct_integers_in_distinct_bins() -> None:
    values = np.repeat(np.arange(-3.0, 12.0), 50)
    binning = NumericBinning.fit(QuantileSketch.from_values(values), values.min(), values.max())
    counts = NumericProfile.from_values(values, binning).counts
    assert binning.bins == 15 and np.all(counts == 50)


def test_binning_of_continuous_data_has_about_equal_mass() -> None:
    values = np.random.default_rng(0).lognormal(0, 1, 20_000)
    binning = NumericBinning.fit(QuantileSketch.from_values(values), values.min(), values.max())
    counts = NumericProfile.from_values(values, binning).counts
    assert binning.bins == 50
    assert counts.min() > 0.8 * 400 and counts.max() < 1.2 * 400


# -------------------------------------------------------------------------- categorical


@FAST
@given(words, words, words)
def test_categorical_merge_is_associative_commutative_and_equals_the_concatenation(a: list[str], b: list[str], c: list[str]) -> None:
    pa, pb, pc = categorical(a, 1), categorical(b, 2), categorical(c)
    whole = categorical(a + b + c, 3).to_dict()
    assert pa.merge(pb).merge(pc).to_dict() == whole
    assert pa.merge(pb.merge(pc)).to_dict() == whole
    assert pb.merge(pa).to_dict() == pa.merge(pb).to_dict()


@FAST
@given(words)
def test_categorical_round_trip(a: list[str]) -> None:
    p = categorical(a, 4)
    binning = CategoricalBinning.from_dict(CATEGORIES.to_dict())
    assert column_from_dict(p.to_dict(), binning).to_dict() == p.to_dict()
    assert binning.fingerprint() == CATEGORIES.fingerprint()


def test_categorical_slots() -> None:
    p = categorical(["a", "a", "d", "x", "y", "x"])
    assert p.frequencies().tolist() == [2, 0, 0, 1, 3]
    assert p.unseen_values == {"x": 2, "y": 1}


# --------------------------------------------------------------------------- performance

scores = st.lists(st.tuples(st.integers(0, 999), st.integers(0, 1)), max_size=30)


def binary(pairs: list[tuple[int, int]]) -> BinaryPerformance:
    s = np.array([p[0] / 1000 for p in pairs], dtype=np.float64)
    y = np.array([p[1] for p in pairs], dtype=np.float64)
    return BinaryPerformance.from_arrays(s, y)


@FAST
@given(scores, scores, scores)
def test_binary_performance_merge(a: list, b: list, c: list) -> None:
    whole = binary(a + b + c).to_dict()
    merged = binary(a).merge(binary(b)).merge(binary(c)).to_dict()
    for key in ("log_loss_sum", "brier_sum"):
        assert merged.pop(key) == pytest.approx(whole.pop(key))
    assert merged == whole
    assert binary(b).merge(binary(a)).n == binary(a).merge(binary(b)).n


def test_binary_performance_refuses_to_merge_different_thresholds() -> None:
    a = BinaryPerformance.from_arrays(np.array([0.2]), np.array([1.0]), threshold=0.5)
    b = BinaryPerformance.from_arrays(np.array([0.2]), np.array([1.0]), threshold=0.3)
    with pytest.raises(ValueError, match="threshold"):
        a.merge(b)


def test_performance_round_trips() -> None:
    rng = np.random.default_rng(1)
    profiles = [
        BinaryPerformance.from_arrays(rng.random(50), (rng.random(50) < 0.5).astype(float)),
        ClassPerformance.from_pairs({("a", "a"): 3, ("a", "b"): 1, ("b", "b"): 4}),
        RegressionPerformance.from_arrays(rng.normal(size=20), rng.normal(size=20)),
    ]
    for p in profiles:
        assert performance_from_dict(p.to_dict()).to_dict() == p.to_dict()


def test_class_and_regression_merge_equal_the_concatenation() -> None:
    a = ClassPerformance.from_pairs({("a", "a"): 3, ("a", "b"): 1})
    b = ClassPerformance.from_pairs({("a", "b"): 2, ("b", "b"): 4})
    assert a.merge(b).confusion == {("a", "a"): 3, ("a", "b"): 3, ("b", "b"): 4}
    rng = np.random.default_rng(2)
    p, y = rng.normal(size=30), rng.normal(size=30)
    merged = RegressionPerformance.from_arrays(p[:10], y[:10]).merge(RegressionPerformance.from_arrays(p[10:], y[10:]))
    whole = RegressionPerformance.from_arrays(p, y)
    assert merged.n == whole.n
    for key in ("sum_abs_error", "sum_sq_error", "sum_error", "sum_y", "sum_y2"):
        assert getattr(merged, key) == pytest.approx(getattr(whole, key))


# ------------------------------------------------------------------------------ dataset


def test_dataset_profile_round_trip_and_merge() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=100)
    cuts = NumericBinning(np.quantile(x, [0.25, 0.5, 0.75]), x.min(), x.max())

    def part(values: np.ndarray, words: list[str]) -> DatasetProfile:
        return DatasetProfile(
            rows=values.size,
            columns={"x": NumericProfile.from_values(values, cuts), "c": categorical(words)},
            performance=RegressionPerformance.from_arrays(values, values * 2),
            kpis={"k": KpiProfile(values.size, 1, float(values.sum()), QuantileSketch.from_values(values))},
            bad_timestamps=1,
            duplicate_ids=2,
            missing_columns=("z",),
        )

    a, b = part(x[:60], ["a"] * 60), part(x[60:], ["b", "x"] * 20)
    merged = a.merge(b)
    assert merged.rows == 100 and merged.bad_timestamps == 2 and merged.duplicate_ids == 4
    assert merged.columns["x"].counts.tolist() == NumericProfile.from_values(x, cuts).counts.tolist()
    assert merged.kpis["k"].sketch == QuantileSketch.from_values(x)
    back = DatasetProfile.from_dict(merged.to_dict())
    assert back.to_dict() == merged.to_dict()


# ------------------------------------------------------------------------------- sketch

magnitudes = st.one_of(st.floats(min_value=1e-9, max_value=1e9), st.floats(min_value=-1e9, max_value=-1e-9), st.just(0.0))


@FAST
@given(st.lists(magnitudes, min_size=1, max_size=200), st.floats(min_value=0.0, max_value=1.0))
def test_sketch_quantile_is_within_alpha_of_the_data_quantile(values: list[float], q: float) -> None:
    data = np.asarray(values)
    estimate = QuantileSketch.from_values(data).quantile(q)
    truth = float(np.quantile(data, q, method="lower"))  # the rank the sketch reports: floor(q (n - 1))
    assert abs(estimate - truth) <= DEFAULT_ALPHA * abs(truth) * (1 + 1e-9) + 1e-300


@FAST
@given(st.lists(magnitudes, max_size=50), st.lists(magnitudes, max_size=50))
def test_sketch_merge_equals_sketch_of_the_concatenation_and_round_trips(a: list[float], b: list[float]) -> None:
    merged = QuantileSketch.from_values(np.asarray(a)).merge(QuantileSketch.from_values(np.asarray(b)))
    assert merged == QuantileSketch.from_values(np.asarray(a + b))
    assert QuantileSketch.from_dict(merged.to_dict()) == merged
    assert merged.count == len(a) + len(b)


def test_sketch_merge_of_far_apart_buckets() -> None:
    """Merges add on a dense row of buckets when the keys are close; keys spanning more than a
    million buckets (tiny alpha, wide data) take the sorted path. Both equal the concatenation."""
    rng = np.random.default_rng(9)
    for alpha, scale in ((DEFAULT_ALPHA, 3.0), (1e-7, 20.0)):
        a, b = rng.lognormal(0, scale, 3000) * rng.choice([-1, 1], 3000), rng.lognormal(0, scale, 2000)
        merged = QuantileSketch.from_values(a, alpha).merge(QuantileSketch.from_values(b, alpha))
        assert merged == QuantileSketch.from_values(np.concatenate([a, b]), alpha)
        span = int(merged.pos_keys.max() - merged.pos_keys.min())
        assert (span >= 1 << 20) == (alpha == 1e-7)


def test_sketch_relative_error_on_a_large_sample_against_numpy() -> None:
    data = np.random.default_rng(4).lognormal(3, 0.7, 50_000)
    sketch = QuantileSketch.from_values(data)
    for q in (0.01, 0.5, 0.9, 0.95, 0.99, 0.999):
        truth = np.quantile(data, q)
        assert abs(sketch.quantile(q) - truth) <= DEFAULT_ALPHA * truth * 1.05, q
    assert math.isnan(QuantileSketch.empty().quantile(0.5))


def _sketch_by_definition(values: np.ndarray, alpha: float = DEFAULT_ALPHA) -> dict:
    """The sketch's buckets straight from its definition: a log per value, by sign."""
    lg = math.log((1 + alpha) / (1 - alpha))
    magnitude = np.abs(values)
    small = magnitude < 1e-12

    def side(m: np.ndarray) -> list[list[int]]:
        keys, counts = np.unique(np.ceil(np.log(m) / lg).astype(np.int64), return_counts=True)
        return [keys.tolist(), counts.tolist()]

    return {"alpha": alpha, "pos": side(values[(values > 0) & ~small]), "neg": side(-values[(values < 0) & ~small]), "zeros": int(small.sum())}


def _sketch_cases() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(11)
    gamma = (1 + DEFAULT_ALPHA) / (1 - DEFAULT_ALPHA)
    edges = gamma ** np.arange(-300.0, 300.0)
    return {
        "lognormal": rng.lognormal(2, 1, 200_000),
        "bucket edges and their neighbours": np.concatenate([edges, np.nextafter(edges, 0), np.nextafter(edges, np.inf)]),
        "both signs and zeros": np.concatenate([rng.normal(0, 1, 50_000), np.zeros(7), np.full(3, 1e-13), -edges]),
        "flags": (rng.random(100_000) < 0.2).astype(np.float64),
        "counts": rng.poisson(3, 100_000).astype(np.float64),
        "negative whole numbers": rng.integers(-500, 500, 100_000).astype(np.float64),
        "whole ends, fractions inside": np.concatenate([[0.0, 1.0], rng.random(1000)]),
        "a wide range (a log per value)": np.exp(rng.uniform(-300, 300, 50_000)),
        "whole numbers too far apart": np.array([0.0, 1.0, 2.0**40]),
        "one value": np.array([5.0]),
        "extremes": np.array([1e308, 1.0, 2.0**-30]),
        "both signs around the zero cut": np.concatenate(
            [[-0.0, 0.0, 1e-12, -1e-12, 5e-324, -5e-324], np.nextafter([1e-12, -1e-12], 0), np.nextafter([1e-12, -1e-12], 1), rng.normal(0, 3, 20_000)]
        ),
        "negatives only": -rng.lognormal(1, 1, 50_000),
        "both signs, bucket edges": np.concatenate([edges, -np.nextafter(edges, 0), -np.nextafter(edges, np.inf), [0.0]]),
        "both signs, a wide range (a log per value)": np.exp(rng.uniform(-300, 300, 20_000)) * rng.choice([-1.0, 1.0], 20_000),
    }


@pytest.mark.parametrize("case", list(_sketch_cases()))
def test_sketch_buckets_equal_a_log_per_value(case: str) -> None:
    """The shortcuts (cells of the float's top bits, one count per distinct whole number) give
    exactly the buckets of the sketch's definition, edges and their float neighbours included."""
    values = _sketch_cases()[case]
    assert QuantileSketch.from_values(values).to_dict() == _sketch_by_definition(values)
    assert QuantileSketch.from_values(values, alpha=0.02).to_dict() == _sketch_by_definition(values, 0.02)


@pytest.mark.parametrize("seed", range(6))
def test_bin_lookup_equals_a_binary_search(seed: int) -> None:
    """Large arrays are binned through the lookup table: the bins must be searchsorted's."""
    rng = np.random.default_rng(seed)
    sources = [
        rng.normal(size=50_000),
        rng.lognormal(0, 2, size=50_000),  # skewed: cuts crowd near zero
        rng.integers(0, 7, size=50_000).astype(float),  # ties: few distinct cuts
        rng.normal(1e6, 1e-3, size=50_000),  # narrow range far from zero
    ]
    source = sources[seed % len(sources)]
    binning = NumericBinning.fit(QuantileSketch.from_values(source), float(source.min()), float(source.max()), 50)
    if seed % len(sources) in (0, 1):
        assert binning._lookup is not None  # (the table, not the fallback, is what is tested)
    values = np.concatenate([rng.choice(source, 40_000), source.min() - rng.random(500), source.max() + rng.random(500), binning.cuts])
    rng.shuffle(values)
    expected = np.searchsorted(binning.cuts, values, side="right")
    np.testing.assert_array_equal(binning.index(values, finite=True), expected)
    with_nan = values.copy()
    with_nan[::97] = np.nan
    np.testing.assert_array_equal(binning.index(with_nan), np.searchsorted(binning.cuts, with_nan, side="right"))


def _profile_fields(profile: NumericProfile) -> dict:
    out = profile.to_dict()
    out.pop("mean"), out.pop("m2")
    return out


@pytest.mark.parametrize("seed", range(4))
def test_a_profile_by_value_counts_is_the_profile_of_the_rows(seed: int) -> None:
    """Whole-number columns are profiled by their distinct values: bins, range, out-of-range
    counts and sketch exactly as from every row, mean and m2 to rounding."""
    rng = np.random.default_rng(seed)
    reference = rng.poisson(4, 20_000).astype(float) - (3 if seed % 2 else 0)  # odd seeds: negatives and zeros
    binning = NumericBinning.fit(QuantileSketch.from_values(reference), float(reference.min()), float(reference.max()), 50)
    window = np.concatenate([rng.poisson(5, 5000) - 6, [reference.max() + 7, 1e-13]]).astype(float)  # beyond both ends, a tiny magnitude
    values, counts = np.unique(window, return_counts=True)
    for sketch in (False, True):
        by_value = NumericProfile.of_value_counts(values, counts, binning, sketch=sketch)
        by_row = NumericProfile.from_values(window, binning, sketch=sketch)
        assert by_value.below > 0 and by_value.above > 0
        assert _profile_fields(by_value) == _profile_fields(by_row)
        assert by_value.mean == pytest.approx(by_row.mean, rel=1e-13) and by_value.m2 == pytest.approx(by_row.m2, rel=1e-12)
    constant = NumericBinning.fit(QuantileSketch.from_values(np.full(10, 3.0)), 3.0, 3.0, 50)
    assert constant.bins == 1
    assert _profile_fields(NumericProfile.of_value_counts(values, counts, constant)) == _profile_fields(NumericProfile.from_values(window, constant))
    empty = NumericProfile.of_value_counts(np.empty(0), np.empty(0, dtype=np.int64), binning, missing=4, sketch=True)
    assert _profile_fields(empty) == _profile_fields(NumericProfile.from_values(np.full(4, np.nan), binning, sketch=True))


def test_a_sketch_from_value_counts_is_the_sketch_of_the_rows() -> None:
    values = np.array([-2.5e6, -3.0, -1e-13, 0.0, 1e-13, 1e-12, 0.5, 7.0, 1e9])
    counts = np.array([1, 4, 2, 3, 1, 2, 5, 6, 1])
    assert QuantileSketch.from_counts(values, counts).to_dict() == _sketch_by_definition(np.repeat(values, counts))
    assert QuantileSketch.from_counts(values, counts, 0.02).to_dict() == _sketch_by_definition(np.repeat(values, counts), 0.02)
