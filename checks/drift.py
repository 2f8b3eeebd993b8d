"""Drift methods: each is one pure function over two column profiles plus one ``register`` call.

A method compares the reference's profile of a column with the current window's profile of the
same column (both on the reference's binning) and returns a :class:`DriftScore`. Methods work
from profiles, never from raw rows, so any engine that produces profiles gets every method, and
rolled-up windows (hour -> day) compare exactly like fresh ones.

How a profile becomes comparable buckets (:func:`buckets`):

* **numeric**: the reference's ~50 fine quantile bins, plus one bucket *below* the reference's
  minimum and one *above* its maximum (values a window holds outside the reference's range; the
  fitted reference has none). Bucket bounds: ``[L, low]``, ``[low, cut_0]``, ..., ``[cut_last,
  high]``, ``[high, H]`` where ``low``/``high`` are the reference's range and ``L``/``H`` the
  smallest/largest value either profile saw, so outer buckets are bounded by min/max.
  With ``bins`` given (PSI, JS, chi-squared, Hellinger, KL, TV) the fine bins are coarsened into
  about ``bins`` groups of equal *reference* mass: fine bin ``i`` joins group
  ``floor(bins * m_i)``, ``m_i`` the reference mass below the middle of bin ``i``. The grouping
  depends on the reference only, so every window of a monitor is coarsened the same way.
* **categorical**: the reference's categories, then "other" (reference values outside its
  top-K), then "unseen" (values the reference never held). ``bins`` does not apply.

Buckets that are empty in both profiles are dropped before shares are taken.

>>> import numpy as np
>>> from checks.profiles import NumericBinning, NumericProfile
>>> from checks.settings import DriftSettings
>>> rng = np.random.default_rng(0)
>>> ref_values = rng.normal(0, 1, 5000)
>>> binning = NumericBinning(np.quantile(ref_values, np.linspace(0, 1, 51)[1:-1]), ref_values.min(), ref_values.max())
>>> ref = NumericProfile.from_values(ref_values, binning)
>>> cur = NumericProfile.from_values(ref_values + 0.5, binning)
>>> round(REGISTRY["wasserstein"].compute(ref, cur, DriftSettings()).statistic, 1)
0.5
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import stats

from checks import rank_tests
from checks.profiles import CategoricalProfile, ColumnProfile, NumericProfile
from checks.results import Direction

if TYPE_CHECKING:  # settings imports this module for validation; only the type is needed here
    from checks.settings import DriftSettings

NUMERIC = "numeric"
CATEGORICAL = "categorical"
KINDS = frozenset({NUMERIC, CATEGORICAL})

EPSILON = 1e-4
"""Share given to a bucket that is empty in one profile but not the other (PSI and KL only, which
divide by shares). 1e-4 is what one value in a 10,000-row window weighs; the shares are then
renormalised to sum to 1, so the result is a divergence between two proper distributions."""


class EmptyProfileError(ValueError):
    """A profile has no values to compare; evaluation reports it as ``no_data``, not an error."""


@dataclass(frozen=True)
class DriftScore:
    """What a method computed. ``statistic`` is the effect size (or the test statistic);
    ``p_value`` is set by tests; ``details`` are JSON-safe extras for people to read."""

    statistic: float
    p_value: float | None = None
    details: dict[str, Any] = field(default_factory=dict)


Compute = Callable[[ColumnProfile, ColumnProfile, "DriftSettings"], DriftScore]


@dataclass(frozen=True)
class Geometry:
    """What a bucket statistic needs besides the counts: where each numeric bucket's mass sits
    (:func:`positions`) and the reference's spread (population std) to measure distances in."""

    positions: np.ndarray | None = None
    scale: float | None = None


Batch = Callable[[np.ndarray, np.ndarray, Geometry], np.ndarray]
"""A statistic over many pairs of count vectors at once: ``(reference, current, geometry)`` with
``reference`` of shape ``(k,)`` or ``(B, k)`` and ``current`` of shape ``(B, k)`` -> ``(B,)``.
The calibration draws thousands of windows from the reference's null and scores them in one call."""


