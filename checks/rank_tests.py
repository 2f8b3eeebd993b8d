"""Two-sample rank tests computed from bucket counts, never from rows.

Driftline only ever sees *profiles*: a numeric column is a count per bucket, every value of a
bucket assumed to sit at one point (its position). Every function here takes those counts and
works in O(k) time and memory for k buckets, however many rows the counts stand for (a window may
hold 10^7 rows or more: nothing is ever expanded with ``np.repeat``). Sums that would lose digits
to cancellation are formed as exact Python integers first and turned into floats once.

* :func:`anderson_darling`: k-sample Anderson-Darling test (Scholz & Stephens 1987), midrank
  version for ties, equal to ``scipy.stats.anderson_ksamp(..., variant="midrank")``.
* :func:`cramer_von_mises`: two-sample Cramér-von Mises test (Anderson 1962) in its CDF form,
  equal to ``scipy.stats.cramervonmises_2samp(..., method="asymptotic")`` without ties and free of
  scipy's tie artefact with them.
* :func:`z_test_proportions`: two-proportion z-test on the bucket whose share moved most.

Inputs: ``positions`` strictly increasing finite floats, one per bucket; ``reference_counts`` and
``current_counts`` non-negative integer counts of the same length (a bucket may be empty in one or
both). Invalid input raises :class:`ValueError`.

>>> r = anderson_darling([0.0, 1.0, 2.0], [30, 40, 30], [20, 40, 40])
>>> round(r.statistic, 3), round(r.p_value, 3), r.details["p_value_capped"]
(2.357, 0.035, False)
>>> round(cramer_von_mises([0.0, 1.0, 2.0], [30, 40, 30], [20, 40, 40]).p_value, 3)
0.115
>>> z_test_proportions([50, 50], [30, 70]).details["bucket"]
0
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import special

__all__ = ["TestResult", "anderson_darling", "cramer_von_mises", "z_test_proportions"]


@dataclass(frozen=True)
class TestResult:
    """Outcome of one test: the statistic, its p-value and JSON-safe details (floats, ints, str,
    bool)."""

    __test__ = False  # not a pytest test class, despite its name

    statistic: float
    p_value: float
    details: dict[str, Any] = field(default_factory=dict, hash=False)


# --------------------------------------------------------------------------------------------
# input validation
# --------------------------------------------------------------------------------------------


def _counts(values: Any, name: str) -> list[int]:
    """A 1-D array of non-negative whole counts as exact Python ints."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional (got shape {arr.shape})")
    if arr.size == 0:
        return []
    if arr.dtype.kind == "b" or arr.dtype.kind not in "iuf":
        raise ValueError(f"{name} must hold integer counts (got dtype {arr.dtype})")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must be finite")
        if np.any(arr != np.floor(arr)):
            raise ValueError(f"{name} must hold whole numbers (counts)")
    if np.any(arr < 0):
        raise ValueError(f"{name} must be non-negative")
    return [int(v) for v in arr.tolist()]


def _validated(
    reference_counts: Any, current_counts: Any, positions: Any = None
) -> tuple[list[int], list[int]]:
    ref = _counts(reference_counts, "reference_counts")
    cur = _counts(current_counts, "current_counts")
    if len(ref) != len(cur):
        raise ValueError(
            "reference_counts and current_counts must have the same length "
            f"(got {len(ref)} and {len(cur)})"
        )
    if positions is not None:
        pos = np.asarray(positions)
        if pos.ndim != 1:
            raise ValueError(f"positions must be one-dimensional (got shape {pos.shape})")
        if pos.size != len(ref):
            raise ValueError(
                f"positions must have one entry per bucket (got {pos.size} positions "
                f"for {len(ref)} buckets)"
            )
        if pos.size and pos.dtype.kind not in "iuf":
            raise ValueError(f"positions must be numbers (got dtype {pos.dtype})")
        pos = pos.astype(float)
        if not np.all(np.isfinite(pos)):
            raise ValueError("positions must be finite")
        if np.any(np.diff(pos) <= 0):
            raise ValueError("positions must be strictly increasing")
    if sum(ref) == 0:
        raise ValueError("reference_counts holds no values")
    if sum(cur) == 0:
        raise ValueError("current_counts holds no values")
    return ref, cur


