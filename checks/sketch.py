"""A mergeable quantile sketch with a relative-error guarantee (the DDSketch idea).

Values are counted in logarithmic buckets: bucket ``i`` holds ``(gamma**(i-1), gamma**i]`` with
``gamma = (1 + alpha) / (1 - alpha)``, so any quantile it returns is within ``alpha`` (relative)
of a value of the data's true quantile. Two sketches with the same ``alpha`` merge by adding
counts, which makes windows roll up (hour -> day) without re-reading logs, and any engine
(pandas, Spark) can produce the same buckets with a ``log`` and a ``group by``.

>>> import numpy as np
>>> s = QuantileSketch.from_values(np.arange(1, 1001, dtype=float))
>>> abs(s.quantile(0.5) - 500.5) / 500.5 < 0.01
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

DEFAULT_ALPHA = 0.005
# Magnitudes below this count as zero: keeps bucket indices bounded for denormal noise.
_MIN_MAGNITUDE = 1e-12


def _log_gamma(alpha: float) -> float:
    return math.log((1 + alpha) / (1 - alpha))


# Bucket indices spanning at most this many keys are counted with ``np.bincount`` (linear time)
# instead of ``np.unique`` (a sort): every finite magnitude fits at the default accuracy (about
# 74,000 keys between 1e-12 and 1.8e308), so the sort is only a fallback for tiny ``alpha``.
_DENSE_KEYS = 1 << 20


def _log_keys(magnitudes: np.ndarray, log_gamma: float) -> np.ndarray:
    """The bucket of each magnitude, ``ceil(log(m) / log_gamma)``: the sketch's definition."""
    scaled = np.log(magnitudes)
    scaled /= log_gamma
    np.ceil(scaled, out=scaled)
    return scaled.astype(np.int64)


# Magnitudes are first counted by *cell*: the float's top bits (exponent and 12 mantissa bits), so
# a cell is 1/4096 of a power of two wide, and positive floats order as their bit patterns. A cell
# whose smallest and largest float fall in one bucket holds values of that bucket only: its count
# goes there whole, with no log. Only values in the cells a bucket edge cuts through (about 1 in
# 40 at the default accuracy) get a log each. The buckets are exactly those of a log per value;
# a column of 1M positive values takes about half the time. Data spanning more than 64 powers of two (or
# holding inf), and data of both signs, take a log per value.
_CELL_SHIFT = 40
_MAX_CELLS = 1 << 18
_NONFINITE_CELL = 0x7FF0000000000000 >> _CELL_SHIFT
MAX_WHOLE_SPAN = 1 << 16
"""Whole-number columns spanning fewer values than this are counted per distinct value (here and
in the pandas engine's profiles)."""


def _cell_edge_keys(cells: np.ndarray, log_gamma: float) -> tuple[np.ndarray, np.ndarray]:
    """The bucket of each cell's smallest and of its largest float."""
    first = (cells << _CELL_SHIFT).view(np.float64)
    last = (((cells + 1) << _CELL_SHIFT) - 1).view(np.float64)
    return _log_keys(first, log_gamma), _log_keys(last, log_gamma)


