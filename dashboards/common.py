"""What every page shares: settings, the sidebar's pickers, URL query parameters, formatting.

The pickers (monitor, segment, time range, and a page's column) live in ``st.session_state`` under
``dl_*`` keys. The URL is their shareable copy (``monitor.read.QUERY_PARAMS``):

- when the URL's parameters change (a pasted link, the first load of a Slack link), the pickers are
  set from them; a value that does not exist (an unknown monitor) is dropped with a warning;
- after every run the pickers are written back to the URL, so the address bar always links to what
  is on screen, times as UTC ISO 8601.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from dashboards import data
from monitor import read
from monitor.windows import Window, as_utc

CONFIG_ENV = "DRIFTLINE_CONFIG"
STORE_ENV = "DRIFTLINE_STORE_URL"

# Time range presets, by span; "All" is the whole stored history, "Custom" the start/end pickers.
PRESETS: dict[str, timedelta | None] = {
    "Last 24 hours": timedelta(days=1),
    "Last 7 days": timedelta(days=7),
    "Last 30 days": timedelta(days=30),
    "Last 90 days": timedelta(days=90),
    "Last year": timedelta(days=365),
    "All": None,
}
CUSTOM = "Custom"
RANGE_CHOICES = [*PRESETS, CUSTOM]
DEFAULT_WINDOWS = 60  # the default range is the shortest preset showing at least this many windows

# Markdown badges (emoji need a colour font that many browsers in containers lack).
STATUS_BADGES = {
    "ok": ":green-badge[ok]",
    "breach": ":red-badge[breach]",
    "no_data": ":gray-badge[no data]",
    "failed": ":violet-badge[failed]",
    "info": ":blue-badge[info]",
    "error": ":orange-badge[error]",
    "stale": ":orange-badge[stale]",
    None: ":gray-badge[no data yet]",
}
# st.metric's delta colours for a status shown under a tile's value.
STATUS_DELTA_COLORS = {"ok": "green", "breach": "red", "no_data": "gray", "failed": "violet", "info": "blue", "error": "orange"}


# Session-state keys of the pickers (widgets) and of what the URL last said.
K_MONITOR, K_SEGMENT, K_RANGE, K_START, K_END = "dl_monitor", "dl_segment", "dl_range", "dl_start", "dl_end"
K_COLUMN, K_WINDOW = "dl_column", "dl_window"
_K_URL_SEEN = "_dl_url_seen"
_K_WARNINGS = "_dl_url_warnings"
_K_FILTERS = "_dl_filters"
_K_PAGE_PARAMS = "_dl_page_params"


class SettingsError(RuntimeError):
    """The dashboard was started without a usable config or store."""


@st.cache_resource(show_spinner=False, ttl=data.TTL)
def _settings_from(config: str | None, store_url: str | None) -> read.DashboardSettings:
    if config:
        return read.load_settings(config)
    if store_url:
        return read.DashboardSettings(store_url=store_url)
    raise SettingsError(
        "No configuration: start the dashboard with `driftline dashboard --config driftline.yaml` "
        f"(or set {CONFIG_ENV} to a config file, or {STORE_ENV} to a store URL)."
    )


def settings() -> read.DashboardSettings:
    """The dashboard's settings, from ``DRIFTLINE_CONFIG`` (a config file) or ``DRIFTLINE_STORE_URL``."""
    config = os.environ.get(CONFIG_ENV)
    return _settings_from(str(Path(config).resolve()) if config else None, os.environ.get(STORE_ENV))


# --------------------------------------------------------------------------------- filters


@dataclass(frozen=True)
class Filters:
    """What the sidebar selected, for the page to draw."""

    settings: read.DashboardSettings
    monitors: tuple[str, ...]
    monitor: str | None
    segment: str
    start: datetime | None
    end: datetime | None
    window: timedelta | None  # the monitor's window size
    extent: Window | None  # the monitor's stored history

    @property
    def url(self) -> str:
        return self.settings.store_url

    @property
    def info(self) -> read.MonitorInfo | None:
        return None if self.monitor is None else self.settings.monitor(self.monitor)

    def range_text(self) -> str:
        if self.start is None or self.end is None:
            return "no data"
        return f"{fmt_time(self.start)} → {fmt_time(self.end)} UTC"