def _occupied(ref: list[int], cur: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Drop buckets empty in both samples; return the rest as object arrays of Python ints (exact
    arithmetic, no overflow)."""
    keep = [i for i in range(len(ref)) if ref[i] + cur[i] > 0]
    r = np.array([ref[i] for i in keep], dtype=object)
    c = np.array([cur[i] for i in keep], dtype=object)
    return r, c


def _before(a: np.ndarray) -> np.ndarray:
    """Exclusive cumulative sum (what lies in earlier buckets), exact."""
    out = np.empty(a.size, dtype=object)
    total = 0
    for i, v in enumerate(a):
        out[i] = total
        total += v
    return out


# --------------------------------------------------------------------------------------------
# Anderson-Darling
# --------------------------------------------------------------------------------------------

# Table 2 of Scholz & Stephens (1987): critical value of the standardised statistic for m = k - 1
# degrees of freedom is b0 + b1 / sqrt(m) + b2 / m at these significance levels.
_AD_SIGNIFICANCE = np.array([0.25, 0.1, 0.05, 0.025, 0.01, 0.005, 0.001])
_AD_B0 = np.array([0.675, 1.281, 1.645, 1.96, 2.326, 2.573, 3.085])
_AD_B1 = np.array([-0.245, 0.25, 0.678, 1.149, 1.822, 2.364, 3.615])
_AD_B2 = np.array([-0.105, -0.305, -0.362, -0.391, -0.396, -0.345, -0.154])
_AD_M = 1  # two samples
_AD_CRITICAL = _AD_B0 + _AD_B1 / math.sqrt(_AD_M) + _AD_B2 / _AD_M
# p-values between the tabulated levels: log(significance) fitted by least squares as a quadratic
# in the critical value (the method of Scholz & Stephens that scipy uses), then evaluated at the
# statistic. For two samples the fit is a constant.
_AD_LOGP_FIT = np.polyfit(_AD_CRITICAL, np.log(_AD_SIGNIFICANCE), 2)


def _harmonic(n: int) -> float:
    """H_n = sum_{i=1..n} 1/i."""
    return float(special.digamma(n + 1) + np.euler_gamma)


def _harmonic2(n: int) -> float:
    """sum_{i=1..n} 1/i^2."""
    return float(math.pi**2 / 6 - special.polygamma(1, n + 1))


def _ad_variance(n_ref: int, n_cur: int) -> float:
    """Var(A2akN) under the null for two samples (Scholz & Stephens 1987, eq. 4), with its sums
    h = sum_{i<N} 1/i and g = sum_{i<j<N} 1/((N-i) j) in closed form (O(1), not O(N)):
    g = H_N^(2) - (H_{N-1} + H_N) / N."""
    n = n_ref + n_cur
    k = 2
    big_h = 1.0 / n_ref + 1.0 / n_cur
    h = _harmonic(n - 1)
    g = _harmonic2(n) - (h + _harmonic(n)) / n
    a = (4 * g - 6) * (k - 1) + (10 - 6 * g) * big_h
    b = (2 * g - 4) * k**2 + 8 * h * k + (2 * g - 14 * h - 4) * big_h - 8 * h + 4 * g - 6
    c = (6 * h + 2 * g - 2) * k**2 + (4 * h - 4 * g + 6) * k + (2 * h - 6) * big_h + 4 * h
    d = (2 * h + 6) * k**2 - 4 * h * k
    nf = float(n)
    return (a * nf**3 + b * nf**2 + c * nf + d) / ((nf - 1) * (nf - 2) * (nf - 3))


def anderson_darling(positions: Any, reference_counts: Any, current_counts: Any) -> TestResult:
    """Two-sample Anderson-Darling test (Scholz & Stephens 1987, midrank version A2akN).

    Equal to ``scipy.stats.anderson_ksamp([np.repeat(positions, reference_counts),
    np.repeat(positions, current_counts)], variant="midrank")`` (the default ``midrank=True``):
    same ``statistic`` (the standardised ``(A2akN - 1) / sigma``) and same ``pvalue``, but in O(k)
    from the counts, never expanding them to rows.

    Ties: every bucket is one tie block; the midrank empirical distribution handles them (valid
    for discrete data). Only the order of ``positions`` matters, not their values.

    p-value: interpolated from the critical values tabulated by Scholz & Stephens (quadratic fit
    of log significance against the critical value), so it is **capped to [0.001, 0.25]**: a
    statistic below the 25% critical value reports 0.25 (true p-value larger), one above the
    0.1% critical value reports 0.001 (true p-value smaller). ``details["p_value_capped"]`` says
    when, ``details["p_value_bound"]`` which way (``"upper"``: true p >= 0.25; ``"lower"``: true
    p <= 0.001; ``"none"``). Use it to rank or threshold evidence between 0.1% and 25% only.

    Sample sizes: the critical values are those of the limiting distribution (N -> infinity);
    treat p-values from samples of a handful of values as rough. With huge windows any tiny
    shift is significant: pair the p-value with an effect size.

    Degenerate cases (deviations from scipy, which raises or returns NaN there): if, after
    dropping buckets empty in both samples, one bucket remains (all values tied), or the two
    samples hold fewer than 4 values together (the null variance needs N >= 4), the result is
    statistic 0.0, p-value 1.0 and ``details["reason"]`` says why.

    details: ``a2`` (raw A2akN), ``p_value_capped`` (bool), ``p_value_bound``, ``n_reference``,
    ``n_current``, ``buckets_used`` (buckets with values), and ``reason`` in degenerate cases.
    scipy warns when it caps the p-value; this function never warns (the flag replaces it).
    """
    ref, cur = _validated(reference_counts, current_counts, positions)
    r, c = _occupied(ref, cur)
    n_ref, n_cur = sum(ref), sum(cur)
    n = n_ref + n_cur
    details: dict[str, Any] = {
        "n_reference": n_ref,
        "n_current": n_cur,
        "buckets_used": int(r.size),
    }
    if r.size < 2:
        details.update(a2=0.0, p_value_capped=False, p_value_bound="none")
        details["reason"] = "single bucket: all values tied"
        return TestResult(0.0, 1.0, details)

    # Per bucket j (one tie block of l_j values, A_j values of both samples before it):
    #   B_j = A_j + l_j / 2, M_j = (reference values before it) + r_j / 2 and
    #   A2akN = (N-1)/N * sum_i 1/n_i sum_j l_j/N (N M_ij - B_j n_i)^2 / (B_j (N-B_j) - N l_j/4).
    # With two samples the current term's numerator is minus the reference's, so
    #   A2akN = (N-1) / (n_ref n_cur N) * sum_j l_j num_j^2 / den_j
    # with num_j = 2 (N M_j - B_j n_ref) and den_j = 4 (B_j (N - B_j) - N l_j / 4), both integers.
    total = r + c
    twice_b = 2 * _before(total) + total
    num = n * (2 * _before(r) + r) - twice_b * n_ref
    den = twice_b * (2 * n - twice_b) - n * total
    a2 = (n - 1) / (n_ref * n_cur * n) * math.fsum(
        (lj * nj * nj) / dj for lj, nj, dj in zip(total, num, den, strict=True)
    )
    details["a2"] = float(a2)
    if n < 4:
        details.update(p_value_capped=False, p_value_bound="none")
        details["reason"] = "fewer than 4 values: null variance undefined"
        return TestResult(0.0, 1.0, details)

    statistic = (a2 - (2 - 1)) / math.sqrt(_ad_variance(n_ref, n_cur))
    if statistic < _AD_CRITICAL.min():
        p_value, bound = float(_AD_SIGNIFICANCE.max()), "upper"
    elif statistic > _AD_CRITICAL.max():
        p_value, bound = float(_AD_SIGNIFICANCE.min()), "lower"
    else:
        p_value, bound = math.exp(float(np.polyval(_AD_LOGP_FIT, statistic))), "none"
    details.update(p_value_capped=bound != "none", p_value_bound=bound)
    return TestResult(float(statistic), p_value, details)


# --------------------------------------------------------------------------------------------
# Cramér-von Mises
# --------------------------------------------------------------------------------------------


def _cvm_limit_cdf(x: float) -> float:
    """CDF of the limiting (n -> infinity) distribution of the Cramér-von Mises statistic
    (Anderson & Darling 1952; Csörgő & Faraway 1996, eq. 1.2):

        V(x) = 1 / (pi sqrt(x)) * sum_{j>=0} c_j sqrt(4j+1) exp(-q_j) K_{1/4}(q_j),
        c_j = Gamma(j + 1/2) / (Gamma(1/2) j!),  q_j = (4j+1)^2 / (16 x).

    Terms fall off like exp(-2 q_j) once q_j > 1, so the sum stops where q_j > 45 (remaining
    terms below 1e-38 relative). exp(-q) K(q) is formed as exp(-2q) * kve(q) to avoid overflow.
    For x >= 50, 1 - V(x) is far below double precision and V = 1 is returned.
    """
    if x <= 0:
        return 0.0
    if x >= 50:
        return 1.0
    j_max = int(math.ceil((math.sqrt(16 * x * 45) - 1) / 4)) + 2
    j = np.arange(j_max + 1, dtype=float)
    coef = np.exp(special.gammaln(j + 0.5) - special.gammaln(0.5) - special.gammaln(j + 1))
    y = 4 * j + 1
    q = y**2 / (16 * x)
    terms = coef * np.sqrt(y) * np.exp(-2 * q) * special.kve(0.25, q)
    return math.fsum(terms.tolist()) / (math.pi * math.sqrt(x))


def cramer_von_mises(positions: Any, reference_counts: Any, current_counts: Any) -> TestResult:
    """Two-sample Cramér-von Mises test (Anderson 1962) with its asymptotic p-value, in O(k).

    Statistic: Anderson's ``T = n m / N^2 * sum over the pooled values of (F_n - G_m)^2``, the
    two empirical CDFs compared at every value of the pooled sample. On bucketed data a bucket of
    ``t_b`` pooled values contributes ``t_b * (F_n - G_m)^2`` with both CDFs taken after the
    bucket. Without ties this is exactly ``scipy.stats.cramervonmises_2samp(x, y,
    method="asymptotic").statistic`` (scipy's rank formula is an identity for it); with ties it is
    not: scipy's average ranks leave ``r_b (r_b^2 - 1) / 12`` per tie block, terms that do not
    cancel when the sizes differ, so two samples with *identical* bucket shares but unequal sizes
    (every Driftline window) get a huge ``T`` there and a p-value near 0 (shares 1:2:3 with 60 vs
    6000 values: scipy's T ~ 8249; here 0). The CDF form has no such term.

    p-value: ``T`` is normalised by its mean and variance for continuous data (Anderson 1962,
    eqs. 11, 14, 15) to ``tn`` and referred to the limiting distribution, ``p = 1 - V(tn)``, V by
    its series (Csörgő & Faraway 1996), summed to double precision (scipy stops at terms below
    1e-7, so its p-values differ beyond ~1e-6 for ``tn`` > ~5). Ties make the true null of ``T``
    smaller than the continuous one, so on coarse buckets the p-value is conservative.

    Limits: the asymptotic p-value is poor for tiny samples (scipy uses an exact distribution
    when both samples hold <= 20 values); one occupied bucket gives statistic 0.0 and p-value 1.0;
    a sample of a single value gives the statistic with p-value 1.0. ``details["reason"]`` says
    why.

    details: ``normalized_statistic`` (tn), ``n_reference``, ``n_current``, ``buckets_used``, and
    ``reason`` in degenerate cases.
    """
    ref, cur = _validated(reference_counts, current_counts, positions)
    r, c = _occupied(ref, cur)
    nx, ny = sum(ref), sum(cur)
    n = nx + ny
    k = nx * ny
    details: dict[str, Any] = {"n_reference": nx, "n_current": ny, "buckets_used": int(r.size)}
    if r.size < 2:
        details.update(normalized_statistic=0.0, reason="single bucket: all values tied")
        return TestResult(0.0, 1.0, details)

    # Exact in integers: (F - G) * nx * ny = ny * cumsum(r) - nx * cumsum(c).
    gap = [ny * a - nx * b for a, b in zip(np.cumsum(r).tolist(), np.cumsum(c).tolist())]
    pooled = (r + c).tolist()
    numerator = sum(t * g * g for t, g in zip(pooled, gap))
    statistic = numerator / (k * n * n)

    mean_t = (1 + 1 / n) / 6
    var_t = (n + 1) * (4 * k * n - 3 * (nx * nx + ny * ny) - 2 * k) / (45 * n * n * 4 * k)
    if min(nx, ny) < 2 or var_t <= 0:
        details["normalized_statistic"] = 0.0
        details["reason"] = "a sample holds a single value: no asymptotic p-value"
        return TestResult(float(statistic), 1.0, details)
    tn = 1 / 6 + (statistic - mean_t) / math.sqrt(45 * var_t)
    p_value = min(max(1.0 - _cvm_limit_cdf(tn), 0.0), 1.0)
    details["normalized_statistic"] = float(tn)
    return TestResult(float(statistic), p_value, details)


# --------------------------------------------------------------------------------------------
# two-proportion z-test
# --------------------------------------------------------------------------------------------


def z_test_proportions(reference_counts: Any, current_counts: Any) -> TestResult:
    """Two-proportion z-test (pooled variance) on the bucket whose share changed most.

    The bucket (or category) with the largest absolute change in share is picked (the first one
    on a tie); its shares are compared with the pooled two-proportion z-test, ``statistic = |z|``,
    and the two-sided p-value is Bonferroni-corrected for the choice: multiplied by (buckets with
    values in either sample) - 1, capped at 1. For a binary column (2 buckets) that factor is 1
    and this is the classical test (``z^2`` equals the uncorrected chi-squared statistic of the
    2x2 table). Works for numeric buckets and categories alike (no positions).

    Limits: the normal approximation needs a few expected values of the picked bucket on each
    side (rule of thumb: ``n p`` and ``n (1 - p)`` >= 5 per sample). Bonferroni is conservative
    with many buckets. One occupied bucket (shares 1 and 1) gives statistic 0.0 and p-value 1.0.
    Huge windows make tiny share changes significant: pair it with the shares in details.

    details: ``bucket`` (index into the given arrays), ``reference_share``, ``current_share``,
    ``z`` (signed, current minus reference), ``buckets`` (buckets with values),
    ``bonferroni_factor``.
    """
    ref, cur = _validated(reference_counts, current_counts)
    n_ref, n_cur = sum(ref), sum(cur)
    ref_share = np.array(ref, dtype=float) / n_ref
    cur_share = np.array(cur, dtype=float) / n_cur
    bucket = int(np.argmax(np.abs(cur_share - ref_share)))
    occupied = sum(1 for a, b in zip(ref, cur, strict=True) if a + b > 0)
    factor = max(occupied - 1, 1)

    pooled = (ref[bucket] + cur[bucket]) / (n_ref + n_cur)
    variance = pooled * (1 - pooled) * (1 / n_ref + 1 / n_cur)
    diff = float(cur_share[bucket] - ref_share[bucket])
    z = diff / math.sqrt(variance) if variance > 0 and diff != 0 else 0.0
    p_two_sided = float(special.erfc(abs(z) / math.sqrt(2)))
    details = {
        "bucket": bucket,
        "reference_share": float(ref_share[bucket]),
        "current_share": float(cur_share[bucket]),
        "z": float(z),
        "buckets": occupied,
        "bonferroni_factor": factor,
    }
    return TestResult(abs(float(z)), min(1.0, factor * p_two_sided), details)