@dataclass(frozen=True)
class DriftMethod:
    """A registered method.

    ``lower_limit``/``upper_limit`` bound the value a threshold is compared with: the statistic
    for effect sizes, the p-value for tests (``is_test``; a test breaches when p < threshold).
    """

    name: str
    kinds: frozenset[str]
    compute: Compute
    default_threshold: float
    lower_limit: float
    upper_limit: float
    symmetric: bool
    is_test: bool
    description: str
    batch: Batch | None = None
    coarse: bool = False
    min_effect: float | None = None

    @property
    def calibratable(self) -> bool:
        """Effect sizes with a vectorised statistic get thresholds from their null distribution."""
        return self.batch is not None and not self.is_test

    @property
    def direction(self) -> Direction:
        return Direction.MIN if self.is_test else Direction.MAX

    def supports(self, kind: str) -> bool:
        return kind in self.kinds

    def value(self, score: DriftScore) -> float:
        """The number compared with the threshold: the p-value of a test, else the statistic."""
        if self.is_test:
            return float("nan") if score.p_value is None else float(score.p_value)
        return float(score.statistic)

    def check_threshold(self, threshold: float) -> None:
        """Raise ``ValueError`` with the method's limits when ``threshold`` is outside them."""
        if not math.isfinite(threshold):
            raise ValueError(f"threshold for {self.name} must be a finite number, got {threshold}")
        if self.is_test and not 0.0 < threshold < 1.0:
            raise ValueError(f"{self.name} is a test: its threshold is a p-value strictly between 0 and 1, got {threshold}")
        if not self.lower_limit <= threshold <= self.upper_limit:
            raise ValueError(
                f"threshold {threshold} for {self.name} is outside its limits [{self.lower_limit}, {self.upper_limit}]"
            )


REGISTRY: dict[str, DriftMethod] = {}


def register(
    name: str,
    *,
    kinds: set[str] | frozenset[str],
    compute: Compute,
    default_threshold: float,
    lower_limit: float,
    upper_limit: float,
    symmetric: bool,
    is_test: bool = False,
    description: str,
    batch: Batch | None = None,
    coarse: bool = False,
    min_effect: float | None = None,
) -> DriftMethod:
    """Add a method to :data:`REGISTRY` (checked here, so a bad registration fails at import)."""
    if name in REGISTRY:
        raise ValueError(f"drift method {name!r} is already registered")
    kinds = frozenset(kinds)
    if not kinds or not kinds <= KINDS:
        raise ValueError(f"drift method {name!r}: kinds must be a non-empty subset of {sorted(KINDS)}")
    if not description.strip():
        raise ValueError(f"drift method {name!r} needs a description")
    if batch is not None and not is_test and min_effect is None:
        raise ValueError(f"drift method {name!r}: an effect size with a null distribution needs a min_effect")
    method = DriftMethod(
        name, kinds, compute, default_threshold, lower_limit, upper_limit, symmetric, is_test, description, batch, coarse, min_effect
    )
    method.check_threshold(default_threshold)
    if min_effect is not None:
        method.check_threshold(min_effect)
    REGISTRY[name] = method
    return method


def get_method(name: str) -> DriftMethod:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown drift method {name!r}; valid: {', '.join(sorted(REGISTRY))}") from None


# ------------------------------------------------------------------------------ buckets


@dataclass(frozen=True)
class Buckets:
    """Counts of two profiles on common buckets. ``low``/``high`` bound each bucket (numeric
    only; ``None`` for categorical)."""

    reference: np.ndarray
    current: np.ndarray
    low: np.ndarray | None = None
    high: np.ndarray | None = None

    @property
    def n_reference(self) -> int:
        return int(self.reference.sum())

    @property
    def n_current(self) -> int:
        return int(self.current.sum())

    def shares(self) -> tuple[np.ndarray, np.ndarray]:
        """Shares of each profile over the buckets where at least one has mass."""
        keep = (self.reference > 0) | (self.current > 0)
        ref = self.reference[keep].astype(np.float64)
        cur = self.current[keep].astype(np.float64)
        return ref / ref.sum(), cur / cur.sum()


def _check_pair(reference: ColumnProfile, current: ColumnProfile) -> None:
    if reference.kind != current.kind:
        raise ValueError(f"cannot compare a {reference.kind} reference with a {current.kind} window")
    if reference.binning.fingerprint() != current.binning.fingerprint():
        raise ValueError("the window was profiled on another binning than the reference's; re-profile it")
    if reference.count == 0:
        raise EmptyProfileError("the reference holds no values of this column")
    if current.count == 0:
        raise EmptyProfileError("the window holds no values of this column")


