"""The pure alert policy: a table of scenarios, one comment per case.

Each case plays windows in order through ``decide`` (states carried over, like the store does)
and checks the last decision: the notification's reason and contents, each alert's state and
reason, and the retrain decision.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from alerts.policy import (
    Alert,
    AlertKey,
    AlertStatus,
    Decision,
    Reason,
    RetrainRecord,
    Silence,
    decide,
    observe,
)
from alerts.settings import AlertSettings
from checks.results import Direction, MetricResult, Status

UTC = timezone.utc
T0 = datetime(2026, 3, 1, tzinfo=UTC)
DAY = timedelta(days=1)
M = "credit"


def window(i: int) -> tuple[datetime, datetime]:
    return T0 + i * DAY, T0 + (i + 1) * DAY


def drift(column: str, value: float = 0.3, *, ok: bool = False, segment: str = "*") -> MetricResult:
    status = Status.OK if ok else Status.BREACH
    return MetricResult("drift", column, "wasserstein", value, status, 0.1, Direction.MAX, segment, {"severity": value / 0.1})


def latency(value: float = 300.0, *, ok: bool = False) -> MetricResult:
    return MetricResult("latency", "latency_ms", "p95", value, Status.OK if ok else Status.BREACH, 250.0, Direction.MAX)


def auc(value: float = 0.6, *, ok: bool = False) -> MetricResult:
    return MetricResult("performance", "score", "roc_auc", value, Status.OK if ok else Status.BREACH, 0.7, Direction.MIN)


def rows(n: float = 3000.0) -> MetricResult:
    if n == 0:
        return MetricResult("quality", "", "row_count", 0.0, Status.NO_DATA, 1.0, Direction.MIN, details={"reason": "the window is empty"})
    return MetricResult("quality", "", "row_count", n, Status.OK, 1.0, Direction.MIN)


FAILED = [MetricResult("pipeline", "", "run_failed", 1.0, Status.BREACH, threshold=0.0, details={"error": "SourceError: no such file"})]
EMPTY = [rows(0), MetricResult("drift", "income", "wasserstein", None, Status.NO_DATA, 0.1, Direction.MAX)]


def healthy(*columns: str) -> list[MetricResult]:
    return [rows(), *(drift(c, 0.05, ok=True) for c in columns)]


def key(check: str, column: str = "", segment: str = "*") -> AlertKey:
    return AlertKey(M, check, column, segment)


@dataclass
class Step:
    results: list[MetricResult]
    window: int  # index of the day
    after: timedelta = timedelta(minutes=10)  # wall clock: this long after the window ends
    silences: tuple[Silence, ...] = ()


def play(steps: list[Step], settings: AlertSettings, last_retrain: RetrainRecord | None = None) -> list[Decision]:
    states: dict[AlertKey, Alert] = {}
    decisions = []
    retrain = last_retrain
    for step in steps:
        start, end = window(step.window)
        now = end + step.after
        decision = decide(states, observe(M, step.results), now, settings, list(step.silences), window=(start, end), last_retrain=retrain)
        states = {k: a for k, a in decision.states.items()}
        if decision.retrain is not None:
            retrain = RetrainRecord(end, now)
        decisions.append(decision)
    return decisions


def silence(ends_day: int, **match: Any) -> Silence:
    return Silence(M, ends_at=T0 + ends_day * DAY + timedelta(hours=1), starts_at=T0 - DAY, **match)


@dataclass
class Case:
    id: str
    steps: list[Step]
    settings: dict[str, Any] = field(default_factory=dict)
    reason: Reason | None = None  # the last notification's reason, None: no notification
    firing: list[AlertKey] = field(default_factory=list)  # in the last notification
    resolved: list[AlertKey] = field(default_factory=list)
    ongoing: list[AlertKey] = field(default_factory=list)
    states: dict[AlertKey, tuple[AlertStatus, Reason]] = field(default_factory=dict)
    retrain: bool | None = None  # None: not checked
    last_retrain: RetrainRecord | None = None


RETRAIN = {"repeat_interval": "30d", "retrain": {"channel": "jobs", "sustained_windows": 3, "cooldown": "7d", "checks": ["drift", "performance"]}}

CASES = [
    # A first breach fires at once (for_windows 1) and notifies: reason FIRST.
    Case("first-breach-fires", [Step([rows(), drift("income")], 0)], reason=Reason.FIRST,
         firing=[key("drift", "income")], states={key("drift", "income"): (AlertStatus.FIRING, Reason.FIRST)}),
    # for_windows 3: two breaching windows are only pending; nothing is sent.
    Case("pending-below-for-windows", [Step([drift("income")], 0), Step([drift("income")], 1)], {"for_windows": 3},
         reason=None, states={key("drift", "income"): (AlertStatus.PENDING, Reason.DO_NOT_NOTIFY)}),
    # for_windows 3: the third consecutive breaching window fires.
    Case("fires-at-for-windows", [Step([drift("income")], i) for i in range(3)], {"for_windows": 3},
         reason=Reason.FIRST, firing=[key("drift", "income")]),
    # for_windows 3: a healthy window in between starts the count again.
    Case("healthy-window-resets-count", [Step([drift("income")], 0), Step(healthy("income"), 1), Step([drift("income")], 2), Step([drift("income")], 3)],
         {"for_windows": 3}, reason=None, states={key("drift", "income"): (AlertStatus.PENDING, Reason.DO_NOT_NOTIFY)}),
    # 25 columns breaching in one run: ONE notification listing all of them (no storm).
    Case("grouped-25-breaches", [Step([drift(f"f{i:02d}") for i in range(25)], 0)], reason=Reason.FIRST,
         firing=[key("drift", f"f{i:02d}") for i in range(25)]),
    # Still firing the next window, repeat interval (1d wall clock) not yet over: silence.
    Case("firing-within-repeat", [Step([drift("income")], 0), Step([drift("income")], 1, after=timedelta(hours=-1))],
         {"repeat_interval": "1d"}, reason=None, states={key("drift", "income"): (AlertStatus.FIRING, Reason.DO_NOT_NOTIFY)}),
    # Still firing after the repeat interval: a reminder.
    Case("repeat-due", [Step([drift("income")], 0), Step([drift("income")], 1)], {"repeat_interval": "1d"},
         reason=Reason.REPEAT_DUE, firing=[key("drift", "income")], states={key("drift", "income"): (AlertStatus.FIRING, Reason.REPEAT_DUE)}),
    # A new breach joins an incident already notified: only the new one is announced, the old one
    # is listed as ongoing; reason NEW_BREACHES (Slack threads it under the first message).
    Case("new-breach-joins-incident", [Step([drift("income")], 0), Step([drift("income"), latency()], 1, after=timedelta(hours=-12))],
         {"repeat_interval": "2d"}, reason=Reason.NEW_BREACHES, firing=[key("latency", "latency_ms")], ongoing=[key("drift", "income")]),
    # A firing alert whose window is healthy again: one "resolved" message.
    Case("resolved-once", [Step([drift("income")], 0), Step(healthy("income"), 1)], reason=Reason.RESOLVED,
         resolved=[key("drift", "income")], states={key("drift", "income"): (AlertStatus.RESOLVED, Reason.RESOLVED)}),
    # ...and only once: the next healthy window says nothing.
    Case("resolved-not-repeated", [Step([drift("income")], 0), Step(healthy("income"), 1), Step(healthy("income"), 2)],
         reason=None, states={key("drift", "income"): (AlertStatus.OK, Reason.DO_NOT_NOTIFY)}),
    # resolve_windows 2: one healthy window keeps it firing (no flapping resolve/fire)...
    Case("resolve-windows-keeps-firing", [Step([drift("income")], 0), Step(healthy("income"), 1, after=timedelta(hours=-1))], {"resolve_windows": 2},
         reason=None, states={key("drift", "income"): (AlertStatus.FIRING, Reason.DO_NOT_NOTIFY)}),
    # ...and a breach after it does not announce anything new...
    Case("resolve-windows-flap-absorbed", [Step([drift("income")], 0), Step(healthy("income"), 1, after=timedelta(hours=-1)),
                                           Step([drift("income")], 2)], {"resolve_windows": 2, "repeat_interval": "7d"}, reason=None),
    # ...while two healthy windows in a row resolve it.
    Case("resolve-windows-resolves", [Step([drift("income")], 0), Step(healthy("income"), 1, after=timedelta(hours=-1)),
                                      Step(healthy("income"), 2, after=timedelta(hours=-2))], {"resolve_windows": 2},
         reason=Reason.RESOLVED, resolved=[key("drift", "income")]),
    # A pending alert that clears was never announced, so its clearing is not either.
    Case("pending-clears-quietly", [Step([drift("income")], 0), Step(healthy("income"), 1)], {"for_windows": 2}, reason=None,
         states={key("drift", "income"): (AlertStatus.OK, Reason.DO_NOT_NOTIFY)}),
    # A silence on (monitor, check, column) mutes the alert; it still fires in the store.
    Case("silenced", [Step([drift("income"), latency()], 0, silences=(silence(5, check="drift", column="income"),))],
         reason=Reason.FIRST, firing=[key("latency", "latency_ms")],
         states={key("drift", "income"): (AlertStatus.FIRING, Reason.SILENCED)}),
    # A silence of the whole monitor mutes everything: no notification at all.
    Case("silenced-monitor", [Step([drift("income"), latency()], 0, silences=(silence(5),))], reason=None),
    # A silence of another column does not apply.
    Case("silence-other-column", [Step([drift("income")], 0, silences=(silence(5, check="drift", column="age"),))],
         reason=Reason.FIRST, firing=[key("drift", "income")]),
    # When the silence ends and the alert still fires, it is announced as new (it never was).
    Case("silence-expired", [Step([drift("income")], 0, silences=(silence(2),)), Step([drift("income")], 1, silences=(silence(2),)),
                             Step([drift("income")], 2, silences=(silence(2),))],
         reason=Reason.FIRST, firing=[key("drift", "income")]),
    # A failed run fires the pipeline alert (joining the open incident); a drift alert firing since
    # before is inhibited (its reminder is due, but the failure is what matters now).
    Case("failed-run-inhibits", [Step([drift("income")], 0), Step(FAILED, 1, after=timedelta(days=2))],
         reason=Reason.NEW_BREACHES, firing=[key("pipeline")], ongoing=[key("drift", "income")],
         states={key("pipeline"): (AlertStatus.FIRING, Reason.FIRST), key("drift", "income"): (AlertStatus.FIRING, Reason.INHIBITED)}),
    # An empty window fires no_data at once (even with for_windows 3); drift keys are held.
    Case("empty-window-fires-no-data", [Step([drift("income")], 0), Step(EMPTY, 1, after=timedelta(days=2))], {"for_windows": 1},
         reason=Reason.NEW_BREACHES, firing=[key("no_data")], ongoing=[key("drift", "income")],
         states={key("no_data"): (AlertStatus.FIRING, Reason.FIRST), key("drift", "income"): (AlertStatus.FIRING, Reason.INHIBITED)}),
    # Breaches found while no_data fires (a segment with rows, say) are inhibited too.
    Case("breach-beside-no-data-inhibited", [Step([rows(0), drift("income", segment="region=EU")], 0)], {"for_windows": 3},
         reason=Reason.FIRST, firing=[key("no_data")],
         states={key("drift", "income", "region=EU"): (AlertStatus.PENDING, Reason.DO_NOT_NOTIFY)}),
    # A stale source (the service's freshness check) fires at once and inhibits like no_data.
    Case("stale-source-inhibits", [Step([drift("income")], 0, after=timedelta(hours=1)),
                                   Step([MetricResult("freshness", "", "lag_seconds", 9000.0, Status.BREACH, 7200.0, Direction.MAX), drift("age")], 1, after=timedelta(days=2))],
         {"for_windows": 1}, reason=Reason.NEW_BREACHES, firing=[key("freshness")], ongoing=[key("drift", "income")],
         states={key("drift", "age"): (AlertStatus.FIRING, Reason.INHIBITED), key("freshness"): (AlertStatus.FIRING, Reason.FIRST)}),
    # The next successful run resolves the pipeline alert (and the drift alert goes on firing).
    Case("pipeline-recovers", [Step(FAILED, 0), Step(healthy("income"), 1)], reason=Reason.RESOLVED, resolved=[key("pipeline")]),
    # A re-run of the failed window that succeeds resolves the failure at once.
    Case("rerun-of-failed-window", [Step(FAILED, 0), Step(healthy(), 0)], reason=Reason.RESOLVED, resolved=[key("pipeline")]),
    # Re-running a breaching window neither counts it twice nor notifies again.
    Case("rerun-same-window", [Step([drift("income")], 0), Step([drift("income")], 0, after=timedelta(hours=1))], {"for_windows": 2},
         reason=None, states={key("drift", "income"): (AlertStatus.PENDING, Reason.DO_NOT_NOTIFY)}),
    # An older window (backfilled after newer ones) cannot resolve or reopen anything.
    Case("stale-window-ignored", [Step([drift("income")], 5), Step(healthy("income"), 2)], reason=None,
         states={key("drift", "income"): (AlertStatus.FIRING, Reason.DO_NOT_NOTIFY)}),
    # A window without any result for the key holds it as it is (no resolve on missing evidence).
    Case("missing-evidence-holds", [Step([drift("income")], 0), Step(healthy("age"), 1, after=timedelta(days=2))], reason=None,
         states={key("drift", "income"): (AlertStatus.FIRING, Reason.DO_NOT_NOTIFY)}),
    # Severity: 3x past the threshold is critical (critical_above 2); 1.5x is a warning.
    Case("severity", [Step([drift("income", 0.3), drift("age", 0.15)], 0)], reason=Reason.FIRST,
         firing=[key("drift", "income"), key("drift", "age")]),  # critical first
    # Retraining: drift sustained for 3 windows triggers it on the third...
    Case("retrain-after-sustained", [Step([drift("income")], i) for i in range(3)], RETRAIN, reason=None, retrain=True),
    # ...not before...
    Case("no-retrain-before-sustained", [Step([drift("income")], i) for i in range(2)], RETRAIN, reason=None, retrain=False),
    # ...and once per cooldown: day 4 is within 7 days of the retrain on day 2.
    Case("retrain-cooldown", [Step([drift("income")], i) for i in range(5)], RETRAIN, reason=None, retrain=False),
    # After the cooldown (on both clocks) a still-sustained breach retrains again.
    Case("retrain-after-cooldown", [Step([drift("income")], i) for i in range(10)], RETRAIN, reason=None, retrain=True),
    # A backfill: windows 7+ days apart but processed within minutes: the wall clock holds it back.
    Case("retrain-backfill-wall-clock", [Step([drift("income")], i, after=timedelta(days=-i)) for i in range(10)], RETRAIN,
         reason=None, retrain=False, last_retrain=RetrainRecord(T0 + 3 * DAY, T0 + DAY * 3)),
    # Never twice for one window: re-run a month later (wall-clock cooldown over), still no retrain
    # (a reminder of the still-firing alert is due by then, though).
    Case("retrain-not-twice-same-window", [Step([drift("income")], i) for i in range(3)] + [Step([drift("income")], 2, after=timedelta(days=30))],
         RETRAIN, reason=Reason.REPEAT_DUE, firing=[key("drift", "income")], retrain=False),
    # A segment's sustained breach does not retrain (segments: false, the default)...
    Case("retrain-ignores-segments", [Step([drift("income", segment="region=EU")], i) for i in range(3)], RETRAIN, reason=None, retrain=False),
    # ...unless asked to.
    Case("retrain-counts-segments", [Step([drift("income", segment="region=EU")], i) for i in range(3)],
         {**RETRAIN, "retrain": {**RETRAIN["retrain"], "segments": True}}, reason=None, retrain=True),
    # Latency is not a retraining check.
    Case("retrain-checks-filter", [Step([latency()], i) for i in range(3)], RETRAIN, reason=None, retrain=False),
    # Performance is.
    Case("retrain-on-performance", [Step([auc()], i) for i in range(3)], RETRAIN, reason=None, retrain=True),
    # A silenced breach does not retrain.
    Case("retrain-silenced", [Step([drift("income")], i, silences=(silence(30),)) for i in range(3)], RETRAIN, reason=None, retrain=False),
    # Nor one while the pipeline is failing (a sustained breach of a segment beside a failed run).
    Case("retrain-inhibited", [Step([drift("income")], 0), Step([drift("income")], 1), Step([*FAILED, drift("income")], 2)], RETRAIN,
         reason=Reason.NEW_BREACHES, firing=[key("pipeline")], ongoing=[key("drift", "income")], retrain=False),
]


def _settings(overrides: dict[str, Any]) -> AlertSettings:
    return AlertSettings.model_validate({"repeat_interval": "1d", **overrides})


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_policy(case: Case) -> None:
    decisions = play(case.steps, _settings(case.settings), case.last_retrain)
    last = decisions[-1]
    note = last.notification
    if case.reason is None:
        assert note is None, f"unexpected notification {note}"
    else:
        assert note is not None and note.reason is case.reason
        assert [a.key for a in note.firing] == case.firing
        assert [a.key for a in note.resolved] == case.resolved
        assert [a.key for a in note.ongoing] == case.ongoing
    for k, (status, reason) in case.states.items():
        assert (last.states[k].status, last.states[k].reason) == (status, reason), k
    if case.retrain is not None:
        assert (last.retrain is not None) == case.retrain


def test_severity_and_incident_and_timestamps() -> None:
    settings = _settings({})
    first, second, third = play([Step([drift("income", 0.3), drift("age", 0.15)], 0), Step([drift("income"), drift("age"), latency()], 1, after=timedelta(hours=-2)),
                                 Step(healthy("income", "age") + [latency(100, ok=True)], 2)], settings)
    income, age = first.states[key("drift", "income")], first.states[key("drift", "age")]
    assert (income.severity, age.severity) == ("critical", "warning")
    assert income.since == T0 and income.fired_at == window(0)[1] + timedelta(minutes=10) == income.last_notified_at
    # every message of one incident carries its id; the last resolution closes it
    assert first.notification and second.notification and third.notification
    assert first.notification.incident == second.notification.incident == third.notification.incident
    assert not second.notification.closes_incident and third.notification.closes_incident
    assert {a.key for a in third.notification.resolved} == {key("drift", "income"), key("drift", "age"), key("latency", "latency_ms")}


def test_observe_maps_results_to_keys() -> None:
    seen = observe(M, [rows(), drift("income"), drift("age", 0.01, ok=True),
                       MetricResult("quality", "age", "missing_share", 0.3, Status.BREACH, 0.05, Direction.MAX),
                       MetricResult("quality", "age", "invalid_share", 0.0, Status.OK, 0.01, Direction.MAX),
                       MetricResult("prediction", "score", "mean", 0.3, Status.INFO),
                       MetricResult("drift", "debt", "wasserstein", None, Status.ERROR)])
    assert seen[key("drift", "income")] and seen[key("drift", "age")] is None
    assert [b.metric for b in seen[key("quality", "age")] or ()] == ["missing_share"]  # breach beats ok
    assert seen[key("pipeline")] is None and seen[key("no_data")] is None  # the run completed, with rows
    assert key("prediction", "score") not in seen and key("drift", "debt") not in seen  # info/error say nothing
    failed = observe(M, FAILED)
    assert failed[key("pipeline")] and key("no_data") not in failed


def test_decide_is_pure_and_deterministic() -> None:
    args = ({}, observe(M, [drift("income")]), T0 + DAY, _settings({}), [])
    assert decide(*args, window=window(0)) == decide(*args, window=window(0))
