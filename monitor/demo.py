"""The demo: a credit-risk model's inference log with known, planted events.

``generate_demo(directory)`` writes three things under ``directory``:

- ``logs/date=YYYY-MM-DD/part-0.parquet``: one Hive partition per UTC day of the inference log;
- ``reference.parquet``: training data from the same healthy process, over the 30 days before the log;
- ``driftline.yaml``: a monitor config for them (paths relative to the config's folder).

Every row is drawn from one generating process; the planted events (``DemoEvents``) are transforms
applied to the same random draws on the days they cover, so a day outside every event window is
statistically indistinguishable from the reference, and a sound monitor should flag the events and
nothing else:

- feature drift from ``drift_start``: income x1.35 (+0.30 in log income, ~0.55 of its standard
  deviation), ``debt_ratio`` +0.15 (~0.6 of its standard deviation), and a new ``channel`` value
  ``partner_api`` taking 20% of traffic from the other channels in proportion. Scores drift with
  the features, as a real model's would; the true default risk is the same function of the features
  throughout (covariate shift, no concept change).
- a latency regression from ``latency_start``: latency x2.5 (p95 ~120 ms -> ~300 ms), served by a new
  ``model_version`` with the same weights (scores are unchanged by it).
- a null surge: ``employment`` missing in ~35% of rows for three days (0.5% otherwise, as in the
  reference). It is a logging fault: the model saw the value, so scores are unaffected.
- delayed labels: none for the last 7 days, then 50%, 80% and 95% of days -8, -9 and -10.

The generator only draws data and writes files; it computes no statistic of Driftline's.

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as folder:
...     events = generate_demo(Path(folder), days=15, rows_per_day=50, reference_rows=100,
...                            start=date(2026, 3, 2))
>>> events.drift_start, events.latency_start, events.null_surge
(datetime.date(2026, 3, 12), datetime.date(2026, 3, 15), ('employment', datetime.date(2026, 3, 8), datetime.date(2026, 3, 10)))
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

# --- Planted events (magnitudes documented in the module docstring and the README) ---------------

DEFAULT_DAYS = 60
# Day offsets of the events in a 60-day log; other lengths scale them in proportion.
_DRIFT_DAY, _LATENCY_DAY, _NULL_SURGE_DAY, _NULL_SURGE_LENGTH = 40, 50, 25, 3
MIN_HEALTHY_DAYS = 10  # healthy days before the drift, whatever the length
MIN_DAYS = 15

INCOME_DRIFT_FACTOR = 1.35
DEBT_RATIO_DRIFT = 0.15
NEW_CHANNEL = "partner_api"
NEW_CHANNEL_SHARE = 0.20
LATENCY_FACTOR = 2.5
NULL_SURGE_SHARE = 0.35
BACKGROUND_NULL_SHARE = 0.005  # employment's missing share in the reference and on healthy days

MODEL_VERSION = "2026.09"
NEW_MODEL_VERSION = "2026.10"
LABEL_DELAY_DAYS = 7
# Share of rows already labelled on the days just before the delay: day -8, day -9, day -10.
_LABEL_ARRIVAL = (0.50, 0.80, 0.95)
REFERENCE_DAYS = 30

# --- The healthy generating process ------------------------------------------------------------

REGIONS = ("NA", "EU", "LATAM", "APAC")
_REGION_SHARES = (0.35, 0.30, 0.15, 0.20)
CHANNELS = ("web", "mobile", "branch")
_CHANNEL_SHARES = (0.55, 0.35, 0.10)
EMPLOYMENTS = ("salaried", "self_employed", "unemployed", "retired")
# Employment by age band (<55, 55-64, 65+): overall about 68% / 16% / 6% / 10%.
_EMPLOYMENT_BY_AGE = np.array(
    [[0.74, 0.16, 0.07, 0.03], [0.58, 0.16, 0.06, 0.20], [0.12, 0.10, 0.02, 0.76]]
)
_INCOME_BY_EMPLOYMENT = np.array([0.0, 0.08, -0.55, -0.30])  # added to log income
_LOG_INCOME_CENTRE = 11.039  # puts the overall median income at ~55k
_LOG_INCOME_NOISE = 0.5  # log income's total standard deviation comes out at ~0.55
_LOG_55K = float(np.log(55_000))

# The model: a logistic regression of the features. The true default risk adds a steeper rise
# at high debt and a risk factor the features do not show, so the score approximates it
# (AUC ~0.76 against the labels, calibrated on average; the oracle reaches ~0.79).
_MODEL_INTERCEPT = -2.61
_TRUE_INTERCEPT = -2.76  # a 10% default rate in the reference
_RISK_BY_EMPLOYMENT = np.array([0.0, 0.30, 1.00, -0.15])
_HIGH_DEBT, _HIGH_DEBT_SLOPE = 0.85, 2.0
_HIDDEN_RISK_SD = 0.6

_LATENCY_MEDIAN_MS = 45.0
_LATENCY_SIGMA = float(np.log(120.0 / 45.0) / 1.6448536)  # p95 at ~120 ms

# Volume: weekends 30% below weekdays, normalised so a week averages rows_per_day; +-5% per day.
_WEEKEND_FACTOR = 0.7
_WEEKDAY_VOLUME = 7.0 / (5.0 + 2.0 * _WEEKEND_FACTOR)
_DAILY_NOISE = 0.05


def _intraday_cdf() -> np.ndarray:
    """Cumulative share of a day's requests by minute (UTC): a quiet night, the European
    morning, a larger North-American afternoon peak and a small Asia-Pacific evening bump."""
    hours = (np.arange(24 * 60) + 0.5) / 60.0

    def bump(centre: float, width: float) -> np.ndarray:
        distance = np.abs(hours - centre)
        distance = np.minimum(distance, 24.0 - distance)  # the day wraps around
        return np.exp(-0.5 * (distance / width) ** 2)

    rate = 0.15 + 0.55 * bump(10.0, 2.5) + 1.0 * bump(17.5, 3.5) + 0.3 * bump(1.5, 2.5)
    cdf = np.cumsum(rate)
    return cdf / cdf[-1]


_INTRADAY_CDF = _intraday_cdf()
_US_PER_MINUTE = 60_000_000
_US_PER_DAY = 24 * 60 * _US_PER_MINUTE

SCHEMA = pa.schema(
    [
        ("ts", pa.timestamp("us", tz="UTC")),
        ("request_id", pa.string()),
        ("income", pa.float64()),
        ("age", pa.int64()),
        ("debt_ratio", pa.float64()),
        ("credit_lines", pa.int64()),
        ("region", pa.string()),
        ("channel", pa.string()),
        ("employment", pa.string()),
        ("score", pa.float64()),
        ("label", pa.int64()),
        ("latency_ms", pa.float64()),
        ("model_version", pa.string()),
    ]
)
"""The columns of the log and of the reference (the reference's labels are all present)."""

CONFIG_FILE = "driftline.yaml"
REFERENCE_FILE = "reference.parquet"
LOGS_DIR = "logs"
_PART = "part-0.parquet"

_CONFIG = """\
# Driftline demo: a credit-risk model's inference log (see README "Configuration")
# Generated by monitor/demo.py (seed {seed}): {start} .. {last}, {days} daily partitions under logs/.
# Planted: drift of income, debt_ratio and channel (new value partner_api) from {drift};
# employment nulls {surge_first} .. {surge_last}; latency regression and model {new_version} from {latency};
# labels missing for the last {delay} days.
store: sqlite:///driftline.db
dashboard_url: "${{DRIFTLINE_DASHBOARD_URL:-http://localhost:8501}}"
# Alerts go to a local webhook receiver that `driftline demo` starts (it sets the port and the
# signing secret); see README "Alerts" for Slack, webhooks and Databricks retraining.
channels:
  local:
    type: webhook
    url: "http://127.0.0.1:${{DRIFTLINE_DEMO_RECEIVER_PORT:-8765}}/driftline"
    secret_env: DRIFTLINE_DEMO_SECRET
monitors:
  - name: credit-risk
    source: {{type: parquet, path: "logs"}}
    columns:
      timestamp: ts
      id: request_id
      numeric: [income, age, debt_ratio, credit_lines]
      categorical: [region, channel, employment]
      prediction: score
      prediction_kind: probability
      target: label
      latency: latency_ms
      model_version: model_version
      segments: [region]
    reference: {{type: parquet, path: reference.parquet}}
    window: 1d
    schedule: "15 0 * * *"
    checks: {{drift: {{}}, quality: {{}}, latency: {{p95_max_ms: 250}}, performance: {{}}}}
    kpis:
      - {{name: approval_rate, column: score, agg: share, where: "< 0.5", min: 0.6}}
      - {{name: mean_score, column: score, agg: mean, max: 0.5}}
    alerts:
      routes: [{{channel: local, segments: false}}]
      for_windows: 1
      resolve_windows: 2
      repeat_interval: 1d
      retrain: {{channel: local, sustained_windows: 3, cooldown: 7d, checks: [drift]}}
"""


@dataclass(frozen=True)
class DemoEvents:
    """The known events planted in the demo, so tests can check Driftline finds them and nothing else."""

    start: date  # first day of the log (UTC)
    days: int
    drift_start: date  # first day of feature drift
    drifted_numeric: tuple[str, ...]  # numeric features whose distribution shifts from drift_start on
    new_category: tuple[str, str]  # (column, new value) appearing from drift_start on
    latency_start: date  # first day of the latency regression
    null_surge: tuple[str, date, date]  # (column, first day, last day inclusive) of the null surge
    label_delay_days: int  # labels of the last N days have not arrived yet


def plan_events(days: int = DEFAULT_DAYS, start: date | None = None) -> DemoEvents:
    """Where the events fall in a log of ``days`` days from ``start`` (default: ending yesterday, UTC).

    The offsets of a 60-day log (drift on day 40, latency on day 50, nulls on days 25-27) scale in
    proportion, keeping at least 10 healthy days before the drift.
    """
    if isinstance(start, datetime) or (start is not None and not isinstance(start, date)):
        raise TypeError(f"start must be a datetime.date (a UTC day), not {type(start).__name__}")
    if days < MIN_DAYS:
        raise ValueError(
            f"days={days}: the demo needs at least {MIN_DAYS} days "
            f"({MIN_HEALTHY_DAYS} healthy days, then the drift and the latency regression)"
        )
    if start is None:
        start = datetime.now(timezone.utc).date() - timedelta(days=days)

    def scaled(day: int) -> int:
        return int(day * days / DEFAULT_DAYS + 0.5)

    drift = max(MIN_HEALTHY_DAYS, scaled(_DRIFT_DAY))
    latency = max(drift + 1, scaled(_LATENCY_DAY))
    surge = scaled(_NULL_SURGE_DAY)
    return DemoEvents(
        start=start,
        days=days,
        drift_start=start + timedelta(days=drift),
        drifted_numeric=("income", "debt_ratio"),
        new_category=("channel", NEW_CHANNEL),
        latency_start=start + timedelta(days=latency),
        null_surge=(
            "employment",
            start + timedelta(days=surge),
            start + timedelta(days=surge + _NULL_SURGE_LENGTH - 1),
        ),
        label_delay_days=LABEL_DELAY_DAYS,
    )


def generate_demo(
    directory: Path,
    *,
    days: int = DEFAULT_DAYS,
    rows_per_day: int = 4000,
    seed: int = 7,
    start: date | None = None,
    reference_rows: int = 20000,
) -> DemoEvents:
    """Write the demo's log, reference and config under ``directory``; return the planted events.

    Deterministic for a given ``seed`` and ``start``. ``start`` defaults to ``days`` days before
    today (UTC), so the log ends yesterday. A ``logs`` folder left by an earlier demo is replaced;
    any other ``logs`` folder is an error, never deleted.
    """
    if rows_per_day < 1 or reference_rows < 1:
        raise ValueError(f"rows_per_day ({rows_per_day}) and reference_rows ({reference_rows}) must be positive")
    events = plan_events(days, start)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    logs = directory / LOGS_DIR
    _check_replaceable(logs)

    # One independent stream per output: the reference is stream 0, day i is stream i + 1, so a
    # day's random draws do not depend on how many days or reference rows were asked for.
    streams = np.random.default_rng(seed).spawn(days + 1)

    staging = directory / f".{LOGS_DIR}.partial"
    if staging.exists():
        shutil.rmtree(staging)
    for index in range(days):
        day = events.start + timedelta(days=index)
        table = _log_day(streams[index + 1], day, index, rows_per_day, events)
        partition = staging / f"date={day.isoformat()}"
        partition.mkdir(parents=True)
        pq.write_table(table, partition / _PART)
    if logs.exists():
        shutil.rmtree(logs)
    staging.rename(logs)

    reference = _reference(streams[0], events.start, reference_rows)
    _write_atomic(directory / REFERENCE_FILE, lambda path: pq.write_table(reference, path))
    config = _CONFIG.format(
        seed=seed,
        start=events.start,
        last=events.start + timedelta(days=days - 1),
        days=days,
        drift=events.drift_start,
        surge_first=events.null_surge[1],
        surge_last=events.null_surge[2],
        latency=events.latency_start,
        new_version=NEW_MODEL_VERSION,
        delay=events.label_delay_days,
    )
    _write_atomic(directory / CONFIG_FILE, lambda path: path.write_text(config, encoding="utf-8"))
    return events


# --- Days and the reference --------------------------------------------------------------------


def _log_day(rng: np.random.Generator, day: date, index: int, rows_per_day: int, events: DemoEvents) -> pa.Table:
    weekly = _WEEKDAY_VOLUME * (_WEEKEND_FACTOR if day.weekday() >= 5 else 1.0)
    n = max(1, round(rows_per_day * weekly * (1.0 + rng.uniform(-_DAILY_NOISE, _DAILY_NOISE))))
    midnight = _epoch_us(day)
    ts = np.sort(midnight + _time_of_day_us(rng, n))
    request_id = _uuid4(rng, n)

    _, surge_first, surge_last = events.null_surge
    days_before_end = events.days - 1 - index  # 0 on the last day
    arrived = days_before_end - events.label_delay_days
    if arrived < 0:
        labelled = 0.0
    elif arrived < len(_LABEL_ARRIVAL):
        labelled = _LABEL_ARRIVAL[arrived]
    else:
        labelled = 1.0
    columns = _rows(
        rng,
        n,
        drift=day >= events.drift_start,
        slow=day >= events.latency_start,
        null_share=NULL_SURGE_SHARE if surge_first <= day <= surge_last else BACKGROUND_NULL_SHARE,
        labelled_share=labelled,
    )
    return _table(ts, request_id, columns)


def _reference(rng: np.random.Generator, start: date, rows: int) -> pa.Table:
    """Training data: the healthy process over the 30 days before ``start``, every label known."""
    first = start - timedelta(days=REFERENCE_DAYS)
    dates = [first + timedelta(days=i) for i in range(REFERENCE_DAYS)]
    weights = np.array([_WEEKEND_FACTOR if d.weekday() >= 5 else 1.0 for d in dates])
    day_index = rng.choice(REFERENCE_DAYS, size=rows, p=weights / weights.sum())
    ts = np.sort(_epoch_us(first) + day_index * _US_PER_DAY + _time_of_day_us(rng, rows))
    request_id = _uuid4(rng, rows)
    columns = _rows(rng, rows, drift=False, slow=False, null_share=BACKGROUND_NULL_SHARE, labelled_share=1.0)
    return _table(ts, request_id, columns)


def _rows(
    rng: np.random.Generator,
    n: int,
    *,
    drift: bool,
    slow: bool,
    null_share: float,
    labelled_share: float,
) -> dict[str, pa.Array]:
    """``n`` rows of features, score, label and latency.

    Every draw happens whatever the events, in the same order; events only transform the draws,
    so a healthy day and the reference come from exactly the same process.
    """
    # Draws.
    age = 18 + np.floor(63 * rng.beta(2.2, 3.0, n)).astype(np.int64)  # 18..80, mean ~44
    employment_u = rng.random(n)
    log_income_noise = rng.normal(0.0, _LOG_INCOME_NOISE, n)
    debt_ratio = 1.5 * rng.beta(2.0, 5.0, n)  # mean ~0.43, sd ~0.24
    lines_rate = rng.gamma(4.0, (1.5 + 0.07 * (age - 18)) / 4.0)  # older applicants hold more lines
    credit_lines = rng.poisson(lines_rate).astype(np.int64)
    region = _categories(rng.random(n), _REGION_SHARES)
    channel_u = rng.random(n)
    missing_u = rng.random(n)
    hidden_risk = rng.normal(0.0, _HIDDEN_RISK_SD, n)
    default_u = rng.random(n)
    latency_z = rng.normal(0.0, 1.0, n)
    label_arrival_u = rng.random(n)

    band = np.where(age < 55, 0, np.where(age < 65, 1, 2))
    employment = (employment_u[:, None] >= np.cumsum(_EMPLOYMENT_BY_AGE, axis=1)[band][:, :-1]).sum(axis=1)
    centred_age = (age - 44) / 20
    log_income = (
        _LOG_INCOME_CENTRE + 0.25 * centred_age - 0.20 * centred_age**2
        + _INCOME_BY_EMPLOYMENT[employment] + log_income_noise
    )

    # Planted events.
    if drift:
        log_income = log_income + np.log(INCOME_DRIFT_FACTOR)
        debt_ratio = np.minimum(debt_ratio + DEBT_RATIO_DRIFT, 1.5)
        partner = channel_u < NEW_CHANNEL_SHARE
        # The remaining draws, rescaled to [0, 1), keep the old channels' relative shares.
        channel = _categories((channel_u - NEW_CHANNEL_SHARE) / (1.0 - NEW_CHANNEL_SHARE), _CHANNEL_SHARES)
        channel = np.where(partner, len(CHANNELS), channel)
    else:
        channel = _categories(channel_u, _CHANNEL_SHARES)
    latency = _LATENCY_MEDIAN_MS * np.exp(_LATENCY_SIGMA * latency_z) * (LATENCY_FACTOR if slow else 1.0)

    income = np.round(np.exp(log_income), 2)
    debt_ratio = np.round(debt_ratio, 4)
    # The model scores the features it was served: the employment nulls are a logging fault
    # downstream of it, so they do not move the score.
    model_logit = (
        -0.9 * (np.log(income) - _LOG_55K)
        + 3.0 * (debt_ratio - 0.43)
        - 0.015 * (age - 44)
        + 0.08 * (credit_lines - 4)
        + _RISK_BY_EMPLOYMENT[employment]
    )
    score = _sigmoid(_MODEL_INTERCEPT + model_logit)
    true_risk = _sigmoid(
        _TRUE_INTERCEPT + model_logit + _HIGH_DEBT_SLOPE * np.maximum(debt_ratio - _HIGH_DEBT, 0.0) + hidden_risk
    )
    label = (default_u < true_risk).astype(np.int64)

    return {
        "income": pa.array(income),
        "age": pa.array(age),
        "debt_ratio": pa.array(debt_ratio),
        "credit_lines": pa.array(credit_lines),
        "region": _strings(region, REGIONS),
        "channel": _strings(channel, CHANNELS + (NEW_CHANNEL,)),
        "employment": _strings(employment, EMPLOYMENTS, missing=missing_u < null_share),
        "score": pa.array(score),
        "label": pa.array(label, mask=label_arrival_u >= labelled_share),
        "latency_ms": pa.array(np.round(latency, 1)),
        "model_version": pa.array(np.full(n, NEW_MODEL_VERSION if slow else MODEL_VERSION, dtype=object), pa.string()),
    }


# --- Helpers -----------------------------------------------------------------------------------


def _table(ts_us: np.ndarray, request_id: pa.Array, columns: dict[str, pa.Array]) -> pa.Table:
    arrays = {"ts": pa.array(ts_us, pa.timestamp("us", tz="UTC")), "request_id": request_id, **columns}
    return pa.Table.from_arrays([arrays[field.name] for field in SCHEMA], schema=SCHEMA)


def _epoch_us(day: date) -> int:
    return (day - date(1970, 1, 1)).days * _US_PER_DAY


def _time_of_day_us(rng: np.random.Generator, n: int) -> np.ndarray:
    """Microseconds after midnight following the intraday curve."""
    minute = np.searchsorted(_INTRADAY_CDF, rng.random(n), side="right")
    within = rng.integers(0, _US_PER_MINUTE, n)
    return minute.astype(np.int64) * _US_PER_MINUTE + within


def _categories(u: np.ndarray, shares: tuple[float, ...]) -> np.ndarray:
    """Codes 0..len(shares)-1 from uniform draws ``u`` in [0, 1)."""
    edges = np.cumsum(shares)[:-1]
    return np.searchsorted(edges, u, side="right")


def _strings(codes: np.ndarray, names: tuple[str, ...], missing: np.ndarray | None = None) -> pa.Array:
    indices = pa.array(codes.astype(np.int32), mask=missing)
    return pa.DictionaryArray.from_arrays(indices, pa.array(names, pa.string())).dictionary_decode()


def _uuid4(rng: np.random.Generator, n: int) -> pa.Array:
    """``n`` random version-4 UUID strings, vectorised (no Python loop per row)."""
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40  # version 4
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
    nibbles = np.empty((n, 32), dtype=np.uint8)
    nibbles[:, 0::2] = raw >> 4
    nibbles[:, 1::2] = raw & 0x0F
    text = np.full((n, 36), ord("-"), dtype=np.uint8)
    hex_positions = [i for i in range(36) if i not in (8, 13, 18, 23)]
    text[:, hex_positions] = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)[nibbles]
    offsets = np.arange(0, 36 * (n + 1), 36, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(text.tobytes()))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _check_replaceable(logs: Path) -> None:
    """Refuse to replace a ``logs`` folder that is not an earlier demo's (only date=*/part-0.parquet)."""
    if not logs.exists():
        return
    if logs.is_dir():
        entries = list(logs.iterdir())
        if all(
            entry.is_dir()
            and entry.name.startswith("date=")
            and all(child.name == _PART and child.is_file() for child in entry.iterdir())
            for entry in entries
        ):
            return
    raise FileExistsError(
        f"{logs} exists and is not a Driftline demo's log (date=YYYY-MM-DD/{_PART} partitions only); "
        "choose another directory or move it away"
    )


def _write_atomic(path: Path, write: Callable[[Path], object]) -> None:
    """Write through a hidden sibling and rename, so a reader never sees half a file."""
    partial = path.with_name(f".{path.name}.partial")
    write(partial)
    os.replace(partial, path)
