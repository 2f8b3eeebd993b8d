"""Profiles: mergeable summaries of one column (or one dataset) in one window.

A reference is *fitted* once into binnings (quantile cut points for numeric columns, the
category list for categorical ones); every window is then *profiled* on those binnings, and
checks compare profiles. Two profiles of the same column on the same binning merge by adding,
so windows roll up (hour -> day -> week) without re-reading logs, and any engine (pandas,
Spark) only has to produce profiles.

Everything here is pure numpy over arrays the engine hands in; nothing reads data.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Union

import numpy as np

from checks.multivariate import ErrorProfile
from checks.sketch import QuantileSketch

DEFAULT_BINS = 50
DEFAULT_TOP_K = 50
MAX_RARE = 10_000
MAX_UNSEEN_KEPT = 20
SCORE_GRID = 1000  # bins of [0, 1] for ROC AUC from mergeable score histograms


def _ints(values: Any) -> np.ndarray:
    return np.asarray(values, dtype=np.int64)


# --------------------------------------------------------------------------- numeric columns


@dataclass(frozen=True, eq=False)
class NumericBinning:
    """Cut points learned from the reference.

    ``cuts`` are strictly increasing interior cut points: ``k = len(cuts) + 1`` bins, bin ``i``
    holding ``cuts[i-1] <= x < cuts[i]``, the outer bins open-ended. ``low``/``high`` are the
    reference's range (values outside it count as out of range).
    """

    cuts: np.ndarray
    low: float
    high: float

    @classmethod
    def fit(cls, sketch: QuantileSketch, low: float, high: float, bins: int = DEFAULT_BINS) -> NumericBinning:
        """Quantile cut points of the reference (ties collapse, so a discrete column gets fewer bins)."""
        if sketch.count == 0:
            return cls(np.empty(0), float("nan"), float("nan"))
        probabilities = np.linspace(0.0, 1.0, bins + 1)[1:-1]
        representative = sketch.quantiles(probabilities)
        # Cut at the lower edge of the sketch bucket holding each quantile, not at its
        # representative value: the representative can lie above the data value (2 -> 2.0037),
        # which put 1 and 2 of an integer column into one bin and hid drift between them. With
        # the lower edge every value of that bucket is >= the cut, so distinct values more than
        # 2 * alpha apart never share a bin. Continuous columns move their cuts by < 2 * alpha.
        gamma = (1 + sketch.alpha) / (1 - sketch.alpha)
        cuts = np.where(
            representative > 0,
            representative * (gamma + 1) / (2 * gamma),
            representative * (gamma + 1) / 2,  # negatives: the bucket's largest magnitude
        )
        # Keep cuts inside the reference's range so no bin is empty by construction.
        cuts = np.unique(np.clip(cuts, low, high))
        cuts = cuts[(cuts > low)]
        return cls(cuts, float(low), float(high))

    @property
    def bins(self) -> int:
        return len(self.cuts) + 1

    def index(self, values: np.ndarray, *, finite: bool = False) -> np.ndarray:
        """The bin of each value: ``np.searchsorted(cuts, values, side="right")``, exactly.

        Large arrays go through a lookup table of equal-width cells (see :class:`_BinLookup`),
        several times faster than a binary search per value; the result is the same.
        ``finite``: the caller knows every value is finite (no NaN handling needed)."""
        lookup = self._lookup
        values = np.asarray(values)
        if lookup is None or values.ndim != 1 or values.size < _LOOKUP_MIN or values.dtype != np.float64:
            return np.searchsorted(self.cuts, values, side="right")
        return lookup.index(values, finite=finite)

    @cached_property
    def _lookup(self) -> _BinLookup | None:
        return _BinLookup.build(self.cuts)

    @cached_property
    def _fingerprint(self) -> str:
        return hashlib.sha1(self.cuts.tobytes() + np.float64([self.low, self.high]).tobytes()).hexdigest()[:16]

    def fingerprint(self) -> str:
        return self._fingerprint

    def to_dict(self) -> dict[str, Any]:
        # An empty reference has no range: JSON (and PostgreSQL) cannot hold NaN, so write null.
        def finite(value: float) -> float | None:
            return None if np.isnan(value) else value

        return {"cuts": self.cuts.tolist(), "low": finite(self.low), "high": finite(self.high)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NumericBinning:
        def number(value: Any) -> float:
            return float("nan") if value is None else float(value)

        return cls(np.asarray(data["cuts"], dtype=np.float64), number(data["low"]), number(data["high"]))


_LOOKUP_MIN = 2048  # below this many values a binary search per value is as fast as the table
_LOOKUP_PASSES = 6  # most cut points a cell of the table may straddle (one vectorised pass each)


@dataclass(frozen=True, eq=False)
class _BinLookup:
    """``searchsorted(cuts, x, side="right")`` without a binary search per value.

    ``[cuts[0], cuts[-1]]`` is split into equal-width cells; a value's cell (one multiply) gives
    a lower bound on its bin (``floor``: the cuts at or below the cell's left edge, with half a
    cell of slack for rounding), and at most ``passes`` vectorised steps
    ``bin += cuts[bin] <= x`` finish the count. Values outside the range land in the outer
    cells, whose bounds hold there too; NaN goes last, as in ``searchsorted``. The table is
    built only when the cells can be much wider than the rounding of ``x - start``."""

    start: float
    scale: float
    cells: int
    floor: np.ndarray  # (cells,) intp: bins certainly at or below any value of the cell
    bounds: np.ndarray  # cuts followed by NaN (never <= anything): the next cut of any bin
    passes: int

    @classmethod
    def build(cls, cuts: np.ndarray) -> _BinLookup | None:
        k = len(cuts)
        if k < 4:
            return None
        start, end = float(cuts[0]), float(cuts[-1])
        if not (np.isfinite(start) and np.isfinite(end)) or end <= start:
            return None
        magnitude = max(abs(start), abs(end))
        best: _BinLookup | None = None
        for cells in (16 * k, 128 * k, 1024 * k):
            cells = min(cells, 1 << 18)
            width = (end - start) / cells
            if width <= magnitude * 2.0**-40:
                break  # cells as fine as the rounding of the values: use a binary search
            centres = np.arange(cells, dtype=np.float64)
            floor = np.searchsorted(cuts, start + (centres - 0.5) * width, side="right")
            ceiling = np.searchsorted(cuts, start + (centres + 1.5) * width, side="right")
            floor[0] = 0
            ceiling[-1] = k
            passes = int((ceiling - floor).max())
            if best is None or passes < best.passes:
                bounds = np.append(np.asarray(cuts, dtype=np.float64), np.nan)
                best = cls(start, cells / (end - start), cells, floor.astype(np.intp), bounds, passes)
            if passes <= 1 or cells == 1 << 18:
                break
        return best if best is not None and best.passes <= _LOOKUP_PASSES else None

    def index(self, values: np.ndarray, *, finite: bool = False) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):
            position = values - self.start
            position *= self.scale
        if finite:
            np.clip(position, 0.0, self.cells - 1, out=position)
        else:
            np.fmax(position, 0.0, out=position)  # fmax: NaN becomes 0 (fixed below)
            np.fmin(position, self.cells - 1, out=position)
        found = self.floor[position.astype(np.intp)]
        for _ in range(self.passes):
            found += self.bounds[found] <= values
        if not finite:
            nan = np.isnan(values)
            if nan.any():
                found[nan] = len(self.bounds) - 1
        return found


def split_finite(values: np.ndarray) -> tuple[np.ndarray, int, int]:
    """``(finite values, NaN count, +-inf count)`` of a float array; the array itself (no copy)
    when every value is finite."""
    ok = np.isfinite(values)
    n = int(np.count_nonzero(ok))
    if n == values.size:
        return values, 0, 0
    nan = int(np.count_nonzero(np.isnan(values)))
    return values[ok], nan, values.size - n - nan


@dataclass(frozen=True, eq=False)
class NumericProfile:
    """A numeric column in one window: counts, moments, histogram on the reference's cuts."""

    binning: NumericBinning
    count: int  # finite values
    missing: int  # null / NaN
    invalid: int  # present but not a finite number (unparseable text, +-inf)
    mean: float
    m2: float  # sum of squared deviations from the mean (merged with Chan et al.'s formula)
    min: float
    max: float
    counts: np.ndarray  # per bin of ``binning``
    below: int  # values < binning.low
    above: int  # values > binning.high
    sketch: QuantileSketch | None = None  # kept for columns whose quantiles are reported
    kind: str = field(default="numeric", init=False)

    @classmethod
    def from_values(
        cls,
        values: np.ndarray,
        binning: NumericBinning,
        *,
        invalid: int = 0,
        sketch: bool = False,
        alpha: float | None = None,
    ) -> NumericProfile:
        """Profile a float array. NaN counts as missing, except the ``invalid`` entries the
        engine already knows were unparseable (it turned them into NaN); +-inf are invalid."""
        finite, nan_count, inf_count = split_finite(np.asarray(values, dtype=np.float64))
        sk = None
        if sketch:
            sk = QuantileSketch.from_values(finite) if alpha is None else QuantileSketch.from_values(finite, alpha)
        return cls._of_finite(finite, binning, None, missing=nan_count - invalid, invalid=invalid + inf_count, sketch=sk)

    @classmethod
    def of_value_counts(
        cls,
        values: np.ndarray,
        counts: np.ndarray,
        binning: NumericBinning,
        *,
        missing: int = 0,
        invalid: int = 0,
        sketch: bool = False,
    ) -> NumericProfile:
        """The profile of a column given as its distinct finite ``values`` (increasing) and how
        often each occurs: engines count a whole-number column with ``np.bincount`` and profile
        its few distinct values instead of every row. Equals :meth:`from_values` of the values
        repeated, except for the rounding of ``mean`` and ``m2``."""
        values = np.asarray(values, dtype=np.float64)
        counts = np.asarray(counts, dtype=np.int64)
        n = int(counts.sum())
        k = binning.bins
        sk = QuantileSketch.from_counts(values, counts) if sketch else None
        if not n:
            return cls._of_finite(np.empty(0), binning, None, missing=missing, invalid=invalid, sketch=sk)
        weights = counts.astype(np.float64)
        centre = values[0]  # sums about the smallest value: exact for whole numbers below 2**53
        mean = centre + float(weights @ (values - centre)) / n
        deviation = values - mean
        m2 = float(weights @ (deviation * deviation))
        if k == 1:
            binned = np.array([n], dtype=np.int64)
        else:
            binned = np.bincount(binning.index(values, finite=True), weights=weights, minlength=k + 1)[:k].astype(np.int64)
        return cls(
            binning=binning,
            count=n,
            missing=missing,
            invalid=invalid,
            mean=mean,
            m2=m2,
            min=float(values[0]),
            max=float(values[-1]),
            counts=binned,
            below=int(counts[values < binning.low].sum()),
            above=int(counts[values > binning.high].sum()),
            sketch=sk,
        )

    @classmethod
    def _of_finite(
        cls,
        finite: np.ndarray,
        binning: NumericBinning,
        bins: np.ndarray | None,
        *,
        missing: int,
        invalid: int,
        sketch: QuantileSketch | None,
    ) -> NumericProfile:
        """The profile of the finite values of a column (``bins``: their bins when the caller
        already has them, or the bin of every row with ``binning.bins`` for rows that are not
        finite). Engines call this to skip work they share between segments."""
        n = int(finite.size)
        k = binning.bins
        if not n:
            counts = np.zeros(k, np.int64)
            mean = m2 = 0.0
            low = high = float("nan")
            below = above = 0
        else:
            mean = float(finite.mean())
            deviation = finite - mean
            m2 = float(np.square(deviation, out=deviation).sum())
            low, high = float(finite.min()), float(finite.max())
            if k == 1:
                counts = np.array([n], dtype=np.int64)
            else:
                index = binning.index(finite, finite=True) if bins is None else bins
                counts = np.bincount(index, minlength=k + 1)[:k].astype(np.int64)
            # A value beyond the reference's range needs the extreme past it: skip the pass otherwise.
            below = int(np.count_nonzero(finite < binning.low)) if low < binning.low else 0
            above = int(np.count_nonzero(finite > binning.high)) if high > binning.high else 0
        return cls(
            binning=binning,
            count=n,
            missing=missing,
            invalid=invalid,
            mean=mean,
            m2=m2,
            min=low,
            max=high,
            counts=counts,
            below=below,
            above=above,
            sketch=sketch,
        )

    @property
    def rows(self) -> int:
        return self.count + self.missing + self.invalid

    @property
    def variance(self) -> float:
        return self.m2 / (self.count - 1) if self.count > 1 else float("nan")

    @property
    def std(self) -> float:
        return float(np.sqrt(self.variance))

    def quantile(self, q: float) -> float:
        """From the sketch when kept, else interpolated within the histogram's bins."""
        if self.count == 0:
            return float("nan")
        if self.sketch is not None and self.sketch.count:
            return self.sketch.quantile(q)
        edges = np.concatenate([[self.min], self.binning.cuts, [self.max]])
        edges = np.clip(edges, self.min, self.max)
        cdf = np.concatenate([[0.0], np.cumsum(self.counts) / self.count])
        return float(np.interp(q, cdf, edges))

    def merge(self, other: NumericProfile) -> NumericProfile:
        if self.binning.fingerprint() != other.binning.fingerprint():
            raise ValueError("cannot merge numeric profiles with different binnings")
        n = self.count + other.count
        if n:
            delta = other.mean - self.mean
            mean = self.mean + delta * other.count / n
            m2 = self.m2 + other.m2 + delta * delta * self.count * other.count / n
        else:
            mean, m2 = 0.0, 0.0
        # A merged quantile is only honest when both sides kept their sketch.
        sketch = self.sketch.merge(other.sketch) if self.sketch is not None and other.sketch is not None else None
        return NumericProfile(
            binning=self.binning,
            count=n,
            missing=self.missing + other.missing,
            invalid=self.invalid + other.invalid,
            mean=mean,
            m2=m2,
            min=float(np.fmin(self.min, other.min)),
            max=float(np.fmax(self.max, other.max)),
            counts=self.counts + other.counts,
            below=self.below + other.below,
            above=self.above + other.above,
            sketch=sketch,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe; the binning is stored once with the reference, not with every window."""
        return {
            "kind": "numeric",
            "count": self.count,
            "missing": self.missing,
            "invalid": self.invalid,
            "mean": self.mean,
            "m2": self.m2,
            "min": None if np.isnan(self.min) else self.min,
            "max": None if np.isnan(self.max) else self.max,
            "counts": self.counts.tolist(),
            "below": self.below,
            "above": self.above,
            "sketch": None if self.sketch is None else self.sketch.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], binning: NumericBinning) -> NumericProfile:
        def num(value: Any) -> float:
            return float("nan") if value is None else float(value)

        return cls(
            binning=binning,
            count=int(data["count"]),
            missing=int(data["missing"]),
            invalid=int(data["invalid"]),
            mean=float(data["mean"]),
            m2=float(data["m2"]),
            min=num(data["min"]),
            max=num(data["max"]),
            counts=_ints(data["counts"]),
            below=int(data["below"]),
            above=int(data["above"]),
            sketch=None if data.get("sketch") is None else QuantileSketch.from_dict(data["sketch"]),
        )


# ----------------------------------------------------------------------- categorical columns

OTHER = "__other__"
UNSEEN = "__unseen__"


@dataclass(frozen=True, eq=False)
class CategoricalBinning:
    """The reference's categories: the ``top_k`` most frequent, and the rest it also held."""

    categories: tuple[str, ...]
    rare: frozenset[str] = frozenset()
    truncated: bool = False  # the reference held more distinct values than MAX_RARE + top_k

    @classmethod
    def fit(cls, counts: Mapping[str, int], top_k: int = DEFAULT_TOP_K) -> CategoricalBinning:
        ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        top = tuple(k for k, _ in ordered[:top_k])
        rest = [k for k, _ in ordered[top_k:]]
        return cls(top, frozenset(rest[:MAX_RARE]), len(rest) > MAX_RARE)

    @property
    def labels(self) -> tuple[str, ...]:
        """Names of the slots of :meth:`CategoricalProfile.frequencies`."""
        return (*self.categories, OTHER, UNSEEN)

    @cached_property
    def _fingerprint(self) -> str:
        text = json.dumps([self.categories, sorted(self.rare), self.truncated])
        return hashlib.sha1(text.encode()).hexdigest()[:16]

    def fingerprint(self) -> str:
        return self._fingerprint

    @cached_property
    def _positions(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.categories)}

    def to_dict(self) -> dict[str, Any]:
        return {"categories": list(self.categories), "rare": sorted(self.rare), "truncated": self.truncated}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CategoricalBinning:
        return cls(tuple(data["categories"]), frozenset(data.get("rare", ())), bool(data.get("truncated", False)))


