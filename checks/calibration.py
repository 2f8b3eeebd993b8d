"""Drift thresholds with a controlled false-alarm rate.

A fixed threshold on an effect size cries wolf on small windows (noise alone moves the statistic)
and on noisy columns, and a p-value alone cries wolf on big ones (a million rows make any shift
"significant"). The effect-size methods (wasserstein, jensen_shannon, psi, hellinger, kl_divergence,
total_variation) therefore decide a breach by three things together:

(a) **the null distribution at the window's size.** How large the statistic gets when nothing
    changed, for a window of ``m`` rows against this reference of ``n`` rows, estimated by drawing
    ``DRAWS`` pairs (reference*, window*) from the reference's own bucket shares (multinomial)
    and scoring them with the method's vectorised statistic. A numeric window may land beyond the reference's range: its
    draws put ``1 / (n + 1)`` in each outer bucket, the chance that a new value exceeds the
    largest of ``n``.
(b) **the variation the reference period already shows.** The reference is also profiled window
    by window (its *chunks*), and each chunk is scored against the rest of the reference. First,
    do the chunks move more than noise? Under noise alone the number of chunks past their own
    null quantile is Binomial(chunks, rate); no more than its ``1 - rate`` quantile, and the
    excess is 0. Otherwise the *excess* is the largest amount by which a chunk passes the mean of
    its null (what noise typically gives), and it widens every threshold: a daily cycle in hourly
    windows adds about its amplitude plus a full noise allowance, so a later peak hour does not
    alarm by beating the reference's few peaks on noise. Both stages were measured in
    ``bench/bench_detection.py``: widening by a quantile of the excesses let 2-4% of later peak
    hours alarm; widening every reference by the mean rule (no first stage) added the largest of
    500 noise swings to a stationary reference of 200-row chunks and cut the detection of a
    0.25 std shift in 200-row windows from 68% to 14%.
(c) **a minimum effect** per method (``min_effect``), so a breach is also large enough to matter:
    a 0.03-standard-deviation shift in a million rows is real but not worth waking anyone.

    threshold(m) = max(min_effect, null quantile at 1 - rate for m rows + excess)

The per-column *p-value* is the chance under (a) of the observed value minus the excess, read
from the draws where they reach and from a Satterthwaite fit (``S^2 ~ c * chi2(nu)``, by the draws'
first two moments) beyond them, so that the run-level verdict can combine many columns
(:func:`benjamini_hochberg`).

Everything here is pure and deterministic: draws are seeded by what they depend on, so the same
window checked twice gets the same threshold.

>>> import numpy as np
>>> from checks.profiles import NumericBinning, NumericProfile
>>> from checks.settings import DriftSettings
>>> from checks.drift import REGISTRY
>>> rng = np.random.default_rng(1)
>>> values = rng.normal(0, 1, 20_000)
>>> binning = NumericBinning(np.quantile(values, np.linspace(0, 1, 51)[1:-1]), values.min(), values.max())
>>> reference = NumericProfile.from_values(values, binning)
>>> small = null_distribution(REGISTRY["wasserstein"], reference, 200, DriftSettings())
>>> large = null_distribution(REGISTRY["wasserstein"], reference, 100_000, DriftSettings())
>>> small.quantile(0.99) > 0.1 > large.quantile(0.99)   # noise alone passes 0.1 at 200 rows
True
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
from scipy import stats

from checks.drift import CATEGORICAL, Buckets, DriftMethod, Geometry, buckets, geometry
from checks.multivariate import ErrorProfile
from checks.profiles import ColumnProfile, DatasetProfile, NumericProfile
from checks.roles import Roles

if TYPE_CHECKING:
    from checks.settings import DriftSettings

_In = TypeVar("_In")
_Out = TypeVar("_Out")
Mapper = Callable[[Callable[[_In], _Out], Iterable[_In]], Iterator[_Out]]
"""How per-column work is mapped: the built-in ``map`` (the default, one column after another)
or a thread pool's ``map``. Drawing nulls is numpy that releases the GIL, so columns calibrate in
parallel; results come back in the columns' order either way."""

