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
) -> DriftMethod:
    """Add a method to :data:`REGISTRY` (checked here, so a bad registration fails at import)."""
    if name in REGISTRY:
        raise ValueError(f"drift method {name!r} is already registered")
    kinds = frozenset(kinds)
    if not kinds or not kinds <= KINDS:
        raise ValueError(f"drift method {name!r}: kinds must be a non-empty subset of {sorted(KINDS)}")
    if not description.strip():
        raise ValueError(f"drift method {name!r} needs a description")
    method = DriftMethod(name, kinds, compute, default_threshold, lower_limit, upper_limit, symmetric, is_test, description)
    method.check_threshold(default_threshold)
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


def _smoothed(shares: np.ndarray) -> np.ndarray:
    out = np.where(shares > 0, shares, EPSILON)
    return out / out.sum()


def _sizes(b: Buckets) -> dict[str, Any]:
    return {"n_reference": b.n_reference, "n_current": b.n_current, "buckets": int(((b.reference > 0) | (b.current > 0)).sum())}


# ------------------------------------------------------------------------------ methods


def ks(reference: ColumnProfile, current: ColumnProfile, settings: DriftSettings) -> DriftScore:
    """Two-sample Kolmogorov-Smirnov on the bucket boundaries (the reference's cut points and
    range): the largest gap between the two empirical CDFs there. Equal to
    ``scipy.stats.ks_2samp`` when each bucket's values sit at one point inside it; otherwise a
    lower bound within one fine bin's mass. p-value: Smirnov's asymptotic distribution,
    ``kstwo.sf(D, round(n*m/(n+m)))`` as ``ks_2samp(method="asymp")`` computes it."""
    b = buckets(reference, current)
    n, m = b.n_reference, b.n_current
    gaps = np.abs(np.cumsum(b.reference)[:-1] / n - np.cumsum(b.current)[:-1] / m)
    at = int(np.argmax(gaps)) if gaps.size else 0
    d = float(gaps[at]) if gaps.size else 0.0
    en = max(1.0, float(np.round(n * m / (n + m))))
    p = float(np.clip(stats.kstwo.sf(d, en), 0.0, 1.0))
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


def psi(reference: ColumnProfile, current: ColumnProfile, settings: DriftSettings) -> DriftScore:
    """Population stability index ``sum((c - r) * ln(c / r))`` over coarsened bins, empty shares
    replaced by :data:`EPSILON` and renormalised."""
    b = buckets(reference, current, settings.bins)
    r, c = (_smoothed(s) for s in b.shares())
    return DriftScore(float(np.sum((c - r) * np.log(c / r))), None, _sizes(b))


register(
    "psi",
    kinds={NUMERIC, CATEGORICAL},
    compute=psi,
    default_threshold=0.2,
    lower_limit=0.0,
    upper_limit=math.inf,
    symmetric=True,
    description="Population stability index (natural log) on categories or coarsened bins of equal reference mass.",
)


def jensen_shannon(reference: ColumnProfile, current: ColumnProfile, settings: DriftSettings) -> DriftScore:
    """Jensen-Shannon *distance* (square root of the divergence), base 2, so it lies in [0, 1];
    no smoothing is needed since the mixture has mass wherever either side has."""
    b = buckets(reference, current, settings.bins)
    r, c = b.shares()
    mid = (r + c) / 2.0

    def kl(p: np.ndarray) -> float:
        nz = p > 0
        return float(np.sum(p[nz] * np.log2(p[nz] / mid[nz])))

    divergence = max(0.0, 0.5 * kl(r) + 0.5 * kl(c))
    return DriftScore(min(1.0, math.sqrt(divergence)), None, _sizes(b))


register(
    "jensen_shannon",
    kinds={NUMERIC, CATEGORICAL},
    compute=jensen_shannon,
    default_threshold=0.1,
    lower_limit=0.0,
    upper_limit=1.0,
    symmetric=True,
    description="Jensen-Shannon distance (base 2, in [0, 1]) on categories or coarsened bins.",
)


def hellinger(reference: ColumnProfile, current: ColumnProfile, settings: DriftSettings) -> DriftScore:
    """Hellinger distance ``sqrt(sum((sqrt(r) - sqrt(c))**2) / 2)``, in [0, 1]."""
    b = buckets(reference, current, settings.bins)
    r, c = b.shares()
    return DriftScore(min(1.0, float(np.sqrt(np.sum((np.sqrt(r) - np.sqrt(c)) ** 2) / 2.0))), None, _sizes(b))


register(
    "hellinger",
    kinds={NUMERIC, CATEGORICAL},
    compute=hellinger,
    default_threshold=0.1,
    lower_limit=0.0,
    upper_limit=1.0,
    symmetric=True,
    description="Hellinger distance (in [0, 1]) on categories or coarsened bins.",
)


def kl_divergence(reference: ColumnProfile, current: ColumnProfile, settings: DriftSettings) -> DriftScore:
    """Kullback-Leibler divergence of the window from the reference, ``sum(c * ln(c / r))``
    (nats): how badly the reference explains what now arrives, so new values weigh heavily.
    Empty shares replaced by :data:`EPSILON` and renormalised (``scipy.stats.entropy(c, r)``)."""
    b = buckets(reference, current, settings.bins)
    r, c = (_smoothed(s) for s in b.shares())
    return DriftScore(max(0.0, float(np.sum(c * np.log(c / r)))), None, _sizes(b))


register(
    "kl_divergence",
    kinds={NUMERIC, CATEGORICAL},
    compute=kl_divergence,
    default_threshold=0.1,
    lower_limit=0.0,
    upper_limit=math.inf,
    symmetric=False,
    description="Kullback-Leibler divergence KL(window || reference) in nats on categories or coarsened bins.",
)


def total_variation(reference: ColumnProfile, current: ColumnProfile, settings: DriftSettings) -> DriftScore:
    """Total variation distance ``sum(|r - c|) / 2``: the share of mass that has moved."""
    b = buckets(reference, current, settings.bins)
    r, c = b.shares()
    return DriftScore(min(1.0, float(np.abs(r - c).sum() / 2.0)), None, _sizes(b))


register(
    "total_variation",
    kinds={NUMERIC, CATEGORICAL},
    compute=total_variation,
    default_threshold=0.1,
    lower_limit=0.0,
    upper_limit=1.0,
    symmetric=True,
    description="Total variation distance (share of mass that moved, in [0, 1]) on categories or coarsened bins.",
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
    n, m = b.n_reference, b.n_current
    gaps = np.abs(np.cumsum(b.reference)[:-1] / n - np.cumsum(b.current)[:-1] / m)
    w1 = float(np.sum(gaps * np.diff(positions(reference, b))))
    details = {**_sizes(b), "w1": w1}
    if reference.max - reference.min <= 0:
        r, c = b.shares()
        return DriftScore(float(np.abs(r - c).sum() / 2.0), None, {**details, "normalisation": "constant_reference", "scale": 0.0})
    scale = math.sqrt(reference.m2 / reference.count)
    return DriftScore(w1 / scale, None, {**details, "normalisation": "std", "scale": scale})


register(
    "wasserstein",
    kinds={NUMERIC},
    compute=wasserstein,
    default_threshold=0.1,
    lower_limit=0.0,
    upper_limit=math.inf,
    symmetric=False,  # normalised by the reference's spread
    description="Wasserstein-1 distance between binned distributions in reference standard deviations.",
)


def significance_test(kind: str) -> str:
    """The significance test of a column treated as ``kind``: KS for numeric, chi-squared for
    categorical."""
    return "ks" if kind == NUMERIC else "chi2"