def _query_params() -> dict[str, str]:
    params = {}
    for key in st.query_params.keys():
        value = st.query_params.get(key)
        if value is not None:
            params[key] = str(value)
    return params


def sync_from_url(known_monitors: list[str]) -> None:
    """Set the pickers from the URL when its parameters changed since this session last wrote them."""
    params = {k: v for k, v in _query_params().items() if k in read.QUERY_PARAMS}
    if params == st.session_state.get(_K_URL_SEEN):
        return
    warnings: list[str] = []
    monitor = params.get("monitor")
    if monitor is not None:
        if monitor in known_monitors:
            st.session_state[K_MONITOR] = monitor
        else:
            warnings.append(f"There is no monitor named **{monitor}** in this store.")
    if "segment" in params:
        st.session_state[K_SEGMENT] = params["segment"] or read.ALL_SEGMENT
    start, end = read.parse_time(params.get("start")), read.parse_time(params.get("end"))
    for name, parsed in (("start", start), ("end", end)):
        if params.get(name) and parsed is None:
            warnings.append(f"`{name}={params[name]}` is not a time; write ISO 8601, e.g. 2026-11-01T00:00:00Z.")
    if start is not None or end is not None:
        st.session_state[K_RANGE] = CUSTOM
        if start is not None:
            st.session_state[K_START] = start.replace(tzinfo=None)
        if end is not None:
            st.session_state[K_END] = end.replace(tzinfo=None)
    if params.get("column"):
        st.session_state[K_COLUMN] = params["column"]
    window = read.parse_time(params.get("window"))
    if window is not None:
        st.session_state[K_WINDOW] = window
    st.session_state[_K_URL_SEEN] = params
    st.session_state[_K_WARNINGS] = warnings


def default_range_choice(window: timedelta | None) -> str:
    """The shortest preset that shows at least ``DEFAULT_WINDOWS`` windows.

    >>> default_range_choice(timedelta(hours=1)), default_range_choice(timedelta(days=1))
    ('Last 7 days', 'Last 90 days')
    """
    if window is None or window <= timedelta(0):
        return "Last 30 days"
    for name, span in PRESETS.items():
        if span is not None and span / window >= DEFAULT_WINDOWS:
            return name
    return "All"


def resolve_range(
    choice: str, extent: Window | None, custom_start: datetime | None, custom_end: datetime | None
) -> tuple[datetime | None, datetime | None]:
    """``[start, end)`` of a range choice: presets end at the end of the latest stored window.

    >>> from datetime import datetime, timezone
    >>> history = Window(datetime(2026, 1, 1, tzinfo=timezone.utc), datetime(2026, 3, 1, tzinfo=timezone.utc))
    >>> [t.date().isoformat() for t in resolve_range("Last 7 days", history, None, None)]
    ['2026-02-22', '2026-03-01']
    """
    if choice == CUSTOM:
        start = as_utc(custom_start) if custom_start is not None else (extent.start if extent else None)
        end = as_utc(custom_end) if custom_end is not None else (extent.end if extent else None)
        if start is not None and end is not None and end <= start:
            end = start + timedelta(days=1)
        return start, end
    if extent is None:
        return None, None
    span = PRESETS.get(choice)
    if span is None:
        return extent.start, extent.end
    return max(extent.start, extent.end - span), extent.end