DRAWS = 2000
"""Pairs drawn per null distribution: the 99% quantile then rests on ~20 draws beyond it, and the
Satterthwaite fit (which never lowers a threshold below the draws' own quantile) on all of them."""

QUANTILE_CONFIDENCE_Z = 1.5
"""A threshold is the draws' order statistic 1.5 binomial standard deviations above the quantile's
rank (about a 93% upper confidence bound on the true quantile), so that the Monte-Carlo error of
DRAWS draws does not push the false-alarm rate above its target."""

MIN_CHUNK_VALUES = 30
"""Reference chunks with fewer values of a column say nothing about its variation: skipped."""

_CACHE_SIZE = 4096


# ------------------------------------------------------------------------- null distribution


@dataclass(frozen=True)
class NullDistribution:
    """Values a method takes when nothing changed, for a window of ``window_rows`` against a
    reference of ``reference_rows``: ``sample`` (sorted draws) plus a Satterthwaite fit
    ``S^2 ~ fit_scale * chi2(fit_dof)`` for the tail beyond them (``fit_dof`` 0: no fit, the
    draws are all equal)."""

    method: str
    window_rows: int
    reference_rows: int
    sample: np.ndarray
    fit_scale: float
    fit_dof: float

    def quantile(self, level: float) -> float:
        """The value exceeded with probability at most ``1 - level``: the larger of the draws'
        upper confidence bound on the quantile (see :data:`QUANTILE_CONFIDENCE_Z`) and the fit's
        quantile, so a fit that underestimates the tail never lowers a threshold."""
        size = self.sample.size
        rank = math.ceil(size * level + QUANTILE_CONFIDENCE_Z * math.sqrt(size * level * (1.0 - level)))
        empirical = float(self.sample[min(max(rank, 1), size) - 1])
        if self.fit_dof <= 0:
            return empirical
        return max(empirical, math.sqrt(self.fit_scale * float(stats.chi2.isf(1.0 - level, self.fit_dof))))

    def sf(self, value: float) -> float:
        """P(S >= value) under the null: the draws' share where they reach, the fit beyond."""
        if not math.isfinite(value):
            return float("nan")
        beyond = int(self.sample.size - np.searchsorted(self.sample, value, side="left"))
        fitted = self._fit_sf(value)
        if beyond > 0:
            return min(1.0, max(fitted, (beyond + 1) / (self.sample.size + 1)))
        return min(fitted, 1.0 / (self.sample.size + 1))

    def _fit_sf(self, value: float) -> float:
        if value <= 0:
            return 1.0
        if self.fit_dof <= 0:
            return 0.0 if value > self.sample[-1] else 1.0
        return float(stats.chi2.sf(value * value / self.fit_scale, self.fit_dof))


def _satterthwaite(sample: np.ndarray) -> tuple[float, float]:
    """``(c, nu)`` with ``c * chi2(nu)`` matching the mean and variance of ``sample**2``."""
    squares = sample * sample
    mean, var = float(squares.mean()), float(squares.var())
    if mean <= 0 or var <= 0:
        return 0.0, 0.0
    return var / (2.0 * mean), 2.0 * mean * mean / var


NORMAL_MIN_EXPECTED = 5000
"""Draw from the multinomial's normal approximation only when every bucket with mass expects at
least this many values (a million-row window on 50 bins: 20,000 each). Below, the multinomial
itself: at 20 to 300 expected values the normal's lighter tail let 1.4% of healthy 1,000-row
windows pass a 99% quantile, and 1.9% of 10,000-row windows of a discrete column."""


