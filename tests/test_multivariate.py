"""Multivariate drift: streamed moments equal one-shot ones, the PCA model reconstructs like
sklearn's, and the threshold catches a flipped correlation that univariate tests miss while
holding its false-alarm rate on stationary data."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import linalg, stats
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler

from checks.multivariate import (
    EmptyWindowError,
    ErrorProfile,
    Moments,
    MultivariateVerdict,
    PcaModel,
    chunk_spread,
    multivariate_drift,
)
from checks.results import Direction, Status


def correlated(rng: np.random.Generator, n: int, rho: float) -> np.ndarray:
    """n rows of two standard normal columns with correlation rho."""
    a, b = rng.normal(size=(2, n))
    return np.column_stack([a, rho * a + np.sqrt(1 - rho * rho) * b])


def mixed(rng: np.random.Generator, n: int, d: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of d correlated columns with different scales and offsets, and the generator's
    mixing matrix and offsets (to draw more rows of the same distribution)."""
    mixing = rng.normal(size=(d, d)) * rng.uniform(0.2, 3.0, size=d)
    offset = rng.uniform(-50, 50, size=d)
    return rng.normal(size=(n, d)) @ mixing + offset, mixing, offset


def streamed(x: np.ndarray, rng: np.random.Generator, pieces: int = 7) -> Moments:
    cuts = np.sort(rng.integers(0, len(x) + 1, size=pieces - 1))
    total = Moments.empty(x.shape[1])
    for part in np.split(x, cuts):
        total = total.merge(Moments.from_array(part))
    return total


def json_round_trip(data: dict) -> dict:
    return json.loads(json.dumps(data, allow_nan=False))


# ------------------------------------------------------------------------------ moments


@pytest.mark.parametrize("seed", range(8))
def test_moments_merge_equals_one_shot(seed: int) -> None:
    rng = np.random.default_rng(seed)
    d = int(rng.integers(1, 6))
    x, _, _ = mixed(rng, int(rng.integers(2, 400)), d)
    holes = rng.random(x.shape) < 0.05
    x[holes] = rng.choice([np.nan, np.inf, -np.inf], size=int(holes.sum()))
    complete = x[np.isfinite(x).all(axis=1)]

    merged = streamed(x, rng)
    one_shot = Moments.from_array(x)

    assert merged.count == one_shot.count == len(complete)
    assert merged.skipped == one_shot.skipped == len(x) - len(complete)
    if len(complete) == 0:
        return
    scale = np.abs(complete).max()
    np.testing.assert_allclose(merged.mean, complete.mean(axis=0), rtol=1e-10, atol=1e-12 * scale)
    expected = np.atleast_2d(np.cov(complete, rowvar=False, bias=True))
    np.testing.assert_allclose(merged.covariance, expected, rtol=1e-8, atol=1e-10 * scale * scale)
    np.testing.assert_allclose(one_shot.covariance, expected, rtol=1e-8, atol=1e-10 * scale * scale)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("block", [1, 7, 64, 16384])
