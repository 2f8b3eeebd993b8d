"""Runs: pipeline health — each run's status, duration, rows and error."""

from __future__ import annotations

import streamlit as st

from dashboards import charts, common, data
from monitor import read

TABLE_ROWS = 1000  # newest runs listed; the chart shows the whole range


def render() -> None:
    selected = common.filters()
    if selected is None or selected.monitor is None:
        return
    url, monitor = selected.url, selected.monitor
    st.title(f"Runs · {monitor}")
    st.caption(f"{selected.range_text()} · a run checks one window; re-running a window replaces it")
    if monitor not in data.monitors(url) or selected.start is None:
        common.no_data_message(monitor, "runs")
        return
    runs = data.runs(url, monitor, selected.start, selected.end)
    if runs.empty:
        common.no_data_message(monitor, "runs")
        return
    totals = read.run_totals(runs)
    tiles = st.columns(6)
    tiles[0].metric("Runs", f"{totals.runs:,}")
    tiles[1].metric("OK", f"{totals.ok:,}")
    tiles[2].metric("With breaches", f"{totals.breach:,}")
    tiles[3].metric("No data", f"{totals.no_data:,}", help="Windows with no rows in the log.")
    tiles[4].metric("Failed", f"{totals.failed:,}", help="The pipeline itself failed (unreadable source, missing reference...).")
    tiles[5].metric("Slowest run", f"{totals.max_duration_s:.2f} s" if totals.max_duration_s is not None else "—")

    st.plotly_chart(charts.runs_timeline(runs), key="dl_runs_timeline", config={"displayModeBar": False})
    trend = data.run_buckets(url, monitor, selected.start, selected.end)
    st.plotly_chart(charts.sparkline(trend, height=120), key="dl_runs_rows", config={"displayModeBar": False})
    per_bar = int(trend["windows"].max()) if not trend.empty else 1
    st.caption("Rows per window, coloured by the run's status" + (f" (bars of {per_bar} windows: their mean, coloured by their worst run)." if per_bar > 1 else "."))

    failed = runs[runs["status"] == "failed"]
    if not failed.empty:
        st.subheader(f"Failed runs ({len(failed)})")
        for row in failed.sort_values("window_start", ascending=False).head(20).itertuples():
            st.error(f"**{common.fmt_time(row.window_start)}**: {row.error or 'no error recorded'}")

    st.subheader("All runs" if len(runs) <= TABLE_ROWS else f"Latest {TABLE_ROWS} runs")
    table = runs.sort_values("window_start", ascending=False).head(TABLE_ROWS)
    table = table[["window_start", "window_end", "status", "rows", "bad_rows", "duration_s", "trigger", "reference_version", "finished_at", "error"]]
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        column_config={
            "window_start": st.column_config.DatetimeColumn("window start", format="YYYY-MM-DD HH:mm"),
            "window_end": st.column_config.DatetimeColumn("window end", format="YYYY-MM-DD HH:mm"),
            "duration_s": st.column_config.NumberColumn("duration (s)", format="%.2f"),
            "bad_rows": st.column_config.NumberColumn("bad rows"),
            "reference_version": st.column_config.NumberColumn("reference"),
            "finished_at": st.column_config.DatetimeColumn("finished", format="YYYY-MM-DD HH:mm:ss"),
        },
    )


if __name__ == "__main__":
    render()