def _split_numeric(profile: NumericProfile) -> np.ndarray:
    """Counts as [below, bin_0, ..., bin_last, above], out-of-range values taken out of the
    open-ended outer bins they were counted in."""
    counts = profile.counts.astype(np.int64).copy()
    counts[0] -= profile.below
    counts[-1] -= profile.above
    return np.concatenate([[profile.below], counts, [profile.above]])


def _numeric_bounds(reference: NumericProfile, current: NumericProfile) -> tuple[np.ndarray, np.ndarray]:
    b = reference.binning
    lowest = float(np.nanmin([b.low, reference.min, current.min]))
    highest = float(np.nanmax([b.high, reference.max, current.max]))
    edges = np.concatenate([[lowest, b.low], b.cuts, [b.high, highest]])
    return edges[:-1], edges[1:]


def _coarse_groups(reference_fine: np.ndarray, bins: int) -> np.ndarray:
    """Group index of each fine bin: about ``bins`` contiguous groups of equal reference mass."""
    total = reference_fine.sum()
    if total <= 0:
        mass = (np.arange(reference_fine.size) + 0.5) / reference_fine.size
    else:
        mass = (np.cumsum(reference_fine) - reference_fine / 2.0) / total
    groups = np.minimum((mass * bins).astype(np.int64), bins - 1)
    return np.unique(groups, return_inverse=True)[1]


def buckets(reference: ColumnProfile, current: ColumnProfile, bins: int | None = None) -> Buckets:
    """The two profiles' counts on common buckets (see the module docstring).

    Raises :class:`EmptyProfileError` when either holds no values and ``ValueError`` when they
    are of different kinds or binnings.
    """
    _check_pair(reference, current)
    if isinstance(reference, CategoricalProfile):
        assert isinstance(current, CategoricalProfile)
        return Buckets(reference.frequencies(), current.frequencies())
    assert isinstance(reference, NumericProfile) and isinstance(current, NumericProfile)
    ref, cur = _split_numeric(reference), _split_numeric(current)
    low, high = _numeric_bounds(reference, current)
    if bins is None or bins >= reference.binning.bins:  # nothing to coarsen
        return Buckets(ref, cur, low, high)
    inner = slice(1, -1)
    groups = _coarse_groups(ref[inner], bins)
    k = int(groups.max()) + 1

    def coarse(counts: np.ndarray) -> np.ndarray:
        inside = np.bincount(groups, weights=counts[inner], minlength=k).astype(np.int64)
        return np.concatenate([[counts[0]], inside, [counts[-1]]])

    starts = np.r_[0, np.flatnonzero(np.diff(groups)) + 1]  # groups are contiguous runs of fine bins
    group_low = np.concatenate([[low[0]], low[inner][starts], [low[-1]]])
    group_high = np.concatenate([[high[0]], np.maximum.reduceat(high[inner], starts), [high[-1]]])
    return Buckets(coarse(ref), coarse(cur), group_low, group_high)


def _sizes(b: Buckets) -> dict[str, Any]:
    return {"n_reference": b.n_reference, "n_current": b.n_current, "buckets": int(((b.reference > 0) | (b.current > 0)).sum())}


# ------------------------------------------------------------------------------ methods


KS_LIMITING_N = 10_000
"""Effective sample size ``n m / (n + m)`` past which the KS p-value uses the limiting distribution."""


