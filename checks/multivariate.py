"""Multivariate drift: PCA reconstruction error, streamed and with a calibrated threshold.

Univariate checks compare one column at a time, so they cannot see a change in how columns move
*together*: if two features were strongly positively correlated in the reference and become
negatively correlated, while each keeps its distribution, every per-column test passes. This
module catches that kind of drift the way NannyML does, by *data reconstruction with PCA*:

1. **Fit** (once, on the reference). :class:`Moments` folds the reference, batch by batch, into
   a count, a mean vector and a co-moment matrix (Chan et al.'s parallel update, so batches and
   windows merge exactly). :meth:`PcaModel.fit` standardises the columns with the reference's
   mean and (population) standard deviation, takes the eigenvectors of the correlation matrix and
   keeps the fewest principal axes explaining at least ``variance`` (default 0.65, NannyML's
   default) of the standardised variance.
2. **Score** (every batch). :meth:`PcaModel.errors` gives each row's reconstruction error: the
   Euclidean norm of the part of its standardised vector ``z`` the kept axes cannot explain,
   ``|| z - z W W^T ||``. Non-finite cells (NaN, +-inf, a column the batch lacks passed as NaN)
   are imputed with the reference mean, i.e. ``z = 0`` there. :class:`ErrorProfile` folds the
   errors of a window into count, mean and sum of squared deviations; it merges like any profile.
3. **Compare** (every window). :func:`multivariate_drift` compares the window's mean error with
   the reference's, against a threshold derived from the reference's own noise and
   window-to-window variation (see its docstring).

When the correlation structure of the reference holds, the kept axes explain the data as well as
they did on the reference and the mean error stays put; when it breaks (a correlation weakens,
flips, or a new linear dependence appears between columns that were independent), rows leave the
reference's principal subspace and the mean error rises.

>>> rng = np.random.default_rng(0)
>>> a = rng.normal(size=20_000)
>>> b = rng.normal(size=20_000)
>>> reference = np.column_stack([a, 0.8 * a + 0.6 * b])  # correlation 0.8
>>> flipped = np.column_stack([a, -0.8 * a + 0.6 * b])  # correlation -0.8, same marginals
>>> model = PcaModel.fit(Moments.from_array(reference), ["x", "y"])
>>> ref_errors = ErrorProfile.from_errors(model.errors(reference))
>>> verdict = multivariate_drift(ref_errors, [], ErrorProfile.from_errors(model.errors(flipped[:5000])), model=model)
>>> verdict.breach, round(verdict.value / ref_errors.mean, 1)
(True, 3.0)

Limits:

* **Numeric columns only.** Categorical columns would need an encoding whose geometry means
  something; they are left to the univariate checks.
* **At least two columns that vary in the reference.** With one column (or one non-constant
  column) the principal axes reconstruct every row exactly and the error is identically zero, so
  :meth:`PcaModel.fit` refuses. Likewise at most ``d - 1`` axes are kept, even when the
  ``variance`` rule asks for all ``d`` (two weakly correlated columns at 0.65): keeping them all
  would make the error zero for every row of every window, a check that can never fire.
* **Linear structure only.** PCA sees covariances; a non-linear dependence that changes while
  correlations stay the same (a ring becoming a disc) is invisible to it.
* **Imputation hides missingness.** A missing cell becomes the reference mean, which sits in the
  principal subspace, so a window full of missing values tends to have *lower* errors. The quality
  checks (missing shares) report missingness; this check does not try to.
* **Marginal shifts also move the error**, since the standardisation is the reference's: a
  column whose mean moves by several standard deviations raises the error too. That is drift,
  but a univariate check will usually have flagged it already and says more precisely where.
* The mean error summarises all rows: structure that breaks in a small share of rows only moves
  it a little (the ``min_effect`` floor then decides whether that counts).

Everything here is pure numpy/scipy over arrays the engine hands in; nothing reads data.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from scipy import special

from checks.results import ALL, Direction, MetricResult, Status

DEFAULT_VARIANCE = 0.65
"""Share of the standardised variance the kept principal axes must explain (NannyML's default)."""

DEFAULT_FALSE_ALARM_RATE = 0.01
DEFAULT_MIN_EFFECT = 0.1

CONSTANT_RTOL = 1e-10
"""A column is constant when its standard deviation is 0 or at most this times its |mean| (the
rounding a float mean leaves behind)."""

_VARIANCE_TOL = 1e-12  # cumulative explained variance within this of ``variance`` counts as reaching it


class EmptyWindowError(ValueError):
    """The current window has no reconstruction errors to compare (no rows)."""


def _matrix(x: Any, d: int | None = None) -> np.ndarray:
    """``x`` as a float (n, d) array; raises ValueError for any other shape."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"expected a 2-D array of rows by columns, got shape {x.shape}")
    if d is not None and x.shape[1] != d:
        raise ValueError(f"expected {d} columns, got {x.shape[1]}")
    return x


# ------------------------------------------------------------------------------ moments


@dataclass(frozen=True, eq=False)
class Moments:
    """Count, mean vector and co-moment matrix of ``d`` numeric columns, mergeable.

    ``comoment`` is ``sum((x - mean)(x - mean)^T)`` over the counted rows, so the population
    covariance is ``comoment / count``. Only rows whose cells are all finite are counted (after
    ``fill``, when given); the others are counted in ``skipped``. Two accumulators merge with
    Chan et al.'s pairwise update, which equals accumulating the concatenated rows.

    >>> x = np.array([[1.0, 2.0], [3.0, 6.0], [5.0, np.nan]])
    >>> m = Moments.from_array(x[:1]).merge(Moments.from_array(x[1:]))
    >>> m.count, m.skipped, m.mean.tolist(), m.covariance.tolist()
    (2, 1, [2.0, 4.0], [[1.0, 2.0], [2.0, 4.0]])
    """

    count: int
    mean: np.ndarray  # (d,)
    comoment: np.ndarray  # (d, d)
    skipped: int = 0  # rows left out for a non-finite cell

    @classmethod
    def empty(cls, d: int) -> Moments:
        return cls(0, np.zeros(d), np.zeros((d, d)))

    @classmethod
    def from_array(cls, x: np.ndarray, fill: np.ndarray | None = None) -> Moments:
        """Accumulate the rows of an (n, d) array. With ``fill`` (length d), non-finite cells are
        replaced by it first; without, rows holding a non-finite cell are skipped."""
        x = _matrix(x)
        if fill is not None:
            fill = np.asarray(fill, dtype=np.float64)
            if fill.shape != (x.shape[1],):
                raise ValueError(f"fill must have one value per column ({x.shape[1]}), got shape {fill.shape}")
            x = np.where(np.isfinite(x), x, fill)
        complete = np.isfinite(x).all(axis=1)
        rows = x[complete]
        n = int(rows.shape[0])
        d = x.shape[1]
        if n == 0:
            return cls(0, np.zeros(d), np.zeros((d, d)), int(x.shape[0]))
        mean = rows.mean(axis=0)
        centred = rows - mean
        comoment = centred.T @ centred
        return cls(n, mean, (comoment + comoment.T) / 2, int(x.shape[0]) - n)

    @classmethod
    def from_columns(cls, columns: Sequence[np.ndarray], block: int = 16384) -> Moments:
        """The moments of the rows the ``columns`` form (``d`` numeric arrays of one length, one
        per column; integers are cast as they are copied into the block): :meth:`from_array` of
        ``np.column_stack(columns)`` (no ``fill``), to rounding,
        without building that (n, d) copy. Each block of rows is copied column by column into one
        reused (d, block) buffer, centred in place and multiplied by its own transpose (the rows
        of a column are contiguous there, so means and the product stream through memory); the
        blocks merge as :meth:`merge` does."""
        d = len(columns)
        n = int(len(columns[0])) if d else 0
        total = cls.empty(d)
        if n == 0:
            return total
        buffer = np.empty((d, min(block, n)))
        for start in range(0, n, block):
            stop = min(start + block, n)
            x = buffer[:, : stop - start]
            for j, values in enumerate(columns):
                x[j] = values[start:stop]
            complete = np.isfinite(x).all(axis=0)
            if not complete.all():
                x = x[:, complete]
            k = int(x.shape[1])
            if k == 0:
                total = total.merge(cls(0, np.zeros(d), np.zeros((d, d)), stop - start))
                continue
            mean = x.mean(axis=1)
            x -= mean[:, None]
            comoment = x @ x.T
            total = total.merge(cls(k, mean, (comoment + comoment.T) / 2, stop - start - k))
        return total

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])

    @property
    def covariance(self) -> np.ndarray:
        """Population covariance (divides by ``count``); NaN when empty."""
        if self.count == 0:
            return np.full_like(self.comoment, np.nan)
        return self.comoment / self.count

    def merge(self, other: Moments) -> Moments:
        if other.dim != self.dim:
            raise ValueError(f"cannot merge moments of {self.dim} and {other.dim} columns")
        n = self.count + other.count
        skipped = self.skipped + other.skipped
        if other.count == 0:
            return Moments(self.count, self.mean, self.comoment, skipped)
        if self.count == 0:
            return Moments(other.count, other.mean, other.comoment, skipped)
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.count / n)
        comoment = self.comoment + other.comoment + np.outer(delta, delta) * (self.count * other.count / n)
        return Moments(n, mean, comoment, skipped)

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "skipped": self.skipped,
            "mean": self.mean.tolist(),
            "comoment": self.comoment.tolist(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Moments:
        mean = np.asarray(data["mean"], dtype=np.float64).reshape(-1)
        d = mean.shape[0]
        comoment = np.asarray(data["comoment"], dtype=np.float64).reshape(d, d)
        return cls(int(data["count"]), mean, comoment, int(data.get("skipped", 0)))


# ------------------------------------------------------------------------------ the model


@dataclass(frozen=True, eq=False)
class PcaModel:
    """Standardisation and principal axes fitted on the reference.

    ``mean`` doubles as the imputation value of each column; ``std`` is the population standard
    deviation, 1 for a ``constant`` column, whose standardised value is forced to 0 so it
    contributes nothing (to the fit or to any error: a constant column that moves is a univariate
    matter). ``components`` is (k, d), rows are unit principal axes sorted by decreasing
    eigenvalue, each signed so its largest-magnitude loading is positive (the fit is then
    deterministic). ``eigenvalues`` holds all d eigenvalues of the correlation matrix, sorted
    decreasing; ``explained`` is the share of the standardised variance the k kept axes explain.

    >>> rng = np.random.default_rng(1)
    >>> a, b = rng.normal(size=(2, 1000))
    >>> x = np.column_stack([a, a + 0.1 * b, b])
    >>> model = PcaModel.fit(Moments.from_array(x), ["a", "a2", "b"])
    >>> model.k, round(model.explained, 2)
    (1, 0.67)
    >>> PcaModel.from_dict(model.to_dict()).fingerprint() == model.fingerprint()
    True
    """

    columns: tuple[str, ...]
    mean: np.ndarray  # (d,) reference means: the standardisation centre and the imputation values
    std: np.ndarray  # (d,) population standard deviations, 1 for constant columns
    constant: np.ndarray  # (d,) bool
    components: np.ndarray  # (k, d)
    eigenvalues: np.ndarray  # (d,) of the correlation matrix, decreasing
    variance: float = DEFAULT_VARIANCE  # the target share the fit was asked for

    @classmethod
    def fit(cls, moments: Moments, columns: Sequence[str], variance: float = DEFAULT_VARIANCE) -> PcaModel:
        """Fit on the reference's moments.

        Keeps the fewest axes whose eigenvalues sum to at least ``variance`` of the total
        (sklearn's ``PCA(n_components=variance)`` rule), capped at one fewer than the number of
        non-constant columns. Raises ValueError for fewer than 2 columns, fewer than 2
        non-constant columns, fewer than 2 reference rows, or ``variance`` outside (0, 1].
        """
        columns = tuple(str(c) for c in columns)
        d = len(columns)
        if d < 2:
            raise ValueError(
                f"multivariate drift needs at least 2 numeric columns, got {d}: with one column the "
                "principal axes reconstruct every row exactly and the error is always 0"
            )
        if len(set(columns)) != d:
            raise ValueError(f"duplicate column names: {list(columns)}")
        if moments.dim != d:
            raise ValueError(f"moments hold {moments.dim} columns but {d} column names were given")
        if not 0.0 < variance <= 1.0:
            raise ValueError(f"variance must be in (0, 1], got {variance}")
        if moments.count < 2:
            raise ValueError(f"cannot fit PCA on {moments.count} complete reference row(s); need at least 2")
        mean = np.asarray(moments.mean, dtype=np.float64)
        raw_std = np.sqrt(np.clip(np.diag(moments.comoment) / moments.count, 0.0, None))
        constant = (raw_std == 0) | (raw_std <= CONSTANT_RTOL * np.abs(mean))
        varying = int((~constant).sum())
        if varying < 2:
            names = [c for c, k in zip(columns, constant) if not k]
            raise ValueError(
                f"multivariate drift needs at least 2 columns that vary in the reference; "
                f"only {varying} does ({names}), the others are constant"
            )
        std = np.where(constant, 1.0, raw_std)
        # Correlation matrix of the varying columns; constant rows/columns are exactly 0.
        correlation = moments.comoment / moments.count / np.outer(std, std)
        correlation[constant, :] = 0.0
        correlation[:, constant] = 0.0
        correlation = (correlation + correlation.T) / 2
        values, vectors = np.linalg.eigh(correlation)
        order = np.argsort(values, kind="stable")[::-1]
        values = np.clip(values[order], 0.0, None)
        vectors = vectors[:, order].T  # rows are axes
        vectors[:, constant] = 0.0  # eigh may mix null directions; constant columns get no loading
        pivot = np.argmax(np.abs(vectors), axis=1)
        signs = np.sign(vectors[np.arange(d), pivot])
        vectors = vectors * np.where(signs == 0, 1.0, signs)[:, None]
        ratio = np.cumsum(values) / values.sum()
        k = int(np.searchsorted(ratio, variance - _VARIANCE_TOL, side="left")) + 1
        k = max(1, min(k, varying - 1))
        return cls(columns, mean, std, constant, vectors[:k].copy(), values, float(variance))

    @property
    def d(self) -> int:
        return len(self.columns)

    @property
    def k(self) -> int:
        """Number of kept principal axes."""
        return int(self.components.shape[0])

    @property
    def explained(self) -> float:
        """Share of the standardised variance the kept axes explain."""
        return float(self.eigenvalues[: self.k].sum() / self.eigenvalues.sum())

    @cached_property
    def residual_axes(self) -> np.ndarray:
        """(d - k, d): orthonormal axes spanning what the kept components leave out, so that a
        standardised row's reconstruction error is the length of its projection on them. Any
        such basis gives the same lengths; this one comes from the SVD of ``components``."""
        _, _, axes = np.linalg.svd(self.components, full_matrices=True)
        return axes[self.k :].copy()

    def standardise(self, x: np.ndarray) -> np.ndarray:
        """Impute non-finite cells with the reference mean, then standardise; (n, d) -> (n, d)."""
        x = _matrix(x, self.d)
        z = (np.where(np.isfinite(x), x, self.mean) - self.mean) / self.std
        z[:, self.constant] = 0.0
        return z

    def errors(self, x: np.ndarray) -> np.ndarray:
        """Per-row reconstruction error ``||z - z W W^T||`` of an (n, d) array in ``columns``
        order (n,). Vectorised; NaN/inf cells are imputed with the reference mean."""
        z = self.standardise(x)
        residual = z - (z @ self.components.T) @ self.components
        return np.sqrt(np.einsum("ij,ij->i", residual, residual))

    def errors_of_columns(self, columns: Sequence[np.ndarray], *, block: int = 16384) -> np.ndarray:
        """:meth:`errors` of the rows formed by ``columns``, d equal-length 1-D arrays in
        ``columns`` order, without stacking them into an (n, d) matrix.

        Rows are scored ``block`` at a time in one reusable column-major (d, block) buffer that
        stays in cache: each column is centred straight into its buffer row (a constant column's
        row is 0 and the column is not read), and no (n, d) copy or per-cell mask is ever made.
        When the kept axes are most of the d (k >= d / 3, the usual case at 90% of the
        variance), the error is the length of the row's part along the d - k axes left out
        (:attr:`residual_axes`, scaled by 1 / std): one (d - k, d) product instead of two (k, d)
        ones, e.g. 40 multiply-adds per row instead of 720 for 18 of 20 axes. Otherwise the row is
        standardised and the residual ``z - W^T (W z)`` taken in place. A row with a NaN/inf cell
        comes out non-finite, as does a row whose finite cells overflow; only those rows are
        scored again by :meth:`errors`, which imputes. The inputs are only read (read-only views
        are fine). Equals ``errors(np.column_stack(columns))`` up to rounding.
        """
        d = self.d
        if len(columns) != d:
            raise ValueError(f"expected {d} columns, got {len(columns)}")
        if block < 1:
            raise ValueError(f"block must be at least 1, got {block}")
        arrays = [np.asarray(c) for c in columns]
        arrays = [a if a.dtype.kind in "biuf" else a.astype(np.float64) for a in arrays]
        n = arrays[0].shape[0] if arrays[0].ndim == 1 else -1
        for name, a in zip(self.columns, arrays):
            if a.ndim != 1 or a.shape[0] != n:
                raise ValueError(f"columns must be 1-D arrays of one length; {name!r} has shape {a.shape}")
        out = np.empty(n)
        block = min(block, max(n, 1))
        inverse_std = 1.0 / self.std
        left_out = self.residual_axes if 3 * self.k >= d else None
        scaled = None if left_out is None else left_out * inverse_std  # (d - k, d): standardises as it projects
        buffer = np.empty((d, block))
        buffer[self.constant] = 0.0
        with np.errstate(over="ignore", invalid="ignore"):  # such rows are redone below
            for start in range(0, n, block):
                stop = min(start + block, n)
                z = buffer[:, : stop - start]
                for j, a in enumerate(arrays):
                    if not self.constant[j]:
                        np.subtract(a[start:stop], self.mean[j], out=z[j])
                        if scaled is None:
                            z[j] *= inverse_std[j]
                if scaled is None:
                    z -= self.components.T @ (self.components @ z)
                    residual = z
                else:
                    residual = scaled @ z
                rows = out[start:stop]
                np.einsum("ij,ij->j", residual, residual, out=rows)
                np.sqrt(rows, out=rows)
        redo = np.flatnonzero(~np.isfinite(out))
        if redo.size:
            out[redo] = self.errors(np.column_stack([a[redo] for a in arrays]))
        return out

    def fingerprint(self) -> str:
        """Identifies the fit: error profiles of different fits must not be compared."""
        parts = [np.float64(self.variance).tobytes(), self.mean.tobytes(), self.std.tobytes(), self.components.tobytes()]
        return hashlib.sha1("\x1f".join(self.columns).encode() + b"".join(parts)).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return {
            "columns": list(self.columns),
            "variance": self.variance,
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "constant": [bool(c) for c in self.constant],
            "components": self.components.tolist(),
            "eigenvalues": self.eigenvalues.tolist(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PcaModel:
        columns = tuple(str(c) for c in data["columns"])
        d = len(columns)
        return cls(
            columns=columns,
            mean=np.asarray(data["mean"], dtype=np.float64).reshape(d),
            std=np.asarray(data["std"], dtype=np.float64).reshape(d),
            constant=np.asarray(data["constant"], dtype=bool).reshape(d),
            components=np.asarray(data["components"], dtype=np.float64).reshape(-1, d),
            eigenvalues=np.asarray(data["eigenvalues"], dtype=np.float64).reshape(d),
            variance=float(data.get("variance", DEFAULT_VARIANCE)),
        )


# ------------------------------------------------------------------------- error profiles


@dataclass(frozen=True, eq=False)
class ErrorProfile:
    """Reconstruction errors of one window: count, mean and ``m2`` (sum of squared deviations
    from the mean), merged with Chan et al.'s formula.

    >>> p = ErrorProfile.from_errors(np.array([1.0, 2.0])).merge(ErrorProfile.from_errors(np.array([3.0])))
    >>> p.count, p.mean, p.variance
    (3, 2.0, 1.0)
    """

    count: int = 0
    mean: float = 0.0
    m2: float = 0.0

    @classmethod
    def from_errors(cls, errors: np.ndarray) -> ErrorProfile:
        """Non-finite errors (only possible when a cell overflows) are left out."""
        e = np.asarray(errors, dtype=np.float64).reshape(-1)
        e = e[np.isfinite(e)]
        if e.size == 0:
            return cls()
        mean = float(e.mean())
        return cls(int(e.size), mean, float(((e - mean) ** 2).sum()))

    @property
    def variance(self) -> float:
        """Sample variance (``n - 1``); NaN below 2 errors."""
        return self.m2 / (self.count - 1) if self.count > 1 else float("nan")

    @property
    def std(self) -> float:
        return math.sqrt(self.variance) if self.count > 1 else float("nan")

    def merge(self, other: ErrorProfile) -> ErrorProfile:
        n = self.count + other.count
        if other.count == 0:
            return self
        if self.count == 0:
            return other
        delta = other.mean - self.mean
        return ErrorProfile(
            n,
            self.mean + delta * other.count / n,
            self.m2 + other.m2 + delta * delta * self.count * other.count / n,
        )

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "mean": self.mean, "m2": self.m2}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ErrorProfile:
        return cls(int(data["count"]), float(data["mean"]), float(data["m2"]))


# ------------------------------------------------------------------------------- the check


@dataclass(frozen=True)
class MultivariateVerdict:
    """The outcome of :func:`multivariate_drift`.

    ``value`` is the window's mean reconstruction error; ``threshold`` the value it must exceed
    to breach (the larger of the statistical and the minimum-effect thresholds); ``p_value`` the
    one-sided p-value of the excess over the reference mean; ``details`` JSON-safe extras.
    """

    value: float
    threshold: float
    p_value: float
    breach: bool
    details: dict[str, Any] = field(default_factory=dict)

    def to_result(self, segment: str = ALL) -> MetricResult:
        """As a dataset-level row of the results table (check ``drift``, metric
        ``pca_reconstruction_error``)."""
        return MetricResult(
            check="drift",
            column="",
            metric="pca_reconstruction_error",
            value=self.value,
            status=Status.BREACH if self.breach else Status.OK,
            threshold=self.threshold,
            direction=Direction.MAX,
            segment=segment,
            details=dict(self.details),
        )


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def chunk_spread(reference: ErrorProfile, chunks: Sequence[ErrorProfile]) -> tuple[float, int]:
    """``(tau, chunks used)``: the window-to-window standard deviation of the mean error that
    the reference's own windows show beyond their sampling noise,
    ``tau^2 = max(0, var(chunk means) - mean(sigma^2 / n_i))``, ``sigma`` the reference error
    standard deviation, ``var`` the sample variance over the non-empty chunks. Fewer than 2
    non-empty chunks give ``tau = 0``.

    >>> chunks = [ErrorProfile(100, m, 99.0) for m in (1.0, 2.0, 1.0, 2.0)]
    >>> tau, used = chunk_spread(ErrorProfile(400, 1.5, 499.0), chunks)
    >>> round(tau, 3), used
    (0.566, 4)
    """
    used = [c for c in chunks if c.count > 0]
    if len(used) < 2 or reference.count < 2:
        return 0.0, len(used)
    sigma2 = reference.variance
    means = np.array([c.mean for c in used])
    noise = float(np.mean([sigma2 / c.count for c in used]))
    return math.sqrt(max(0.0, float(np.var(means, ddof=1)) - noise)), len(used)


def multivariate_drift(
    reference: ErrorProfile,
    chunks: Sequence[ErrorProfile],
    current: ErrorProfile,
    *,
    false_alarm_rate: float = DEFAULT_FALSE_ALARM_RATE,
    min_effect: float = DEFAULT_MIN_EFFECT,
    model: PcaModel | None = None,
) -> MultivariateVerdict:
    """Does the current window's mean reconstruction error exceed the reference's by more than
    the reference's own variation explains, and by enough to matter?

    ``reference`` is the error profile of the whole reference, ``chunks`` those of the
    reference's own windows (the same windowing the monitor uses, e.g. its days), ``current``
    the window's. With ``mu`` and ``sigma`` the reference's mean and standard deviation of the
    error, ``n`` its count and ``m`` the window's count, the threshold is built in three steps:

    (a) **Sampling noise at the window's size.** Under no drift, the window's mean error differs
        from ``mu`` by the noise of a mean of ``m`` errors, ``sigma^2 / m``, plus that of the
        reference mean itself, ``sigma^2 / n``. Small windows therefore get wide thresholds and
        large ones narrow thresholds, so the false-alarm rate does not depend on traffic.
    (b) **Window-to-window variation the reference already shows.** Real data is not i.i.d.:
        weekdays differ from weekends, and the reference's own windows' mean errors spread more
        than sampling noise explains. That excess, ``tau^2 = max(0, var(chunk means) -
        mean(sigma^2 / n_i))`` (:func:`chunk_spread`), is added to the variance, so what the
        reference did without being called drift is not called drift later. It needs at least
        2 non-empty chunks; with fewer, ``tau = 0`` (and ``details["chunks"]`` says so). Give it
        a dozen or more for a usable estimate.
    (c) **A minimum effect.** With large windows any real but negligible change is
        significant; a breach also needs the mean error to be at least ``min_effect`` (relative,
        default 0.1 = 10%) above ``mu``.

    The test is one-sided: a broken correlation structure raises errors; lower errors (e.g. from
    imputed missing cells) are not reported here. So, with ``z = Phi^-1(1 - false_alarm_rate)``
    and ``se = sqrt(sigma^2/m + sigma^2/n + tau^2)``::

        breach  iff  mean_cur > mu + z * se  and  mean_cur >= mu * (1 + min_effect)
        p_value   =  1 - Phi((mean_cur - mu) / se)

    ``p_value`` is reported whether or not the window breaches. ``threshold`` is the larger of
    the two bounds. Under a stationary process the false-alarm rate is at most
    ``false_alarm_rate`` (the mean of many errors is close to normal; the minimum effect only
    lowers it). Pass ``model`` to add its components and explained variance to ``details``.

    Raises :class:`EmptyWindowError` when the window has no errors, ValueError when the
    reference has fewer than 2 or the parameters are out of range.
    """
    if current.count == 0:
        raise EmptyWindowError("the current window has no rows to compute reconstruction errors on")
    if reference.count < 2:
        raise ValueError(f"the reference needs at least 2 reconstruction errors, has {reference.count}")
    if not 0.0 < false_alarm_rate < 1.0:
        raise ValueError(f"false_alarm_rate must be in (0, 1), got {false_alarm_rate}")
    if not min_effect >= 0.0:
        raise ValueError(f"min_effect must be >= 0, got {min_effect}")

    mu = reference.mean
    sigma = reference.std
    n_ref = reference.count
    m = current.count
    tau, used = chunk_spread(reference, chunks)
    z = float(special.ndtri(1.0 - false_alarm_rate))
    se = math.sqrt(sigma * sigma / m + sigma * sigma / n_ref + tau * tau)
    value = current.mean
    excess = value - mu
    statistical_threshold = mu + z * se
    effect_threshold = mu * (1.0 + min_effect)
    if se > 0:
        standardised = excess / se
        p_value = float(special.ndtr(-standardised))
    else:  # every reference error equal (e.g. all 0): any rise is beyond its noise
        standardised = math.inf if excess > 0 else (-math.inf if excess < 0 else 0.0)
        p_value = 0.0 if excess > 0 else 1.0
    significant = value > statistical_threshold
    large = value >= effect_threshold
    breach = significant and large

    if breach:
        reason = "mean error significantly above the reference and by at least min_effect"
    elif significant:
        reason = (
            f"significant (p={p_value:.3g}) but only {excess / mu:+.1%} relative to the reference "
            f"mean error, below min_effect {min_effect:.0%}" if mu > 0 else
            "significant but below min_effect"
        )
    elif large:
        reason = "at least min_effect above the reference, but within the variation the reference explains"
    else:
        reason = "within the variation the reference explains"

    details: dict[str, Any] = {
        "mu_ref": _finite(mu),
        "sigma": _finite(sigma),
        "tau": tau,
        "n_ref": n_ref,
        "m": m,
        "chunks": used,
        "z": z,
        "se": se,
        "standardised_excess": _finite(standardised),
        "relative_excess": _finite(excess / mu) if mu > 0 else None,
        "statistical_threshold": statistical_threshold,
        "effect_threshold": effect_threshold,
        "significant": significant,
        "min_effect": min_effect,
        "false_alarm_rate": false_alarm_rate,
        "reason": reason,
    }
    if used < 2:
        details["note"] = "fewer than 2 non-empty reference chunks: window-to-window variation not estimated (tau = 0)"
    if model is not None:
        details["components"] = model.k
        details["explained_variance"] = model.explained
        details["columns"] = list(model.columns)
    return MultivariateVerdict(
        value=value,
        threshold=max(statistical_threshold, effect_threshold),
        p_value=p_value,
        breach=breach,
        details=details,
    )
