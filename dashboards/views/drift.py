"""Drift: a column x window heat map of the drift verdicts, and a drill-down into one column.

The heat map's cells are the stored effect sizes (the threshold sits mid-scale; an ``x`` marks a
breach). Clicking a cell, or box-selecting cells, picks the column and window to drill into; so do
the pickers below it and the ``column`` / ``window`` URL parameters. The drill-down overlays the
window's distribution on the reference's (decoded from the stored profiles) and draws the verdict's
history with its threshold band.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import streamlit as st

from dashboards import charts, common, data
from monitor import read

HEATMAP_KEY = "dl_heatmap"
_K_SEEN_SELECTION = "_dl_heatmap_seen"


def render() -> None:
    selected = common.filters()
    if selected is None or selected.monitor is None:
        return
    common.uses("column", "window")
    url, monitor, segment = selected.url, selected.monitor, selected.segment
    st.title(f"Drift · {monitor}")
    st.caption(f"{common.segment_label(segment)} · {selected.range_text()}")
    columns = data.drift_columns(url, monitor) if monitor in data.monitors(url) else pd.DataFrame()
    if columns.empty:
        common.no_data_message(monitor, "drift results")
        return
    grid = data.grid(
        url, monitor, read.VERDICT_CHECKS, statuses=read.VERDICT_STATUSES, segment=segment, start=selected.start, end=selected.end
    )
    if grid.empty:
        common.no_data_message(monitor, "drift results")
        return
    frame = grid.frame
    per_column = frame.groupby(["check", "column"]).agg(breaches=("breaches", "sum"), windows=("windows", "sum"))
    breached_columns = per_column[per_column["breaches"] > 0]
    tiles = st.columns(4)
    tiles[0].metric("Columns checked", len(per_column))
    tiles[1].metric("Columns that drifted", len(breached_columns), help="Columns with at least one breach in the range.")
    tiles[2].metric("Drift breaches", int(per_column["breaches"].sum()), help="Breached (column, window) verdicts in the range.")
    latest = frame[frame["bucket_start"] == frame["bucket_start"].max()]
    tiles[3].metric("Drifting in the latest window", int((latest["breaches"] > 0).sum()))

    st.subheader("Drift by column and window")
    note = (
        "Each cell is one window" if grid.windows_per_bucket == 1
        else f"Each cell groups {grid.windows_per_bucket} windows and shows the largest effect size among them"
    )  # fmt: skip
    st.caption(
        f"{note}; colour = effect size of the column's drift method (its threshold is mid-scale), × = breach. "
        "Click a cell (or drag a box) to drill into it."
    )
    event = st.plotly_chart(
        charts.heatmap(grid), key=HEATMAP_KEY, on_select="rerun", selection_mode=("points", "box"),
        config={"displaylogo": False, "modeBarButtonsToRemove": ["lasso2d", "autoScale2d"]},
    )
    _apply_selection(event, frame)

    st.subheader("Drill-down")
    labels = {col: charts.row_label(check, col) for check, col in zip(columns["check"], columns["column"])}
    options = list(labels)
    current = st.session_state.get(common.K_COLUMN)
    if current not in options:
        if current:
            st.warning(f"**{current}** has no drift verdict in {monitor}; pick a column below.")
        # Default: the column that breached most in the range, else the first.
        ranked = breached_columns.sort_values("breaches", ascending=False).reset_index()
        st.session_state[common.K_COLUMN] = ranked["column"].iloc[0] if not ranked.empty else options[0]
    pick, when = st.columns([1, 1])
    column = pick.selectbox("Column", options, key=common.K_COLUMN, format_func=lambda c: labels.get(c, c))
    check = columns.loc[columns["column"] == column, "check"].iloc[0]
    history = data.series(
        url, monitor, check, columns=(column,), statuses=read.VERDICT_STATUSES, segment=segment,
        start=selected.start, end=selected.end, details=True,
    )  # fmt: skip
    if history.empty:
        common.no_data_message(monitor, f"drift verdicts of {column}")
        return
    verdict = _pick_window(when, history, url, monitor, check, column, segment)
    window_start = verdict["window_start"]
    _verdict_tiles(verdict)
    dist = data.distribution(url, monitor, column, segment, window_start.to_pydatetime())
    left, right = st.columns(2)
    with left:
        st.plotly_chart(charts.distribution(dist), key="dl_distribution", config={"displayModeBar": False})
        _distribution_notes(dist)
    with right:
        metric = str(verdict["metric"])
        bucketed = bool((history["windows"] > 1).any())
        st.plotly_chart(
            charts.history(history, title=f"{metric} of {column} over time", selected=window_start, value_name=metric),
            key="dl_history",
            config={"displayModeBar": False},
        )
        st.caption(
            "Shaded: the healthy side of the threshold; red circles: breaches"
            + ("; long range: each point is the largest value of several windows." if bucketed else ".")
        )
    _other_methods(url, monitor, check, column, segment, verdict)


def _apply_selection(event, frame: pd.DataFrame) -> None:  # noqa: ANN001
    """A new click or box selection on the heat map picks the drill-down's column and window."""
    cell = charts.selected_cell(event, frame)
    if cell is None:
        return
    key = (cell["check"], cell["column"], cell["bucket_start"])
    if key == st.session_state.get(_K_SEEN_SELECTION):
        return
    st.session_state[_K_SEEN_SELECTION] = key
    st.session_state[common.K_COLUMN] = cell["column"]
    st.session_state[common.K_WINDOW] = cell["bucket_start"].to_pydatetime()
    if cell["windows"] > 1:  # several windows behind the cell: show its worst
        st.session_state[_K_UNTIL] = cell["bucket_end"].to_pydatetime()