def test_moments_from_columns_equal_from_array(seed: int, block: int) -> None:
    """Column arrays in column-major blocks give the moments of their stacked rows: the complete
    rows' count, mean and covariance (against numpy), the incomplete ones skipped; a block of
    only incomplete rows, a far-from-zero mean and a read-only column included."""
    rng = np.random.default_rng(seed)
    d = int(rng.integers(1, 6))
    x, _, _ = mixed(rng, int(rng.integers(2, 400)), d)
    x += 1e6 * rng.integers(0, 2)  # sometimes far from zero: centring per block must hold up
    holes = rng.random(x.shape) < 0.05
    x[holes] = rng.choice([np.nan, np.inf, -np.inf], size=int(holes.sum()))
    x[: min(len(x), 9), 0] = np.nan  # the first blocks of small sizes hold no complete row
    columns = [np.ascontiguousarray(x[:, j]) for j in range(d)]
    columns[0].flags.writeable = False
    before = [c.copy() for c in columns]
    got = Moments.from_columns(columns, block)
    complete = x[np.isfinite(x).all(axis=1)]
    assert got.count == len(complete) and got.skipped == len(x) - len(complete)
    for c, b in zip(columns, before):
        np.testing.assert_array_equal(c, b)  # inputs untouched
    if len(complete) == 0:
        assert got.count == 0
        return
    one_shot = Moments.from_array(x)
    scale = np.abs(complete).max()
    np.testing.assert_allclose(got.mean, complete.mean(axis=0), rtol=1e-12, atol=1e-12 * scale)
    expected = np.atleast_2d(np.cov(complete, rowvar=False, bias=True))
    spread = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(got.covariance, expected, rtol=1e-8, atol=1e-9 * spread)
    np.testing.assert_allclose(got.comoment, one_shot.comoment, rtol=1e-8, atol=1e-9 * spread * len(complete))
    assert np.array_equal(got.comoment, got.comoment.T)


def test_moments_from_no_columns_or_rows() -> None:
    assert Moments.from_columns([np.empty(0), np.empty(0)]).count == 0
    assert Moments.from_columns([np.empty(0)]).dim == 1
    only_nan = Moments.from_columns([np.array([np.nan, 1.0]), np.array([2.0, np.inf])])
    assert only_nan.count == 0 and only_nan.skipped == 2


def test_moments_merge_order_and_empty_parts() -> None:
    rng = np.random.default_rng(3)
    x, _, _ = mixed(rng, 300, 3)
    a, b, c = Moments.from_array(x[:100]), Moments.from_array(x[100:120]), Moments.from_array(x[120:])
    left, right = a.merge(b).merge(c), c.merge(a.merge(b))
    np.testing.assert_allclose(left.mean, right.mean, rtol=1e-12)
    np.testing.assert_allclose(left.comoment, right.comoment, rtol=1e-10)
    empty = Moments.from_array(np.empty((0, 3)))
    assert empty.count == 0 and empty.merge(a).count == a.count == a.merge(empty).count
    np.testing.assert_array_equal(empty.merge(a).mean, a.mean)
    with pytest.raises(ValueError, match="2 and 3 columns"):
        Moments.empty(2).merge(a)


def test_moments_fill_replaces_non_finite_cells() -> None:
    x = np.array([[1.0, np.nan], [3.0, 4.0], [np.inf, 8.0]])
    filled = Moments.from_array(x, fill=np.array([10.0, 20.0]))
    assert filled.count == 3 and filled.skipped == 0
    np.testing.assert_allclose(filled.mean, [14 / 3, 32 / 3])
    dropped = Moments.from_array(x)
    assert dropped.count == 1 and dropped.skipped == 2


def test_moments_round_trip() -> None:
    rng = np.random.default_rng(4)
    m = Moments.from_array(mixed(rng, 50, 4)[0])
    back = Moments.from_dict(json_round_trip(m.to_dict()))
    assert back.count == m.count and back.skipped == m.skipped
    np.testing.assert_array_equal(back.mean, m.mean)
    np.testing.assert_array_equal(back.comoment, m.comoment)
    assert Moments.from_dict(json_round_trip(Moments.empty(3).to_dict())).dim == 3


# ------------------------------------------------------------------------------ the model


def sklearn_errors(reference: np.ndarray, x: np.ndarray, k: int) -> np.ndarray:
    scaler = StandardScaler().fit(reference)  # population std, like the model
    pca = PCA(n_components=k, svd_solver="full").fit(scaler.transform(reference))
    z = scaler.transform(x)
    return np.linalg.norm(z - pca.inverse_transform(pca.transform(z)), axis=1)


