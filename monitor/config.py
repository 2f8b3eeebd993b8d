"""The configuration file: one YAML document declaring the store and the monitors.

Validation is strict: an unknown key, a wrong type or a bad value is a :class:`ConfigError` that
names the file, the key's path and how to fix it. Secrets enter only through ``${ENV_VAR}``
references, resolved from the environment at load time and never written anywhere.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import types
import typing
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from checks.kpis import KpiSpec
from checks.roles import Roles
from alerts.settings import AlertSettings, ChannelSpec, channel_problems
from checks.settings import ChecksSettings
from monitor.sources.spark_specs import SparkTableSpec
from monitor.sources.specs import DeltaSourceSpec, FileSourceSpec, SqlSourceSpec
from monitor.windows import as_utc, parse_duration

SourceSpec = Annotated[
    Union[FileSourceSpec, SqlSourceSpec, DeltaSourceSpec, SparkTableSpec], Field(discriminator="type")
]
"""Any kind of source, chosen by its ``type`` (``spark_table`` needs ``engine: spark``)."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class ConfigError(ValueError):
    """A config file that cannot be used, with every problem found (file, key path, fix)."""

    def __init__(self, path: Path | str, problems: list[str]):
        self.path = str(path)
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{self.path}: invalid configuration\n{lines}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _unique(what: str, names: list[str]) -> None:
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"{what} must be unique, repeated: {', '.join(repeated)}")


class Columns(_Strict):
    """What the columns of the inference log mean."""

    timestamp: str = Field(description="When the prediction was made (any timestamp type, ISO text, or epoch with the source's timestamp_unit).")
    id: str | None = Field(None, description="Request id; duplicates within a window are reported.")
    numeric: list[str] | None = Field(None, description="Numeric features. Inferred from the reference's column types when omitted.")
    categorical: list[str] | None = Field(None, description="Categorical features. Inferred (text and boolean columns) when omitted.")
    prediction: str | None = Field(None, description="The model's output column.")
    prediction_kind: Literal["probability", "class", "regression"] | None = Field(
        None, description="probability (score of the positive class), class (a label) or regression (a number)."
    )
    target: str | None = Field(None, description="The label/ground truth column; may arrive late (null until then).")
    latency: str | None = Field(None, description="Response time in milliseconds.")
    model_version: str | None = Field(None, description="Model version column, shown in alerts and dashboards.")
    segments: list[str] = Field(default_factory=list, description="Columns whose values define segments; every check also runs per segment value.")
    exclude: list[str] = Field(default_factory=list, description="Columns never inferred as features.")

    @model_validator(mode="after")
    def _prediction_needs_kind(self) -> Columns:
        if self.prediction and not self.prediction_kind:
            raise ValueError("columns.prediction is set but columns.prediction_kind is not: add prediction_kind: probability | class | regression")
        if self.target and not self.prediction_kind:
            raise ValueError("columns.target is set but columns.prediction_kind is not: add prediction_kind: probability | class | regression")
        return self

    def roles_for(self, numeric: list[str], categorical: list[str]) -> Roles:
        return Roles(
            numeric=tuple(numeric),
            categorical=tuple(categorical),
            prediction=self.prediction,
            prediction_kind=self.prediction_kind,
            target=self.target,
            latency=self.latency,
        )

    def reserved(self) -> set[str]:
        """Columns with a role other than feature."""
        names = {self.timestamp, self.id, self.prediction, self.target, self.latency, self.model_version, *self.exclude}
        return {n for n in names if n}


class TimeRange(_Strict):
    start: datetime = Field(description="Inclusive start (ISO 8601; UTC when no offset is given).")
    end: datetime = Field(description="Exclusive end.")

    @model_validator(mode="after")
    def _ordered(self) -> TimeRange:
        if as_utc(self.start) >= as_utc(self.end):
            raise ValueError("window.end must be after window.start")
        return self


class WindowReference(_Strict):
    """A healthy period of the monitor's own source."""

    window: TimeRange = Field(description="The period: {start: ..., end: ...}.")


def _reference_tag(value: Any) -> str:
    if isinstance(value, dict):
        if "window" in value:
            return "window"
        return value.get("type") if value.get("type") in ("sql", "delta") else "file"
    if isinstance(value, WindowReference):
        return "window"
    return "sql" if isinstance(value, SqlSourceSpec) else "delta" if isinstance(value, DeltaSourceSpec) else "file"


