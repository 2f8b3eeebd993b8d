"""The alert policy: pure decisions from a run's results and the alerts' previous states.

Nothing here reads a clock, a database or the network: ``now`` is passed in, and the same inputs
always give the same :class:`Decision`. ``monitor.notify`` loads the inputs, stores the outputs
and queues the deliveries.

An alert is keyed by (monitor, check, column, segment) and moves through

    ok -> pending -> firing -> resolved -> ok

- a breaching window makes it pending, and firing once ``for_windows`` consecutive windows
  breached (failed runs and empty windows fire at once);
- a healthy window (a result of the key that passed, and none that breached) clears a pending
  alert, and resolves a firing one (after ``resolve_windows`` healthy windows in a row);
- a window that says nothing about the key (no result, only ``no_data``/``error``/``info`` rows,
  or an older window than the alert last saw) holds the alert as it is.

Each run yields at most one grouped :class:`Notification` per monitor: alerts that fire for the
first time, firing alerts whose repeat interval passed, and alerts that resolved. Every alert gets
a :class:`Reason`, the why of what was (not) sent. A firing ``pipeline`` alert (the run failed),
``no_data`` alert (the window was empty) or ``freshness`` alert (the source is stale) inhibits
every other alert of the monitor, and keeps retraining off. Silences mute matching alerts (and keep them from retraining) until they end; an
alert that is still firing then notifies as new.

>>> from datetime import datetime, timezone
>>> from checks.results import MetricResult, Status, Direction
>>> from alerts.settings import AlertSettings
>>> t = datetime(2026, 3, 2, tzinfo=timezone.utc)
>>> psi = MetricResult("drift", "income", "psi", 0.4, Status.BREACH, 0.1, Direction.MAX)
>>> decision = decide({}, observe("credit", [psi]), t, AlertSettings(), [],
...                   window=(t.replace(day=1), t))
>>> decision.notification.reason, [a.key.column for a in decision.notification.firing]
(<Reason.FIRST: 'first'>, ['income'])
>>> decision.states[AlertKey("credit", "drift", "income", "*")].severity
'critical'
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, NamedTuple

from checks.results import ALL, Direction, MetricResult, Status
from alerts.settings import INHIBITORS, NO_DATA, PIPELINE, AlertSettings


class AlertStatus(str, enum.Enum):
    OK = "ok"
    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"


class Reason(str, enum.Enum):
    """Why an alert was (or was not) part of this run's notification."""

    FIRST = "first"  # fired, never notified before (or not since a silence/inhibition ended)
    NEW_BREACHES = "new_breaches"  # (notification level) new alerts join an incident already notified
    REPEAT_DUE = "repeat_due"  # still firing, and the repeat interval has passed since the last notice
    RESOLVED = "resolved"  # was firing and notified; a healthy window cleared it
    SILENCED = "silenced"  # a silence matches it
    INHIBITED = "inhibited"  # a failed run or an empty window of the same monitor is firing
    DO_NOT_NOTIFY = "do_not_notify"  # pending, ok, firing within its repeat interval, or held


@dataclass(frozen=True, order=True)
class AlertKey:
    monitor: str
    check: str
    column: str = ""
    segment: str = ALL

    def __str__(self) -> str:
        where = self.column or "-"
        return f"{self.monitor}/{self.check}/{where}" + ("" if self.segment == ALL else f"[{self.segment}]")