def ks(reference: ColumnProfile, current: ColumnProfile, settings: DriftSettings) -> DriftScore:
    """Two-sample Kolmogorov-Smirnov on the bucket boundaries (the reference's cut points and
    range): the largest gap between the two empirical CDFs there. Equal to
    ``scipy.stats.ks_2samp`` when each bucket's values sit at one point inside it; otherwise a
    lower bound within one fine bin's mass. p-value: Smirnov's asymptotic distribution,
    ``kstwo.sf(D, round(n*m/(n+m)))`` as ``ks_2samp(method="asymp")`` computes it, and past an
    effective size of :data:`KS_LIMITING_N` its limit ``kstwobign.sf(D * sqrt(en))``."""
    b = buckets(reference, current)
    n, m = b.n_reference, b.n_current
    gaps = np.abs(np.cumsum(b.reference)[:-1] / n - np.cumsum(b.current)[:-1] / m)
    at = int(np.argmax(gaps)) if gaps.size else 0
    d = float(gaps[at]) if gaps.size else 0.0
    en = max(1.0, float(np.round(n * m / (n + m))))
    # scipy's exact kstwo.sf costs ~0.4 s at en = 500,000; past KS_LIMITING_N the limiting
    # Kolmogorov distribution (kstwobign, microseconds) is what it converges to, within 1e-3.
    p = stats.kstwo.sf(d, en) if en <= KS_LIMITING_N else stats.kstwobign.sf(d * math.sqrt(en))
    p = float(np.clip(p, 0.0, 1.0))
    details = _sizes(b)
    if gaps.size:
        assert b.high is not None
        details["location"] = float(b.high[at])
    return DriftScore(d, p, details)


register(
    "ks",
    kinds={NUMERIC},
    compute=ks,
    default_threshold=0.05,
    lower_limit=0.0,
    upper_limit=1.0,
    symmetric=True,
    is_test=True,
    description="Kolmogorov-Smirnov test on the reference's cut points: breach when its p-value is below the threshold.",
)


def chi2(reference: ColumnProfile, current: ColumnProfile, settings: DriftSettings) -> DriftScore:
    """Pearson's chi-squared test of homogeneity of the 2 x k table of counts (coarsened bins for
    numeric columns, categories + other + unseen for categorical), buckets empty in both profiles
    dropped, no continuity correction: ``scipy.stats.chi2_contingency(table, correction=False)``.
    A table left with one bucket has statistic 0 and p-value 1."""
    b = buckets(reference, current, settings.bins)
    keep = (b.reference > 0) | (b.current > 0)
    table = np.vstack([b.reference[keep], b.current[keep]]).astype(np.float64)
    dof = table.shape[1] - 1
    if dof < 1:
        return DriftScore(0.0, 1.0, {**_sizes(b), "dof": 0})
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    statistic = float(((table - expected) ** 2 / expected).sum())
    return DriftScore(statistic, float(stats.chi2.sf(statistic, dof)), {**_sizes(b), "dof": dof})


register(
    "chi2",
    kinds={NUMERIC, CATEGORICAL},
    compute=chi2,
    default_threshold=0.05,
    lower_limit=0.0,
    upper_limit=1.0,
    symmetric=True,
    is_test=True,
    description="Chi-squared test of homogeneity on categories or coarsened bins: breach when its p-value is below the threshold.",
)


def _rows(counts: np.ndarray) -> np.ndarray:
    """Counts -> shares per row, as a float ``(B, k)`` array (a ``(k,)`` vector becomes one row)."""
    counts = np.atleast_2d(np.asarray(counts, dtype=np.float64))
    total = counts.sum(axis=1, keepdims=True)
    return counts / np.where(total > 0, total, 1.0)