ReferenceSpec = Annotated[
    Union[
        Annotated[WindowReference, Tag("window")],
        Annotated[FileSourceSpec, Tag("file")],
        Annotated[SqlSourceSpec, Tag("sql")],
        Annotated[DeltaSourceSpec, Tag("delta")],
    ],
    Discriminator(_reference_tag),
]


class ProfileSettings(_Strict):
    """How windows are summarised."""

    bins: int = Field(50, ge=2, le=1000, description="Fine quantile bins per numeric column, fixed by the reference.")
    top_k: int = Field(50, ge=1, le=10_000, description="Categories kept by name per categorical column; rarer reference values are 'other'.")
    segment_top_k: int = Field(10, ge=1, le=1000, description="Segment values checked separately (by reference volume); the rest form '<column>=__other__'.")
    batch_rows: int = Field(200_000, ge=1000, description="Rows per batch read from the source (bounds memory).")
    reference_memory_mib: int = Field(
        1024,
        ge=0,
        description=(
            "Fitting a reference takes two passes; the first keeps the reference's columns in memory up to this "
            "size, so the second need not read the source again. A larger reference (or 0) is read twice, with "
            "memory bounded by the batch."
        ),
    )


class RetrySettings(_Strict):
    """How `driftline serve` retries a window whose run failed (windows stay in order: later ones wait)."""

    backoff: str = Field("30s", description="Wait before the first retry; doubled after each further failure.")
    max_backoff: str = Field("30m", description="The longest wait between two attempts.")
    max_attempts: int | None = Field(
        None, ge=1, description="Give up on a window after this many failed runs: it stays stored as failed (its pipeline alert stands) and later windows go on. Default: retry until it succeeds."
    )

    @field_validator("backoff", "max_backoff")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value


class SparkSettings(_Strict):
    """The Spark engine's session (``engine: spark``, needs the ``[spark]`` extra and Java 17)."""

    master: str | None = Field(None, description="Spark master URL, e.g. `local[4]` or `spark://host:7077`. Empty: the active session if there is one (Databricks), else `local[*]`.")
    conf: dict[str, str] = Field(default_factory=dict, description="Extra Spark settings for a session Driftline creates, e.g. `spark.sql.shuffle.partitions: '8'`.")


