"""Driftline's verdicts, in-process, with its default settings: the one place that knows the API.

Kept to one small function on purpose, because the API is growing: calibrated thresholds
(``checks.calibration``) also learn from the profiles of the reference's own windows. When that
module exists the adapter learns ``reference_variation`` from them and passes it to ``evaluate``;
otherwise it calls plain ``evaluate``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pandas as pd

from checks.calibration import reference_variation
from checks.evaluate import DRIFT, evaluate
from checks.results import ALL, Status
from checks.roles import Roles
from checks.settings import ChecksSettings
from monitor.config import ProfileSettings
from monitor.engine.pandas_engine import ProfilePlan, fit_binnings, profile_batches


def driftline_mode() -> str:
    return "evaluate(..., variation=checks.calibration.reference_variation(reference, reference windows))"


def driftline_flags(
    reference: pd.DataFrame,
    reference_windows: Sequence[pd.DataFrame],
    windows: Iterable[pd.DataFrame],
    numeric: Sequence[str],
    categorical: Sequence[str],
) -> list[dict[str, bool]]:
    """For each window (consumed one at a time, so a generator keeps memory flat), whether each
    feature's ``drift`` verdict is a breach, with Driftline's defaults: binnings fitted on
    ``reference`` as a monitor fits them (``profile.bins``/``profile.top_k`` defaults),
    ``ChecksSettings()``, segment ``*``. ``reference_windows`` are the reference's own windows
    (its hours, or equal row-order chunks), from which the calibration learns their variation."""
    profile = ProfileSettings()
    binnings, _ = fit_binnings([reference], list(numeric), list(categorical), bins=profile.bins, top_k=profile.top_k)
    roles = Roles(numeric=tuple(numeric), categorical=tuple(categorical))
    plan = ProfilePlan(roles=roles, binnings=binnings)
    settings = ChecksSettings()
    reference_profile = profile_batches([reference], plan)[ALL]

    chunks = [profile_batches([w], plan)[ALL] for w in reference_windows]
    variation = reference_variation(reference_profile, chunks, roles, settings.drift)

    flags: list[dict[str, bool]] = []
    for window in windows:
        current = profile_batches([window], plan)[ALL]
        results = evaluate(reference_profile, current, roles, settings, segment=ALL, variation=variation)
        verdicts = {c: False for c in roles.features}
        for r in results:
            if r.check != DRIFT or r.column not in verdicts:  # e.g. the run-level row (column "")
                continue
            if r.threshold is not None and r.status in (Status.BREACH, Status.OK):
                verdicts[r.column] = r.status is Status.BREACH
            elif r.status is Status.ERROR:
                raise RuntimeError(f"Driftline's drift check failed on {r.column}: {r.details.get('error')}")
        flags.append(verdicts)
    return flags
