"""The pandas engine: folds batches of log rows into profiles, one batch at a time.

Memory is bounded by the batch size and the profiles, never by the window: every batch becomes
a :class:`DatasetProfile` per segment, and profiles merge by adding. Coercion lives here (text in
a numeric column, booleans, mixed types), so the statistics in ``checks`` only ever see clean
numpy arrays plus counts of what was wrong.

Each column of a batch is converted once — numbers to a float array (a view, no copy, for float
columns), categories to integer codes — and every profile of the batch (the whole window, each
segment, each chunk of the reference) counts from those arrays through row indices: no pandas
copy per segment, no text comparisons per row.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar, Union

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
    DatasetProfile,
    NumericBinning,
    NumericProfile,
    Performance,
    RegressionPerformance,
    split_finite,
)
from checks.results import ALL
from checks.roles import Roles
from checks.sketch import MAX_WHOLE_SPAN, QuantileSketch

OTHER_SEGMENT = "__other__"
_T = TypeVar("_T")
_R = TypeVar("_R")


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

    @property
    def categories(self) -> tuple[str, ...]:
        """Columns whose values are only counted (categorical features, segments, class labels)."""
        names = [n for n, b in self.binnings.items() if isinstance(b, CategoricalBinning)]
        names += list(self.segment_values)
        if self.roles.prediction_kind == "class":
            names += [n for n in (self.roles.prediction, self.roles.target) if n]
        return tuple(dict.fromkeys(names))

    def columns_to_read(self, timestamp: str) -> list[str]:
        names = [timestamp, *self.binnings, *self.segment_values, *(k.column for k in self.kpis)]
        if self.id_column:
            names.append(self.id_column)
        return list(dict.fromkeys(n for n in names if n))


_POOL: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        _keep_freed_memory()
        _POOL = ThreadPoolExecutor(max_workers=max(1, min(8, os.cpu_count() or 1)), thread_name_prefix="driftline-profile")
    return _POOL


def _keep_freed_memory() -> None:
    """Let glibc reuse the memory of one batch for the next.

    By default glibc hands every freed block above 128 KiB (a column of a batch is ~1 MiB) and
    the free top of each heap straight back to the kernel, so each batch's arrays start as fresh
    pages: measured on a 1M-row window, 180,000 page faults, a third of the check's CPU time.
    Blocks up to 16 MiB then come from the heap, and up to 64 MiB may stay free at a heap's top;
    peak memory is still bounded by the batch. Linux (glibc) only; skipped when the process sets
    ``MALLOC_MMAP_THRESHOLD_`` or ``MALLOC_TRIM_THRESHOLD_`` itself, or with
    ``DRIFTLINE_MALLOC_TUNING=0``."""
    if not sys.platform.startswith("linux") or os.environ.get("DRIFTLINE_MALLOC_TUNING", "1") == "0":
        return
    if "MALLOC_MMAP_THRESHOLD_" in os.environ or "MALLOC_TRIM_THRESHOLD_" in os.environ:
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, 16 << 20)
        libc.mallopt(_M_TRIM_THRESHOLD, 64 << 20)
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to tune
        pass


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters


# ------------------------------------------------------------------------------ coercion


def numeric_values(series: pd.Series) -> tuple[np.ndarray, int]:
    """A float array (NaN for missing) and the number of present values that are not numbers.

    For a float64 column the array is the column's own (no copy): callers must not write to it."""
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        # Convert each category once, then look rows up by code (-1, missing, gives NaN).
        numbers, _ = numeric_values(pd.Series(dtype.categories))
        codes = series.cat.codes.to_numpy()
        values = np.append(numbers, np.nan)[codes]
        invalid = int(np.count_nonzero((codes >= 0) & np.isnan(values)))
        return values, invalid
    if pd.api.types.is_bool_dtype(dtype):
        return series.astype("float64").to_numpy(dtype=np.float64, na_value=np.nan), 0
    if isinstance(dtype, np.dtype) and dtype.kind in "fiu":
        # numpy dtypes hold no missing marker but NaN: no NA replacement pass (and no copy).
        values = series.to_numpy()
        return (values if dtype == np.float64 else values.astype(np.float64)), 0
    if pd.api.types.is_numeric_dtype(dtype):
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