@dataclass(frozen=True, eq=False)
class CategoricalProfile:
    binning: CategoricalBinning
    counts: np.ndarray  # per reference category
    other: int  # reference values outside its top-K
    unseen: int  # values the reference never held
    unseen_values: dict[str, int]  # the most frequent unseen values, for people to read
    missing: int
    invalid: int = 0
    kind: str = field(default="categorical", init=False)

    @classmethod
    def from_counts(
        cls, value_counts: Mapping[str, int], binning: CategoricalBinning, *, missing: int = 0, invalid: int = 0
    ) -> CategoricalProfile:
        """From distinct values and their counts (the engine counts; this is O(distinct))."""
        position = binning._positions
        counts = np.zeros(len(binning.categories), dtype=np.int64)
        other = unseen = 0
        unseen_values: dict[str, int] = {}
        for value, n in value_counts.items():
            n = int(n)
            if n <= 0:
                continue
            i = position.get(value)
            if i is not None:
                counts[i] += n
            elif value in binning.rare:
                other += n
            else:
                unseen += n
                unseen_values[value] = unseen_values.get(value, 0) + n
        return cls(binning, counts, other, unseen, _top(unseen_values), missing, invalid)

    @property
    def count(self) -> int:
        return int(self.counts.sum()) + self.other + self.unseen

    @property
    def rows(self) -> int:
        return self.count + self.missing + self.invalid

    def frequencies(self) -> np.ndarray:
        """Counts per slot of ``binning.labels``: categories, then other, then unseen."""
        return np.concatenate([self.counts, [self.other, self.unseen]]).astype(np.int64)

    def merge(self, other: CategoricalProfile) -> CategoricalProfile:
        if self.binning.fingerprint() != other.binning.fingerprint():
            raise ValueError("cannot merge categorical profiles with different categories")
        unseen_values = dict(self.unseen_values)
        for value, n in other.unseen_values.items():
            unseen_values[value] = unseen_values.get(value, 0) + n
        return CategoricalProfile(
            self.binning,
            self.counts + other.counts,
            self.other + other.other,
            self.unseen + other.unseen,
            _top(unseen_values),
            self.missing + other.missing,
            self.invalid + other.invalid,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "categorical",
            "counts": self.counts.tolist(),
            "other": self.other,
            "unseen": self.unseen,
            "unseen_values": self.unseen_values,
            "missing": self.missing,
            "invalid": self.invalid,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], binning: CategoricalBinning) -> CategoricalProfile:
        return cls(
            binning,
            _ints(data["counts"]),
            int(data["other"]),
            int(data["unseen"]),
            {str(k): int(v) for k, v in data.get("unseen_values", {}).items()},
            int(data["missing"]),
            int(data.get("invalid", 0)),
        )