_K_PICK = "dl_window_pick"
_K_UNTIL = "_dl_window_in_bucket_until"
_K_BUCKET_ENDS = "_dl_window_bucket_ends"


def _pick_window(container, history: pd.DataFrame, url: str, monitor: str, check: str, column: str, segment: str) -> pd.Series:  # noqa: ANN001
    """The verdict of the window to compare with the reference, with its details.

    The window asked for (URL, click, picker), else the latest. On a long range ``history`` is
    bucketed, so the picker lists buckets; the drill-down then shows the window asked for when it
    lies in the picked bucket, else the bucket's worst window (breached first, then the largest
    effect size): the one its heat map cell and history point stand for.
    """
    history = history.sort_values("window_start", ascending=False).drop_duplicates("window_start")
    starts = list(history["window_start"])
    ends = dict(zip(history["window_start"], history["window_end"]))
    bucketed = bool((history["windows"] > 1).any())
    wanted = st.session_state.get(common.K_WINDOW)
    wanted = pd.Timestamp(wanted) if isinstance(wanted, datetime) else None
    until = st.session_state.pop(_K_UNTIL, None)
    if wanted is not None and until is not None:
        # A heat map cell or a picked bucket of several windows: the worst of them.
        span = data.series(
            url, monitor, check, columns=(column,), statuses=read.VERDICT_STATUSES, segment=segment,
            start=wanted.to_pydatetime(), end=until,
        )  # fmt: skip
        wanted = _worst(span)["window_start"] if not span.empty else wanted
    choice = starts[0]
    if wanted is not None:
        choice = next((s for s in starts if s <= wanted < ends[s]), choice)
    labels = {
        s: f"{common.fmt_time(s)}"
        + (f" → {common.fmt_time(ends[s])} ({n} windows, {b} breached)" if n > 1 else f" · {status}")
        for s, n, b, status in zip(history["window_start"], history["windows"], history["breaches"], history["status"])
    }
    st.session_state[_K_BUCKET_ENDS] = {s: ends[s] for s in starts} if bucketed else {}
    st.session_state[_K_PICK] = choice
    picked = container.selectbox("Window", starts, key=_K_PICK, format_func=lambda s: labels.get(s, str(s)), on_change=_window_changed)
    # The picked bucket's windows, exactly (one window when the history is not bucketed).
    inner = data.series(
        url, monitor, check, columns=(column,), statuses=read.VERDICT_STATUSES, segment=segment,
        start=picked.to_pydatetime(), end=ends[picked].to_pydatetime(), details=True,
    )  # fmt: skip
    exact = inner[inner["window_start"] == wanted] if wanted is not None else inner.iloc[0:0]
    if not exact.empty:
        verdict = exact.iloc[0]
    elif not inner.empty:
        verdict = _worst(inner)
    else:
        verdict = history[history["window_start"] == picked].iloc[0]
    st.session_state[common.K_WINDOW] = verdict["window_start"].to_pydatetime()
    return verdict


