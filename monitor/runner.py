"""One run: read a window, profile it, compare it with the reference, store every result.

A run never raises for bad data: rows it cannot use are counted and reported as data-quality
results, a check that fails becomes an ``error`` result, and a run that cannot read its source at
all is stored as ``failed`` with its error. Re-running a window replaces its results.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Protocol, Sequence

from sqlalchemy.orm import Session


import monitor
from checks.calibration import ReferenceVariation, reference_variation
from checks.evaluate import evaluate
from checks.multivariate import PcaModel
from checks.profiles import DatasetProfile, binning_from_dict, binning_to_dict
from checks.results import ALL, MetricResult, Status
from checks.roles import Roles
from monitor.config import MonitorConfig, Project, WindowReference
from monitor.engine.base import ChunkSpec, Engine, ReadJob, engine_named
from monitor.engine.pandas_engine import ProfilePlan, infer_features, most_frequent, parallel_map
from monitor.sources import SourceError
from monitor.store import ReferenceRecord, RunRecord, Store, StoredProfile
from monitor.windows import Window, windows_between

log = logging.getLogger("driftline.runner")

# Bump when the stored reference format or the way it is fitted changes: old references refit.
REFERENCE_FORMAT = 2

ROW_ORDER_CHUNKS = 20
"""A reference without timestamps (a training set) is cut into this many chunks in row order to
learn its variation: file order is often time order, and shuffled data shows only noise."""


class ReferenceFitError(RuntimeError):
    """The reference cannot be fitted (missing file, no rows, a feature it lacks)."""


@dataclass(frozen=True)
class FittedReference:
    version: int
    plan: ProfilePlan
    profiles: dict[str, DatasetProfile]  # by segment; ALL always present
    rows: int
    warnings: tuple[str, ...] = ()
    variations: dict[str, ReferenceVariation] = field(default_factory=dict)  # by segment

    def profile_for(self, segment: str) -> DatasetProfile:
        return self.profiles.get(segment, self.profiles[ALL])

    def variation_for(self, segment: str) -> ReferenceVariation | None:
        return self.variations.get(segment)


@dataclass
class RunOutcome:
    run: RunRecord
    results: list[MetricResult] = field(default_factory=list)

    @property
    def breaches(self) -> list[MetricResult]:
        return [r for r in self.results if r.status is Status.BREACH]

    @property
    def errors(self) -> list[MetricResult]:
        return [r for r in self.results if r.status is Status.ERROR]


def _now() -> datetime:
    return datetime.now(timezone.utc)


def reference_fingerprint(mon: MonitorConfig) -> str:
    parts = {
        "format": REFERENCE_FORMAT,
        "reference": mon.reference.model_dump(mode="json"),
        "source": mon.source.model_dump(mode="json") if isinstance(mon.reference, WindowReference) else None,
        "columns": mon.columns.model_dump(mode="json"),
        "profile": mon.profile.model_dump(mode="json", exclude={"batch_rows", "reference_memory_mib"}),
        "kpis": [k.model_dump(mode="json") for k in mon.kpis],
        "threshold": mon.checks.performance.threshold,
        # What the reference's variation is learned for (min_effect and the rest apply per window).
        "drift": mon.checks.drift.model_dump(mode="json", include={"numeric", "categorical", "columns", "bins", "false_alarm_rate"}),
        "multivariate": mon.checks.multivariate.model_dump(mode="json", include={"enabled", "variance"}),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


class RunHook(Protocol):
    """Called inside the transaction that stores a run (e.g. to queue alert deliveries in an
    outbox): whatever it writes commits or rolls back together with the results."""

    def __call__(self, session: Session, mon: MonitorConfig, run: RunRecord, results: list[MetricResult]) -> None: ...


class Runner:
    """Runs a project's monitors against its store."""

    def __init__(self, project: Project, store: Store, hooks: Sequence[RunHook] | None = None):
        self.project = project
        self.store = store
        self.hooks: list[RunHook] = list(default_hooks(project) if hooks is None else hooks)
        self._references: dict[tuple[str, str], FittedReference] = {}
        self._engines: dict[tuple[str, str], Engine] = {}

    # ------------------------------------------------------------------ the reference

    def engine(self, mon: MonitorConfig) -> Engine:
        """The monitor's engine (one per engine name and options, shared by its monitors)."""
        key = (mon.engine, json.dumps(mon.engine_options, sort_keys=True, default=str))
        if key not in self._engines:
            self._engines[key] = engine_named(mon.engine, mon.engine_options)
        return self._engines[key]

    def _reference_job(
        self, mon: MonitorConfig, columns: list[str], kinds: dict[str, str] | None = None, categories: tuple[str, ...] = ()
    ) -> ReadJob:
        """Reading the reference: a period of the monitor's own source, or its own spec (a
        training set, read without timestamps when it has no timestamp column)."""
        ref = mon.reference
        timestamp = mon.columns.timestamp
        keep = mon.profile.reference_memory_mib << 20
        if isinstance(ref, WindowReference):
            window = Window(ref.window.start, ref.window.end)
            return ReadJob(mon.source, self.project.base_dir, tuple(columns), timestamp, window, mon.profile.batch_rows, categories, keep)
        has_time = kinds is not None and timestamp in kinds
        return ReadJob(ref, self.project.base_dir, tuple(columns), timestamp if has_time else None, None, mon.profile.batch_rows, categories, keep)

    def reference(self, mon: MonitorConfig, *, refit: bool = False) -> FittedReference:
        """The monitor's fitted reference: from the store, or fitted now and stored."""
        key = (mon.name, reference_fingerprint(mon))
        if not refit and key in self._references:
            return self._references[key]
        record = None if refit else self.store.reference_for(*key)
        fitted = _from_record(record, mon) if record is not None else self._fit(mon, key[1])
        self._references[key] = fitted
        return fitted

    def _fit(self, mon: MonitorConfig, fingerprint: str) -> FittedReference:
        cols = mon.columns
        warnings: list[str] = []
        engine = self.engine(mon)
        try:
            kinds = engine.columns(self._reference_job(mon, []))
        except SourceError as exc:
            raise ReferenceFitError(f"cannot read the reference: {exc}") from None
        reserved = cols.reserved()
        numeric, categorical = cols.numeric, cols.categorical
        if numeric is None or categorical is None:
            inferred_numeric, inferred_categorical = infer_features(kinds, reserved)
            numeric = inferred_numeric if numeric is None else numeric
            categorical = inferred_categorical if categorical is None else categorical
        absent = [c for c in [*numeric, *categorical] if c not in kinds]
        if absent:
            raise ReferenceFitError(
                f"the reference has no column {', '.join(repr(a) for a in absent)}; it has: {', '.join(sorted(kinds))}"
            )
        for role, name in (("prediction", cols.prediction), ("target", cols.target), ("latency", cols.latency)):
            if name and name not in kinds:
                warnings.append(f"the reference has no {role} column {name!r}: checks that compare it with the reference report no data")
        kind = cols.prediction_kind
        fit_numeric, fit_categorical = list(numeric), list(categorical)
        if cols.prediction:
            (fit_categorical if kind == "class" else fit_numeric).append(cols.prediction)
        if cols.target:
            (fit_numeric if kind == "regression" else fit_categorical).append(cols.target)
        if cols.latency:
            fit_numeric.append(cols.latency)
        fit_numeric = list(dict.fromkeys(fit_numeric))
        fit_categorical = list(dict.fromkeys(c for c in fit_categorical if c not in fit_numeric))
        needed = list(dict.fromkeys([*fit_numeric, *fit_categorical, *cols.segments, *(k.column for k in mon.kpis)]))
        read = [c for c in needed if c in kinds] + ([cols.timestamp] if cols.timestamp in kinds else [])
        job = self._reference_job(mon, read, kinds, tuple(dict.fromkeys([*fit_categorical, *cols.segments])))
        try:
            multivariate = list(numeric) if mon.checks.multivariate.enabled and len(numeric) >= 2 else None
            first = engine.first_pass(
                job, fit_numeric, fit_categorical, bins=mon.profile.bins, top_k=mon.profile.top_k, moments_of=multivariate,
                count_values=list(cols.segments),
            )  # fmt: skip
            binnings, rows, moments = first.binnings, first.rows, first.moments
            if rows == 0:
                raise ReferenceFitError("the reference has no rows; point `reference` at training data or a healthy period")
            pca = None
            if multivariate and moments is not None:
                try:
                    pca = PcaModel.fit(moments, multivariate, mon.checks.multivariate.variance)
                except ValueError as exc:
                    warnings.append(f"multivariate drift is off: {exc}")
            segment_values: dict[str, tuple[str, ...]] = {}
            if cols.segments and first.value_counts is not None:
                segment_values = most_frequent(first.value_counts, cols.segments, mon.profile.segment_top_k)
            elif cols.segments:
                segment_values = engine.segment_values(job, list(cols.segments), mon.profile.segment_top_k)
            plan = ProfilePlan(
                roles=cols.roles_for(list(numeric), list(categorical)),
                binnings=binnings,
                id_column=cols.id,
                segment_values=segment_values,
                kpis=tuple(mon.kpis),
                decision_threshold=mon.checks.performance.threshold,
                pca=pca,
            )
            # Duplicate ids in training data are not a monitoring signal: profile without them.
            span = (first.last - first.first).to_pytimedelta() if first.first is not None and first.last is not None else None
            profiles, chunks = engine.reference_profiles(job, replace(plan, id_column=None), _chunk_spec(mon, job.timestamp, span, rows))
        except SourceError as exc:
            raise ReferenceFitError(f"cannot read the reference: {exc}") from None
        finally:
            engine.release_reference()  # what pass one kept for pass two, if pass two never came
        for name, binning in binnings.items():
            if getattr(binning, "bins", 2) == 1 and name in numeric:
                warnings.append(f"reference column {name!r} is constant: any change of value is drift")
        variations = {
            segment: reference_variation(profile, [c[segment] for c in chunks if segment in c], plan.roles, mon.checks.drift, mapper=parallel_map)
            for segment, profile in profiles.items()
            if profile.rows
        }
        payload = {
            "variation": {segment: v.to_dict() for segment, v in variations.items()},
            "chunking": "window" if span is not None else "row_order",
            "pca": None if pca is None else pca.to_dict(),
            "roles": {"numeric": list(numeric), "categorical": list(categorical)},
            "binnings": {n: binning_to_dict(b) for n, b in binnings.items()},
            "segment_values": {k: list(v) for k, v in segment_values.items()},
            "profiles": {seg: p.to_dict() for seg, p in profiles.items()},
            "warnings": warnings,
        }
        record = self.store.save_reference(mon.name, fingerprint, rows, payload)
        for w in warnings:
            log.warning("%s: %s", mon.name, w)
        return FittedReference(record.version, plan, profiles, rows, tuple(warnings), variations)

    # ------------------------------------------------------------------------ a window

    def run_window(self, mon: MonitorConfig, window: Window, *, trigger: str = "run") -> RunOutcome:
        started = _now()
        clock = time.perf_counter()
        reference: FittedReference | None = None
        try:
            reference = self.reference(mon)
            outcome = self._check(mon, window, reference, started, trigger)
        except Exception as exc:  # the run itself failed: store it with its error
            message = f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, (SourceError, ReferenceFitError)):
                log.error("%s %s failed:\n%s", mon.name, window, traceback.format_exc())
            run = RunRecord(
                monitor=mon.name,
                window=window,
                status="failed",
                started_at=started,
                finished_at=_now(),
                error=message,
                config_fingerprint=mon.fingerprint(),
                reference_version=reference.version if reference else None,
                driftline_version=monitor.__version__,
                trigger=trigger,
            )
            # A failed run is a breach of its own, so alerting treats it like any other.
            failure = [
                MetricResult("pipeline", "", "run_failed", 1.0, Status.BREACH, threshold=0.0, details={"error": message})
            ]
            run = self._save(mon, run, failure, [])
            return RunOutcome(run, failure)
        log.info("%s %s: %s in %.2fs", mon.name, window, outcome.run.status, time.perf_counter() - clock)
        return outcome

    def _check(self, mon: MonitorConfig, window: Window, reference: FittedReference, started: datetime, trigger: str) -> RunOutcome:
        plan = reference.plan
        version_column = mon.columns.model_version
        columns = plan.columns_to_read(mon.columns.timestamp) + ([version_column] if version_column else [])
        job = ReadJob(
            mon.source, self.project.base_dir, tuple(columns), mon.columns.timestamp, window, mon.profile.batch_rows, plan.categories
        )
        read = self.engine(mon).window_profiles(job, plan, version_column)
        profiles, report, versions = read.profiles, read.report, read.versions
        # Columns that no file of the window had: one column_missing breach, not also a 100%
        # missing share and a drift verdict on nothing.
        absent = {
            name for name in report.missing_columns
            if (p := profiles[ALL].columns.get(name)) is None or p.count == 0
        }
        if absent:
            profiles = {
                segment: replace(profile, columns={k: v for k, v in profile.columns.items() if k not in absent})
                for segment, profile in profiles.items()
            }
        overall = profiles[ALL].with_counters(
            bad_timestamps=report.bad_timestamps,
            missing_columns=tuple(sorted(absent)),
        )
        profiles[ALL] = overall
        results: list[MetricResult] = []
        for segment, profile in profiles.items():
            baseline, variation = reference.profile_for(segment), reference.variation_for(segment)
            if segment != ALL and baseline.rows == 0:
                if profile.rows == 0:
                    continue  # a segment neither the reference nor this window has: nothing to say
                # Values the reference never had in this segment: compare with the whole reference.
                baseline, variation = reference.profiles[ALL], reference.variation_for(ALL)
            results.extend(evaluate(baseline, profile, plan.roles, mon.checks, mon.kpis, segment=segment, variation=variation, mapper=parallel_map))
        if version_column and versions:
            # Which model served the window: shown in alerts and dashboards, and a version change
            # is visible in the results' history.
            ranked = dict(sorted(versions.items(), key=lambda kv: (-kv[1], kv[0]))[:20])
            results.append(
                MetricResult(
                    "prediction", version_column, "model_version", float(len(versions)), Status.INFO,
                    details={"model_version": next(iter(ranked)), "versions": ranked},
                )
            )
        for warning in report.warnings:
            log.warning("%s %s: %s", mon.name, window, warning)
        status = "no_data" if overall.rows == 0 else ("breach" if any(r.status is Status.BREACH for r in results) else "ok")
        bad = report.bad_timestamps + sum(
            getattr(p, "invalid", 0) for p in overall.columns.values()
        )
        run = RunRecord(
            monitor=mon.name,
            window=window,
            status=status,
            started_at=started,
            finished_at=_now(),
            rows=overall.rows,
            bad_rows=bad,
            error=None,
            config_fingerprint=mon.fingerprint(),
            reference_version=reference.version,
            driftline_version=monitor.__version__,
            trigger=trigger,
        )
        stored = [
            StoredProfile(segment, column, column_profile.to_dict())
            for segment, profile in profiles.items()
            for column, column_profile in profile.columns.items()
        ]
        run = self._save(mon, run, results, stored)
        return RunOutcome(run, results)

    def _save(self, mon: MonitorConfig, run: RunRecord, results: list[MetricResult], stored: list[StoredProfile]) -> RunRecord:
        def also(session: Session, run_id: int) -> None:
            saved = _with_id(run, run_id)
            for hook in self.hooks:
                hook(session, mon, saved, results)

        return _with_id(run, self.store.save_run(run, results, stored, also=also if self.hooks else None))

    # --------------------------------------------------------------------- many windows

    def backfill(
        self,
        mon: MonitorConfig,
        start: datetime,
        end: datetime,
        *,
        force: bool = False,
        trigger: str = "backfill",
        progress: Callable[[Window, RunOutcome | None], None] | None = None,
    ) -> list[RunOutcome]:
        """Every complete window in ``[start, end)`` in order; done windows are skipped unless ``force``."""
        windows = list(windows_between(start, end, mon.window_size))
        done = set() if force else self.store.done_windows(mon.name, start, end)
        outcomes: list[RunOutcome] = []
        for window in windows:
            if window in done:
                if progress:
                    progress(window, None)
                continue
            outcome = self.run_window(mon, window, trigger=trigger)
            outcomes.append(outcome)
            if progress:
                progress(window, outcome)
        return outcomes