def _category_codes(series: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Integer codes of a column's values (-1 where missing) and the text of each code, as
    :func:`category_strings` writes it (two codes may share a text, e.g. 1 and "1")."""
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        # Already codes (a dictionary-encoded column): the text of each category, and the codes.
        categories = dtype.categories
        if pd.api.types.is_string_dtype(categories.dtype):
            labels = [str(label) for label in categories]  # text already: as category_strings writes it
        else:
            labels = [str(label) for label in category_strings(pd.Series(categories.to_numpy(), dtype=categories.dtype))]
        return series.cat.codes.to_numpy().astype(np.intp), labels
    if _whole_number_dtype(dtype) and len(series):
        # Whole numbers (class labels, flags, small counts): the offset from the smallest value is
        # the code, with no hash table, when they span few values.
        by_offset = _offsets(series.to_numpy(), _SMALL_INTEGER_SPAN)
        if by_offset is not None:
            codes, low = by_offset
            return codes, [str(v) for v in range(low, low + int(codes.max()) + 1)]
    direct = (
        isinstance(dtype, pd.StringDtype)
        or pd.api.types.is_bool_dtype(dtype)
        or pd.api.types.is_integer_dtype(dtype)
        or pd.api.types.is_float_dtype(dtype)
    )
    if not direct:
        # Objects (mixed types) and the rest: hashing them as they are would fold 1, 1.0 and True
        # into one value, so code their text instead.
        series = category_strings(series)
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    # The same text as category_strings of the whole column: every rule (integral floats, lower-case
    # booleans) depends only on the set of distinct values.
    labels = category_strings(pd.Series(uniques, dtype=series.dtype)).tolist() if len(uniques) else []
    return np.asarray(codes, dtype=np.intp), [str(label) for label in labels]


def _whole_number_dtype(dtype: object) -> bool:
    """A numpy integer dtype whose values fit intp offsets (uint64 does not): counted by value."""
    return isinstance(dtype, np.dtype) and (dtype.kind == "i" or (dtype.kind == "u" and dtype.itemsize < 8))


_SMALL_INTEGER_SPAN = 256
"""Integer columns counted as categories with fewer distinct values than this are coded by offset."""


def category_counts(series: pd.Series) -> tuple[dict[str, int], int]:
    return label_counts(*_category_codes(series))


def label_counts(codes: np.ndarray, labels: list[str]) -> tuple[dict[str, int], int]:
    """How often each text occurs among ``codes`` (codes sharing a text are added), and how many
    codes are missing (-1)."""
    counts = np.bincount(codes + 1, minlength=len(labels) + 1)
    out: dict[str, int] = {}
    for i in np.flatnonzero(counts[1:]):
        out[labels[i]] = out.get(labels[i], 0) + int(counts[i + 1])
    return out, int(counts[0])


def add_counts(total: dict[str, int], part: Mapping[str, int]) -> None:
    """Add one part's value counts into ``total``."""
    for value, n in part.items():
        total[value] = total.get(value, 0) + int(n)


# ---------------------------------------------------------------------------- profiling
#
# A batch is converted once (:class:`_Batch`): each numeric column to a float array, each
# categorical one to integer codes and the text of each code. Every *subset* of the batch's rows
# that gets a profile — the whole batch, each segment, each chunk of the reference and each
# segment within it — is then an array of row indices into those, so no column is converted
# twice and no pandas frame is copied per segment. Work is split by column across the thread
# pool (numpy releases the GIL); each task profiles its column for every subset.

_BLAS_ROWS = 1 << 18
"""Without BLAS held at one thread, matrix products on row blocks are kept below about this many
multiply-adds (rows x columns x columns), at most 4,096 rows, so that OpenBLAS, which splits larger
products across threads that spin while the cores are busy profiling other columns, stays on one
thread even where ``threadpoolctl`` is not installed. Held at one thread, blocks are up to 16,384
rows (their (columns, rows) buffer under 16 MiB); no large array is allocated per batch either way
(fresh pages cost more than the arithmetic here)."""


def _block_rows(columns: int) -> int:
    if _ONE_BLAS_THREAD.active:
        return int(min(16384, max(1024, (1 << 21) // max(1, columns))))
    return int(min(4096, max(256, _BLAS_ROWS // max(1, columns * columns))))


class _OneBlasThread:
    """Holds BLAS at one thread while batches are profiled (re-entrant, shared across threads;
    the last to leave restores the previous setting). The engine's own pool already keeps every
    core busy: BLAS threads on top only spin. Needs ``threadpoolctl``; a no-op without it.

    The first user to enter and the last to leave may be different threads (``driftline serve``
    runs monitors on the scheduler's threads; a library caller may profile from several).
    threadpoolctl 3.8 lets only one controlling thread (the first to change OpenBLAS's
    process-wide setting) change it again while that thread lives, and ignores the others
    without a word; so whichever thread sets or restores the limit here takes that control
    first, and gives it up after restoring."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._limit: Any = None
        self._controller: Any = None

    def __enter__(self) -> None:
        with self._lock:
            self._users += 1
            if self._users == 1 and self._controller is not False:
                try:
                    if self._controller is None:
                        from threadpoolctl import ThreadpoolController

                        self._controller = ThreadpoolController()
                    _release_blas_control()
                    self._limit = self._controller.limit(limits=1, user_api="blas")
                except Exception:  # threadpoolctl missing or unable to see the library: no limit
                    self._controller, self._limit = False, None

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0 and self._limit is not None:
                _release_blas_control()
                self._limit.restore_original_limits()
                self._limit = None
                _release_blas_control()

    @property
    def active(self) -> bool:
        return self._limit is not None


def _release_blas_control() -> None:
    """Let any thread change OpenBLAS's thread count next (see :class:`_OneBlasThread`);
    nothing to do where threadpoolctl has no such control (before 3.8)."""
    try:
        from threadpoolctl import OpenBLASController
    except ImportError:
        return
    release = getattr(OpenBLASController, "clear_controlling_thread", None)
    if release is not None:
        release(force=True)


_ONE_BLAS_THREAD = _OneBlasThread()


def parallel_map(fn: Callable[[_T], _R], items: Iterable[_T]) -> Iterator[_R]:
    """``map`` on the profiling pool, in the items' order, BLAS held at one thread: for per-column
    numpy work such as calibrating drift thresholds (see :data:`checks.calibration.Mapper`).
    Work already on the pool must not call it (it would wait on its own pool)."""
    with _ONE_BLAS_THREAD:
        return iter(list(_pool().map(fn, items)))


@dataclass
class _Numeric:
    values: np.ndarray  # float64, NaN where missing or not a number; may be read-only
    invalid: np.ndarray | None  # rows that held something that is not a number (None: none did)
    bins: np.ndarray | None = None  # bin of each row, binning.bins where not finite (when shared)


@dataclass
class _Codes:
    codes: np.ndarray  # intp, -1 where missing
    labels: list[str]  # the text of each code (several codes may share one text)


class _Batch:
    """The columns of one batch, converted on first use and then shared."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.rows = len(frame)
        self._numeric: dict[str, _Numeric] = {}
        self._integers: dict[str, np.ndarray | None] = {}
        self._codes: dict[str, _Codes] = {}
        self._present: dict[str, np.ndarray | None] = {}
        self._kpi: dict[str, np.ndarray] = {}

    def numeric(self, name: str) -> _Numeric:
        column = self._numeric.get(name)
        if column is None:
            if name in self.frame:
                values, invalid = numeric_values(self.frame[name])
                mask = None
                if invalid:
                    mask = self.frame[name].notna().to_numpy(dtype=bool) & np.isnan(values)
            else:  # a file without the column: its rows are missing values of it
                values, mask = np.full(self.rows, np.nan), None
            column = self._numeric[name] = _Numeric(values, mask)
        return column

    def integers(self, name: str) -> np.ndarray | None:
        """The column's own whole numbers when it is a numpy integer column (nothing can be
        missing there; the array is the frame's, no copy, read only), else None."""
        if name in self._integers:
            return self._integers[name]
        whole = None
        if name in self.frame:
            series = self.frame[name]
            dtype = series.dtype
            if _whole_number_dtype(dtype):
                whole = series.to_numpy()
        self._integers[name] = whole
        return whole

    def numbers(self, name: str) -> np.ndarray:
        """The column as numbers for arithmetic that takes integers as they are (PCA moments and
        errors): an integer column's own array, else :meth:`numeric`'s floats."""
        whole = self.integers(name)
        return whole if whole is not None else self.numeric(name).values

    def codes(self, name: str) -> _Codes:
        column = self._codes.get(name)
        if column is None:
            if name in self.frame:
                codes, labels = _category_codes(self.frame[name])
            else:
                codes, labels = np.full(self.rows, -1, dtype=np.intp), []
            column = self._codes[name] = _Codes(codes, labels)
        return column

    def shed(self) -> None:
        """Drop the conversions that copied (integers as floats, category codes), keeping views
        of the frame's own memory: converting again later reuses freed memory, keeping them holds
        fresh pages."""
        self._numeric = {name: c for name, c in self._numeric.items() if c.values.base is not None and c.bins is None}
        self._codes = {}

    def nbytes(self) -> int:
        """Memory held by the frame and the columns converted so far."""
        frame = int(self.frame.memory_usage(index=False, deep=False).sum())
        converted = sum(c.values.nbytes for c in self._numeric.values() if c.values.base is None)
        return frame + converted + sum(c.codes.nbytes for c in self._codes.values())

    def present(self, name: str) -> np.ndarray | None:
        """Rows where the column is not null (the target's labelled rows); None: every row."""
        if name not in self._present:
            mask = self.frame[name].notna().to_numpy(dtype=bool)
            self._present[name] = None if mask.all() else mask
        return self._present[name]

    def kpi_values(self, name: str) -> np.ndarray:
        values = self._kpi.get(name)
        if values is None:
            series = self.frame[name]
            if pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype):
                values = self.numeric(name).values
            else:
                values = series.astype("string").to_numpy(dtype=object, na_value=None)
            self._kpi[name] = values
        return values


Rows = Union[np.ndarray, slice, None]
"""Some rows of a batch: increasing indices, a ``slice`` of consecutive rows (a view, no copy:
the chunks of a reference are runs of rows), or None for every row."""


def _take(values: np.ndarray, rows: Rows) -> np.ndarray:
    return values if rows is None else values[rows]


def _count(rows: Rows, batch: _Batch) -> int:
    if rows is None:
        return batch.rows
    if isinstance(rows, slice):
        return rows.stop - rows.start
    return int(rows.size)


def _indices(rows: Rows, batch: _Batch) -> np.ndarray:
    if rows is None:
        return np.arange(batch.rows)
    if isinstance(rows, slice):
        return np.arange(rows.start, rows.stop)
    return rows


def _restrict(rows: Rows, keep: np.ndarray | None) -> Rows:
    """``rows`` where ``keep`` (a row mask of the batch) holds."""
    if keep is None:
        return rows
    if rows is None:
        return np.flatnonzero(keep)
    if isinstance(rows, slice):
        return np.flatnonzero(keep[rows]) + rows.start
    return rows[keep[rows]]


def _offsets(whole: np.ndarray, span: int) -> tuple[np.ndarray, int] | None:
    """Each value of a non-empty integer array as its offset (intp) from the smallest, and that
    smallest value; None when the values span ``span`` or more. Whole-number columns are counted
    by offset: profiled by value (:func:`_numeric_profiles`, under MAX_WHOLE_SPAN) and coded as
    categories (:func:`_category_codes`, under _SMALL_INTEGER_SPAN, one label per value)."""
    low, high = int(whole.min()), int(whole.max())
    if high - low >= span:
        return None
    if low == 0 and whole.dtype == np.intp:
        return whole, 0  # already the offsets: no copy
    return np.subtract(whole, low, dtype=np.intp), low  # intp: int8 - (-100) must not wrap


def _whole_offsets(batch: _Batch, name: str) -> tuple[np.ndarray, int] | None:
    """:func:`_offsets` of a whole-number column spanning under MAX_WHOLE_SPAN values (profiled
    by value in both passes); None for any other column."""
    whole = batch.integers(name)
    return _offsets(whole, MAX_WHOLE_SPAN) if whole is not None and whole.size else None


def _counted(offsets: np.ndarray, low: int) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values among ``offsets`` (as floats, increasing) and their counts."""
    counts = np.bincount(offsets)
    present = np.flatnonzero(counts)
    return (present + low).astype(np.float64), counts[present]


def _numeric_profiles(batch: _Batch, name: str, binning: NumericBinning, sketch: bool, subsets: list, target: bool) -> list[NumericProfile]:
    by_value = _whole_offsets(batch, name)
    if by_value is not None:
        # A whole-number column (no missing value can be there): count each subset's values.
        offsets, low = by_value
        return [NumericProfile.of_value_counts(*_counted(_take(offsets, rows), low), binning, sketch=sketch) for rows in subsets]
    column = batch.numeric(name)
    values, invalid = column.values, column.invalid
    present = batch.present(name) if target and name in batch.frame else None
    k = binning.bins
    if len(subsets) > 1 and k > 1 and column.bins is None:
        # Several subsets: bin every row once, then count each subset's bins.
        finite = np.isfinite(values)
        if finite.all():
            bins = binning.index(values, finite=True)
        else:
            bins = np.full(values.size, k, dtype=np.intp)
            bins[finite] = binning.index(values[finite], finite=True)
        column.bins = bins
    out = []
    for rows in subsets:
        if target:
            # Labels arrive late: profile only labelled rows, so the target's distribution is
            # not diluted by rows whose label has not landed yet.
            rows = _restrict(rows, present)
        v = _take(values, rows)
        bad = 0 if invalid is None else int(np.count_nonzero(_take(invalid, rows)))
        bins = None if column.bins is None else _take(column.bins, rows)
        finite, nan, inf = split_finite(v)
        out.append(
            NumericProfile._of_finite(
                finite, binning, bins, missing=nan - bad, invalid=bad + inf,
                sketch=QuantileSketch.from_values(finite) if sketch else None,
            )  # fmt: skip
        )
    return out


def _categorical_profiles(batch: _Batch, name: str, binning: CategoricalBinning, subsets: list, target: bool) -> list[CategoricalProfile]:
    column = batch.codes(name)
    codes, labels = column.codes, column.labels
    out = []
    for rows in subsets:
        values, missing = label_counts(_take(codes, rows), labels)
        # The target: only labelled rows count, so none is missing.
        out.append(CategoricalProfile.from_counts(values, binning, missing=0 if target else missing))
    return out


def _reconstruction_errors(batch: _Batch, pca: PcaModel) -> np.ndarray:
    return pca.errors_of_columns([batch.numbers(name) for name in pca.columns])


def _moments(batch: _Batch, columns: list[str]) -> Moments:
    """Moments of the batch's complete rows (column-major blocks, :meth:`Moments.from_columns`)."""
    return Moments.from_columns([batch.numbers(name) for name in columns], _block_rows(len(columns)))


def _error_profiles(batch: _Batch, pca: PcaModel, subsets: list) -> list[ErrorProfile]:
    errors = _reconstruction_errors(batch, pca)
    return [ErrorProfile.from_errors(_take(errors, rows)) for rows in subsets]


def _performance_profiles(batch: _Batch, plan: ProfilePlan, subsets: list) -> list[Performance | None]:
    roles = plan.roles
    frame = batch.frame
    if not roles.prediction or not roles.target or roles.prediction not in frame or roles.target not in frame:
        return [None] * len(subsets)
    kind = roles.prediction_kind
    if kind == "class":
        predicted, truth = batch.codes(roles.prediction), batch.codes(roles.target)
        width = max(1, len(predicted.labels))
        pair = truth.codes * width + predicted.codes
        both = (truth.codes >= 0) & (predicted.codes >= 0)
        out: list[Performance | None] = []
        for rows in subsets:
            pairs = _take(pair, _restrict(rows, both))
            counts = np.bincount(pairs, minlength=1)
            confusion: dict[tuple[str, str], int] = {}
            for code in np.flatnonzero(counts):
                key = (truth.labels[code // width], predicted.labels[code % width])
                confusion[key] = confusion.get(key, 0) + int(counts[code])
            out.append(ClassPerformance.from_pairs(confusion))
        return out
    scores = batch.numeric(roles.prediction).values
    labels = batch.numeric(roles.target).values
    ok = np.isfinite(scores) & np.isfinite(labels)
    if kind == "probability":
        ok &= (labels == 0) | (labels == 1)
    every = bool(ok.all())
    out = []
    for rows in subsets:
        if rows is None:
            s, y = (scores, labels) if every else (scores[ok], labels[ok])
        else:
            keep = rows if every else _restrict(rows, ok)
            s, y = scores[keep], labels[keep]
        if kind == "probability":
            out.append(BinaryPerformance.from_arrays(s, y, plan.decision_threshold))
        else:
            out.append(RegressionPerformance.from_arrays(s, y))
    return out


def _kpi_profiles(batch: _Batch, plan: ProfilePlan, subsets: list) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{} for _ in subsets]
    for spec in plan.kpis:
        if spec.column not in batch.frame:
            continue
        values = batch.kpi_values(spec.column)
        for i, rows in enumerate(subsets):
            out[i][spec.name] = kpi_profile(_take(values, rows), spec)
    return out


def _profile_subsets(batch: _Batch, plan: ProfilePlan, subsets: list) -> list[DatasetProfile]:
    """A profile of each subset of the batch's rows (indices, increasing; None: every row)."""
    return _submit_subsets(batch, plan, subsets)()


def _submit_subsets(batch: _Batch, plan: ProfilePlan, subsets: list) -> Callable[[], list[DatasetProfile]]:
    """Queue the work of :func:`_profile_subsets` on the pool; the returned call waits for it and
    assembles the profiles. Callers queue the next batch before waiting on this one, so the pool
    never idles at a batch's end while one long task finishes."""
    pool = _pool()
    roles = plan.roles
    # Columns more than one task reads are converted here first, so no two tasks convert one.
    for name in plan.pca.columns if plan.pca is not None else ():
        batch.numbers(name)
    if roles.prediction and roles.target and roles.prediction in batch.frame and roles.target in batch.frame:
        for name in (roles.prediction, roles.target):
            batch.codes(name) if roles.prediction_kind == "class" else batch.numeric(name)
    jobs: dict[str, Any] = {}
    errors = pool.submit(_error_profiles, batch, plan.pca, subsets) if plan.pca is not None else None
    for name, binning in plan.binnings.items():
        if name not in batch.frame and name == roles.target:
            continue  # (a column absent from the whole window is reported once, as column_missing)
        is_target = name == roles.target
        if isinstance(binning, NumericBinning):
            jobs[name] = pool.submit(_numeric_profiles, batch, name, binning, name in plan.sketched, subsets, is_target)
        else:
            jobs[name] = pool.submit(_categorical_profiles, batch, name, binning, subsets, is_target)
    performance = pool.submit(_performance_profiles, batch, plan, subsets)
    kpis = _kpi_profiles(batch, plan, subsets)

    def assemble() -> list[DatasetProfile]:
        columns = {name: job.result() for name, job in jobs.items()}
        multivariate = errors.result() if errors is not None else [None] * len(subsets)
        performances = performance.result()
        return [
            DatasetProfile(
                rows=_count(rows, batch),
                columns={name: profiles[i] for name, profiles in columns.items()},
                performance=performances[i],
                kpis=kpis[i],
                multivariate=multivariate[i],
            )
            for i, rows in enumerate(subsets)
        ]

    return assemble


def profile_frame(frame: pd.DataFrame, plan: ProfilePlan) -> DatasetProfile:
    """One segment of one batch."""
    return _profile_subsets(_Batch(frame), plan, [None])[0]


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


def _segment_rows(batch: _Batch, plan: ProfilePlan, rows: Rows) -> list[tuple[str, np.ndarray]]:
    """``(segment, row indices)`` of the non-empty segments among ``rows`` (the same segments
    as :func:`segment_masks`, from the segment columns' codes)."""
    out: list[tuple[str, np.ndarray]] = []
    for column, kept in plan.segment_values.items():
        if column not in batch.frame:
            continue
        codes = batch.codes(column)
        position = {value: i for i, value in enumerate(kept)}
        other = len(kept)
        # A missing value is the text "__missing__" (as in segment_masks): other, unless kept.
        lookup = np.array(
            [position.get("__missing__", other)] + [position.get(label, other) for label in codes.labels], dtype=np.intp
        )
        ids = lookup[_take(codes.codes, rows) + 1]
        order = np.argsort(ids, kind="stable")
        sizes = np.bincount(ids, minlength=other + 1)
        ends = np.cumsum(sizes)
        names = [*(f"{column}={value}" for value in kept), f"{column}={OTHER_SEGMENT}"]
        for i, name in enumerate(names):
            if sizes[i]:
                chosen = order[ends[i] - sizes[i] : ends[i]]
                if rows is None:
                    out.append((name, chosen))
                elif isinstance(rows, slice):
                    out.append((name, chosen + rows.start))
                else:
                    out.append((name, rows[chosen]))
    return out


def _empty_totals(plan: ProfilePlan) -> dict[str, DatasetProfile]:
    empty = DatasetProfile(rows=0, columns={})
    totals: dict[str, DatasetProfile] = {ALL: empty}
    for column, kept in plan.segment_values.items():
        for value in (*kept, OTHER_SEGMENT):
            totals[f"{column}={value}"] = empty
    return totals


def _submit_with_segments(batch: _Batch, plan: ProfilePlan, groups: list[Rows]) -> Callable[[], list[dict[str, DatasetProfile]]]:
    """Queue, for each group of rows (None: the whole batch), its profile per segment; the
    returned call gives them, ``ALL`` first, every segment of the plan present (empty when the
    group has none of its rows). See :func:`_submit_subsets`."""
    subsets: list[Rows] = []
    keys: list[tuple[int, str]] = []
    for g, rows in enumerate(groups):
        subsets.append(rows)
        keys.append((g, ALL))
        for segment, chosen in _segment_rows(batch, plan, rows):
            subsets.append(chosen)
            keys.append((g, segment))
    pending = _submit_subsets(batch, plan, subsets)

    def assemble() -> list[dict[str, DatasetProfile]]:
        out = [_empty_totals(plan) for _ in groups]
        for (g, segment), profile in zip(keys, pending()):
            out[g][segment] = profile
        return out

    return assemble


def _pipelined(items: Iterable[_T], submit: Callable[[_T], Callable[[], Any]], fold: Callable[[_T, Any], None]) -> None:
    """``fold(item, submit(item)())`` for each item, in order, with the next item's work queued
    before this one's is waited for (one item in flight besides the one being folded)."""
    waiting: deque[tuple[_T, Callable[[], Any]]] = deque()
    for item in items:
        waiting.append((item, submit(item)))
        if len(waiting) > 1:
            done, result = waiting.popleft()
            fold(done, result())
    while waiting:
        done, result = waiting.popleft()
        fold(done, result())


def _duplicates(batch: _Batch, plan: ProfilePlan) -> np.ndarray | None:
    if plan.id_column and plan.id_column in batch.frame:
        ids = batch.frame[plan.id_column].dropna()
        return pd.util.hash_pandas_object(ids.astype("string"), index=False).to_numpy()
    return None


def profile_batches(batches: Iterable[pd.DataFrame], plan: ProfilePlan) -> dict[str, DatasetProfile]:
    """Fold batches into one profile per segment (``ALL`` is the whole window).

    Every segment of the plan is present in the result, with zero rows when the window had none,
    so a segment that disappears shows up as no-data instead of vanishing.
    """
    totals = _empty_totals(plan)
    id_hashes: list[np.ndarray] = []

    def fold(batch: _Batch, parts: list[dict[str, DatasetProfile]]) -> None:
        for segment, profile in parts[0].items():
            if profile.rows:
                totals[segment] = totals[segment].merge(profile)
        hashes = _duplicates(batch, plan)
        if hashes is not None:
            id_hashes.append(hashes)

    with _ONE_BLAS_THREAD:
        batches_ = (_Batch(frame) for frame in batches if not frame.empty)
        _pipelined(batches_, lambda batch: _submit_with_segments(batch, plan, [None]), fold)
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
    return _profile_chunks((_Batch(frame) for frame in batches), plan, chunk_key, max_chunks=max_chunks)


def _profile_chunks(
    batches: Iterable[_Batch], plan: ProfilePlan, chunk_key: ChunkKey, *, max_chunks: int = 400
) -> tuple[dict[str, DatasetProfile], list[dict[str, DatasetProfile]]]:
    chunks: dict[int, dict[str, DatasetProfile]] = {}

    def fold(grouped: tuple[_Batch, np.ndarray, list[Rows]], parts: list[dict[str, DatasetProfile]]) -> None:
        batch, values, groups = grouped
        hashes = _duplicates(batch, plan)
        for key, rows, part in zip(values, groups, parts):
            if hashes is not None:
                # As if each chunk's rows were a batch of their own.
                mine = hashes if rows is None else _chunk_hashes(batch, plan, rows)
                part[ALL] = part[ALL].with_counters(duplicate_ids=int(mine.size - np.unique(mine).size))
            known = chunks.get(int(key))
            chunks[int(key)] = part if known is None else {seg: known[seg].merge(p) for seg, p in part.items()}

    with _ONE_BLAS_THREAD:
        grouped = _chunk_groups(batches, chunk_key)
        _pipelined(grouped, lambda item: _submit_with_segments(item[0], plan, item[2]), fold)
    ordered = [chunks[k] for k in sorted(chunks)]
    if len(ordered) > max_chunks:
        run = -(-len(ordered) // max_chunks)
        ordered = [_merge_segments(ordered[i : i + run]) for i in range(0, len(ordered), run)]
    if not ordered:
        return profile_batches([], plan), []
    return _merge_segments(ordered), ordered


def _chunk_groups(batches: Iterable[_Batch], chunk_key: ChunkKey) -> Iterator[tuple[_Batch, np.ndarray, list[Rows]]]:
    """Each non-empty batch with its chunks' keys and rows (in key order)."""
    offset = 0
    for batch in batches:
        frame = batch.frame
        if frame.empty:
            continue
        keys = np.asarray(chunk_key(frame, offset))
        offset += len(frame)
        groups: list[Rows]
        if keys.size and keys[0] == keys[-1] and (keys == keys[0]).all():
            values, groups = keys[:1], [None]
        elif keys.size and bool((keys[1:] >= keys[:-1]).all()):
            # Keys in order (time-ordered logs, row-order chunks): each chunk is a run of rows.
            starts = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))
            stops = np.append(starts[1:], keys.size)
            values = keys[starts]
            groups = [slice(int(a), int(b)) for a, b in zip(starts, stops)]
        else:
            values, inverse = np.unique(keys, return_inverse=True)
            order = np.argsort(inverse, kind="stable")
            ends = np.cumsum(np.bincount(inverse, minlength=len(values)))
            groups = [order[end - size : end] for end, size in zip(ends, np.diff(ends, prepend=0))]
        yield batch, values, groups


def _chunk_hashes(batch: _Batch, plan: ProfilePlan, rows: Rows) -> np.ndarray:
    ids = batch.frame[plan.id_column].iloc[_indices(rows, batch)].dropna()
    return pd.util.hash_pandas_object(ids.astype("string"), index=False).to_numpy()


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

    def add_numeric(self, name: str, part: tuple[QuantileSketch, float, float]) -> None:
        """Merge one batch's :func:`_numeric_part` of the column."""
        sketch, low, high = part
        self.sketches[name] = self.sketches[name].merge(sketch) if name in self.sketches else sketch
        if sketch.count:
            self.low[name] = min(self.low.get(name, np.inf), low)
            self.high[name] = max(self.high.get(name, -np.inf), high)


def _numeric_part(batch: _Batch, name: str) -> tuple[QuantileSketch, float, float]:
    """Pass one's view of a numeric column in one batch: its sketch and range."""
    by_value = _whole_offsets(batch, name)
    if by_value is not None:
        values, counts = _counted(*by_value)
        return QuantileSketch.from_counts(values, counts), float(values[0]), float(values[-1])
    values = batch.numeric(name).values
    ok = np.isfinite(values)
    finite = values if ok.all() else values[ok]
    sketch = QuantileSketch.from_values(finite)
    if not finite.size:
        return sketch, float("nan"), float("nan")
    return sketch, float(finite.min()), float(finite.max())


def _value_counts(batch: _Batch, name: str) -> dict[str, int]:
    """The column's values and how often each occurs (its codes stay with the batch for pass two)."""
    column = batch.codes(name)
    return label_counts(column.codes, column.labels)[0]


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
    value_counts: dict[str, dict[str, int]] | None = None  # of the columns asked for (segments); None: not counted


def fit_pass(
    batches: Iterable[pd.DataFrame],
    numeric: list[str],
    categorical: list[str],
    *,
    bins: int,
    top_k: int,
    moments_of: list[str] | None = None,
    timestamp: str | None = None,
    count_values: Iterable[str] = (),
    keep: KeptBatches | None = None,
) -> FirstPass:
    """Pass one over the reference: the binnings, the row count, the mean and covariance of
    ``moments_of`` (rows with a missing value left out), the span of ``timestamp`` and the value
    counts of ``count_values`` (segment columns). With ``keep``, the converted batches are kept
    for pass two while they fit its budget."""
    state = _FitState()
    counted = [name for name in dict.fromkeys(count_values)]
    values: dict[str, dict[str, int]] = {name: {} for name in counted}

    def submit(batch: _Batch) -> Callable[[], tuple]:
        frame = batch.frame
        pool = _pool()
        moments = None
        if moments_of:
            for name in moments_of:
                batch.numbers(name)  # converted once, here, for both tasks that read it
            moments = pool.submit(_moments, batch, moments_of)
        parts = {name: pool.submit(_numeric_part, batch, name) for name in numeric if name in frame}
        counts = {name: pool.submit(_value_counts, batch, name) for name in categorical if name in frame}
        counted_ = {name: pool.submit(_value_counts, batch, name) for name in counted if name in frame}
        span = None
        if timestamp and timestamp in frame and len(frame):
            span = frame[timestamp].min(), frame[timestamp].max()
        return lambda: (
            moments.result() if moments is not None else None,
            {name: task.result() for name, task in parts.items()},
            {name: task.result() for name, task in counts.items()},
            {name: task.result() for name, task in counted_.items()},
            span,
        )

    def fold(batch: _Batch, result: tuple) -> None:
        # In batch order, on this thread: the state is merged exactly as a sequential pass would.
        moments, parts, counts, counted_, span = result
        state.rows += batch.rows
        for name, part in parts.items():
            state.add_numeric(name, part)
        for name, found in counts.items():
            add_counts(state.categories.setdefault(name, {}), found)
        for name, found in counted_.items():
            add_counts(values[name], found)
        if span is not None:
            low, high = span
            state.first = low if state.first is None or low < state.first else state.first
            state.last = high if state.last is None or high > state.last else state.last
        if moments is not None:
            state.moments = moments if state.moments is None else state.moments.merge(moments)
        if keep is not None:
            keep.add(batch)

    with _ONE_BLAS_THREAD:
        _pipelined((_Batch(frame) for frame in batches), submit, fold)
    first = finish_first_pass(state, numeric, categorical, bins=bins, top_k=top_k)
    return replace(first, value_counts=values) if counted else first


class KeptBatches:
    """Pass one's batches, kept for pass two while they fit ``budget`` bytes: pass two then
    neither reads nor decodes the reference again. A kept batch holds its frame and the views of
    it, not the copies conversion made (:meth:`_Batch.shed`): making those again in pass two
    reuses freed memory, while keeping them would hold fresh pages, which cost more than the
    conversion on the VMs measured. Past the budget nothing is kept (pass two reads the source
    again, and memory stays bounded by the batch)."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.used = 0
        self._batches: list[_Batch] | None = [] if budget > 0 else None

    @property
    def complete(self) -> bool:
        return self._batches is not None

    def add(self, batch: _Batch) -> None:
        if self._batches is None:
            return
        batch.shed()
        self.used += batch.nbytes()
        if self.used > self.budget:
            self._batches = None
        else:
            self._batches.append(batch)

    def drain(self) -> Iterator[_Batch]:
        """The batches in order, each let go once handed over (memory falls as pass two goes)."""
        batches, self._batches = self._batches or [], None
        batches.reverse()
        while batches:
            yield batches.pop()


def profile_kept_chunks(
    kept: KeptBatches, plan: ProfilePlan, chunk_key: ChunkKey, *, max_chunks: int = 400
) -> tuple[dict[str, DatasetProfile], list[dict[str, DatasetProfile]]]:
    """:func:`profile_chunks` over the batches pass one kept."""
    return _profile_chunks(kept.drain(), plan, chunk_key, max_chunks=max_chunks)


def finish_first_pass(state: _FitState, numeric: list[str], categorical: list[str], *, bins: int, top_k: int) -> FirstPass:
    """The binnings and the rest of a first pass from its (merged) state."""
    binnings: dict[str, Binning] = {}
    for name in numeric:
        binnings[name] = numeric_binning(state, name, bins)
    for name in categorical:
        binnings[name] = CategoricalBinning.fit(state.categories.get(name, {}), top_k)
    return FirstPass(binnings, state.rows, state.moments, state.first, state.last)


def most_frequent(counts: Mapping[str, Mapping[str, int]], columns: Iterable[str], k: int) -> dict[str, tuple[str, ...]]:
    """The ``k`` most frequent values of each column (ties by value), from merged counts."""
    return {
        column: tuple(v for v, _ in sorted(counts.get(column, {}).items(), key=lambda kv: (-kv[1], kv[0]))[:k])
        for column in columns
    }


def top_segment_values(batches: Iterable[pd.DataFrame], columns: list[str], k: int) -> dict[str, tuple[str, ...]]:
    counts: dict[str, dict[str, int]] = {c: {} for c in columns}
    for frame in batches:
        for column in columns:
            if column in frame:
                add_counts(counts[column], category_counts(frame[column])[0])
    return most_frequent(counts, columns, k)


def infer_features(kinds: Mapping[str, str], reserved: set[str]) -> tuple[list[str], list[str]]:
    """Feature roles from a source's column kinds: numbers are numeric, text and booleans categorical."""
    numeric = [n for n, k in kinds.items() if k == "numeric" and n not in reserved]
    categorical = [n for n, k in kinds.items() if k in ("string", "bool") and n not in reserved]
    return numeric, categorical
