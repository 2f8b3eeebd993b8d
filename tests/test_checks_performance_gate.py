"""The significance gate of performance comparisons with the reference."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from checks.performance import auc_standard_error, change_p_value, performance_results
from checks.profiles import BinaryPerformance, DatasetProfile
from checks.results import Status
from checks.roles import Roles
from checks.settings import PerformanceSettings

ROLES = Roles(prediction="score", prediction_kind="probability", target="label")


def sample(rng: np.random.Generator, n: int, separation: float) -> tuple[np.ndarray, np.ndarray]:
    labels = (rng.uniform(size=n) < 0.25).astype(float)
    scores = 1 / (1 + np.exp(-(rng.normal(size=n) + separation * labels - 1)))
    return np.round(scores, 3), labels


def profile(scores: np.ndarray, labels: np.ndarray) -> DatasetProfile:
    return DatasetProfile(rows=len(labels), columns={}, performance=BinaryPerformance.from_arrays(scores, labels))


def test_hanley_mcneil_matches_the_bootstrap() -> None:
    rng = np.random.default_rng(3)
    scores, labels = sample(rng, 800, 1.0)
    auc = roc_auc_score(labels, scores)
    boot = []
    for _ in range(600):
        i = rng.integers(0, len(labels), len(labels))
        if labels[i].min() != labels[i].max():
            boot.append(roc_auc_score(labels[i], scores[i]))
    se = auc_standard_error(auc, int(labels.sum()), int((1 - labels).sum()))
    assert se == pytest.approx(np.std(boot), rel=0.15)


def test_change_p_value_is_one_sided_normal_tail() -> None:
    rng = np.random.default_rng(4)
    ref = BinaryPerformance.from_arrays(*sample(rng, 20000, 1.0))
    cur = BinaryPerformance.from_arrays(*sample(rng, 500, 1.0))
    p = change_p_value("accuracy", cur, ref, 0.70, 0.75)
    se = np.sqrt(0.7 * 0.3 / 500 + 0.75 * 0.25 / 20000)
    from scipy.stats import norm

    assert p == pytest.approx(norm.sf(0.05 / se), rel=1e-9)


def test_noisy_small_window_does_not_breach_but_a_real_drop_does() -> None:
    rng = np.random.default_rng(5)
    reference = profile(*sample(rng, 20000, 1.0))
    settings = PerformanceSettings()
    # Same model quality, small window: observed drops are noise. Over many windows, the gate
    # keeps breaches rare (without it, about 1 in 8 windows of 300 rows would breach).
    breaches = 0
    for _ in range(200):
        window = profile(*sample(rng, 300, 1.0))
        auc = next(r for r in performance_results(reference, window, ROLES, settings) if r.metric == "roc_auc")
        breaches += auc.status is Status.BREACH
    assert breaches <= 4
    # A large window whose model really got worse breaches, with its p-value in the details.
    worse = profile(*sample(rng, 20000, 0.6))
    auc = next(r for r in performance_results(reference, worse, ROLES, settings) if r.metric == "roc_auc")
    assert auc.status is Status.BREACH and auc.details["significant"] and auc.details["p_value"] < 1e-6
    # Switching the gate off restores the bare bound.
    ungated = PerformanceSettings(p_value=None)
    noisy = [
        next(r for r in performance_results(reference, profile(*sample(rng, 300, 1.0)), ROLES, ungated) if r.metric == "roc_auc").status
        for _ in range(200)
    ]
    assert noisy.count(Status.BREACH) > breaches
