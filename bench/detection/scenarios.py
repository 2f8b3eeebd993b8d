"""Seeded synthetic data for the detection benchmark: 20 numeric + 5 categorical columns shaped
like real tabular features, and the scenarios (which windows, which changes, which columns count
as changed) built from them.

Everything is numpy, vectorised per column, and reproducible from ``(seed, scenario, size, case,
repetition, phase, index)``: a window is only a :class:`WindowSpec` until :func:`make_frame`
draws it, so big windows are generated one at a time and never all held at once.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

# ------------------------------------------------------------------------------- columns


@dataclass(frozen=True)
class Change:
    """How a window differs from the reference population.

    ``mean_shift`` moves every numeric column's mean by that many of its standard deviations
    (counts and the flag through their parameter, so they stay integers); ``scale`` multiplies
    the standard deviation around an unchanged mean (not applicable to the 0/1 flag);
    ``new_category`` replaces that share of each categorical column's values with a value the
    reference never held; ``share_move`` moves that much probability mass from each categorical
    column's most frequent value to its second.
    """

    mean_shift: float = 0.0
    scale: float = 1.0
    new_category: float = 0.0
    share_move: float = 0.0

    @property
    def is_none(self) -> bool:
        return self == Change()

    def changes(self, column: NumericColumn | CategoricalColumn) -> bool:
        """Whether this change alters ``column``'s distribution."""
        if isinstance(column, CategoricalColumn):
            return self.new_category > 0 or self.share_move > 0
        return self.mean_shift != 0 or (self.scale != 1 and column.family != "flag")

    def describe(self) -> str:
        parts = []
        if self.mean_shift:
            parts.append(f"mean {self.mean_shift:+g} std")
        if self.scale != 1:
            parts.append(f"scale x{self.scale:g}")
        if self.new_category:
            parts.append(f"new category {self.new_category:.0%}")
        if self.share_move:
            parts.append(f"{self.share_move:.0%} share moved")
        return ", ".join(parts) or "no change"


@dataclass(frozen=True)
class NumericColumn:
    """One numeric feature. Families and their parameters:

    - ``normal``: (mean, std)
    - ``lognormal``: (mu, sigma) of the underlying normal
    - ``bimodal``: (weight of the first mode, mean1, std1, mean2, std2)
    - ``count``: (Poisson rate,) -- integers
    - ``flag``: (probability of 1,) -- 0/1 integers
    """

    name: str
    family: str
    params: tuple[float, ...]

    @property
    def mean(self) -> float:
        p = self.params
        if self.family == "normal":
            return p[0]
        if self.family == "lognormal":
            return math.exp(p[0] + p[1] ** 2 / 2)
        if self.family == "bimodal":
            w, a, _, b, _ = p
            return w * a + (1 - w) * b
        return p[0]  # count, flag

    @property
    def std(self) -> float:
        p = self.params
        if self.family == "normal":
            return p[1]
        if self.family == "lognormal":
            return self.mean * math.sqrt(math.expm1(p[1] ** 2))
        if self.family == "bimodal":
            w, a, s1, b, s2 = p
            second = w * (s1**2 + a**2) + (1 - w) * (s2**2 + b**2)
            return math.sqrt(second - self.mean**2)
        if self.family == "count":
            return math.sqrt(p[0])
        return math.sqrt(p[0] * (1 - p[0]))  # flag

    def sample(self, rng: np.random.Generator, n: int, change: Change) -> np.ndarray:
        shift, scale = change.mean_shift, change.scale
        p = self.params
        if self.family == "count":
            rate = max(p[0] + shift * math.sqrt(p[0]), 1e-9)
            if scale == 1:
                return rng.poisson(rate, n)
            if scale < 1:
                raise ValueError("a count column can only get wider (scale > 1)")
            # Negative binomial with the same mean and scale^2 times the Poisson variance.
            q = 1.0 / scale**2
            return rng.negative_binomial(rate * q / (1 - q), q, n)
        if self.family == "flag":
            prob = float(np.clip(p[0] + shift * self.std, 0.0, 1.0))
            return (rng.random(n) < prob).astype(np.int64)
        if self.family == "normal":
            x = rng.standard_normal(n)
            x *= p[1]
            x += p[0]
        elif self.family == "lognormal":
            x = rng.standard_normal(n)
            x *= p[1]
            x += p[0]
            np.exp(x, out=x)
        elif self.family == "bimodal":
            w, a, s1, b, s2 = p
            first = rng.random(n) < w
            x = rng.standard_normal(n)
            x *= np.where(first, s1, s2)
            x += np.where(first, a, b)
        else:
            raise ValueError(f"unknown family {self.family!r}")
        if scale != 1:
            x -= self.mean
            x *= scale
            x += self.mean
        if shift:
            x += shift * self.std
        return x


