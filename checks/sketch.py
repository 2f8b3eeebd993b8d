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


def _bucket_counts(magnitudes: np.ndarray, log_gamma: float) -> tuple[np.ndarray, np.ndarray]:
    if magnitudes.size == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    index = np.ceil(np.log(magnitudes) / log_gamma).astype(np.int64)
    keys, counts = np.unique(index, return_counts=True)
    return keys, counts.astype(np.int64)


def _add(keys_a: np.ndarray, counts_a: np.ndarray, keys_b: np.ndarray, counts_b: np.ndarray):
    if keys_a.size == 0:
        return keys_b, counts_b
    if keys_b.size == 0:
        return keys_a, counts_a
    keys = np.concatenate([keys_a, keys_b])
    counts = np.concatenate([counts_a, counts_b])
    unique, inverse = np.unique(keys, return_inverse=True)
    return unique, np.bincount(inverse, weights=counts).astype(np.int64)


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
        magnitude = np.abs(values)
        small = magnitude < _MIN_MAGNITUDE
        pos_keys, pos_counts = _bucket_counts(values[(values > 0) & ~small], lg)
        neg_keys, neg_counts = _bucket_counts(-values[(values < 0) & ~small], lg)
        return cls(alpha, pos_keys, pos_counts, neg_keys, neg_counts, int(small.sum()))

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