def sidebar() -> Filters | None:
    """Draw the pickers and return what they select; ``None`` when there is nothing to show."""
    conf = settings()
    url = conf.store_url
    if not data.ready(url):
        return None
    known = data.monitors(url)
    names = list(dict.fromkeys([*known, *(m.name for m in conf.monitors)]))
    sync_from_url(names)
    for warning in st.session_state.pop(_K_WARNINGS, []):  # once, for the link that caused it
        st.warning(warning)
    if not names:
        return Filters(conf, (), None, read.ALL_SEGMENT, None, None, None, None)
    sb = st.sidebar
    if st.session_state.get(K_MONITOR) not in names:
        st.session_state[K_MONITOR] = names[0]
    monitor = sb.selectbox("Monitor", names, key=K_MONITOR)
    segments = data.segments(url, monitor) if monitor in known else [read.ALL_SEGMENT]
    if st.session_state.get(K_SEGMENT) not in segments:
        asked = st.session_state.get(K_SEGMENT)
        if asked and asked != read.ALL_SEGMENT:
            st.warning(f"Monitor **{monitor}** has no segment **{asked}**: showing the whole population.")
        st.session_state[K_SEGMENT] = read.ALL_SEGMENT
    segment = sb.selectbox(
        "Segment", segments, key=K_SEGMENT, format_func=lambda s: "All rows (*)" if s == read.ALL_SEGMENT else s
    )
    size = data.window_size(url, monitor) if monitor in known else None
    info = conf.monitor(monitor)
    if size is None and info is not None:
        size = info.window
    extent = data.extent(url, monitor) if monitor in known else None
    if st.session_state.get(K_RANGE) not in RANGE_CHOICES:
        st.session_state[K_RANGE] = default_range_choice(size)
    choice = sb.selectbox("Time range", RANGE_CHOICES, key=K_RANGE, help="Presets end with the latest stored window.")
    custom_start = custom_end = None
    if choice == CUSTOM:
        if K_START not in st.session_state:
            st.session_state[K_START] = (extent.start if extent else datetime.now(timezone.utc)).replace(tzinfo=None)
        if K_END not in st.session_state:
            st.session_state[K_END] = (extent.end if extent else datetime.now(timezone.utc)).replace(tzinfo=None)
        custom_start = sb.datetime_input("From (UTC)", key=K_START, format="YYYY-MM-DD")
        custom_end = sb.datetime_input("To (UTC)", key=K_END, format="YYYY-MM-DD")
    start, end = resolve_range(choice, extent, custom_start, custom_end)
    if size is not None:
        sb.caption(f"Windows of {fmt_duration(size)}; times in UTC.")
    if sb.button("Refresh data", help=f"Results are cached for {data.TTL} s; this reads the store again."):
        data.clear()
        st.rerun()
    filters = Filters(conf, tuple(names), monitor, segment, start, end, size, extent)
    st.session_state[_K_FILTERS] = filters
    return filters


def range_for(selected: Filters, monitor: str) -> tuple[datetime | None, datetime | None]:
    """The selected range for another monitor: presets count back from *its* latest window."""
    if monitor == selected.monitor:
        return selected.start, selected.end
    choice = st.session_state.get(K_RANGE, default_range_choice(selected.window))
    if choice == CUSTOM:
        return selected.start, selected.end
    return resolve_range(choice, data.extent(selected.url, monitor), None, None)


def filters() -> Filters | None:
    """The pickers' selection, as the entry script's sidebar left it for this run."""
    return st.session_state.get(_K_FILTERS)


def uses(*params: str) -> None:
    """Declare the page-specific URL parameters (``column``, ``window``) the page shows."""
    st.session_state[_K_PAGE_PARAMS] = params


def write_url() -> None:
    """Write the pickers back to the URL (after the page ran, so page pickers are included)."""
    selected: Filters | None = st.session_state.get(_K_FILTERS)
    if selected is None or selected.monitor is None:
        return
    params: dict[str, str] = {"monitor": selected.monitor}
    if selected.segment != read.ALL_SEGMENT:
        params["segment"] = selected.segment
    if selected.start is not None and selected.end is not None:
        params["start"], params["end"] = read.iso(selected.start), read.iso(selected.end)
    page_params = st.session_state.get(_K_PAGE_PARAMS, ())
    column = st.session_state.get(K_COLUMN)
    if "column" in page_params and column:
        params["column"] = column
    window = st.session_state.get(K_WINDOW)
    if "window" in page_params and isinstance(window, datetime):
        params["window"] = read.iso(window)
    st.session_state[_K_URL_SEEN] = params
    if _query_params() != params:
        st.query_params.from_dict(params)


def start_page() -> None:
    """Reset per-page state at the top of the entry script (before the page declares its own)."""
    st.session_state[_K_PAGE_PARAMS] = ()
    st.session_state.pop(_K_FILTERS, None)


# --------------------------------------------------------------------------------- messages