def _tally(keys: np.ndarray, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct ``keys`` and how often each occurs (its ``weights`` summed, when given):
    one dense ``np.bincount`` over their span when it is under _DENSE_KEYS, else a sort."""
    if keys.size == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    low, high = int(keys.min()), int(keys.max())
    if high - low < _DENSE_KEYS:
        dense = np.bincount(keys - low if low else keys, weights=weights)
        present = np.flatnonzero(dense)
        return present + low, dense[present].astype(np.int64)
    unique, inverse = np.unique(keys, return_inverse=True)
    return unique, np.bincount(inverse, weights=weights).astype(np.int64)


def _key_counts(keys: np.ndarray, counts: np.ndarray, single: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct keys with their counts, from ``keys`` counted ``counts`` times and ``single``
    keys counted once each."""
    return _tally(np.concatenate([keys, single]), np.concatenate([counts.astype(np.float64), np.ones(single.size)]))


def _cell_counts(magnitudes: np.ndarray, log_gamma: float) -> tuple[np.ndarray, np.ndarray] | None:
    """Keys and counts of finite positive ``magnitudes`` by cells (see above); None when the cells
    span too much or a value is not finite."""
    cells = magnitudes.view(np.int64) >> _CELL_SHIFT
    low, high = int(cells.min()), int(cells.max())
    span = high - low + 1
    if span > _MAX_CELLS or high >= _NONFINITE_CELL:
        return None
    cells -= low
    counts = np.bincount(cells, minlength=span)
    present = np.flatnonzero(counts)
    first, last = _cell_edge_keys(present + low, log_gamma)
    clean = first == last
    exact = np.empty(0, dtype=np.int64)
    if not clean.all():
        straddled = np.zeros(span, dtype=bool)
        straddled[present[~clean]] = True
        exact = _log_keys(magnitudes[straddled[cells]], log_gamma)
    return _key_counts(first[clean], counts[present[clean]], exact)


def _bucket_counts(magnitudes: np.ndarray, log_gamma: float) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct bucket indices of ``magnitudes`` (all >= _MIN_MAGNITUDE) and their counts."""
    if magnitudes.size == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    by_cell = _cell_counts(magnitudes, log_gamma)
    if by_cell is not None:
        return by_cell
    return _tally(_log_keys(magnitudes, log_gamma))


def _add(keys_a: np.ndarray, counts_a: np.ndarray, keys_b: np.ndarray, counts_b: np.ndarray):
    if keys_a.size == 0:
        return keys_b, counts_b
    if keys_b.size == 0:
        return keys_a, counts_a
    # Usually a few thousand buckets apart: added on a dense row, no sort (a merge per batch and
    # column adds up while a window is folded).
    return _tally(np.concatenate([keys_a, keys_b]), np.concatenate([counts_a, counts_b]).astype(np.float64))


@dataclass(frozen=True, eq=False)
class QuantileSketch:
    alpha: float
    pos_keys: np.ndarray
    pos_counts: np.ndarray
    neg_keys: np.ndarray
    neg_counts: np.ndarray
    zeros: int

    @classmethod
    def empty(cls, alpha: float = DEFAULT_ALPHA) -> QuantileSketch:
        e = np.empty(0, dtype=np.int64)
        return cls(alpha, e, e, e, e, 0)

    @classmethod
    def from_values(cls, values: np.ndarray, alpha: float = DEFAULT_ALPHA) -> QuantileSketch:
        """Sketch of finite ``values`` (the caller removes NaN and inf)."""
        values = np.asarray(values, dtype=np.float64)
        lg = _log_gamma(alpha)
        if values.size:
            low, high = values.min(), values.max()
            if np.isfinite(low) and np.isfinite(high) and float(low).is_integer() and float(high).is_integer() and high - low < MAX_WHOLE_SPAN:
                counted = cls._integers(values, int(low), lg, alpha)
                if counted is not None:
                    return counted
            if low >= _MIN_MAGNITUDE and np.isfinite(high):
                # The common case (latencies, scores, prices): every value is a positive magnitude.
                keys, counts = _bucket_counts(values, lg)
                e = np.empty(0, dtype=np.int64)
                return cls(alpha, keys, counts, e, e, 0)
            if np.isfinite(low) and np.isfinite(high):
                dense = cls._dense(values, lg, alpha)
                if dense is not None:
                    return dense
        magnitude = np.abs(values)
        small = magnitude < _MIN_MAGNITUDE
        pos_keys, pos_counts = _bucket_counts(values[(values > 0) & ~small], lg)
        neg_keys, neg_counts = _bucket_counts(-values[(values < 0) & ~small], lg)
        return cls(alpha, pos_keys, pos_counts, neg_keys, neg_counts, int(small.sum()))

    @classmethod
    def _integers(cls, values: np.ndarray, low: int, lg: float, alpha: float) -> QuantileSketch | None:
        """Whole numbers in a narrow range (counts, flags, ratings): each distinct value counted
        once with ``np.bincount`` and given its bucket once, instead of a log per row. None when
        some value is not whole."""
        whole = values.astype(np.int64)
        if not np.array_equal(whole, values):
            return None
        if low:
            whole -= low
        counts = np.bincount(whole)
        present = np.flatnonzero(counts)
        return cls.from_counts((present + low).astype(np.float64), counts[present], alpha)

    @classmethod
    def from_counts(cls, values: np.ndarray, counts: np.ndarray, alpha: float = DEFAULT_ALPHA) -> QuantileSketch:
        """Sketch of distinct finite ``values`` occurring ``counts`` times each (a column counted
        by value, e.g. whole numbers with ``np.bincount``): the same buckets as
        :meth:`from_values` of the values repeated, with one log per distinct value."""
        values = np.asarray(values, dtype=np.float64)
        counts = np.asarray(counts, dtype=np.int64)
        lg = _log_gamma(alpha)
        small = np.abs(values) < _MIN_MAGNITUDE
        positive, negative = (values > 0) & ~small, (values < 0) & ~small
        pos_keys, pos_counts = _tally(_log_keys(values[positive], lg), counts[positive].astype(np.float64))
        neg_keys, neg_counts = _tally(_log_keys(-values[negative], lg), counts[negative].astype(np.float64))
        return cls(alpha, pos_keys, pos_counts, neg_keys, neg_counts, int(counts[small].sum()))

    @classmethod
    def _dense(cls, values: np.ndarray, lg: float, alpha: float) -> QuantileSketch | None:
        """Both signs in one ``np.bincount``: positive buckets, then negative ones, then zero.
        None when the keys span too much for a dense count."""
        magnitude = np.abs(values)
        small = magnitude < _MIN_MAGNITUDE
        zeros = int(np.count_nonzero(small))
        if zeros:
            np.maximum(magnitude, _MIN_MAGNITUDE, out=magnitude)
        scaled = np.log(magnitude, out=magnitude)
        scaled /= lg
        np.ceil(scaled, out=scaled)
        index = scaled.astype(np.int64)
        low = int(index.min())
        span = int(index.max()) - low + 1
        if span >= _DENSE_KEYS:
            return None
        index -= low
        np.add(index, span, out=index, where=values < 0)
        if zeros:
            index[small] = 2 * span
        dense = np.bincount(index, minlength=2 * span + 1)
        positive, negative = dense[:span], dense[span : 2 * span]
        pos_keys, neg_keys = np.flatnonzero(positive), np.flatnonzero(negative)
        return cls(
            alpha,
            pos_keys + low,
            positive[pos_keys].astype(np.int64),
            neg_keys + low,
            negative[neg_keys].astype(np.int64),
            zeros,
        )

    @property
    def count(self) -> int:
        return int(self.pos_counts.sum() + self.neg_counts.sum() + self.zeros)

    def merge(self, other: QuantileSketch) -> QuantileSketch:
        if other.alpha != self.alpha:
            raise ValueError(f"cannot merge sketches of accuracy {self.alpha} and {other.alpha}")
        pk, pc = _add(self.pos_keys, self.pos_counts, other.pos_keys, other.pos_counts)
        nk, nc = _add(self.neg_keys, self.neg_counts, other.neg_keys, other.neg_counts)
        return QuantileSketch(self.alpha, pk, pc, nk, nc, self.zeros + other.zeros)

    def quantiles(self, qs: np.ndarray | list[float]) -> np.ndarray:
        """Quantiles at probabilities ``qs`` (NaN for an empty sketch)."""
        qs = np.asarray(qs, dtype=np.float64)
        n = self.count
        if n == 0:
            return np.full(qs.shape, np.nan)
        gamma = (1 + self.alpha) / (1 - self.alpha)
        # Ascending order of value: negatives from the largest magnitude down, zeros, positives up.
        neg_order = np.argsort(self.neg_keys)[::-1]
        keys = np.concatenate([self.neg_keys[neg_order], [0], self.pos_keys])
        counts = np.concatenate([self.neg_counts[neg_order], [self.zeros], self.pos_counts])
        signs = np.concatenate([-np.ones(len(neg_order)), [0.0], np.ones(len(self.pos_keys))])
        cumulative = np.cumsum(counts)
        rank = np.clip(qs, 0.0, 1.0) * (n - 1)
        position = np.searchsorted(cumulative, rank, side="right")
        position = np.minimum(position, len(cumulative) - 1)
        representative = 2.0 * np.power(gamma, keys[position].astype(np.float64)) / (gamma + 1.0)
        return signs[position] * representative

    def quantile(self, q: float) -> float:
        return float(self.quantiles([q])[0])

    def to_dict(self) -> dict[str, Any]:
        return {
            "alpha": self.alpha,
            "pos": [self.pos_keys.tolist(), self.pos_counts.tolist()],
            "neg": [self.neg_keys.tolist(), self.neg_counts.tolist()],
            "zeros": self.zeros,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QuantileSketch:
        def arr(values: list[int]) -> np.ndarray:
            return np.asarray(values, dtype=np.int64)

        return cls(
            float(data["alpha"]),
            arr(data["pos"][0]),
            arr(data["pos"][1]),
            arr(data["neg"][0]),
            arr(data["neg"][1]),
            int(data["zeros"]),
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, QuantileSketch) and self.to_dict() == other.to_dict()