def _draw(rng: np.random.Generator, total: int, shares: np.ndarray, draws: int, *, outer: bool = False) -> np.ndarray:
    """``draws`` multinomial count vectors of ``total`` values over buckets with probabilities
    ``shares``. ``outer``: the first and last buckets are rare out-of-range events, drawn as
    Poisson counts."""
    out = np.zeros((draws, shares.size))
    if total <= 0:
        return out
    inner = slice(1, -1) if outer and shares.size > 2 else slice(None)
    if outer and shares.size > 2:
        out[:, 0] = rng.poisson(total * shares[0], draws)
        out[:, -1] = rng.poisson(total * shares[-1], draws)
    p = shares[inner] / shares[inner].sum()
    present = p[p > 0]
    if present.size and total * present.min() >= NORMAL_MIN_EXPECTED:
        # Covariance total * (diag(p) - p p^T): iid normals scaled by sqrt(p), the component
        # along the fixed total removed.
        # In place: these are (draws, buckets) arrays, one per column and window size.
        z = rng.standard_normal((draws, p.size))
        z *= np.sqrt(p)
        z -= np.outer(z.sum(axis=1), p)
        z *= math.sqrt(total)
        z += total * p
        out[:, inner] = np.maximum(z, 0.0, out=z)
    else:
        out[:, inner] = rng.multinomial(total, p, size=draws)
    return out


_REFERENCE_DRAWS: OrderedDict[tuple[Any, ...], np.ndarray] = OrderedDict()
_CACHE_LOCK = threading.Lock()
"""Guards both caches: columns may calibrate on several threads at once (two threads that miss
the same key both draw it, the same draws, and the second store is a no-op in effect)."""


def _reference_draws(key: tuple[Any, ...], total: int, shares: np.ndarray, draws: int) -> np.ndarray:
    """The reference side's draws depend on the reference alone: drawn once per column and reused
    for every window size (a few dozen columns' worth kept)."""
    with _CACHE_LOCK:
        cached = _REFERENCE_DRAWS.get(key)
        if cached is not None:
            _REFERENCE_DRAWS.move_to_end(key)
            return cached
    cached = _draw(np.random.default_rng(_seed("reference", *key)), total, shares, draws)
    with _CACHE_LOCK:
        _REFERENCE_DRAWS[key] = cached
        if len(_REFERENCE_DRAWS) > 64:
            _REFERENCE_DRAWS.popitem(last=False)
    return cached


def _digits(value: float) -> float:
    return float(f"{float(value):.9g}")


def _seed(*parts: Any) -> int:
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "little")


_NULLS: OrderedDict[tuple[Any, ...], NullDistribution] = OrderedDict()


GRID_STEP = 1.05
"""Window sizes are rounded *down* to a 5% geometric grid before their null is drawn: windows of
nearly equal size (hourly traffic varies) share one cached null, and rounding down errs on the
side of a wider threshold (about 2.5% at most)."""


def _quantised(rows: int) -> int:
    if rows <= 100:
        return max(int(rows), 1)
    return max(100, int(math.floor(GRID_STEP ** math.floor(math.log(rows) / math.log(GRID_STEP) + 1e-9))))


def null_from_counts(
    method: DriftMethod,
    reference_counts: np.ndarray,
    geo: Geometry,
    window_rows: int,
    *,
    reference_rows: int | None = None,
    outer: bool = False,
    draws: int = DRAWS,
) -> NullDistribution:
    """The null of ``method`` for ``window_rows`` against a reference with these bucket counts
    (``reference_rows`` defaults to their sum). ``outer``: the first and last buckets are the
    below/above-the-reference's-range buckets of a numeric column."""
    if method.batch is None:
        raise ValueError(f"{method.name} has no vectorised statistic to calibrate")
    counts = np.asarray(reference_counts, dtype=np.float64)
    n = int(counts.sum()) if reference_rows is None else int(reference_rows)
    m = _quantised(window_rows)
    # Floats enter the key (and so the seed) at 9 significant digits: the last bits of a merged
    # profile's std depend on merge order (batch size, pandas vs Spark), the draws must not.
    positions = None if geo.positions is None else tuple(_digits(x) for x in geo.positions)
    key = (method.name, counts.tobytes(), positions, None if geo.scale is None else _digits(geo.scale), n, m, outer, draws)
    with _CACHE_LOCK:
        cached = _NULLS.get(key)
        if cached is not None:
            _NULLS.move_to_end(key)
            return cached
    reference_shares = counts / counts.sum()
    window_shares = reference_shares.copy()
    if outer and window_shares.size >= 2:
        window_shares[0] = window_shares[-1] = 1.0 / (counts.sum() + 1.0)
        window_shares /= window_shares.sum()
    rng = np.random.default_rng(_seed(*key[:2], key[2], key[3:]))
    reference_draws = _reference_draws((method.name, key[1], n, draws), n, reference_shares, draws)
    window_draws = _draw(rng, m, window_shares, draws, outer=outer)
    sample = np.sort(method.batch(reference_draws, window_draws, geo))
    sample = np.where(np.isfinite(sample), sample, 0.0)
    scale, dof = _satterthwaite(sample)
    null = NullDistribution(method.name, m, n, sample, scale, dof)
    with _CACHE_LOCK:
        _NULLS[key] = null
        if len(_NULLS) > _CACHE_SIZE:
            _NULLS.popitem(last=False)
    return null