@dataclass(frozen=True)
class Breach:
    """One breaching metric of an alert's key in one window."""

    metric: str
    value: float | None
    threshold: float | None
    direction: str | None
    ratio: float | None  # how far past the threshold: 1 at it, 2 twice as far; None when unknown
    details: dict[str, Any] = field(default_factory=dict)

    _KEPT = ("p_value", "rank", "reference_value", "reference", "error", "reason", "test", "statistic")

    @classmethod
    def from_result(cls, result: MetricResult) -> Breach:
        details = {k: result.details[k] for k in cls._KEPT if k in result.details and _plain(result.details[k])}
        return cls(
            metric=result.metric,
            value=result.value,
            threshold=result.threshold,
            direction=None if result.direction is None else result.direction.value,
            ratio=_ratio(result),
            details=details,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric, "value": self.value, "threshold": self.threshold,
            "direction": self.direction, "ratio": self.ratio, "details": dict(self.details),
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Breach:
        return cls(data["metric"], data.get("value"), data.get("threshold"), data.get("direction"), data.get("ratio"), dict(data.get("details") or {}))


def _plain(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _ratio(result: MetricResult) -> float | None:
    """How far past its threshold a breach is: the check's own severity when it gives one
    (drift: effect/threshold, or a p-value's log ratio), else value/threshold (or threshold/value
    for floors)."""
    given = result.details.get("severity")
    if isinstance(given, (int, float)) and math.isfinite(given):
        return float(given)
    value, threshold = result.value, result.threshold
    if value is None or threshold is None:
        return None
    if result.direction is Direction.MIN:
        return threshold / value if value > 0 else None
    if threshold > 0:
        return value / threshold
    return None


@dataclass(frozen=True)
class Alert:
    """The state of one alert key after a decision."""

    key: AlertKey
    status: AlertStatus = AlertStatus.OK
    severity: str | None = None
    consecutive: int = 0  # consecutive breaching windows, up to the last one seen
    healthy: int = 0  # consecutive healthy windows of a firing alert (it resolves at resolve_windows)
    since: datetime | None = None  # start of the first window of the current breach
    last_window_end: datetime | None = None  # end of the last window that said something about the key
    fired_at: datetime | None = None
    resolved_at: datetime | None = None
    last_notified_at: datetime | None = None
    incident: str | None = None
    breaches: tuple[Breach, ...] = ()
    reason: Reason = Reason.DO_NOT_NOTIFY

    @property
    def firing(self) -> bool:
        return self.status is AlertStatus.FIRING


@dataclass(frozen=True)
class Silence:
    """Mutes alerts of ``monitor`` that match every given field, in ``[starts_at, ends_at)``."""

    monitor: str
    ends_at: datetime
    starts_at: datetime | None = None
    check: str | None = None
    column: str | None = None
    segment: str | None = None
    reason: str = ""
    id: int | None = None

    def matches(self, key: AlertKey, now: datetime) -> bool:
        if key.monitor != self.monitor or now >= self.ends_at or (self.starts_at is not None and now < self.starts_at):
            return False
        return all(want is None or want == got for want, got in ((self.check, key.check), (self.column, key.column), (self.segment, key.segment)))


@dataclass(frozen=True)
class RetrainRecord:
    """The last retraining of a monitor: which window triggered it, and when (wall clock)."""

    window_end: datetime
    triggered_at: datetime


@dataclass(frozen=True)
class Notification:
    """One grouped message for one monitor run."""

    monitor: str
    window_start: datetime
    window_end: datetime
    reason: Reason  # FIRST, NEW_BREACHES, REPEAT_DUE or RESOLVED
    incident: str
    firing: tuple[Alert, ...]  # alerts sent now: new (reason FIRST) and reminders (REPEAT_DUE)
    resolved: tuple[Alert, ...]
    ongoing: tuple[Alert, ...]  # still firing, notified earlier, not repeated yet (context)
    closes_incident: bool  # nothing notified is firing any more


@dataclass(frozen=True)
class RetrainDecision:
    monitor: str
    window_start: datetime
    window_end: datetime
    alerts: tuple[Alert, ...]  # the sustained breaches that triggered it
    sustained_windows: int


class Decision(NamedTuple):
    states: dict[AlertKey, Alert]
    notification: Notification | None
    retrain: RetrainDecision | None


# -------------------------------------------------------------------------------- observing

Observed = dict[AlertKey, tuple[Breach, ...] | None]
"""What a run says about each key: its breaches, or ``None`` for healthy. Absent: nothing."""


def observe(monitor: str, results: Iterable[MetricResult]) -> Observed:
    """Turn a run's results into evidence per alert key.

    A key breaches when any of its metrics breached, and is healthy when one passed (``ok``) and
    none breached. A failed run (``pipeline/run_failed``) breaches the ``pipeline`` key; a run
    that completed is healthy evidence for it. An empty window (``quality/row_count`` is
    ``no_data`` over the whole population) breaches the ``no_data`` key.
    """
    breaches: dict[AlertKey, list[Breach]] = {}
    healthy: set[AlertKey] = set()
    failed = False
    for result in results:
        if result.check == PIPELINE:
            failed |= result.status is Status.BREACH
            if result.status is Status.BREACH:
                breaches.setdefault(AlertKey(monitor, PIPELINE, "", ALL), []).append(Breach.from_result(result))
            continue
        if result.check == "quality" and result.metric == "row_count" and result.segment == ALL:
            empty = AlertKey(monitor, NO_DATA, "", ALL)
            if result.status is Status.NO_DATA:
                breaches.setdefault(empty, []).append(
                    Breach("row_count", 0.0, result.threshold, "min", None, {"reason": "the window is empty"})
                )
            else:
                healthy.add(empty)
        key = AlertKey(monitor, result.check, result.column, result.segment)
        if result.status is Status.BREACH:
            breaches.setdefault(key, []).append(Breach.from_result(result))
        elif result.status is Status.OK:
            healthy.add(key)
    observed: Observed = {key: None for key in healthy}
    if not failed:
        observed[AlertKey(monitor, PIPELINE, "", ALL)] = None
    observed.update({key: tuple(found) for key, found in breaches.items()})
    return observed


# -------------------------------------------------------------------------------- deciding


def severity_of(key: AlertKey, breaches: Sequence[Breach], settings: AlertSettings) -> str:
    if key.check in settings.severity.critical_checks:
        return "critical"
    ratios = [b.ratio for b in breaches if b.ratio is not None]
    return "critical" if ratios and max(ratios) >= settings.severity.critical_above else "warning"


def _transition(prev: Alert, evidence: tuple[Breach, ...] | None, now: datetime, start: datetime, end: datetime, settings: AlertSettings) -> Alert:
    """The alert after one window that said something about it (``evidence``: breaches or None)."""
    rerun = prev.last_window_end == end  # the same window again (a re-run replaces its results)
    if evidence:
        breaching_before = prev.status in (AlertStatus.PENDING, AlertStatus.FIRING)
        # A re-run whose window already counted as breaching is not counted twice.
        consecutive = (prev.consecutive if rerun and prev.consecutive else prev.consecutive + 1) if breaching_before else 1
        needed = 1 if prev.key.check in INHIBITORS else settings.for_windows
        status = AlertStatus.FIRING if consecutive >= needed else AlertStatus.PENDING
        was_firing = prev.status is AlertStatus.FIRING
        return replace(
            prev,
            status=status,
            severity=severity_of(prev.key, evidence, settings),
            consecutive=consecutive,
            healthy=0,
            since=prev.since if breaching_before and prev.since is not None else start,
            last_window_end=max(end, prev.last_window_end) if prev.last_window_end else end,
            fired_at=(prev.fired_at if was_firing else now) if status is AlertStatus.FIRING else None,
            resolved_at=None,
            last_notified_at=prev.last_notified_at if was_firing else None,
            incident=prev.incident if was_firing else None,
            breaches=evidence,
        )
    if prev.status is AlertStatus.FIRING:
        healthy = prev.healthy if rerun and prev.healthy else prev.healthy + 1
        if healthy < settings.resolve_windows:  # keep firing until enough healthy windows in a row
            return replace(prev, consecutive=0, healthy=healthy, last_window_end=end)
        return replace(prev, status=AlertStatus.RESOLVED, consecutive=0, healthy=0, last_window_end=end, resolved_at=now)
    return replace(
        prev, status=AlertStatus.OK, severity=None, consecutive=0, healthy=0, since=None, last_window_end=end,
        fired_at=None, breaches=(), incident=None, last_notified_at=None,
    )  # fmt: skip


def decide(
    previous: Mapping[AlertKey, Alert],
    observed: Observed,
    now: datetime,
    settings: AlertSettings,
    silences: Sequence[Silence],
    *,
    window: tuple[datetime, datetime],
    last_retrain: RetrainRecord | None = None,
) -> Decision:
    """The alerts after one run of one monitor over ``window``, what to notify, whether to retrain.

    ``previous`` holds the stored alerts of the monitor (keys never seen are new and ok),
    ``observed`` comes from :func:`observe`, ``now`` is the wall clock (silences, repeats,
    cooldowns) and ``window`` the run's ``(start, end)``.
    """
    start, end = window
    states: dict[AlertKey, Alert] = {}
    seen_now: set[AlertKey] = set()  # keys whose state this window decided (not held)
    was: dict[AlertKey, Alert] = {}
    for key in sorted(set(previous) | set(observed)):
        prev = previous.get(key) or Alert(key)
        evidence_known = key in observed
        stale = prev.last_window_end is not None and end < prev.last_window_end
        if not evidence_known or stale:
            if key in previous:
                states[key] = replace(prev, reason=Reason.DO_NOT_NOTIFY)
            continue
        evidence = observed[key]
        if evidence is None and key not in previous:
            continue  # healthy and never alerted: nothing to remember
        states[key] = _transition(prev, evidence, now, start, end, settings)
        was[key] = prev
        seen_now.add(key)

    inhibiting = any(a.firing and a.key.check in INHIBITORS for a in states.values())
    open_incident = next(
        (a.incident for a in sorted(states.values(), key=lambda a: a.key) if a.firing and a.last_notified_at is not None and a.incident),
        None,
    )
    incident = open_incident or f"{_monitor_of(states, observed)}@{start.isoformat()}"
    repeat = settings.repeat_delta

    for key, alert in list(states.items()):
        silenced = any(s.matches(key, now) for s in silences)
        inhibited = inhibiting and key.check not in INHIBITORS
        reason = Reason.DO_NOT_NOTIFY
        if alert.firing:
            if silenced:
                reason = Reason.SILENCED
            elif inhibited:
                reason = Reason.INHIBITED
            elif key not in seen_now:
                reason = Reason.DO_NOT_NOTIFY  # held: nothing new to say about it
            elif alert.last_notified_at is None:
                reason = Reason.FIRST
            elif now - alert.last_notified_at >= repeat:
                reason = Reason.REPEAT_DUE
        elif alert.status is AlertStatus.RESOLVED and key in seen_now and was[key].status is AlertStatus.FIRING:
            if silenced:
                reason = Reason.SILENCED
            elif was[key].last_notified_at is not None:
                reason = Reason.RESOLVED
        elif alert.status is AlertStatus.PENDING and silenced:
            reason = Reason.SILENCED
        if reason in (Reason.FIRST, Reason.REPEAT_DUE):
            alert = replace(alert, last_notified_at=now, incident=alert.incident or incident)
        states[key] = replace(alert, reason=reason)

    notification = _notification(states, incident, open_incident, start, end)
    retrain = _retrain(states, seen_now, inhibiting, silences, now, start, end, settings, last_retrain)
    return Decision(states, notification, retrain)


def _monitor_of(states: Mapping[AlertKey, Alert], observed: Observed) -> str:
    for key in (*states, *observed):
        return key.monitor
    return ""


def _notification(
    states: Mapping[AlertKey, Alert], incident: str, open_incident: str | None, start: datetime, end: datetime
) -> Notification | None:
    ordered = sorted(states.values(), key=lambda a: (a.severity != "critical", a.key))
    new = tuple(a for a in ordered if a.reason is Reason.FIRST)
    repeats = tuple(a for a in ordered if a.reason is Reason.REPEAT_DUE)
    resolved = tuple(a for a in ordered if a.reason is Reason.RESOLVED)
    if not (new or repeats or resolved):
        return None
    if new:
        reason = Reason.NEW_BREACHES if open_incident else Reason.FIRST
    elif repeats:
        reason = Reason.REPEAT_DUE
    else:
        reason = Reason.RESOLVED
    quiet = (Reason.DO_NOT_NOTIFY, Reason.INHIBITED, Reason.SILENCED)
    ongoing = tuple(a for a in ordered if a.firing and a.reason in quiet and a.last_notified_at is not None)
    still = any(a.firing and a.last_notified_at is not None for a in states.values())
    thread = (resolved[0].incident if resolved and not (new or repeats) else incident) or incident
    return Notification(
        monitor=ordered[0].key.monitor,
        window_start=start,
        window_end=end,
        reason=reason,
        incident=thread,
        firing=new + repeats,
        resolved=resolved,
        ongoing=ongoing,
        closes_incident=bool(resolved) and not still,
    )


def _retrain(
    states: Mapping[AlertKey, Alert],
    seen_now: set[AlertKey],
    inhibiting: bool,
    silences: Sequence[Silence],
    now: datetime,
    start: datetime,
    end: datetime,
    settings: AlertSettings,
    last: RetrainRecord | None,
) -> RetrainDecision | None:
    policy = settings.retrain
    if policy is None or inhibiting:
        return None
    sustained = tuple(
        a
        for a in sorted(states.values(), key=lambda a: a.key)
        if a.key in seen_now
        and a.key.check in policy.checks
        and (policy.segments or a.key.segment == ALL)
        and a.status in (AlertStatus.PENDING, AlertStatus.FIRING)
        and a.consecutive >= policy.sustained_windows
        and not any(s.matches(a.key, now) for s in silences)
    )
    if not sustained:
        return None
    if last is not None:
        cooldown = policy.cooldown_delta
        # Never twice for one window, and at most once per cooldown on both clocks: the windows'
        # (a backfill of a year must not retrain 50 times) and the wall clock's.
        if end - last.window_end < cooldown or now - last.triggered_at < cooldown:
            return None
    return RetrainDecision(sustained[0].key.monitor, start, end, sustained, policy.sustained_windows)