def empty_store_message(conf: read.DashboardSettings) -> None:
    where = conf.config_path or conf.store_url
    st.info(
        "### No results yet\n"
        f"The store `{safe_url(conf.store_url)}` holds no monitor runs. Check some windows first, then reload:\n\n"
        f"```\ndriftline backfill --config {where} --start 2026-01-01\n```\n"
        "or `driftline run` for the latest window, or try `driftline demo` for a populated example."
    )


def no_data_message(monitor: str, what: str = "results") -> None:
    st.info(
        f"Monitor **{monitor}** has no {what} in this time range. Pick a longer range in the sidebar, "
        "or run `driftline backfill` for it."
    )


def safe_url(url: str) -> str:
    """A store URL with its password masked, for display.

    >>> safe_url("postgresql+psycopg://u:secret@db/x")
    'postgresql+psycopg://u:***@db/x'
    """
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL at all: show nothing of it
        return "(store)"


# ------------------------------------------------------------------------------- formatting


def fmt_time(moment: Any) -> str:
    """A UTC time, without the seconds and without 00:00 on whole days.

    >>> from datetime import datetime, timezone
    >>> fmt_time(datetime(2026, 11, 1, tzinfo=timezone.utc)), fmt_time(datetime(2026, 11, 1, 6, 30, tzinfo=timezone.utc))
    ('2026-11-01', '2026-11-01 06:30')
    """
    if moment is None or (isinstance(moment, float) and pd.isna(moment)):
        return "—"
    moment = pd.Timestamp(moment)
    moment = moment.tz_localize("UTC") if moment.tzinfo is None else moment.tz_convert("UTC")
    if moment.hour == 0 and moment.minute == 0 and moment.second == 0:
        return moment.strftime("%Y-%m-%d")
    return moment.strftime("%Y-%m-%d %H:%M")


def fmt_duration(delta: timedelta | None) -> str:
    """``3 d 4 h``, ``45 min``, ``12 s``.

    >>> fmt_duration(timedelta(days=3, hours=4)), fmt_duration(timedelta(minutes=45)), fmt_duration(timedelta(hours=1))
    ('3 d 4 h', '45 min', '1 h')
    """
    if delta is None:
        return "—"
    seconds = int(delta.total_seconds())
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{sign}{days} d" + (f" {hours} h" if hours else "")
    if hours:
        return f"{sign}{hours} h" + (f" {minutes} min" if minutes else "")
    if minutes:
        return f"{sign}{minutes} min"
    return f"{sign}{secs} s"


def fmt_number(value: Any, digits: int = 3) -> str:
    """Numbers for tiles: thousands separators for counts, ``digits`` significant digits otherwise.

    >>> fmt_number(240741), fmt_number(0.0123456), fmt_number(None)
    ('240,741', '0.0123', '—')
    """
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "—"
    if isinstance(value, (int,)) or (isinstance(value, float) and value.is_integer() and abs(value) >= 1000):
        return f"{int(value):,}"
    return f"{float(value):.{digits}g}"


def status_metric(container: Any, label: str, value: str, status: str | None, note: str | None = None, help: str | None = None) -> None:
    """A tile whose status (and a short note, e.g. its threshold) shows in colour under the value."""
    delta = None
    if status:
        delta = status.replace("_", " ") + (f" · {note}" if note else "")
    elif note:
        delta = note
    container.metric(
        label,
        value,
        delta=delta,
        delta_color=STATUS_DELTA_COLORS.get(status or "", "off") if status else "off",
        delta_arrow="off",
        help=help,
    )


def segment_label(segment: str) -> str:
    return "all rows" if segment == read.ALL_SEGMENT else segment


def page_link(page: str, label: str, monitor: str | None = None, **extra: str) -> None:
    """A link to another page carrying the current monitor, segment and range."""
    # The session keeps segment and range across pages; the link names the monitor (and a column).
    selected = filters()
    params: dict[str, str] = {}
    target = monitor or (selected.monitor if selected else None)
    if target:
        params["monitor"] = target
    params.update({k: v for k, v in extra.items() if v})
    st.page_link(PAGE_FILES[page], label=label, query_params=params)


PAGE_FILES = {page: f"views/{page}.py" for page in read.PAGES}
