"""The ``checks:`` config contract: defaults, strictness, and error messages naming valid values."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from checks import drift
from checks.settings import (
    ChecksSettings,
    DriftSettings,
    LatencySettings,
    MethodChoice,
    PerformanceSettings,
    QualitySettings,
)


def test_defaults() -> None:
    s = ChecksSettings.model_validate({"drift": {}, "quality": {}, "latency": {"p95_max_ms": 250}, "performance": {}})
    assert s.drift.numeric == MethodChoice(method="wasserstein") and s.drift.categorical.method == "jensen_shannon"
    assert s.drift.numeric.threshold is None and s.drift.p_value is None and s.drift.bins == 10  # calibrated
    assert s.drift.false_alarm_rate == 0.01 and s.drift.min_effect_for("wasserstein") == 0.1 and s.drift.min_effect_for("ks") == 0.0
    assert s.multivariate.enabled and s.multivariate.variance == 0.65
    assert s.drift.report == ["ks", "psi", "chi2"]
    assert s.latency.p95_max_ms == 250.0 and s.latency.p99_max_ms is None
    assert s.quality.missing_share_increase == 0.05 and s.performance.min_labels == 100
    assert ChecksSettings.model_validate({}) == ChecksSettings()


def test_a_family_can_be_switched_off() -> None:
    s = ChecksSettings.model_validate({"drift": {"enabled": False}})
    assert not s.drift.enabled and s.quality.enabled


def test_method_choice_accepts_a_bare_name_and_overrides() -> None:
    s = DriftSettings.model_validate({"numeric": "psi", "columns": {"age": {"method": "ks", "threshold": 0.001}}})
    assert s.numeric.method == "psi" and s.numeric.effective_threshold == 0.2
    assert s.choice_for("age", "numeric").effective_threshold == 0.001
    assert s.choice_for("income", "numeric").method == "psi"


@pytest.mark.parametrize(
    "data,fragment",
    [
        ({"drift": {"numeric": "wasserstien"}}, "did you mean 'wasserstein'"),
        ({"drift": {"numeric": "nope"}}, "valid: anderson_darling, chi2, cramer_von_mises, hellinger"),
        ({"drift": {"categorical": "ks"}}, "does not apply to categorical"),
        ({"drift": {"numeric": {"method": "jensen_shannon", "threshold": 1.5}}}, "outside its limits [0.0, 1.0]"),
        ({"drift": {"numeric": {"method": "ks", "threshold": 0}}}, "p-value strictly between 0 and 1"),
        ({"drift": {"numeric": {"method": "psi", "threshold": -0.1}}}, "outside its limits"),
        ({"drift": {"report": ["psi", "cramer"]}}, "unknown drift method 'cramer'"),
        ({"drift": {"p_value": 1.5}}, "strictly between 0 and 1"),
        ({"drift": {"bins": 1}}, "between 2 and 100"),
        ({"drift": {"columns": {"x": {"method": "psi", "thresold": 0.1}}}}, "Extra inputs"),
        ({"drift": {"threshold": 0.1}}, "Extra inputs"),
        ({"qualty": {}}, "Extra inputs"),
        ({"quality": {"missing_share_max": 1.5}}, "less than or equal to 1"),
        ({"latency": {"p95_max_ratio": 0.2}}, "at least 1 (1.5 allows 50% above it)"),
        ({"latency": {"p99_max_ms": 0}}, "greater than 0"),
        ({"performance": {"min": {"auc": 0.7}}}, "did you mean 'roc_auc'"),
        ({"performance": {"min": {"roc_auc": 1.2}}}, "outside the metric's limits"),
        ({"performance": {"max_drop": {"log_loss": 0.1}}}, "unknown higher-is-better metric"),
        ({"performance": {"max_increase_ratio": {"r2": 0.1}}}, "unknown error metric"),
        ({"performance": {"max_increase_ratio": {"rmse": -0.1}}}, "at least 0"),
        ({"performance": {"threshold": 2}}, "less than or equal to 1"),
    ],
)
def test_invalid_settings_say_what_is_valid(data: dict, fragment: str) -> None:
    with pytest.raises(ValidationError) as info:
        ChecksSettings.model_validate(data)
    assert fragment in str(info.value)


def test_errors_carry_the_key_path() -> None:
    with pytest.raises(ValidationError) as info:
        ChecksSettings.model_validate({"drift": {"columns": {"age": {"method": "nope"}}}})
    assert info.value.errors()[0]["loc"][:3] == ("drift", "columns", "age")


def test_settings_are_frozen_and_fingerprinted() -> None:
    s = ChecksSettings()
    with pytest.raises(ValidationError):
        s.drift = DriftSettings()  # type: ignore[misc]
    a = ChecksSettings.model_validate({"performance": {"min": {"f1": 0.5, "roc_auc": 0.7}}})
    b = ChecksSettings.model_validate({"performance": {"min": {"roc_auc": 0.7, "f1": 0.5}}})
    assert a.fingerprint() == b.fingerprint() != s.fingerprint()


@pytest.mark.parametrize("model", [ChecksSettings, DriftSettings, QualitySettings, LatencySettings, PerformanceSettings, MethodChoice])
def test_every_field_is_described_for_the_readme(model: type[BaseModel]) -> None:
    for name, field in model.model_fields.items():
        assert field.description, f"{model.__name__}.{name} needs a description"


def test_every_default_threshold_is_valid_for_its_method() -> None:
    for name in drift.REGISTRY:
        MethodChoice(method=name)  # the default threshold passes the method's own limits