class MonitorConfig(_Strict):
    name: str = Field(description="Unique monitor name (letters, digits, . _ -).")
    source: SourceSpec = Field(description="Where the inference log lives.")
    columns: Columns = Field(description="What the log's columns mean.")
    reference: ReferenceSpec = Field(description="A file/table of reference data, or {window: {start, end}} of this source.")
    window: str = Field("1d", description="Window size: 15m, 1h, 6h, 1d, 7d...")
    schedule: str | None = Field(None, description="Cron expression (UTC) for `driftline serve`, e.g. '15 0 * * *'.")
    every: str | None = Field(None, description="Instead of `schedule`: run `driftline serve`'s job at this fixed interval, aligned on the Unix epoch (UTC), e.g. 30s or 5m. With neither, the job runs as each window completes (plus `delay`).")
    delay: str | None = Field(None, description="Late rows: a window counts as complete (and `serve` checks it) once `end + delay` has passed, e.g. 5m.")
    backfill_from: datetime | None = Field(None, description="Where `serve` begins when the store has no scheduled run of this monitor yet: every window from this time on. Default: only the latest complete window.")
    freshness: str | None = Field(None, description="Maximum age of the source's newest row, e.g. 2h: when it is older, the latest window's run records a `freshness/lag_seconds` breach (a no-data alert).")
    label_lag: str | None = Field(None, description="How late labels arrive, e.g. 7d: `serve` re-checks each window once after `end + label_lag`, replacing its results.")
    retry: RetrySettings = Field(default_factory=RetrySettings, description="How `serve` retries a failed run (backoff, attempts).")
    engine: Literal["pandas", "spark"] = Field(
        "pandas",
        description="Profiling engine: `pandas` (in-process, batch by batch) or `spark` (the same profiles computed by Spark, for logs past one machine; needs the `[spark]` extra).",
    )
    spark: SparkSettings | None = Field(None, description="Session settings of the Spark engine.")
    checks: ChecksSettings = Field(default_factory=ChecksSettings, description="Which checks run, with their thresholds.")
    kpis: list[KpiSpec] = Field(default_factory=list, description="Business KPIs: aggregations of a column with optional bounds.")
    profile: ProfileSettings = Field(default_factory=ProfileSettings, description="How windows are summarised (bins, categories, segments, batch size).")
    alerts: AlertSettings | None = Field(None, description="When breaches become alerts and which channels they go to (routes, for_windows, repeat_interval, severity, retrain).")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("use letters, digits, '.', '_' or '-' (at most 100), starting with a letter or digit")
        return value

    @field_validator("window")
    @classmethod
    def _window(cls, value: str) -> str:
        parse_duration(value)
        return value

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str | None) -> str | None:
        if value is None:
            return value
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(value, timezone="UTC")
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a cron expression (minute hour day month weekday): {exc}") from None
        return value

    @field_validator("every", "delay", "freshness", "label_lag")
    @classmethod
    def _optional_duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    @model_validator(mode="after")
    def _one_schedule(self) -> MonitorConfig:
        if self.schedule is not None and self.every is not None:
            raise ValueError("give `schedule` (a cron expression) or `every` (an interval such as 30s), not both")
        return self

    @model_validator(mode="after")
    def _kpi_names_unique(self) -> MonitorConfig:
        _unique("kpis: names", [k.name for k in self.kpis])
        return self

    @property
    def window_size(self) -> timedelta:
        return parse_duration(self.window)

    @property
    def engine_options(self) -> dict[str, Any]:
        """Keyword arguments of the engine's constructor."""
        if self.engine == "spark" and self.spark is not None:
            return self.spark.model_dump()
        return {}

    def fingerprint(self) -> str:
        """A stable id of what this monitor computes (stored with every run)."""
        # Alert routing and scheduling change where results go and when, not what is computed.
        how = {"alerts", "schedule", "every", "delay", "backfill_from", "retry"}
        text = json.dumps(self.model_dump(mode="json", exclude=how), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


class ProjectConfig(_Strict):
    store: str = Field("sqlite:///driftline.db", description="SQLAlchemy URL of the result store; relative SQLite paths are relative to the config file.")
    monitors: list[MonitorConfig] = Field(min_length=1, description="The models to watch, one monitor each.")
    dashboard_url: str | None = Field(None, description="Base URL of the dashboard, used for links in alerts.")
    channels: dict[str, ChannelSpec] = Field(
        default_factory=dict,
        description="Where alerts can go, by name: {type: slack | slack_webhook | webhook | databricks_job, ...}. "
        "Secrets are named by environment variable (token_env, url_env, secret_env), read at send time.",
    )

    @model_validator(mode="after")
    def _unique_names(self) -> ProjectConfig:
        _unique("monitor names", [m.name for m in self.monitors])
        return self

    def monitor(self, name: str) -> MonitorConfig:
        for m in self.monitors:
            if m.name == name:
                return m
        raise KeyError(f"no monitor named {name!r}; the config has: {', '.join(m.name for m in self.monitors)}")


class Project:
    """A loaded config file: the validated config and the folder its relative paths start from."""

    def __init__(self, config: ProjectConfig, path: Path):
        self.config = config
        self.path = path
        self.base_dir = path.parent

    @property
    def store_url(self) -> str:
        url = self.config.store
        # sqlite:///relative.db is relative to the config file, not to wherever the command runs.
        if url.startswith("sqlite:///") and not url.startswith("sqlite:////") and ":memory:" not in url:
            relative = url[len("sqlite:///") :]
            return f"sqlite:///{(self.base_dir / relative).resolve()}"
        return url

    @property
    def monitors(self) -> list[MonitorConfig]:
        return self.config.monitors

    def monitor(self, name: str) -> MonitorConfig:
        return self.config.monitor(name)


# ------------------------------------------------------------------------------ loading


def _interpolate(node: Any, path: str, problems: list[str]) -> Any:
    """Replace ``${VAR}`` and ``${VAR:-default}`` in every string (values only, never keys)."""
    if isinstance(node, dict):
        return {k: _interpolate(v, f"{path}.{k}" if path else str(k), problems) for k, v in node.items()}
    if isinstance(node, list):
        return [_interpolate(v, f"{path}[{i}]", problems) for i, v in enumerate(node)]
    if isinstance(node, str):

        def substitute(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            value = os.environ.get(name)
            if value is None:
                if default is not None:
                    return default
                problems.append(f"{path}: environment variable {name} is not set; export {name}=... before running (or write ${{{name}:-default}})")
                return ""
            return value

        return _ENV_REF.sub(substitute, node)
    return node


def _strip(annotation: Any) -> Any:
    """``X`` of ``Annotated[X, ...]`` and of ``X | None``."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    found, stack = [], [annotation]
    while stack:
        item = stack.pop()
        if isinstance(item, type) and issubclass(item, BaseModel):
            found.append(item)
        else:
            stack.extend(typing.get_args(item))
    return found


def _member_for_tag(members: list[type[BaseModel]], tag: Any) -> type[BaseModel] | None:
    """The member of a discriminated union that pydantic's error location names by ``tag``:
    the value of its ``type`` literal, or the ``Tag`` of ``ReferenceSpec`` (window, file, sql)."""
    for model in members:
        kind = model.model_fields.get("type")
        if kind is not None and tag in typing.get_args(_strip(kind.annotation)):
            return model
    return next((m for m in members if m.__name__.lower().startswith(str(tag))), None)


def _locate(loc: tuple[Any, ...]) -> tuple[str, type[BaseModel] | None]:
    """The key path a user wrote for a pydantic error location, and the model that owns its last
    key. Pydantic puts the tag of a discriminated union into locations (``source.parquet.path``);
    users never wrote it, so the walk follows the config's types and drops it."""
    path, owner = "", None
    node: Any = ProjectConfig
    for part in loc:
        node = _strip(node)
        origin = typing.get_origin(node)
        if origin in (list, tuple) and isinstance(part, int):
            path += f"[{part}]"
            node = typing.get_args(node)[0]
            continue
        if origin is dict:
            path += f".{part}"
            node = typing.get_args(node)[1]
            continue
        members = _models_in(node)
        if len(members) > 1 and (chosen := _member_for_tag(members, part)) is not None:
            node = chosen  # the union's tag: not a key of the file
            continue
        owner = members[0] if members else None
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
        fields = {f.alias or n: f for n, f in owner.model_fields.items()} if owner else {}
        node = fields[part].annotation if part in fields else None
    return path.lstrip(".") or "(top level)", owner


def _describe(error: dict[str, Any]) -> str:
    loc = tuple(error.get("loc", ()))
    where, model = _locate(loc)
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        key = str(loc[-1]) if loc else "?"
        fields = model.model_fields if model else {}
        valid = sorted(f.alias or name for name, f in fields.items())
        hint = difflib.get_close_matches(key, valid, n=1)
        fix = f"did you mean '{hint[0]}'?" if hint else (f"valid keys here: {', '.join(valid)}" if valid else "remove it")
        return f"{where}: unknown key '{key}'; {fix}"
    if kind == "missing":
        return f"{where}: required key is missing; add it"
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    given = error.get("input")
    shown = "" if isinstance(given, (dict, list)) or given is None else f" (got {given!r})"
    return f"{where}: {message}{shown}"


def parse_config(data: Any, path: Path | str = "<config>") -> ProjectConfig:
    problems: list[str] = []
    if not isinstance(data, dict):
        raise ConfigError(path, ["the file must be a YAML mapping with keys 'store' and 'monitors'"])
    data = _interpolate(data, "", problems)
    if problems:
        raise ConfigError(path, problems)
    try:
        config = ProjectConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(path, [_describe(e) for e in exc.errors()]) from None
    problems = _alert_problems(config)
    if problems:
        raise ConfigError(path, problems)
    return config


def _alert_problems(config: ProjectConfig) -> list[str]:
    """Routes and retrain triggers must name channels of the right kind (see alerts.settings)."""
    problems = [f"channels.{name}: use letters, digits, '.', '_' or '-' in channel names" for name in config.channels if not _NAME.match(name)]
    for i, mon in enumerate(config.monitors):
        problems += channel_problems(config.channels, mon.alerts, f"monitors[{i}]")
    return problems


def load_config(path: str | Path) -> Project:
    """Read and validate a config file; raises :class:`ConfigError`."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(path, [f"file not found (looked in {path.resolve().parent}); pass --config PATH"]) from None
    except OSError as exc:
        raise ConfigError(path, [f"cannot read the file: {exc.strerror}"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(path, [f"{where}not valid YAML: {getattr(exc, 'problem', exc)}"]) from None
    return Project(parse_config(data, path), path.resolve())