def _top(values: Mapping[str, int], k: int = MAX_UNSEEN_KEPT) -> dict[str, int]:
    return dict(sorted(values.items(), key=lambda kv: (-kv[1], kv[0]))[:k])


ColumnProfile = Union[NumericProfile, CategoricalProfile]
Binning = Union[NumericBinning, CategoricalBinning]


def binning_to_dict(binning: Binning) -> dict[str, Any]:
    kind = "numeric" if isinstance(binning, NumericBinning) else "categorical"
    return {"kind": kind, **binning.to_dict()}


def binning_from_dict(data: Mapping[str, Any]) -> Binning:
    if data["kind"] == "numeric":
        return NumericBinning.from_dict(data)
    return CategoricalBinning.from_dict(data)


def column_from_dict(data: Mapping[str, Any], binning: Binning) -> ColumnProfile:
    if data["kind"] == "numeric":
        assert isinstance(binning, NumericBinning)
        return NumericProfile.from_dict(data, binning)
    assert isinstance(binning, CategoricalBinning)
    return CategoricalProfile.from_dict(data, binning)


# ------------------------------------------------------------------------ model performance


@dataclass(frozen=True, eq=False)
class BinaryPerformance:
    """Probability predictions against 0/1 labels, mergeable.

    ROC AUC comes from score histograms on a fixed grid of ``SCORE_GRID`` bins of [0, 1]: exact
    when scores fall on the grid, otherwise within the share of pairs that tie in one bin.
    """

    threshold: float
    n: int
    tp: int
    fp: int
    tn: int
    fn: int
    log_loss_sum: float
    brier_sum: float
    positive_hist: np.ndarray
    negative_hist: np.ndarray
    kind: str = field(default="binary", init=False)

    @classmethod
    def from_arrays(cls, scores: np.ndarray, labels: np.ndarray, threshold: float = 0.5) -> BinaryPerformance:
        scores = np.clip(np.asarray(scores, dtype=np.float64), 0.0, 1.0)
        labels = np.asarray(labels, dtype=np.float64)
        positive = labels == 1
        negative = ~positive
        predicted = scores >= threshold
        eps = 1e-15
        clipped = np.clip(scores, eps, 1 - eps)
        log_loss = -(np.log(clipped[positive]).sum() + np.log1p(-clipped[negative]).sum())
        grid = (scores * SCORE_GRID).astype(np.int64)
        np.minimum(grid, SCORE_GRID - 1, out=grid)
        # Both histograms in one count: negatives in the first SCORE_GRID slots, positives after.
        grid[positive] += SCORE_GRID
        hist = np.bincount(grid, minlength=2 * SCORE_GRID).astype(np.int64)
        n, n_positive, n_predicted = int(labels.size), int(np.count_nonzero(positive)), int(np.count_nonzero(predicted))
        tp = int(np.count_nonzero(predicted & positive))
        fp, fn = n_predicted - tp, n_positive - tp
        error = scores - labels
        return cls(
            threshold=threshold,
            n=n,
            tp=tp,
            fp=fp,
            tn=n - tp - fp - fn,
            fn=fn,
            log_loss_sum=float(log_loss),
            brier_sum=float(np.square(error, out=error).sum()),
            positive_hist=hist[SCORE_GRID:],
            negative_hist=hist[:SCORE_GRID],
        )

    def merge(self, other: BinaryPerformance) -> BinaryPerformance:
        if other.threshold != self.threshold:
            # The confusion counts mean different things at different thresholds.
            raise ValueError(f"cannot merge binary performance at decision thresholds {self.threshold} and {other.threshold}")
        return BinaryPerformance(
            self.threshold,
            self.n + other.n,
            self.tp + other.tp,
            self.fp + other.fp,
            self.tn + other.tn,
            self.fn + other.fn,
            self.log_loss_sum + other.log_loss_sum,
            self.brier_sum + other.brier_sum,
            self.positive_hist + other.positive_hist,
            self.negative_hist + other.negative_hist,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "binary",
            "threshold": self.threshold,
            "n": self.n,
            "tp": self.tp,
            "fp": self.fp,
            "tn": self.tn,
            "fn": self.fn,
            "log_loss_sum": self.log_loss_sum,
            "brier_sum": self.brier_sum,
            "positive_hist": _sparse(self.positive_hist),
            "negative_hist": _sparse(self.negative_hist),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BinaryPerformance:
        return cls(
            float(data["threshold"]),
            *(int(data[k]) for k in ("n", "tp", "fp", "tn", "fn")),
            float(data["log_loss_sum"]),
            float(data["brier_sum"]),
            _dense(data["positive_hist"], SCORE_GRID),
            _dense(data["negative_hist"], SCORE_GRID),
        )


@dataclass(frozen=True, eq=False)
class ClassPerformance:
    """Class predictions against class labels: a confusion matrix as (true, predicted) -> count."""

    confusion: dict[tuple[str, str], int]
    kind: str = field(default="class", init=False)

    @classmethod
    def from_pairs(cls, pair_counts: Mapping[tuple[str, str], int]) -> ClassPerformance:
        return cls({(str(t), str(p)): int(n) for (t, p), n in pair_counts.items() if n})

    @property
    def n(self) -> int:
        return sum(self.confusion.values())

    def merge(self, other: ClassPerformance) -> ClassPerformance:
        merged = dict(self.confusion)
        for key, n in other.confusion.items():
            merged[key] = merged.get(key, 0) + n
        return ClassPerformance(merged)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "class", "confusion": [[t, p, n] for (t, p), n in sorted(self.confusion.items())]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClassPerformance:
        return cls({(str(t), str(p)): int(n) for t, p, n in data["confusion"]})


@dataclass(frozen=True, eq=False)
class RegressionPerformance:
    n: int
    sum_abs_error: float
    sum_sq_error: float
    sum_error: float  # prediction - target: the bias
    sum_y: float
    sum_y2: float
    kind: str = field(default="regression", init=False)

    @classmethod
    def from_arrays(cls, predictions: np.ndarray, targets: np.ndarray) -> RegressionPerformance:
        p = np.asarray(predictions, dtype=np.float64)
        y = np.asarray(targets, dtype=np.float64)
        e = p - y
        return cls(int(y.size), float(np.abs(e).sum()), float((e * e).sum()), float(e.sum()), float(y.sum()), float((y * y).sum()))

    def merge(self, other: RegressionPerformance) -> RegressionPerformance:
        return RegressionPerformance(
            self.n + other.n,
            self.sum_abs_error + other.sum_abs_error,
            self.sum_sq_error + other.sum_sq_error,
            self.sum_error + other.sum_error,
            self.sum_y + other.sum_y,
            self.sum_y2 + other.sum_y2,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "regression",
            "n": self.n,
            "sum_abs_error": self.sum_abs_error,
            "sum_sq_error": self.sum_sq_error,
            "sum_error": self.sum_error,
            "sum_y": self.sum_y,
            "sum_y2": self.sum_y2,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RegressionPerformance:
        return cls(int(data["n"]), *(float(data[k]) for k in ("sum_abs_error", "sum_sq_error", "sum_error", "sum_y", "sum_y2")))


Performance = Union[BinaryPerformance, ClassPerformance, RegressionPerformance]


def performance_from_dict(data: Mapping[str, Any]) -> Performance:
    kind = data["kind"]
    if kind == "binary":
        return BinaryPerformance.from_dict(data)
    if kind == "class":
        return ClassPerformance.from_dict(data)
    return RegressionPerformance.from_dict(data)


def _sparse(counts: np.ndarray) -> list[list[int]]:
    nz = np.flatnonzero(counts)
    return [nz.tolist(), counts[nz].tolist()]


def _dense(sparse: list[list[int]], size: int) -> np.ndarray:
    out = np.zeros(size, dtype=np.int64)
    out[np.asarray(sparse[0], dtype=np.int64)] = np.asarray(sparse[1], dtype=np.int64)
    return out


# ---------------------------------------------------------------------------------- KPIs


@dataclass(frozen=True, eq=False)
class KpiProfile:
    """What a KPI needs of its column: non-null values, those matching its condition, their sum
    and (for quantile KPIs) their sketch."""

    total: int
    matched: int
    sum: float
    sketch: QuantileSketch | None = None

    def merge(self, other: KpiProfile) -> KpiProfile:
        sketch = self.sketch.merge(other.sketch) if self.sketch is not None and other.sketch is not None else None
        return KpiProfile(self.total + other.total, self.matched + other.matched, self.sum + other.sum, sketch)

    def to_dict(self) -> dict[str, Any]:
        return {"total": self.total, "matched": self.matched, "sum": self.sum, "sketch": None if self.sketch is None else self.sketch.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> KpiProfile:
        sketch = data.get("sketch")
        return cls(int(data["total"]), int(data["matched"]), float(data["sum"]), None if sketch is None else QuantileSketch.from_dict(sketch))


# ------------------------------------------------------------------------------ a dataset


@dataclass(frozen=True, eq=False)
class DatasetProfile:
    """Everything the checks need of one window (or of the reference), for one segment."""

    rows: int
    columns: Mapping[str, ColumnProfile]
    performance: Performance | None = None
    kpis: Mapping[str, KpiProfile] = field(default_factory=dict)
    bad_timestamps: int = 0  # rows scanned for this window whose timestamp could not be read
    duplicate_ids: int = 0  # rows whose request id already appeared in the window
    missing_columns: tuple[str, ...] = ()  # configured columns the data does not have
    multivariate: ErrorProfile | None = None  # PCA reconstruction errors, when the plan has a model

    def merge(self, other: DatasetProfile) -> DatasetProfile:
        columns: dict[str, ColumnProfile] = dict(self.columns)
        for name, profile in other.columns.items():
            mine = columns.get(name)
            columns[name] = profile if mine is None else mine.merge(profile)  # type: ignore[arg-type]
        kpis: dict[str, KpiProfile] = dict(self.kpis)
        for name, kpi in other.kpis.items():
            kpis[name] = kpi if name not in kpis else kpis[name].merge(kpi)
        if self.performance is None:
            performance = other.performance
        elif other.performance is None:
            performance = self.performance
        else:
            performance = self.performance.merge(other.performance)  # type: ignore[arg-type]
        return DatasetProfile(
            rows=self.rows + other.rows,
            columns=columns,
            performance=performance,
            kpis=kpis,
            bad_timestamps=self.bad_timestamps + other.bad_timestamps,
            duplicate_ids=self.duplicate_ids + other.duplicate_ids,
            missing_columns=tuple(sorted(set(self.missing_columns) | set(other.missing_columns))),
            multivariate=_merge_optional(self.multivariate, other.multivariate),
        )

    def with_counters(self, **changes: Any) -> DatasetProfile:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe, binnings included once (for the stored reference)."""
        return {
            "rows": self.rows,
            "binnings": {name: binning_to_dict(p.binning) for name, p in self.columns.items()},
            "columns": {name: p.to_dict() for name, p in self.columns.items()},
            "performance": None if self.performance is None else self.performance.to_dict(),
            "kpis": {name: k.to_dict() for name, k in self.kpis.items()},
            "bad_timestamps": self.bad_timestamps,
            "duplicate_ids": self.duplicate_ids,
            "missing_columns": list(self.missing_columns),
            "multivariate": None if self.multivariate is None else self.multivariate.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], binnings: Mapping[str, Binning] | None = None) -> DatasetProfile:
        """From :meth:`to_dict`; ``binnings`` when ``data`` was stored without them (partial
        profiles of one plan, which ship the binnings once)."""
        if binnings is None:
            binnings = {name: binning_from_dict(b) for name, b in data["binnings"].items()}
        perf = data.get("performance")
        return cls(
            rows=int(data["rows"]),
            columns={name: column_from_dict(p, binnings[name]) for name, p in data["columns"].items()},
            performance=None if perf is None else performance_from_dict(perf),
            kpis={name: KpiProfile.from_dict(k) for name, k in data.get("kpis", {}).items()},
            bad_timestamps=int(data.get("bad_timestamps", 0)),
            duplicate_ids=int(data.get("duplicate_ids", 0)),
            missing_columns=tuple(data.get("missing_columns", ())),
            multivariate=None if data.get("multivariate") is None else ErrorProfile.from_dict(data["multivariate"]),
        )

    def binnings(self) -> dict[str, Binning]:
        return {name: p.binning for name, p in self.columns.items()}


def _merge_optional(mine: ErrorProfile | None, theirs: ErrorProfile | None) -> ErrorProfile | None:
    if mine is None:
        return theirs
    return mine if theirs is None else mine.merge(theirs)