def _smoothed_rows(reference: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Shares with :data:`EPSILON` in buckets empty on one side only, renormalised; buckets
    empty on both sides stay out (weight 0), as if dropped."""
    r, c = _rows(reference), _rows(current)
    r, c = np.broadcast_arrays(r, c)
    keep = (r > 0) | (c > 0)

    def smooth(s: np.ndarray) -> np.ndarray:
        out = np.where(keep & (s <= 0), EPSILON, s)
        return out / out.sum(axis=1, keepdims=True)

    return smooth(r), smooth(c)


def _xlogy_ratio(p: np.ndarray, q: np.ndarray, log: Callable[[np.ndarray], np.ndarray] = np.log) -> np.ndarray:
    """``p * log(p / q)`` with 0 where ``p`` is 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(p > 0, p * log(np.where(p > 0, p, 1.0) / np.where(q > 0, q, 1.0)), 0.0)


def psi_batch(reference: np.ndarray, current: np.ndarray, geometry: Geometry) -> np.ndarray:
    r, c = _smoothed_rows(reference, current)
    return np.sum(_xlogy_ratio(c, r) + _xlogy_ratio(r, c), axis=1)


def jensen_shannon_batch(reference: np.ndarray, current: np.ndarray, geometry: Geometry) -> np.ndarray:
    r, c = np.broadcast_arrays(_rows(reference), _rows(current))
    mid = (r + c) / 2.0
    divergence = 0.5 * _xlogy_ratio(r, mid, np.log2).sum(axis=1) + 0.5 * _xlogy_ratio(c, mid, np.log2).sum(axis=1)
    return np.minimum(1.0, np.sqrt(np.maximum(divergence, 0.0)))


def hellinger_batch(reference: np.ndarray, current: np.ndarray, geometry: Geometry) -> np.ndarray:
    r, c = _rows(reference), _rows(current)
    return np.minimum(1.0, np.sqrt(np.sum((np.sqrt(r) - np.sqrt(c)) ** 2, axis=1) / 2.0))


def kl_divergence_batch(reference: np.ndarray, current: np.ndarray, geometry: Geometry) -> np.ndarray:
    r, c = _smoothed_rows(reference, current)
    return np.maximum(0.0, np.sum(_xlogy_ratio(c, r), axis=1))


def total_variation_batch(reference: np.ndarray, current: np.ndarray, geometry: Geometry) -> np.ndarray:
    return np.minimum(1.0, np.abs(_rows(reference) - _rows(current)).sum(axis=1) / 2.0)


def wasserstein_batch(reference: np.ndarray, current: np.ndarray, geometry: Geometry) -> np.ndarray:
    """W1 between fine buckets whose mass sits at ``geometry.positions``, in units of
    ``geometry.scale``; a scale of 0 (constant reference) gives the total variation instead."""
    if not geometry.scale:
        return total_variation_batch(reference, current, geometry)
    assert geometry.positions is not None
    r, c = _rows(reference), _rows(current)
    gaps = np.abs(np.cumsum(r, axis=1)[:, :-1] - np.cumsum(c, axis=1)[:, :-1])
    return gaps @ np.diff(geometry.positions) / geometry.scale


def geometry(reference: ColumnProfile, b: Buckets) -> Geometry:
    """Positions and scale of a numeric pair's fine buckets (none for categorical or coarse)."""
    if not isinstance(reference, NumericProfile) or b.low is None:
        return Geometry()
    scale = 0.0 if reference.max - reference.min <= 0 else math.sqrt(reference.m2 / reference.count)
    return Geometry(positions(reference, b), scale)


def _bucket_method(name: str, batch: Batch, coarse: bool, doc: str) -> Compute:
    def compute(reference: ColumnProfile, current: ColumnProfile, settings: DriftSettings) -> DriftScore:
        b = buckets(reference, current, settings.bins if coarse else None)
        value = float(batch(b.reference, b.current[None, :], geometry(reference, b) if not coarse else Geometry())[0])
        return DriftScore(value, None, _sizes(b))

    compute.__name__ = name
    compute.__doc__ = doc
    return compute


psi = _bucket_method(
    "psi",
    psi_batch,
    True,
    """Population stability index ``sum((c - r) * ln(c / r))`` over coarsened bins, empty shares
    replaced by :data:`EPSILON` and renormalised.""",
)
register(
    "psi",
    kinds={NUMERIC, CATEGORICAL},
    compute=psi,
    default_threshold=0.2,
    lower_limit=0.0,
    upper_limit=math.inf,
    symmetric=True,
    description="Population stability index (natural log) on categories or coarsened bins of equal reference mass.",
    batch=psi_batch,
    coarse=True,
    min_effect=0.1,
)

jensen_shannon = _bucket_method(
    "jensen_shannon",
    jensen_shannon_batch,
    True,
    """Jensen-Shannon *distance* (square root of the divergence), base 2, so it lies in [0, 1];
    no smoothing is needed since the mixture has mass wherever either side has.""",
)
register(
    "jensen_shannon",
    kinds={NUMERIC, CATEGORICAL},
    compute=jensen_shannon,
    default_threshold=0.1,
    lower_limit=0.0,
    upper_limit=1.0,
    symmetric=True,
    description="Jensen-Shannon distance (base 2, in [0, 1]) on categories or coarsened bins.",
    batch=jensen_shannon_batch,
    coarse=True,
    min_effect=0.1,
)

hellinger = _bucket_method(
    "hellinger", hellinger_batch, True, """Hellinger distance ``sqrt(sum((sqrt(r) - sqrt(c))**2) / 2)``, in [0, 1]."""
)
register(
    "hellinger",
    kinds={NUMERIC, CATEGORICAL},
    compute=hellinger,
    default_threshold=0.1,
    lower_limit=0.0,
    upper_limit=1.0,
    symmetric=True,
    description="Hellinger distance (in [0, 1]) on categories or coarsened bins.",
    batch=hellinger_batch,
    coarse=True,
    min_effect=0.1,
)

kl_divergence = _bucket_method(
    "kl_divergence",
    kl_divergence_batch,
    True,
    """Kullback-Leibler divergence of the window from the reference, ``sum(c * ln(c / r))``
    (nats): how badly the reference explains what now arrives, so new values weigh heavily.
    Empty shares replaced by :data:`EPSILON` and renormalised (``scipy.stats.entropy(c, r)``).""",
)
register(
    "kl_divergence",
    kinds={NUMERIC, CATEGORICAL},
    compute=kl_divergence,
    default_threshold=0.1,
    lower_limit=0.0,
    upper_limit=math.inf,
    symmetric=False,
    description="Kullback-Leibler divergence KL(window || reference) in nats on categories or coarsened bins.",
    batch=kl_divergence_batch,
    coarse=True,
    min_effect=0.05,
)

total_variation = _bucket_method(
    "total_variation",
    total_variation_batch,
    True,
    """Total variation distance ``sum(|r - c|) / 2``: the share of mass that has moved.""",
)
register(
    "total_variation",
    kinds={NUMERIC, CATEGORICAL},
    compute=total_variation,
    default_threshold=0.1,
    lower_limit=0.0,
    upper_limit=1.0,
    symmetric=True,
    description="Total variation distance (share of mass that moved, in [0, 1]) on categories or coarsened bins.",
    batch=total_variation_batch,
    coarse=True,
    min_effect=0.05,
)


def positions(reference: NumericProfile, b: Buckets) -> np.ndarray:
    """Where each fine bucket's mass sits, for :func:`wasserstein`.

    * inner bins: at their midpoint;
    * the two open-ended outer bins: at the midpoint of the stretch next to their cut that is
      as wide as their inner neighbour (the density assumed to go on as in the neighbour), but
      not past the reference's min / max. Taking the whole stretch to the min / max instead
      puts a tail's mass at the extreme value and overstates movement across the outer cut
      (1.5 to 3 times on t-distributed data);
    * a reference of two bins (a two-valued column: flags, 0/1 labels): at ``mean - w1 * D``
      and ``mean + w0 * D`` with ``D = std / sqrt(w0 * w1)``, ``w`` the bins' reference shares:
      the two points that reproduce the reference's mean and variance, i.e. its two values;
    * values outside the reference's range: at the midpoint of [window min, reference min]
      and [reference max, window max].
    """
    assert b.low is not None and b.high is not None
    low, high = b.low.copy(), b.high.copy()
    k = len(low) - 2  # fine bins between the below and above buckets
    if k >= 3:
        low[1] = max(low[1], high[1] - (high[2] - low[2]))
        high[k] = min(high[k], low[k] + (high[k - 1] - low[k - 1]))
    at = (low + high) / 2.0
    if k == 2:
        w = b.reference[1:3] / b.reference[1:3].sum()
        if np.all(w > 0):
            spacing = math.sqrt(reference.m2 / reference.count) / math.sqrt(w[0] * w[1])
            at[1] = min(max(reference.mean - w[1] * spacing, low[1]), high[1])
            at[2] = min(max(reference.mean + w[0] * spacing, low[2]), high[2])
    return at


def wasserstein(reference: ColumnProfile, current: ColumnProfile, settings: DriftSettings) -> DriftScore:
    """Earth mover's distance W1 between the binned distributions, in reference standard
    deviations (population std, ``sqrt(m2 / n)``).

    Each fine bucket's mass sits at one point (:func:`positions`), so the result equals
    ``scipy.stats.wasserstein_distance`` on data placed at those points; on continuous data it
    is within a few percent for shifts, and below the truth when the change hides inside the
    open-ended outer bins (a histogram cannot see movement within a bin).

    A constant reference (min == max) has no spread to measure in: the statistic is then the share
    of the window's values that differ from the constant (the total variation between the two
    bucketed distributions), which lies in [0, 1] and reads on the same threshold.
    """
    assert isinstance(reference, NumericProfile)
    b = buckets(reference, current)
    geo = geometry(reference, b)
    value = float(wasserstein_batch(b.reference, b.current[None, :], geo)[0])
    details = {**_sizes(b), "scale": geo.scale}
    if not geo.scale:
        return DriftScore(value, None, {**details, "normalisation": "constant_reference"})
    return DriftScore(value, None, {**details, "w1": value * geo.scale, "normalisation": "std"})


register(
    "wasserstein",
    kinds={NUMERIC},
    compute=wasserstein,
    default_threshold=0.1,
    lower_limit=0.0,
    upper_limit=math.inf,
    symmetric=False,  # normalised by the reference's spread
    description="Wasserstein-1 distance between binned distributions in reference standard deviations.",
    batch=wasserstein_batch,
    min_effect=0.1,
)


def _positions_of(reference: ColumnProfile, b: Buckets) -> np.ndarray:
    """One strictly increasing point per bucket: the numeric buckets' positions, made strictly
    increasing where two coincide (empty outer buckets sit on the range's ends); categories get
    their index (rank tests on categories order them arbitrarily: the z-test is the one for them)."""
    if not isinstance(reference, NumericProfile) or b.low is None:
        return np.arange(b.reference.size, dtype=np.float64)
    at = positions(reference, b)
    step = max(float(np.abs(at).max()), 1.0) * 1e-12
    for i in range(1, at.size):  # a handful of buckets: a loop per bucket, not per row
        if at[i] <= at[i - 1]:
            at[i] = at[i - 1] + step
    return at


def _rank_test(test: Callable[..., rank_tests.TestResult], with_positions: bool, coarse: bool) -> Compute:
    def compute(reference: ColumnProfile, current: ColumnProfile, settings: DriftSettings) -> DriftScore:
        b = buckets(reference, current, settings.bins if coarse else None)
        ref, cur = b.reference.astype(np.int64), b.current.astype(np.int64)
        result = test(_positions_of(reference, b), ref, cur) if with_positions else test(ref, cur)
        details = {**_sizes(b), **result.details}
        if "a2" in result.details:  # Anderson-Darling: the raw A2 (0 for equal shares), scipy's standardised T aside
            details["standardized_statistic"] = result.statistic
            return DriftScore(max(0.0, float(result.details["a2"])), result.p_value, details)
        return DriftScore(result.statistic, result.p_value, details)

    return compute


anderson_darling = _rank_test(rank_tests.anderson_darling, True, False)
register(
    "anderson_darling",
    kinds={NUMERIC},
    compute=anderson_darling,
    default_threshold=0.01,
    lower_limit=0.0,
    upper_limit=1.0,
    symmetric=True,
    is_test=True,
    description="Anderson-Darling k-sample test (midrank, on the fine buckets): breach when its p-value, capped to "
    "[0.001, 0.25] like scipy's, is below the threshold. Weighs the tails more than KS.",
)

cramer_von_mises = _rank_test(rank_tests.cramer_von_mises, True, False)
register(
    "cramer_von_mises",
    kinds={NUMERIC},
    compute=cramer_von_mises,
    default_threshold=0.01,
    lower_limit=0.0,
    upper_limit=1.0,
    symmetric=True,
    is_test=True,
    description="Cramér-von Mises two-sample test (on the fine buckets, asymptotic p-value): breach when its p-value "
    "is below the threshold.",
)

z_test = _rank_test(rank_tests.z_test_proportions, False, True)
register(
    "z_test",
    kinds={NUMERIC, CATEGORICAL},
    compute=z_test,
    default_threshold=0.01,
    lower_limit=0.0,
    upper_limit=1.0,
    symmetric=True,
    is_test=True,
    description="Two-proportion z-test on the category (or coarsened bin) whose share moved most, Bonferroni-corrected "
    "for the choice; the classical test for binary columns.",
)


def significance_test(kind: str) -> str:
    """The significance test of a column treated as ``kind``: KS for numeric, chi-squared for
    categorical."""
    return "ks" if kind == NUMERIC else "chi2"