MAX_CHUNKS = 400
"""A reference spanning more of the monitor's windows than this is cut into chunks of a whole
number of windows each, so that profiling it chunk by chunk stays cheap."""


def _chunk_spec(mon: MonitorConfig, timestamp: str | None, span: timedelta | None, rows: int) -> ChunkSpec:
    """The reference's own windows (the monitor's window length, on the same grid as its
    windows; a multiple of it past MAX_CHUNKS windows), or ROW_ORDER_CHUNKS equal runs of rows
    when it has no timestamps."""
    if timestamp is not None and span is not None:
        windows = max(1, int(span / mon.window_size) + 1)
        return ChunkSpec(timestamp=timestamp, length_us=int(mon.window_size.total_seconds() * 1_000_000) * -(-windows // MAX_CHUNKS))
    return ChunkSpec(rows_per_chunk=max(1, -(-rows // ROW_ORDER_CHUNKS)))


def default_hooks(project: Project) -> list[RunHook]:
    """The hooks a project's config asks for (alert outbox and the like)."""
    if not any(mon.alerts is not None for mon in project.monitors):
        return []
    from monitor.notify import AlertHook  # imported here: notify imports the store and the config

    return [AlertHook(project)]


def _with_id(run: RunRecord, run_id: int) -> RunRecord:
    return replace(run, id=run_id)


def _from_record(record: ReferenceRecord, mon: MonitorConfig) -> FittedReference:
    payload = record.payload
    cols = mon.columns
    binnings = {n: binning_from_dict(b) for n, b in payload["binnings"].items()}
    roles: Roles = cols.roles_for(payload["roles"]["numeric"], payload["roles"]["categorical"])
    plan = ProfilePlan(
        roles=roles,
        binnings=binnings,
        id_column=cols.id,
        segment_values={k: tuple(v) for k, v in payload["segment_values"].items()},
        kpis=tuple(mon.kpis),
        decision_threshold=mon.checks.performance.threshold,
        pca=None if payload.get("pca") is None else PcaModel.from_dict(payload["pca"]),
    )
    profiles = {seg: DatasetProfile.from_dict(p) for seg, p in payload["profiles"].items()}
    variations = {seg: ReferenceVariation.from_dict(v) for seg, v in payload.get("variation", {}).items()}
    return FittedReference(record.version, plan, profiles, record.rows, tuple(payload.get("warnings", ())), variations)