def _layout(method: DriftMethod, reference: ColumnProfile, settings: DriftSettings) -> tuple[Buckets, Geometry, bool]:
    """The reference's counts on the method's buckets, their geometry, and whether the outer two
    are the out-of-range buckets."""
    b = buckets(reference, reference, settings.bins if method.coarse else None)
    numeric = isinstance(reference, NumericProfile)
    return b, (geometry(reference, b) if not method.coarse else Geometry()), numeric


def null_distribution(
    method: DriftMethod, reference: ColumnProfile, window_rows: int, settings: DriftSettings, *, draws: int = DRAWS
) -> NullDistribution:
    """The null of ``method`` for a window of ``window_rows`` values of this column."""
    b, geo, outer = _layout(method, reference, settings)
    return null_from_counts(method, b.reference, geo, window_rows, outer=outer, draws=draws)


# ---------------------------------------------------------------------- reference variation


@dataclass(frozen=True)
class ReferenceVariation:
    """How much more than sampling noise the reference's own windows (chunks) move: the excess
    to widen thresholds by, per column and method, learned once when the reference is fitted."""

    chunks: int
    excess: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    multivariate_chunks: tuple[ErrorProfile, ...] = ()  # the chunks' PCA reconstruction errors

    def excess_for(self, column: str, method: str) -> float | None:
        """The excess, or None when it was not learned (too few chunks, another method)."""
        value = self.excess.get(column, {}).get(method)
        return None if value is None else float(value)

    def to_dict(self) -> dict[str, Any]:
        return {
            "chunks": self.chunks,
            "excess": {c: dict(m) for c, m in self.excess.items()},
            "multivariate_chunks": [e.to_dict() for e in self.multivariate_chunks],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReferenceVariation:
        return cls(
            int(data.get("chunks", 0)),
            {str(c): {str(k): float(v) for k, v in m.items()} for c, m in data.get("excess", {}).items()},
            tuple(ErrorProfile.from_dict(e) for e in data.get("multivariate_chunks", ())),
        )


def _kinds_to_learn(column: str, profile: ColumnProfile, roles: Roles) -> list[str]:
    """A column is decided as its profile's kind; the target of a probability or class model as
    categorical (see ``checks.evaluate.drift_results``)."""
    kinds = [profile.kind]
    if column == roles.target and roles.prediction_kind not in (None, "regression") and CATEGORICAL not in kinds:
        kinds.append(CATEGORICAL)
    return kinds


def chunk_excess(
    method: DriftMethod,
    reference: ColumnProfile,
    chunks: Sequence[ColumnProfile],
    settings: DriftSettings,
) -> float | None:
    """The excess of one column's chunks (see the module docstring): 0 when no more of them pass
    their null quantile than noise explains, else the largest move beyond their null's mean;
    None with fewer than two usable chunks."""
    usable = [c for c in chunks if c.count >= MIN_CHUNK_VALUES and c.count < reference.count]
    if len(usable) < 2:
        return None
    b, geo, outer = _layout(method, reference, settings)
    bins = settings.bins if method.coarse else None
    chunk_counts = np.vstack([buckets(reference, c, bins).current for c in usable]).astype(np.float64)
    rest = b.reference[None, :] - chunk_counts  # leave-one-out: the reference without the chunk
    statistic = method.batch(rest, chunk_counts, geo) if method.batch else None
    assert statistic is not None
    sizes = chunk_counts.sum(axis=1)
    # Chunks of nearly equal size share one null (sizes grouped on a 25% grid, against the whole
    # reference: leaving one of many chunks out barely changes it).
    groups = np.round(np.log(sizes) / math.log(1.25))
    level = 1.0 - settings.false_alarm_rate
    quantiles, typical = np.empty(len(usable)), np.empty(len(usable))
    for group in np.unique(groups):
        members = groups == group
        size = int(round(float(np.exp(np.log(sizes[members]).mean()))))
        null = null_from_counts(method, b.reference, geo, size, outer=outer)
        quantiles[members], typical[members] = null.quantile(level), float(null.sample.mean())
    # Stage 1: do the chunks move more than noise? Under noise alone the chunks passing their
    # null quantile are Binomial(chunks, rate); more than its 1 - rate quantile is real variation.
    passing = int(np.sum(statistic > quantiles))
    if passing <= stats.binom.ppf(level, len(usable), settings.false_alarm_rate):
        return 0.0
    # Stage 2: widen by the largest move beyond what noise typically gives (the null's mean).
    return max(0.0, float(np.max(statistic - typical)))

def reference_variation(
    reference: DatasetProfile,
    chunks: Sequence[DatasetProfile],
    roles: Roles,
    settings: DriftSettings,
    *,
    mapper: Mapper = map,
) -> ReferenceVariation:
    """Learn the excess of every drift column whose deciding method is calibrated (an explicit
    ``threshold`` in the settings means a fixed one: nothing to learn). ``mapper``: how the
    columns are mapped (see :data:`Mapper`)."""
    work: list[tuple[str, DriftMethod, ColumnProfile, list[ColumnProfile]]] = []
    columns = [*roles.numeric, *roles.categorical, *(c for c in (roles.prediction, roles.target) if c)]
    for column in dict.fromkeys(columns):
        profile = reference.columns.get(column)
        if profile is None or profile.count == 0:
            continue
        for kind in _kinds_to_learn(column, profile, roles):
            choice = settings.choice_for(column, kind)
            method = choice.spec
            if choice.threshold is not None or not method.calibratable or not method.supports(profile.kind):
                continue
            work.append((column, method, profile, [c.columns[column] for c in chunks if column in c.columns]))

    def learn(item: tuple[str, DriftMethod, ColumnProfile, list[ColumnProfile]]) -> float | None:
        _, method, profile, pieces = item
        try:
            return chunk_excess(method, profile, pieces, settings)
        except ValueError:
            return None  # a chunk on another binning: nothing learned, the column is judged without

    learned: dict[str, dict[str, float]] = {}
    for (column, method, _, _), excess in zip(work, mapper(learn, work)):
        if excess is not None:
            learned.setdefault(column, {})[method.name] = excess
    errors = tuple(c.multivariate for c in chunks if c.multivariate is not None and c.multivariate.count > 0)
    return ReferenceVariation(len(chunks), learned, errors)


# ------------------------------------------------------------------------- many columns


def benjamini_hochberg(p_values: Sequence[float]) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values), in the input's order: column ``i`` is a
    discovery at false-discovery rate ``q`` when its q-value is <= ``q``. NaN stays NaN.

    >>> [round(float(q), 3) for q in benjamini_hochberg([0.01, 0.04, 0.03, 0.5])]
    [0.04, 0.053, 0.053, 0.5]
    """
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if not ok.any():
        return out
    values = p[ok]
    order = np.argsort(values)
    ranked = values[order] * values.size / np.arange(1, values.size + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1]
    result = np.empty_like(values)
    result[order] = np.minimum(adjusted, 1.0)
    out[ok] = result
    return out