@dataclass(frozen=True)
class CategoricalColumn:
    """A categorical feature with ``k`` values of Zipf-like shares (``share_i ~ 1 / i^exponent``)."""

    name: str
    k: int
    exponent: float = 1.1

    @property
    def labels(self) -> list[str]:
        return [f"v{i:02d}" for i in range(self.k)]

    @property
    def shares(self) -> np.ndarray:
        weights = 1.0 / np.arange(1, self.k + 1) ** self.exponent
        return weights / weights.sum()

    def sample(self, rng: np.random.Generator, n: int, change: Change) -> pd.Categorical:
        shares = self.shares.copy()
        if change.share_move:
            moved = min(change.share_move, shares[0])
            shares[0] -= moved
            shares[1] += moved
        codes = np.searchsorted(np.cumsum(shares), rng.random(n), side="right")
        np.minimum(codes, self.k - 1, out=codes)  # cumsum may end a hair below 1
        labels = self.labels
        if change.new_category:
            codes[rng.random(n) < change.new_category] = self.k
            labels = [*labels, "new"]
        return pd.Categorical.from_codes(codes.astype(np.int32 if len(labels) > 127 else np.int8), labels)


NUMERIC_COLUMNS: tuple[NumericColumn, ...] = (
    NumericColumn("normal_a", "normal", (0.0, 1.0)),
    NumericColumn("normal_b", "normal", (50.0, 10.0)),
    NumericColumn("normal_c", "normal", (-3.0, 0.2)),
    NumericColumn("normal_d", "normal", (1000.0, 250.0)),
    NumericColumn("normal_e", "normal", (5.0, 2.0)),
    NumericColumn("normal_f", "normal", (0.5, 0.05)),
    NumericColumn("lognormal_a", "lognormal", (0.0, 0.25)),
    NumericColumn("lognormal_b", "lognormal", (3.0, 0.5)),
    NumericColumn("lognormal_c", "lognormal", (8.0, 0.75)),
    NumericColumn("lognormal_d", "lognormal", (1.0, 1.0)),
    NumericColumn("bimodal_a", "bimodal", (0.5, -2.0, 1.0, 2.0, 1.0)),
    NumericColumn("bimodal_b", "bimodal", (0.7, 0.0, 0.5, 3.0, 1.0)),
    NumericColumn("bimodal_c", "bimodal", (0.2, 10.0, 1.0, 20.0, 3.0)),
    NumericColumn("bimodal_d", "bimodal", (0.9, 0.0, 1.0, 6.0, 0.5)),
    NumericColumn("count_a", "count", (0.3,)),
    NumericColumn("count_b", "count", (1.0,)),
    NumericColumn("count_c", "count", (3.0,)),
    NumericColumn("count_d", "count", (10.0,)),
    NumericColumn("count_e", "count", (40.0,)),
    NumericColumn("flag", "flag", (0.15,)),
)
CATEGORICAL_COLUMNS: tuple[CategoricalColumn, ...] = tuple(CategoricalColumn(f"cat_{k}", k) for k in (3, 5, 10, 20, 30))
NUMERIC = [c.name for c in NUMERIC_COLUMNS]
CATEGORICAL = [c.name for c in CATEGORICAL_COLUMNS]
COLUMNS = [*NUMERIC, *CATEGORICAL]


def changed_columns(change: Change) -> frozenset[str]:
    return frozenset(c.name for c in (*NUMERIC_COLUMNS, *CATEGORICAL_COLUMNS) if change.changes(c))


# ------------------------------------------------------------------------------- windows


def _key(text: str) -> int:
    return zlib.crc32(text.encode())


@dataclass(frozen=True)
class WindowSpec:
    """A window to draw: ``rows`` rows under ``change`` from the random stream ``entropy``.

    ``drifted`` are the columns a detector *should* flag in it (every other column counts as a
    false alarm when flagged). ``phase``/``rep``/``index`` place it in its case: ``post`` windows
    are after the change, ``index`` windows after it (the detection delay when first flagged).
    """

    rows: int
    entropy: tuple[int, ...]
    change: Change = Change()
    drifted: frozenset[str] = frozenset()
    phase: str = "null"
    rep: int = 0
    index: int = 0


def make_frame(spec: WindowSpec) -> pd.DataFrame:
    """Draw one window (columns in :data:`COLUMNS` order)."""
    rng = np.random.default_rng(np.random.SeedSequence(list(spec.entropy)))
    data: dict[str, object] = {}
    for column in NUMERIC_COLUMNS:
        data[column.name] = column.sample(rng, spec.rows, spec.change)
    for column in CATEGORICAL_COLUMNS:
        data[column.name] = column.sample(rng, spec.rows, spec.change)
    return pd.DataFrame(data)