def _worst(windows: pd.DataFrame) -> pd.Series:
    """The window a bucket stands for: breached first, then the largest effect size, then the latest."""
    ranked = windows.assign(_breach=windows["status"] == "breach").sort_values(["_breach", "value", "window_start"], ascending=False)
    return ranked.iloc[0].drop("_breach")


def _window_changed() -> None:
    picked = st.session_state.get(_K_PICK)
    if picked is not None:
        st.session_state[common.K_WINDOW] = pd.Timestamp(picked).to_pydatetime()
        end = st.session_state.get(_K_BUCKET_ENDS, {}).get(picked)
        if end is not None:  # a bucket of windows: show its worst
            st.session_state[_K_UNTIL] = end


def _verdict_tiles(verdict: pd.Series) -> None:
    details = verdict.get("details") if isinstance(verdict.get("details"), dict) else {}
    tiles = st.columns(5)
    status = str(verdict["status"])
    common.status_metric(tiles[0], f"Effect size ({verdict['metric']})", common.fmt_number(verdict["value"]), status,
                         f"threshold {common.fmt_number(verdict['threshold'])}")  # fmt: skip
    p_value, gate, test = details.get("p_value"), details.get("p_value_max"), details.get("test")
    calibrated = details.get("threshold_mode") == "calibrated"
    how = (
        f"Calibrated threshold = max(minimum effect {common.fmt_number(details.get('min_effect'))}, null quantile "
        f"{common.fmt_number(details.get('null_quantile'))} for this window's size + the reference's own variation "
        f"{common.fmt_number(details.get('excess'))}). The p-value is the chance of an effect this large when nothing changed."
        if calibrated
        else "A fixed threshold from the config; the p-value is the column's test."
    )
    tiles[1].metric(
        "p-value" if calibrated or not test else f"p-value ({test})",
        common.fmt_number(p_value) if p_value is not None else "—",
        delta=f"gate {gate:g}" if gate is not None else None, delta_color="off", delta_arrow="off",
        help=how,
    )  # fmt: skip
    tiles[2].metric("Rows in the window", common.fmt_number(details.get("n_current")))
    tiles[3].metric("Rows in the reference", common.fmt_number(details.get("n_reference")))
    rank = details.get("rank")
    tiles[4].metric("Drift rank", f"#{rank}" if rank is not None else "—", help="Among the window's features, by how far each moved relative to its threshold (1 = moved most).")


def _distribution_notes(dist: read.Distribution) -> None:
    notes = list(dist.notes)
    from checks.profiles import CategoricalProfile, NumericProfile

    cur, ref = dist.current, dist.reference
    if isinstance(cur, NumericProfile):
        outside = []
        if cur.below:
            outside.append(f"{cur.below:,} below")
        if cur.above:
            outside.append(f"{cur.above:,} above")
        if outside:
            notes.append(f"{' and '.join(outside)} the reference's range [{ref.binning.low:.4g}, {ref.binning.high:.4g}]" if isinstance(ref, NumericProfile) else " and ".join(outside))
        if cur.missing or cur.invalid:
            notes.append(f"{cur.missing:,} missing and {cur.invalid:,} invalid values not drawn")
    if isinstance(cur, CategoricalProfile) and cur.unseen:
        notes.append(f"{cur.unseen:,} rows hold values the reference never had (red bars)")
    if dist.window is not None:
        notes.insert(0, f"Window {common.fmt_time(dist.window.start)} → {common.fmt_time(dist.window.end)} vs reference v{dist.reference_version}"
                     + ("" if dist.reference_segment == dist.segment else " (whole population)"))  # fmt: skip
    if notes:
        st.caption(" · ".join(notes))


def _other_methods(url: str, monitor: str, check: str, column: str, segment: str, verdict: pd.Series) -> None:
    others = data.series(
        url, monitor, check, columns=(column,), segment=segment,
        start=verdict["window_start"].to_pydatetime(), end=verdict["window_end"].to_pydatetime(),
    )  # fmt: skip
    if others.empty:
        return
    with st.expander("All methods for this window"):
        table = others[["metric", "value", "threshold", "status"]].rename(columns={"metric": "method", "value": "value (p-value for ks/chi2)"})
        st.dataframe(table, hide_index=True, width="stretch")


if __name__ == "__main__":
    render()
