"""User-facing settings of the checks: the ``checks:`` section of a monitor's YAML.

Every field has a description (the README's config reference is generated from them), unknown
keys are errors, and every threshold is checked against the limits of what it bounds, with the
valid names listed when a name is wrong.

>>> ChecksSettings.model_validate({"latency": {"p95_max_ms": 250}}).latency.p95_max_ms
250.0
>>> try:
...     ChecksSettings.model_validate({"drift": {"numeric": "wasserstien"}})
... except ValueError as exc:
...     print(exc.errors()[0]["msg"])
Value error, unknown drift method 'wasserstien' (did you mean 'wasserstein'?); valid: anderson_darling, chi2, cramer_von_mises, hellinger, jensen_shannon, kl_divergence, ks, psi, total_variation, wasserstein, z_test
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from checks import drift, performance


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _unknown(kind: str, name: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(name, valid, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown {kind} {name!r}{hint}; valid: {', '.join(valid)}"


# --------------------------------------------------------------------------------- drift


class MethodChoice(_Strict):
    """A drift method and its threshold. In YAML either ``{method: psi, threshold: 0.25}`` or
    just ``psi``."""

    method: str = Field(description="Name of a registered drift method: " + ", ".join(sorted(drift.REGISTRY)) + ".")
    threshold: float | None = Field(
        default=None,
        description="Breach threshold: an effect size (breach above it) or, for the tests ks and chi2, a p-value "
        "(breach below it). Empty: the method's default.",
    )

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, data: Any) -> Any:
        return {"method": data} if isinstance(data, str) else data

    @field_validator("method")
    @classmethod
    def _registered(cls, name: str) -> str:
        if name not in drift.REGISTRY:
            raise ValueError(_unknown("drift method", name, sorted(drift.REGISTRY)))
        return name

    @model_validator(mode="after")
    def _in_limits(self) -> MethodChoice:
        if self.threshold is not None:
            drift.REGISTRY[self.method].check_threshold(self.threshold)
        return self

    @property
    def spec(self) -> drift.DriftMethod:
        return drift.REGISTRY[self.method]

    @property
    def effective_threshold(self) -> float:
        return self.spec.default_threshold if self.threshold is None else self.threshold


class DriftSettings(_Strict):
    """Distribution drift of features (check ``drift``), the prediction (``prediction_drift``) and
    the target (``target_drift``)."""

    enabled: bool = Field(default=True, description="Run the drift checks.")
    numeric: MethodChoice = Field(
        default=MethodChoice(method="wasserstein"),
        description="Method that decides drift of numeric columns (default: wasserstein, in reference standard deviations, calibrated threshold).",
    )
    categorical: MethodChoice = Field(
        default=MethodChoice(method="jensen_shannon"),
        description="Method that decides drift of categorical columns, and of the target of probability/class models "
        "(default: jensen_shannon distance, calibrated threshold).",
    )
    false_alarm_rate: float = Field(
        default=0.01,
        description="Calibrated thresholds (methods without an explicit threshold) keep breaches of an unchanged column to "
        "at most this share of windows; the tests (ks, chi2, z_test, anderson_darling, cramer_von_mises) breach below "
        "this p-value, and the run-level verdict controls its false-discovery rate at it.",
    )
    min_effect: dict[str, float] = Field(
        default={},
        description="Smallest effect that may breach, per method, over the defaults "
        + ", ".join(f"{n}: {m.min_effect}" for n, m in sorted(drift.REGISTRY.items()) if m.min_effect is not None)
        + " (wasserstein in reference standard deviations).",
    )
    p_value: float | None = Field(
        default=None,
        description="Extra significance gate: a breach also needs the column's test (ks for numeric, chi2 for categorical) "
        "below this p-value. Empty (default): the calibrated threshold already accounts for the window's size.",
    )
    report: list[str] = Field(
        default=["ks", "psi", "chi2"],
        description="Further methods computed and stored as information, where the column's kind allows.",
    )
    columns: dict[str, MethodChoice] = Field(default={}, description="Per-column method and threshold, overriding numeric/categorical.")
    bins: int = Field(
        default=10,
        description="PSI, Jensen-Shannon, chi-squared, Hellinger, KL and total variation coarsen a numeric column's fine "
        "bins to about this many bins of equal reference mass.",
    )

    @field_validator("p_value")
    @classmethod
    def _p_value(cls, p: float | None) -> float | None:
        if p is not None and not 0.0 < p < 1.0:
            raise ValueError(f"p_value is a significance level strictly between 0 and 1 (or empty to switch the gate off), got {p}")
        return p

    @field_validator("false_alarm_rate")
    @classmethod
    def _rate(cls, rate: float) -> float:
        if not 0.0001 <= rate <= 0.2:
            raise ValueError(f"false_alarm_rate is a share of windows between 0.0001 and 0.2 (0.01: 1 in 100), got {rate}")
        return rate

    @field_validator("min_effect")
    @classmethod
    def _min_effect(cls, effects: dict[str, float]) -> dict[str, float]:
        valid = sorted(n for n, m in drift.REGISTRY.items() if m.min_effect is not None)
        for name, value in effects.items():
            if name not in valid:
                raise ValueError(_unknown("effect-size method", name, valid))
            drift.REGISTRY[name].check_threshold(value)
        return effects

    @field_validator("report")
    @classmethod
    def _report(cls, names: list[str]) -> list[str]:
        for name in names:
            if name not in drift.REGISTRY:
                raise ValueError(_unknown("drift method", name, sorted(drift.REGISTRY)))
        return list(dict.fromkeys(names))

    @field_validator("bins")
    @classmethod
    def _bins(cls, bins: int) -> int:
        if not 2 <= bins <= 100:
            raise ValueError(f"bins must be between 2 and 100 (the profiles hold about 50 fine bins), got {bins}")
        return bins

    @model_validator(mode="after")
    def _kinds(self) -> DriftSettings:
        for kind in (drift.NUMERIC, drift.CATEGORICAL):
            choice: MethodChoice = getattr(self, kind)
            if not choice.spec.supports(kind):
                valid = sorted(n for n, m in drift.REGISTRY.items() if m.supports(kind))
                raise ValueError(f"{kind}: {choice.method} does not apply to {kind} columns; valid: {', '.join(valid)}")
        return self

    def choice_for(self, column: str, kind: str) -> MethodChoice:
        """The method deciding ``column`` when it is treated as ``kind``."""
        return self.columns.get(column) or getattr(self, kind)

    def min_effect_for(self, method: str) -> float:
        """The smallest effect of ``method`` that may breach (0 for tests)."""
        if method in self.min_effect:
            return self.min_effect[method]
        return drift.REGISTRY[method].min_effect or 0.0


# ------------------------------------------------------------------------------- quality

_Share = dict(ge=0.0, le=1.0)


class QualitySettings(_Strict):
    """Data quality of the window (check ``quality``)."""

    enabled: bool = Field(default=True, description="Run the quality checks.")
    min_rows: int = Field(default=1, ge=0, description="Fewer rows in the window is a breach of row_count (an empty window is no_data).")
    missing_share_max: float | None = Field(
        default=None, **_Share, description="Highest share of missing values per column. Empty: the reference's share + missing_share_increase."
    )
    missing_share_increase: float = Field(default=0.05, **_Share, description="Allowed rise of a column's missing share above the reference's.")
    invalid_share_max: float = Field(default=0.01, **_Share, description="Highest share of values of the wrong type, NaN-as-text or +-inf per column.")
    out_of_range_share_max: float = Field(default=0.05, **_Share, description="Highest share of numeric values outside the reference's [min, max].")
    unseen_share_max: float = Field(default=0.01, **_Share, description="Highest share of categorical values the reference never held.")
    duplicate_id_share_max: float = Field(default=0.001, **_Share, description="Highest share of rows whose id already appeared in the window.")
    bad_timestamp_share_max: float = Field(default=0.01, **_Share, description="Highest share of scanned rows whose timestamp could not be read.")


# ------------------------------------------------------------------------------- latency

LATENCY_STATS = ("mean", "p50", "p95", "p99", "max")
LATENCY_RATIO_STATS = ("mean", "p50", "p95", "p99")


class LatencySettings(_Strict):
    """Latency of the latency column, in milliseconds (check ``latency``). No limits by default:
    every value is stored as information until one is set."""

    enabled: bool = Field(default=True, description="Run the latency checks (needs a latency column).")
    mean_max_ms: float | None = Field(default=None, gt=0, description="Highest mean latency (ms).")
    p50_max_ms: float | None = Field(default=None, gt=0, description="Highest median latency (ms).")
    p95_max_ms: float | None = Field(default=None, gt=0, description="Highest 95th percentile latency (ms).")
    p99_max_ms: float | None = Field(default=None, gt=0, description="Highest 99th percentile latency (ms).")
    max_max_ms: float | None = Field(default=None, gt=0, description="Highest single latency (ms).")
    mean_max_ratio: float | None = Field(default=None, description="Highest mean as a multiple of the reference's (1.5: 50% above).")
    p50_max_ratio: float | None = Field(default=None, description="Highest median as a multiple of the reference's.")
    p95_max_ratio: float | None = Field(default=None, description="Highest p95 as a multiple of the reference's.")
    p99_max_ratio: float | None = Field(default=None, description="Highest p99 as a multiple of the reference's.")

    @field_validator("mean_max_ratio", "p50_max_ratio", "p95_max_ratio", "p99_max_ratio")
    @classmethod
    def _ratio(cls, ratio: float | None, info: Any) -> float | None:
        if ratio is not None and not (math.isfinite(ratio) and ratio >= 1.0):
            raise ValueError(
                f"{info.field_name} is a multiple of the reference's value, at least 1 (1.5 allows 50% above it), got {ratio}"
            )
        return ratio

    def limits(self, stat: str) -> tuple[float | None, float | None]:
        """(absolute ms, ratio) limits of one statistic."""
        return getattr(self, f"{stat}_max_ms"), getattr(self, f"{stat}_max_ratio", None)


# --------------------------------------------------------------------------- performance


class PerformanceSettings(_Strict):
    """Model performance when labels arrive (check ``performance``)."""

    enabled: bool = Field(default=True, description="Run the performance checks (needs prediction and target columns).")
    min_labels: int = Field(default=100, ge=1, description="Fewer labelled rows than this in a window (or the reference) gives no_data.")
    threshold: float = Field(default=0.5, ge=0.0, le=1.0, description="Decision threshold turning probabilities into positive predictions.")
    p_value: float | None = Field(
        default=0.01,
        gt=0.0,
        lt=1.0,
        description="Significance gate for comparisons with the reference: a max_drop / max_increase_ratio breach also "
        "needs the change to be significant at this level (standard errors: Hanley-McNeil for roc_auc, binomial for "
        "accuracy and other shares, from the window's and the reference's label counts). Empty: the bound alone decides.",
    )
    min: dict[str, float] = Field(default={}, description="Absolute floors per metric, e.g. {roc_auc: 0.7}.")
    max: dict[str, float] = Field(default={}, description="Absolute ceilings per metric, e.g. {log_loss: 0.6}.")
    max_drop: dict[str, float] | None = Field(
        default=None,
        description="Allowed absolute drop of higher-is-better metrics below the reference's value. Empty: "
        "{roc_auc: 0.05} for probability models, {accuracy: 0.05} for class models, none for regression.",
    )
    max_increase_ratio: dict[str, float] | None = Field(
        default=None,
        description="Allowed relative rise of error metrics above the reference's value (0.2: 20% higher). Empty: {rmse: 0.2} for regression, none otherwise.",
    )

    @field_validator("min", "max")
    @classmethod
    def _absolute(cls, bounds: dict[str, float], info: Any) -> dict[str, float]:
        valid = performance.metric_names()
        for name, value in bounds.items():
            if name not in valid:
                raise ValueError(_unknown("performance metric", name, valid))
            low, high = performance.metric_limits(name)
            if not (math.isfinite(value) and low <= value <= high):
                raise ValueError(f"{info.field_name}.{name}={value} is outside the metric's limits [{low}, {high}]")
        return bounds

    @field_validator("max_drop")
    @classmethod
    def _drops(cls, drops: dict[str, float] | None) -> dict[str, float] | None:
        valid = performance.metric_names("higher")
        for name, value in (drops or {}).items():
            if name not in valid:
                raise ValueError(_unknown("higher-is-better metric", name, valid))
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"max_drop.{name} is an allowed drop, at least 0, got {value}")
        return drops

    @field_validator("max_increase_ratio")
    @classmethod
    def _rises(cls, rises: dict[str, float] | None) -> dict[str, float] | None:
        valid = performance.metric_names("lower")
        for name, value in (rises or {}).items():
            if name not in valid:
                raise ValueError(_unknown("error metric", name, valid))
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"max_increase_ratio.{name} is a relative rise, at least 0 (0.2: 20% higher), got {value}")
        return rises


# -------------------------------------------------------------------------- multivariate


class MultivariateSettings(_Strict):
    """Multivariate drift (check ``multivariate_drift``): the PCA reconstruction error of the
    numeric features, which rises when the way they move together changes even if no single
    column does."""

    enabled: bool = Field(default=True, description="Run the check (needs at least two numeric features that vary in the reference).")
    variance: float = Field(default=0.65, gt=0.0, lt=1.0, description="Share of the standardised variance the kept principal axes explain (NannyML's default).")
    false_alarm_rate: float = Field(default=0.01, ge=0.0001, le=0.2, description="Share of unchanged windows allowed to breach.")
    min_effect: float = Field(default=0.1, ge=0.0, description="Smallest rise of the mean reconstruction error that may breach, relative to the reference's (0.1: 10%).")


# ------------------------------------------------------------------------------ together


class ChecksSettings(_Strict):
    """The ``checks:`` section: each family uses its defaults when omitted."""

    drift: DriftSettings = Field(default=DriftSettings(), description="Distribution drift of features, prediction and target.")
    quality: QualitySettings = Field(default=QualitySettings(), description="Data quality of the window.")
    latency: LatencySettings = Field(default=LatencySettings(), description="Latency percentiles.")
    performance: PerformanceSettings = Field(default=PerformanceSettings(), description="Model performance against labels.")
    multivariate: MultivariateSettings = Field(default=MultivariateSettings(), description="Multivariate drift of the numeric features.")

    def fingerprint(self) -> str:
        """Stable id of these settings: equal settings, equal fingerprint."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:16]