@dataclass(frozen=True)
class ReferenceSpec:
    """The reference: ``parts`` drawn and concatenated in order. Its own windows (what calibrated
    thresholds learn the reference's variation from) are the parts themselves (e.g. the hours of
    a seasonal reference) or, with ``chunk_rows``, equal row-order chunks of that many rows (a
    remainder joins the last)."""

    parts: tuple[WindowSpec, ...]
    chunk_rows: int | None = None

    @property
    def rows(self) -> int:
        return sum(p.rows for p in self.parts)

    @property
    def n_chunks(self) -> int:
        return len(self.parts) if self.chunk_rows is None else self.rows // self.chunk_rows


def make_reference(spec: ReferenceSpec) -> tuple[pd.DataFrame, list[pd.DataFrame]]:
    """The reference frame and its own windows (row slices of it, not copies)."""
    frames = [make_frame(p) for p in spec.parts]
    frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    if spec.chunk_rows is None:
        bounds = np.cumsum([0, *(p.rows for p in spec.parts)])
    else:
        bounds = np.arange(spec.n_chunks + 1) * spec.chunk_rows
        bounds[-1] = len(frame)  # a remainder joins the last chunk
    del frames
    chunks = [frame.iloc[int(a) : int(b)] for a, b in zip(bounds[:-1], bounds[1:])]
    return frame, chunks