@pytest.mark.parametrize("seed", range(10))
def test_model_matches_sklearn(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    d = int(rng.integers(3, 9))
    reference, mixing, offset = mixed(rng, 3000, d)
    names = [f"c{i}" for i in range(d)]
    model = PcaModel.fit(streamed(reference, rng), names)

    z = StandardScaler().fit_transform(reference)
    chosen = PCA(n_components=0.65, svd_solver="full").fit(z).n_components_
    assert chosen < d  # the cap at d - 1 does not apply to this data
    assert model.k == chosen
    expected_explained = PCA(n_components=chosen, svd_solver="full").fit(z).explained_variance_ratio_.sum()
    assert model.explained == pytest.approx(expected_explained, rel=1e-9)

    # On the reference, and on other data standardised with the reference's scales.
    drifted = rng.normal(size=(500, d)) @ rng.permutation(mixing) + offset
    for x in (reference, drifted):
        np.testing.assert_allclose(model.errors(x), sklearn_errors(reference, x, chosen), rtol=0, atol=1e-8)


@pytest.mark.parametrize("variance", [0.3, 0.5, 0.8, 0.95])
def test_variance_rule_matches_sklearn(variance: float) -> None:
    for seed in range(5):
        rng = np.random.default_rng(200 + seed)
        d = 6
        reference, _, _ = mixed(rng, 2000, d)
        z = StandardScaler().fit_transform(reference)
        chosen = PCA(n_components=variance, svd_solver="full").fit(z).n_components_
        model = PcaModel.fit(Moments.from_array(reference), [str(i) for i in range(d)], variance)
        assert model.k == min(chosen, d - 1)


def test_model_is_deterministic_and_round_trips() -> None:
    rng = np.random.default_rng(5)
    reference, _, _ = mixed(rng, 1000, 4)
    names = ["a", "b", "c", "d"]
    model = PcaModel.fit(Moments.from_array(reference), names)
    again = PcaModel.fit(Moments.from_array(reference[::-1].copy()), names)
    np.testing.assert_allclose(again.components, model.components, atol=1e-10)  # sign-normalised
    assert (model.components[np.arange(model.k), np.abs(model.components).argmax(axis=1)] > 0).all()
    back = PcaModel.from_dict(json_round_trip(model.to_dict()))
    assert back.columns == model.columns and back.k == model.k and back.fingerprint() == model.fingerprint()
    np.testing.assert_array_equal(back.errors(reference), model.errors(reference))
    with pytest.raises(ValueError, match="expected 4 columns"):
        model.errors(reference[:, :3])


def test_two_weakly_correlated_columns_keep_one_axis() -> None:
    # sklearn's rule keeps both axes (0.5 + 0.1/2 < 0.65): every error would be exactly 0.
    rng = np.random.default_rng(6)
    reference = correlated(rng, 5000, 0.1)
    z = StandardScaler().fit_transform(reference)
    assert PCA(n_components=0.65, svd_solver="full").fit(z).n_components_ == 2
    model = PcaModel.fit(Moments.from_array(reference), ["x", "y"])
    assert model.k == 1
    assert model.errors(reference).mean() > 0.5
    np.testing.assert_allclose(model.errors(reference), sklearn_errors(reference, reference, 1), atol=1e-8)


def test_non_finite_cells_are_imputed_with_the_reference_mean() -> None:
    rng = np.random.default_rng(7)
    reference, _, _ = mixed(rng, 2000, 4)
    model = PcaModel.fit(Moments.from_array(reference), list("abcd"))
    rows = rng.normal(size=(6, 4)) * 10
    holed = rows.copy()
    holed[0, 1] = np.nan
    holed[1, 3] = np.inf
    holed[2, 0] = -np.inf
    holed[3, [0, 2]] = np.nan
    holed[4, :] = np.nan
    filled = np.where(np.isfinite(holed), holed, model.mean)
    np.testing.assert_array_equal(model.errors(holed), model.errors(filled))
    assert model.errors(holed)[4] == 0.0  # a row of reference means is the centre itself
    np.testing.assert_allclose(model.mean, reference.mean(axis=0))
    # And the fill really changes the error of a row that was far from the mean in that cell.
    assert model.errors(holed)[0] != pytest.approx(model.errors(rows)[0])


def test_single_column_is_refused() -> None:
    x = np.random.default_rng(8).normal(size=(100, 1))
    with pytest.raises(ValueError, match="at least 2 numeric columns"):
        PcaModel.fit(Moments.from_array(x), ["only"])
    with pytest.raises(ValueError, match="2 column names"):
        PcaModel.fit(Moments.from_array(x), ["a", "b"])


def test_constant_column_contributes_nothing() -> None:
    rng = np.random.default_rng(9)
    pair = correlated(rng, 3000, 0.7)
    with_constant = np.column_stack([pair[:, 0], np.full(3000, 5.0), pair[:, 1]])
    model = PcaModel.fit(Moments.from_array(with_constant), ["x", "k", "y"])
    plain = PcaModel.fit(Moments.from_array(pair), ["x", "y"])
    assert model.constant.tolist() == [False, True, False] and model.std[1] == 1.0
    assert model.k == 1 and (model.components[:, 1] == 0).all()
    np.testing.assert_allclose(model.errors(with_constant), plain.errors(pair), atol=1e-12)
    moved = with_constant.copy()
    moved[:, 1] = 7.0
    np.testing.assert_allclose(model.errors(moved), plain.errors(pair), atol=1e-12)
    # sklearn agrees where the constant column stays constant.
    np.testing.assert_allclose(model.errors(with_constant), sklearn_errors(with_constant, with_constant, 1), atol=1e-8)

    only_one_varies = np.column_stack([pair[:, 0], np.full(3000, 5.0)])
    with pytest.raises(ValueError, match="at least 2 columns that vary"):
        PcaModel.fit(Moments.from_array(only_one_varies), ["x", "k"])


# ------------------------------------------------------------------------ scoring by columns


def column_model(rng: np.random.Generator, n: int = 4000, d: int = 6) -> tuple[PcaModel, np.ndarray, np.ndarray]:
    """A model fitted on correlated reference rows, and fresh rows of the same distribution."""
    reference, mixing, offset = mixed(rng, n, d)
    model = PcaModel.fit(Moments.from_array(reference), [f"c{i}" for i in range(d)])
    return model, reference, rng.normal(size=(1237, d)) @ mixing + offset


def split(x: np.ndarray) -> list[np.ndarray]:
    return [np.ascontiguousarray(x[:, j]) for j in range(x.shape[1])]


@pytest.mark.parametrize("block", [1, 3, 64, 1000, 1237, 5000, 16384])
def test_errors_of_columns_equals_errors_for_any_block(block: int) -> None:
    rng = np.random.default_rng(16)
    model, reference, fresh = column_model(rng)
    assert 1 <= model.k < model.d
    for x in (fresh, reference[:1237] * 1.5):  # 1237 rows: not a multiple of any block but itself
        got = model.errors_of_columns(split(x), block=block)
        assert got.shape == (x.shape[0],) and got.dtype == np.float64
        np.testing.assert_allclose(got, model.errors(np.column_stack(split(x))), rtol=0, atol=1e-12)


@pytest.mark.parametrize("block", [1, 5, 256, 10_000])
def test_errors_of_columns_imputes_non_finite_cells(block: int) -> None:
    rng = np.random.default_rng(17)
    model, _, x = column_model(rng)
    x = x.copy()
    n, d = x.shape
    cells = rng.random(size=x.shape) < 0.03
    x[cells] = rng.choice([np.nan, np.inf, -np.inf], size=int(cells.sum()))
    x[10, :] = np.nan  # a whole row missing: the centre, error 0
    x[11, :] = [np.inf, -np.inf] * (d // 2)
    x[n - 1, 0] = np.nan  # in the last, partial block
    expected = model.errors(x)
    assert np.isfinite(expected).all() and expected[10] == 0.0
    got = model.errors_of_columns(split(x), block=block)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    holed = ~np.isfinite(x).all(axis=1)
    assert 0 < holed.sum() < n
    filled = np.where(np.isfinite(x), x, model.mean)
    np.testing.assert_allclose(got, model.errors_of_columns(split(filled), block=block), rtol=0, atol=1e-12)


def test_errors_of_columns_overflowing_rows_match_errors() -> None:
    rng = np.random.default_rng(18)
    model, _, x = column_model(rng)
    x = x[:50].copy()
    x[3, 2] = 1e308
    x[4, [0, 1]] = [1.7e308, -1.7e308]
    x[5, 0] = np.nan
    x[5, 3] = -1e308
    with np.errstate(over="ignore", invalid="ignore"):
        expected = model.errors(x)
        got = model.errors_of_columns(split(x), block=16)
    assert not np.isfinite(expected[[3, 4, 5]]).any() and np.isfinite(np.delete(expected, [3, 4, 5])).all()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)  # NaN where NaN, inf where inf


def test_errors_of_columns_with_a_constant_column() -> None:
    rng = np.random.default_rng(19)
    pair = correlated(rng, 3000, 0.7)
    reference = np.column_stack([pair[:, 0], np.full(3000, 5.0), 3.0 * pair[:, 1] - 2.0])
    model = PcaModel.fit(Moments.from_array(reference), ["x", "k", "y"])
    assert model.constant.tolist() == [False, True, False]
    x = np.column_stack([correlated(rng, 777, -0.3), rng.normal(size=777)])[:, [0, 2, 1]]
    x[::7, 1] = np.nan
    x[1::7, 1] = np.inf
    x[2::7, 1] = -np.inf
    x[3::11, 0] = np.nan
    expected = model.errors(x)
    for block in (1, 100, 4096):
        np.testing.assert_allclose(model.errors_of_columns(split(x), block=block), expected, rtol=0, atol=1e-12)
    # The constant column contributes nothing, whatever it holds.
    moved = x.copy()
    moved[:, 1] = 7.0
    np.testing.assert_allclose(model.errors_of_columns(split(moved)), expected, rtol=0, atol=1e-12)


def test_errors_of_columns_only_reads_its_inputs() -> None:
    rng = np.random.default_rng(20)
    model, _, x = column_model(rng)
    x = x.copy()
    x[::13, 2] = np.nan
    x[5::17, 4] = -np.inf
    x.flags.writeable = False
    views = [x[:, j] for j in range(x.shape[1])]  # strided, read-only views into one matrix
    copies = split(x)
    for c in copies:
        c.flags.writeable = False
    expected = model.errors(x)
    for columns in (views, copies):
        np.testing.assert_allclose(model.errors_of_columns(columns, block=100), expected, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(np.column_stack(copies), x)  # untouched, NaN and inf included
    as_ints = [np.round(c * 10).astype(np.int64) for c in split(model.mean + rng.normal(size=(200, model.d)))]
    np.testing.assert_allclose(
        model.errors_of_columns(as_ints), model.errors(np.column_stack(as_ints)), rtol=0, atol=1e-12
    )


def test_errors_of_columns_empty_and_bad_inputs() -> None:
    rng = np.random.default_rng(21)
    model, _, x = column_model(rng)
    d = model.d
    empty = model.errors_of_columns([np.empty(0)] * d)
    assert empty.shape == (0,) and empty.dtype == np.float64
    assert model.errors(np.column_stack([np.empty(0)] * d)).shape == (0,)
    columns = split(x)
    with pytest.raises(ValueError, match=f"expected {d} columns, got {d - 1}"):
        model.errors_of_columns(columns[:-1])
    with pytest.raises(ValueError, match=f"expected {d} columns, got {d + 1}"):
        model.errors_of_columns(columns + columns[:1])
    with pytest.raises(ValueError, match="one length"):
        model.errors_of_columns(columns[:-1] + [columns[-1][:-1]])
    with pytest.raises(ValueError, match="1-D"):
        model.errors_of_columns(columns[:-1] + [x[:, :2]])
    with pytest.raises(ValueError, match="block"):
        model.errors_of_columns(columns, block=0)


@pytest.mark.parametrize("rank", [2, 8])
def test_errors_of_columns_by_either_projection(rank: int) -> None:
    # Few kept axes are projected on (z - W^T W z); many, and the error is the length along the
    # axes left out. Both must equal errors(), with a constant column and NaN/inf cells.
    rng = np.random.default_rng(23)
    n, d = 6000, 12
    loadings = rng.normal(size=(rank, d)) * rng.uniform(0.5, 4.0, size=d)
    reference = rng.normal(size=(n, rank)) @ loadings + rng.uniform(-20, 20, size=d) + rng.normal(size=(n, d)) * 1e-3
    reference[:, 4] = 3.0
    model = PcaModel.fit(Moments.from_array(reference), [f"c{i}" for i in range(d)], variance=0.999)
    assert model.k == rank and model.constant[4]
    assert (3 * model.k >= d) == (rank == 8)  # the two ways of scoring are both exercised
    axes = model.residual_axes
    assert axes.shape == (d - model.k, d)
    np.testing.assert_allclose(axes @ axes.T, np.eye(d - model.k), atol=1e-12)
    np.testing.assert_allclose(axes @ model.components.T, 0.0, atol=1e-12)
    x = rng.normal(size=(1500, rank)) @ loadings + reference[:1500] * 0.2 + rng.normal(size=(1500, d))
    x[::13, 2] = np.nan
    x[5::17, 7] = -np.inf
    x[::5, 4] = np.nan  # the constant column: not read, whatever it holds
    for block in (1, 77, 4096):
        np.testing.assert_allclose(model.errors_of_columns(split(x), block=block), model.errors(x), rtol=1e-12, atol=1e-12)


def test_errors_of_columns_give_the_distance_from_the_principal_subspace() -> None:
    # Reference rows span exactly k dimensions; in standardised coordinates a row's error is its
    # distance from that subspace, known here by construction.
    rng = np.random.default_rng(22)
    n, d, k = 5000, 7, 3
    loadings = rng.normal(size=(k, d)) * rng.uniform(0.5, 4.0, size=d)
    offset = rng.uniform(-20, 20, size=d)
    reference = rng.normal(size=(n, k)) @ loadings + offset
    model = PcaModel.fit(Moments.from_array(reference), [f"c{i}" for i in range(d)], variance=1.0)
    assert model.k == k

    orthogonal = linalg.null_space(loadings / model.std)  # (d, d - k) unit columns, orthogonal in z-space
    m = 999
    on_plane = rng.normal(size=(m, k)) * 3.0 @ loadings + offset
    np.testing.assert_allclose(model.errors_of_columns(split(on_plane), block=128), 0.0, atol=1e-10)

    away = rng.normal(size=(m, d - k))
    off_plane = on_plane + (away @ orthogonal.T) * model.std
    distance = np.linalg.norm(away, axis=1)
    np.testing.assert_allclose(model.errors_of_columns(split(off_plane), block=128), distance, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(model.errors(off_plane), distance, rtol=1e-10, atol=1e-10)


# ------------------------------------------------------------------------- error profiles


def test_error_profile_merge_and_round_trip() -> None:
    rng = np.random.default_rng(10)
    e = rng.gamma(2.0, size=1001)
    parts = np.split(e, [0, 10, 500, 500, 900])
    merged = ErrorProfile()
    for part in parts:
        merged = merged.merge(ErrorProfile.from_errors(part))
    assert merged.count == e.size
    assert merged.mean == pytest.approx(e.mean(), rel=1e-12)
    assert merged.variance == pytest.approx(e.var(ddof=1), rel=1e-10)
    back = ErrorProfile.from_dict(json_round_trip(merged.to_dict()))
    assert (back.count, back.mean, back.m2) == (merged.count, merged.mean, merged.m2)
    assert ErrorProfile.from_errors(np.array([np.inf, 1.0])).count == 1


# ---------------------------------------------------------------------------- the check


def reference_profiles(model: PcaModel, chunks: list[np.ndarray]) -> tuple[ErrorProfile, list[ErrorProfile]]:
    profiles = [ErrorProfile.from_errors(model.errors(c)) for c in chunks]
    total = ErrorProfile()
    for p in profiles:
        total = total.merge(p)
    return total, profiles


def test_flipped_correlation_is_caught_where_univariate_tests_are_not() -> None:
    rng = np.random.default_rng(11)
    chunks = [correlated(rng, 5000, 0.8) for _ in range(10)]
    reference = np.concatenate(chunks)
    window = correlated(rng, 5000, -0.8)

    for j in range(2):
        assert stats.ks_2samp(reference[:, j], window[:, j]).pvalue > 0.01

    model = PcaModel.fit(Moments.from_array(reference), ["x", "y"])
    ref, chunk_profiles = reference_profiles(model, chunks)
    verdict = multivariate_drift(ref, chunk_profiles, ErrorProfile.from_errors(model.errors(window)), model=model)
    assert isinstance(verdict, MultivariateVerdict)
    assert verdict.breach and verdict.value > verdict.threshold
    assert verdict.p_value < 1e-12
    assert verdict.details["m"] == 5000 and verdict.details["chunks"] == 10
    assert verdict.details["components"] == 1 and verdict.details["explained_variance"] == pytest.approx(0.9, abs=0.01)
    json.dumps(verdict.details, allow_nan=False)
    result = verdict.to_result()
    assert result.status is Status.BREACH and result.direction is Direction.MAX and result.threshold == verdict.threshold

    same = multivariate_drift(ref, chunk_profiles, ErrorProfile.from_errors(model.errors(correlated(rng, 5000, 0.8))))
    assert not same.breach and same.to_result().status is Status.OK


def test_stationary_windows_rarely_breach() -> None:
    rng = np.random.default_rng(12)
    mixing = np.array([[1.0, 0.6, 0.2], [0.0, 0.8, -0.5], [0.0, 0.0, 0.7]])
    chunks = [rng.normal(size=(2000, 3)) @ mixing for _ in range(10)]
    model = PcaModel.fit(Moments.from_array(np.concatenate(chunks)), ["a", "b", "c"])
    ref, chunk_profiles = reference_profiles(model, chunks)

    windows, m = 300, 2000
    errors = model.errors(rng.normal(size=(windows * m, 3)) @ mixing).reshape(windows, m)
    means = errors.mean(axis=1)
    m2 = ((errors - means[:, None]) ** 2).sum(axis=1)
    profiles = [ErrorProfile(m, float(mu), float(s)) for mu, s in zip(means, m2)]

    strict = [multivariate_drift(ref, chunk_profiles, p, min_effect=0.0) for p in profiles]
    rate = np.mean([v.breach for v in strict])
    assert rate <= 0.02
    # Calibrated, not merely wide: the standardised excesses spread about like a standard normal.
    excess = np.array([v.details["standardised_excess"] for v in strict])
    assert 0.75 < excess.std() < 1.15
    assert abs(excess.mean()) < 1.0
    assert np.mean([multivariate_drift(ref, chunk_profiles, p).breach for p in profiles]) <= 0.02


def test_reference_window_variation_widens_the_threshold() -> None:
    rng = np.random.default_rng(13)
    chunks = [correlated(rng, 2000, 0.6 if i % 2 else 0.9) for i in range(20)]
    model = PcaModel.fit(Moments.from_array(np.concatenate(chunks)), ["x", "y"])
    ref, chunk_profiles = reference_profiles(model, chunks)
    window = ErrorProfile.from_errors(model.errors(correlated(rng, 2000, 0.6)))

    tau, used = chunk_spread(ref, chunk_profiles)
    assert used == 20
    half_gap = abs(chunk_profiles[1].mean - chunk_profiles[0].mean) / 2
    assert tau == pytest.approx(half_gap, rel=0.2)

    widened = multivariate_drift(ref, chunk_profiles, window)
    assert widened.details["tau"] == tau > 0
    assert not widened.breach
    assert widened.value >= ref.mean * 1.1  # the effect is large; only tau keeps it quiet
    narrow = multivariate_drift(ref, [], window)
    assert narrow.details["tau"] == 0 and "fewer than 2" in narrow.details["note"]
    assert narrow.breach
    assert multivariate_drift(ref, chunk_profiles[:1], window).breach  # one chunk: tau = 0


def test_min_effect_keeps_a_significant_but_small_change_quiet() -> None:
    rng = np.random.default_rng(14)
    n = 1_000_000
    reference = correlated(rng, n, 0.8)
    model = PcaModel.fit(Moments.from_array(reference), ["x", "y"])
    ref = ErrorProfile.from_errors(model.errors(reference))
    window = ErrorProfile.from_errors(model.errors(correlated(rng, n, 0.78)))

    verdict = multivariate_drift(ref, [], window)
    relative = verdict.details["relative_excess"]
    assert 0.02 < relative < 0.1
    assert verdict.p_value < 1e-12 and verdict.details["significant"]
    assert not verdict.breach
    assert "below min_effect" in verdict.details["reason"]
    assert verdict.threshold == verdict.details["effect_threshold"] > verdict.details["statistical_threshold"]
    assert multivariate_drift(ref, [], window, min_effect=0.0).breach
    assert multivariate_drift(ref, [], window, min_effect=relative / 2).breach


def test_empty_window_and_bad_inputs() -> None:
    ref = ErrorProfile.from_errors(np.random.default_rng(15).gamma(2.0, size=100))
    with pytest.raises(EmptyWindowError):
        multivariate_drift(ref, [], ErrorProfile())
    assert issubclass(EmptyWindowError, ValueError)
    empty_window = ErrorProfile.from_errors(np.array([]))
    with pytest.raises(ValueError, match="no rows"):
        multivariate_drift(ref, [], empty_window)
    with pytest.raises(ValueError, match="at least 2"):
        multivariate_drift(ErrorProfile.from_errors(np.array([1.0])), [], ref)
    with pytest.raises(ValueError, match="false_alarm_rate"):
        multivariate_drift(ref, [], ref, false_alarm_rate=0.0)
    # Empty chunks are ignored rather than counted as windows.
    assert multivariate_drift(ref, [ErrorProfile(), ErrorProfile()], ref).details["chunks"] == 0


def test_p_value_is_reported_without_breach() -> None:
    ref = ErrorProfile(10_000, 1.0, 0.25 * 9_999)  # sigma 0.5
    below = multivariate_drift(ref, [], ErrorProfile(100, 0.9, 0.25 * 99))
    assert not below.breach and 0.9 < below.p_value < 1.0
    se = np.sqrt(0.25 / 100 + 0.25 / 10_000)
    assert below.p_value == pytest.approx(stats.norm.sf(-0.1 / se), rel=1e-9)
    assert below.details["statistical_threshold"] == pytest.approx(1.0 + stats.norm.ppf(0.99) * se, rel=1e-12)


def test_moments_from_integer_columns_equal_their_floats() -> None:
    # The engine hands integer columns over as they are (no float copy).
    rng = np.random.default_rng(31)
    counts, flags, x = rng.poisson(3, 5000), (rng.uniform(size=5000) < 0.3).astype(np.int8), rng.normal(size=5000)
    got = Moments.from_columns([counts, flags, x], block=777)
    expected = Moments.from_columns([counts.astype(float), flags.astype(float), x], block=777)
    assert got.count == expected.count == 5000
    np.testing.assert_allclose(got.mean, expected.mean, rtol=1e-13)
    np.testing.assert_allclose(got.comoment, expected.comoment, rtol=1e-12)
