"""The pandas engine: folds batches of log rows into profiles, one batch at a time.

Memory is bounded by the batch size and the profiles, never by the window: every batch becomes
a :class:`DatasetProfile` per segment, and profiles merge by adding. Coercion lives here (text in
a numeric column, booleans, mixed types), so the statistics in ``checks`` only ever see clean
numpy arrays plus counts of what was wrong.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from checks.kpis import KpiSpec, kpi_profile
from checks.multivariate import ErrorProfile, Moments, PcaModel
from checks.profiles import (
    BinaryPerformance,
    Binning,
    CategoricalBinning,
    CategoricalProfile,
    ClassPerformance,
    ColumnProfile,
    DatasetProfile,
    NumericBinning,
    NumericProfile,
    Performance,
    RegressionPerformance,
)
from checks.results import ALL
from checks.roles import Roles
from checks.sketch import QuantileSketch

OTHER_SEGMENT = "__other__"


@dataclass(frozen=True)
class ProfilePlan:
    """What to profile in a window: learned once from the reference, used for every window."""

    roles: Roles
    binnings: Mapping[str, Binning]
    id_column: str | None = None
    segment_values: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # column -> values kept by name
    kpis: tuple[KpiSpec, ...] = ()
    decision_threshold: float = 0.5
    pca: PcaModel | None = None  # multivariate drift: reconstruction errors of these columns

    @property
    def sketched(self) -> frozenset[str]:
        """Columns whose quantiles are reported, so their profiles keep a sketch."""
        names = {self.roles.latency}
        if self.roles.prediction_kind in ("probability", "regression"):
            names.add(self.roles.prediction)
        return frozenset(n for n in names if n)

    def columns_to_read(self, timestamp: str) -> list[str]:
        names = [timestamp, *self.binnings, *self.segment_values, *(k.column for k in self.kpis)]
        if self.id_column:
            names.append(self.id_column)
        return list(dict.fromkeys(n for n in names if n))


_POOL: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=max(1, min(8, os.cpu_count() or 1)), thread_name_prefix="driftline-profile")
    return _POOL


# ------------------------------------------------------------------------------ coercion


def numeric_values(series: pd.Series) -> tuple[np.ndarray, int]:
    """A float array (NaN for missing) and the number of present values that are not numbers."""
    if pd.api.types.is_bool_dtype(series.dtype):
        return series.astype("float64").to_numpy(dtype=np.float64, na_value=np.nan), 0
    if pd.api.types.is_numeric_dtype(series.dtype):
        return series.to_numpy(dtype=np.float64, na_value=np.nan), 0
    coerced = pd.to_numeric(series, errors="coerce")
    values = coerced.to_numpy(dtype=np.float64, na_value=np.nan)
    invalid = int((series.notna().to_numpy() & np.isnan(values)).sum())
    return values, invalid


def category_strings(series: pd.Series) -> pd.Series:
    """Values as text, with integral floats written as integers (1.0 and 1 are one category)."""
    if pd.api.types.is_bool_dtype(series.dtype):
        return series.astype("string").str.lower()
    if pd.api.types.is_float_dtype(series.dtype):
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        finite = values[np.isfinite(values)]
        if finite.size and np.all(finite == np.round(finite)):
            return series.astype("Int64").astype("string")
    if pd.api.types.is_integer_dtype(series.dtype):
        return series.astype("string")
    return series.astype("string")


def category_counts(series: pd.Series) -> tuple[dict[str, int], int]:
    text = category_strings(series)
    counts = text.value_counts(dropna=True)
    return {str(k): int(v) for k, v in counts.items()}, int(text.isna().sum())


# ---------------------------------------------------------------------------- profiling


def _column_profile(series: pd.Series, name: str, binning: Binning, plan: ProfilePlan) -> ColumnProfile:
    if isinstance(binning, NumericBinning):
        values, invalid = numeric_values(series)
        return NumericProfile.from_values(values, binning, invalid=invalid, sketch=name in plan.sketched)
    counts, missing = category_counts(series)
    return CategoricalProfile.from_counts(counts, binning, missing=missing)


def _performance(frame: pd.DataFrame, plan: ProfilePlan) -> Performance | None:
    roles = plan.roles
    if not roles.prediction or not roles.target or roles.prediction not in frame or roles.target not in frame:
        return None
    kind = roles.prediction_kind
    if kind == "class":
        predicted = category_strings(frame[roles.prediction])
        truth = category_strings(frame[roles.target])
        both = predicted.notna() & truth.notna()
        pairs = pd.DataFrame({"t": truth[both], "p": predicted[both]}).value_counts()
        return ClassPerformance.from_pairs({(t, p): int(n) for (t, p), n in pairs.items()})
    scores, _ = numeric_values(frame[roles.prediction])
    labels, _ = numeric_values(frame[roles.target])
    ok = np.isfinite(scores) & np.isfinite(labels)
    if kind == "probability":
        ok &= (labels == 0) | (labels == 1)
        return BinaryPerformance.from_arrays(scores[ok], labels[ok], plan.decision_threshold)
    return RegressionPerformance.from_arrays(scores[ok], labels[ok])


def _kpi_values(series: pd.Series) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype):
        return numeric_values(series)[0]
    return series.astype("string").to_numpy(dtype=object, na_value=None)


def profile_frame(frame: pd.DataFrame, plan: ProfilePlan) -> DatasetProfile:
    """One segment of one batch."""
    pending = {}
    for name, binning in plan.binnings.items():
        if name not in frame:
            # A file without the column: its rows are missing values of it. (A column absent
            # from the whole window is reported once, as column_missing, by the runner.)
            if name != plan.roles.target:
                series = pd.Series([None] * len(frame), dtype=object)
                pending[name] = _pool().submit(_column_profile, series, name, binning, plan)
            continue
        series = frame[name]
        if name == plan.roles.target:
            # Labels arrive late: profile only labelled rows, so the target's distribution is not
            # diluted by rows whose label has not landed yet.
            series = series[series.notna()]
        # Columns are independent and numpy's binning releases the GIL: profile them in parallel.
        pending[name] = _pool().submit(_column_profile, series, name, binning, plan)
    columns: dict[str, ColumnProfile] = {name: future.result() for name, future in pending.items()}
    kpis = {k.name: kpi_profile(_kpi_values(frame[k.column]), k) for k in plan.kpis if k.column in frame}
    errors = None if plan.pca is None else ErrorProfile.from_errors(plan.pca.errors(numeric_matrix(frame, plan.pca.columns)))
    return DatasetProfile(rows=len(frame), columns=columns, performance=_performance(frame, plan), kpis=kpis, multivariate=errors)


def numeric_matrix(frame: pd.DataFrame, columns: Iterable[str]) -> np.ndarray:
    """An (n, d) float array of ``columns``, NaN where a value is missing, not a number, or the
    batch lacks the column."""
    names = list(columns)
    out = np.full((len(frame), len(names)), np.nan)
    for j, name in enumerate(names):
        if name in frame:
            out[:, j] = numeric_values(frame[name])[0]
    return out


def segment_masks(frame: pd.DataFrame, plan: ProfilePlan) -> Iterator[tuple[str, np.ndarray]]:
    """``(segment name, row mask)`` for every kept value of every segment column, plus its other."""
    for column, kept in plan.segment_values.items():
        if column not in frame:
            continue
        text = category_strings(frame[column]).fillna("__missing__").to_numpy(dtype=object)
        known = np.zeros(len(frame), dtype=bool)
        for value in kept:
            mask = text == value
            known |= mask
            yield f"{column}={value}", mask
        yield f"{column}={OTHER_SEGMENT}", ~known


def profile_batches(batches: Iterable[pd.DataFrame], plan: ProfilePlan) -> dict[str, DatasetProfile]:
    """Fold batches into one profile per segment (``ALL`` is the whole window).

    Every segment of the plan is present in the result, with zero rows when the window had none,
    so a segment that disappears shows up as no-data instead of vanishing.
    """
    empty = DatasetProfile(rows=0, columns={})
    totals: dict[str, DatasetProfile] = {ALL: empty}
    for column, kept in plan.segment_values.items():
        for value in (*kept, OTHER_SEGMENT):
            totals[f"{column}={value}"] = empty
    id_hashes: list[np.ndarray] = []
    for frame in batches:
        if frame.empty:
            continue
        totals[ALL] = totals[ALL].merge(profile_frame(frame, plan))
        for segment, mask in segment_masks(frame, plan):
            if mask.any():
                totals[segment] = totals[segment].merge(profile_frame(frame[mask], plan))
        if plan.id_column and plan.id_column in frame:
            ids = frame[plan.id_column].dropna()
            id_hashes.append(pd.util.hash_pandas_object(ids.astype("string"), index=False).to_numpy())
    if id_hashes:
        hashes = np.concatenate(id_hashes)
        totals[ALL] = totals[ALL].with_counters(duplicate_ids=int(hashes.size - np.unique(hashes).size))
    return totals


ChunkKey = Callable[[pd.DataFrame, int], np.ndarray]
"""The chunk (the reference's own window) of each row of a batch, given the batch and how many
rows came before it: integer keys, increasing with time."""


def profile_chunks(
    batches: Iterable[pd.DataFrame], plan: ProfilePlan, chunk_key: ChunkKey, *, max_chunks: int = 400
) -> tuple[dict[str, DatasetProfile], list[dict[str, DatasetProfile]]]:
    """One pass over the reference: its profile per segment, and the same per chunk, in chunk
    order. The totals are the merge of the chunks, so the chunks cost no second read. More than
    ``max_chunks`` chunks are merged in runs of consecutive ones to keep memory bounded."""
    chunks: dict[int, dict[str, DatasetProfile]] = {}
    offset = 0
    for frame in batches:
        if frame.empty:
            continue
        keys = np.asarray(chunk_key(frame, offset))
        offset += len(frame)
        for key in np.unique(keys):
            piece = frame if keys.size and keys[0] == keys[-1] == key else frame[keys == key]
            part = profile_batches([piece], plan)
            known = chunks.get(int(key))
            chunks[int(key)] = part if known is None else {seg: known[seg].merge(p) for seg, p in part.items()}
    ordered = [chunks[k] for k in sorted(chunks)]
    if len(ordered) > max_chunks:
        run = -(-len(ordered) // max_chunks)
        ordered = [_merge_segments(ordered[i : i + run]) for i in range(0, len(ordered), run)]
    if not ordered:
        return profile_batches([], plan), []
    return _merge_segments(ordered), ordered


def _merge_segments(parts: list[dict[str, DatasetProfile]]) -> dict[str, DatasetProfile]:
    merged = dict(parts[0])
    for part in parts[1:]:
        merged = {seg: merged[seg].merge(p) for seg, p in part.items()}
    return merged


# ------------------------------------------------------------------------ the reference


@dataclass
class _FitState:
    """Pass one over the reference: what the binnings are learned from."""

    sketches: dict[str, QuantileSketch] = field(default_factory=dict)
    low: dict[str, float] = field(default_factory=dict)
    high: dict[str, float] = field(default_factory=dict)
    categories: dict[str, dict[str, int]] = field(default_factory=dict)
    rows: int = 0
    moments: Moments | None = None
    first: Any = None  # earliest and latest timestamp, when the pass was given the column
    last: Any = None

    def add_numeric(self, name: str, series: pd.Series) -> None:
        values, _ = numeric_values(series)
        finite = values[np.isfinite(values)]
        sketch = QuantileSketch.from_values(finite)
        self.sketches[name] = self.sketches[name].merge(sketch) if name in self.sketches else sketch
        if finite.size:
            self.low[name] = min(self.low.get(name, np.inf), float(finite.min()))
            self.high[name] = max(self.high.get(name, -np.inf), float(finite.max()))

    def add_categorical(self, name: str, series: pd.Series) -> None:
        counts, _ = category_counts(series)
        total = self.categories.setdefault(name, {})
        for value, n in counts.items():
            total[value] = total.get(value, 0) + n


def numeric_binning(state: _FitState, name: str, bins: int) -> NumericBinning:
    sketch = state.sketches.get(name)
    if sketch is None or sketch.count == 0:
        return NumericBinning(np.empty(0), float("nan"), float("nan"))
    return NumericBinning.fit(sketch, state.low[name], state.high[name], bins)


def fit_binnings(
    batches: Iterable[pd.DataFrame],
    numeric: list[str],
    categorical: list[str],
    *,
    bins: int,
    top_k: int,
) -> tuple[dict[str, Binning], int]:
    """Pass one: quantile cuts for numeric columns, category lists for categorical ones."""
    fitted = fit_pass(batches, numeric, categorical, bins=bins, top_k=top_k)
    return fitted.binnings, fitted.rows


@dataclass(frozen=True)
class FirstPass:
    """What pass one over the reference learns."""

    binnings: dict[str, Binning]
    rows: int
    moments: Moments | None = None  # of the columns a PCA model is fitted from
    first: pd.Timestamp | None = None  # the reference's time span, when it has timestamps
    last: pd.Timestamp | None = None


def fit_pass(
    batches: Iterable[pd.DataFrame],
    numeric: list[str],
    categorical: list[str],
    *,
    bins: int,
    top_k: int,
    moments_of: list[str] | None = None,
    timestamp: str | None = None,
) -> FirstPass:
    """Pass one over the reference: the binnings, the row count, the mean and covariance of
    ``moments_of`` (rows with a missing value left out) and the span of ``timestamp``."""
    state = _FitState()
    for frame in batches:
        state.rows += len(frame)
        # Each task touches its own column's entries of the state only.
        tasks = [_pool().submit(state.add_numeric, name, frame[name]) for name in numeric if name in frame]
        tasks += [_pool().submit(state.add_categorical, name, frame[name]) for name in categorical if name in frame]
        if moments_of:
            part = Moments.from_array(numeric_matrix(frame, moments_of))
            state.moments = part if state.moments is None else state.moments.merge(part)
        if timestamp and timestamp in frame and len(frame):
            low, high = frame[timestamp].min(), frame[timestamp].max()
            state.first = low if state.first is None or low < state.first else state.first
            state.last = high if state.last is None or high > state.last else state.last
        for task in tasks:
            task.result()
    binnings: dict[str, Binning] = {}
    for name in numeric:
        binnings[name] = numeric_binning(state, name, bins)
    for name in categorical:
        binnings[name] = CategoricalBinning.fit(state.categories.get(name, {}), top_k)
    return FirstPass(binnings, state.rows, state.moments, state.first, state.last)


def top_segment_values(batches: Iterable[pd.DataFrame], columns: list[str], k: int) -> dict[str, tuple[str, ...]]:
    counts: dict[str, dict[str, int]] = {c: {} for c in columns}
    for frame in batches:
        for column in columns:
            if column in frame:
                for value, n in category_counts(frame[column])[0].items():
                    counts[column][value] = counts[column].get(value, 0) + n
    return {
        column: tuple(v for v, _ in sorted(values.items(), key=lambda kv: (-kv[1], kv[0]))[:k])
        for column, values in counts.items()
    }


def infer_features(kinds: Mapping[str, str], reserved: set[str]) -> tuple[list[str], list[str]]:
    """Feature roles from a source's column kinds: numbers are numeric, text and booleans categorical."""
    numeric = [n for n, k in kinds.items() if k == "numeric" and n not in reserved]
    categorical = [n for n, k in kinds.items() if k in ("string", "bool") and n not in reserved]
    return numeric, categorical