@dataclass(frozen=True)
class Case:
    """One row group of the results: a reference, the windows checked against it, and what a
    detector should say about each."""

    scenario: str
    size: int  # rows per monitored window
    label: str  # the change (or "no change")
    reference: ReferenceSpec
    windows: tuple[WindowSpec, ...]
    notes: dict[str, object] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.scenario}/{self.size}/{self.label}"

    @property
    def rows(self) -> int:
        return sum(w.rows for w in self.windows)

    def frames(self) -> Iterator[pd.DataFrame]:
        """The windows, drawn one at a time."""
        for spec in self.windows:
            yield make_frame(spec)

    def limited(self, max_windows: int | None) -> Case:
        """The same case with at most ``max_windows`` windows: whole repetitions when a change case
        has several, else the first windows."""
        if max_windows is None or len(self.windows) <= max_windows:
            return self
        reps = sorted({w.rep for w in self.windows})
        per_rep = len(self.windows) // len(reps)
        if len(reps) > 1 and per_rep <= max_windows:
            kept = set(reps[: max_windows // per_rep])
            return replace(self, windows=tuple(w for w in self.windows if w.rep in kept))
        return replace(self, windows=self.windows[:max_windows])


# ----------------------------------------------------------------------------- scenarios

REFERENCE_ROWS = 100_000
REFERENCE_CAP = 1_000_000
MIN_REFERENCE_CHUNKS = 10


def reference_rows(window_rows: int) -> int:
    """100k rows, or 10x the window, at most :data:`REFERENCE_CAP`."""
    return min(max(REFERENCE_ROWS, 10 * window_rows), REFERENCE_CAP)


def stationary_reference(window_rows: int, seed: int) -> ReferenceSpec:
    """A stationary reference cut into chunks of the window's size, or into 10 chunks when it
    holds fewer than 10 windows (the capped reference of 1M-row windows)."""
    rows = reference_rows(window_rows)
    chunk = window_rows if rows >= MIN_REFERENCE_CHUNKS * window_rows else rows // MIN_REFERENCE_CHUNKS
    return ReferenceSpec((WindowSpec(rows, (seed, _key("reference"), rows), phase="reference"),), chunk_rows=chunk)


def _entropy(seed: int, scenario: str, size: int, label: str, rep: int, phase: str, index: int) -> tuple[int, ...]:
    return (seed, _key(scenario), size, _key(label), rep, _key(phase), index)


def stationary(sizes: list[int], windows: dict[int, int], seed: int) -> list[Case]:
    """Scenario 1: windows from the reference's own distribution; every flag is a false alarm."""
    cases = []
    for size in sizes:
        specs = tuple(WindowSpec(size, _entropy(seed, "stationary", size, "", 0, "null", i), index=i) for i in range(windows[size]))
        cases.append(Case("stationary", size, "no change", stationary_reference(size, seed), specs))
    return cases


SEASONAL_AMPLITUDE = 0.3  # numeric means move by this many std over the day


def seasonal_change(hour: int) -> Change:
    return Change(mean_shift=SEASONAL_AMPLITUDE * math.sin(2 * math.pi * (hour % 24) / 24))


def seasonal(hour_rows: list[int], days: int, monitored_hours: int, seed: int) -> list[Case]:
    """Scenario 2: numeric means follow a daily sine of amplitude 0.3 std. The reference is
    ``days`` days of hourly windows (its own windows are those hours); the monitored windows are
    the following hours of the same cycle. A normal day: every flag is a false alarm."""
    cases = []
    for rows in hour_rows:
        parts = tuple(
            WindowSpec(rows, _entropy(seed, "seasonal", rows, "reference", 0, "reference", h), seasonal_change(h), phase="reference", index=h)
            for h in range(days * 24)
        )
        start = days * 24
        specs = tuple(
            WindowSpec(rows, _entropy(seed, "seasonal", rows, "", 0, "null", h), seasonal_change(h), index=h - start)
            for h in range(start, start + monitored_hours)
        )
        notes = {"reference_days": days, "hour_rows": rows, "amplitude_std": SEASONAL_AMPLITUDE}
        cases.append(Case("seasonal", rows, "daily cycle ±0.3 std", ReferenceSpec(parts), specs, notes))
    return cases


SUDDEN_CHANGES = {
    "mean +0.25 std": Change(mean_shift=0.25),
    "scale x1.5": Change(scale=1.5),
    "new category 5%": Change(new_category=0.05),
}
BIG_SHIFT = ("mean +1 std", Change(mean_shift=1.0))
BIG_SHIFT_MAX_ROWS = 1_000  # the 1-std shift is the small-window case


def sudden(sizes: list[int], reps: dict[int, int], pre: int, post: int, seed: int) -> list[Case]:
    """Scenario 3: ``pre`` unchanged windows, then ``post`` windows after a sudden change, repeated
    ``reps`` times (independent draws) per size and change."""
    cases = []
    for size in sizes:
        changes = dict(SUDDEN_CHANGES)
        if size <= BIG_SHIFT_MAX_ROWS:
            changes[BIG_SHIFT[0]] = BIG_SHIFT[1]
        for label, change in changes.items():
            drifted = changed_columns(change)
            specs: list[WindowSpec] = []
            for rep in range(reps[size]):
                specs += [WindowSpec(size, _entropy(seed, "sudden", size, label, rep, "pre", i), phase="pre", rep=rep, index=i) for i in range(pre)]
                specs += [
                    WindowSpec(size, _entropy(seed, "sudden", size, label, rep, "post", i), change, drifted, phase="post", rep=rep, index=i)
                    for i in range(post)
                ]
            cases.append(Case("sudden", size, label, stationary_reference(size, seed), tuple(specs), {"pre": pre, "post": post, "reps": reps[size]}))
    return cases


GRADUAL_TO = 0.5  # std
GRADUAL_OVER = 20  # windows


def gradual_shift(index: int) -> float:
    """The mean shift of the ``index``-th window after the drift started (capped at the end)."""
    return GRADUAL_TO * min(index + 1, GRADUAL_OVER) / GRADUAL_OVER


def gradual(sizes: list[int], reps: dict[int, int], plateau: int, seed: int) -> list[Case]:
    """Scenario 4: numeric means move linearly from 0 to 0.5 std over 20 windows (0.025 std in
    the first), then stay there for ``plateau`` windows."""
    cases = []
    drifted = frozenset(NUMERIC)
    for size in sizes:
        specs = tuple(
            WindowSpec(size, _entropy(seed, "gradual", size, "", rep, "post", i), Change(mean_shift=gradual_shift(i)), drifted, phase="post", rep=rep, index=i)
            for rep in range(reps[size])
            for i in range(GRADUAL_OVER + plateau)
        )
        notes = {"to_std": GRADUAL_TO, "over_windows": GRADUAL_OVER, "plateau": plateau, "reps": reps[size]}
        cases.append(Case("gradual", size, f"mean 0 → +{GRADUAL_TO:g} std over {GRADUAL_OVER} windows", stationary_reference(size, seed), specs, notes))
    return cases


NEGLIGIBLE = Change(mean_shift=0.03, share_move=0.01)


def negligible(sizes: list[int], windows: int, seed: int) -> list[Case]:
    """Scenario 5: a 0.03-std mean shift and 1 point of share moved between two categories on huge
    windows: real but irrelevant, so every flag counts as a false alarm."""
    return [
        Case(
            "negligible",
            size,
            "mean +0.03 std, 1% share moved",
            stationary_reference(size, seed),
            tuple(WindowSpec(size, _entropy(seed, "negligible", size, "", 0, "null", i), NEGLIGIBLE, index=i) for i in range(windows)),
        )
        for size in sizes
    ]
