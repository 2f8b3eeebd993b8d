"""Data quality: missing, out-of-range, invalid and unseen shares per column over time, row counts,
and the dataset-level checks (duplicate ids, unreadable timestamps, columns missing from the log)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboards import charts, common, data

SHARES = (
    ("missing_share", "Missing"),
    ("out_of_range_share", "Out of range"),
    ("unseen_share", "Unseen categories"),
    ("invalid_share", "Invalid"),
)
COLUMN_METRICS = tuple(metric for metric, _ in SHARES)
DATASET_METRICS = ("duplicate_id_share", "bad_timestamp_share", "column_missing")


def render() -> None:
    selected = common.filters()
    if selected is None or selected.monitor is None:
        return
    common.uses("column")
    url, monitor, segment = selected.url, selected.monitor, selected.segment
    start, end = selected.start, selected.end
    st.title(f"Data quality · {monitor}")
    st.caption(f"{common.segment_label(segment)} · {selected.range_text()}")
    if monitor not in data.monitors(url) or start is None:
        common.no_data_message(monitor, "data-quality results")
        return
    # The breaches of the range (exact windows) for the tiles and the table; a heat map of the one
    # share shown (a year of hourly windows is a million quality rows: read what is drawn).
    breaches = data.breaches(url, monitor, segment, start, end, ("quality",))
    rows = data.series(url, monitor, "quality", metrics=("row_count",), columns=("",), segment=segment, start=start, end=end)
    dataset = data.series(url, monitor, "quality", metrics=DATASET_METRICS, columns=("",), segment=segment, start=start, end=end)
    if rows.empty and dataset.empty:
        common.no_data_message(monitor, "data-quality results")
        return

    tiles = st.columns(5)
    latest_rows = rows.sort_values("window_start").iloc[-1] if not rows.empty else None
    tiles[0].metric("Rows (latest window)", common.fmt_number(latest_rows["value"]) if latest_rows is not None else "—")
    for i, (metric, label) in enumerate(SHARES[:3], start=1):
        part = breaches[breaches["metric"] == metric]
        tiles[i].metric(f"{label}: columns breaching", len(part), help=f"Columns whose {metric} breached at least once in the range.")
    tiles[4].metric("Quality breaches", int(breaches["windows"].sum()) if not breaches.empty else 0, help="Breached (column, metric, window) results.")

    if not breaches.empty:
        with st.expander(f"Breaches in this range ({len(breaches)})", expanded=True):
            table = breaches.drop(columns=["check"]).rename(columns={"windows": "windows breached", "first": "first window", "last": "last window end"})
            table["column"] = table["column"].replace({"": "(dataset)"})
            st.dataframe(
                table,
                hide_index=True,
                width="stretch",
                column_config={
                    "first window": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
                    "last window end": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm"),
                },
            )

    st.subheader("Shares by column and window")
    # One heat map at a time: each is a query over every window of the range.
    labels = dict(SHARES)
    if st.session_state.get("dl_quality_share") not in labels:
        st.session_state["dl_quality_share"] = "missing_share"
    metric = st.segmented_control(
        "Share", list(labels), key="dl_quality_share", format_func=labels.get, label_visibility="collapsed"
    ) or "missing_share"
    grid = data.grid(url, monitor, "quality", metrics=(metric,), segment=segment, start=start, end=end)
    if grid.empty:
        st.info(f"No {labels[metric].lower()} results in this range.")
    else:
        st.plotly_chart(
            charts.heatmap(grid, value_name=metric.replace("_", " "), order="breaches"),
            key=f"dl_quality_{metric}",
            config={"displayModeBar": False},
        )
    st.caption("Colour = the share (its threshold mid-scale), × = breach; long ranges show the largest share of several windows per cell.")

    st.subheader("Rows per window")
    st.plotly_chart(charts.volume(rows), key="dl_quality_rows", config={"displayModeBar": False})

    st.subheader("Dataset checks")
    left, right = st.columns(2)
    left.plotly_chart(
        charts.lines(dataset, ["duplicate_id_share", "bad_timestamp_share"], title="Duplicate ids and unreadable timestamps", percent=True, height=260),
        key="dl_quality_dataset",
        config={"displayModeBar": False},
    )
    missing_columns = dataset[(dataset["metric"] == "column_missing") & (dataset["value"].fillna(0) > 0)]
    with right:
        if missing_columns.empty:
            st.success("Every configured column was present in every window of this range.")
        else:
            st.warning(f"Configured columns missing from the log in {missing_columns['window_start'].nunique()} window(s).")
            st.dataframe(missing_columns[["window_start", "column", "value", "status"]], hide_index=True, width="stretch")

    _unseen_values(url, monitor, segment, rows)
    _column_focus(url, monitor, segment, start, end)


def _unseen_values(url: str, monitor: str, segment: str, rows: pd.DataFrame) -> None:
    columns = data.checked_columns(url, monitor)
    categorical = sorted(set(columns.loc[columns["metric"] == "unseen_share", "column"]))
    if not categorical or rows.empty:
        return
    latest = rows["window_start"].max()
    if (rows["windows"] > 1).any():  # bucketed: the latest bucket's start is not a window start
        return
    values = data.unseen(url, monitor, tuple(categorical), segment, latest.to_pydatetime())
    st.subheader("Unseen categories in the latest window")
    if values.empty:
        st.success(f"No value outside the reference's categories in the window of {common.fmt_time(latest)}.")
    else:
        st.dataframe(values.rename(columns={"count": "rows"}), hide_index=True, width="stretch")


def _column_focus(url: str, monitor: str, segment: str, start, end) -> None:  # noqa: ANN001
    columns = data.checked_columns(url, monitor)
    options = sorted(set(columns.loc[(columns["check"] == "quality") & (columns["column"] != ""), "column"]))
    if not options:
        return
    st.subheader("One column over time")
    if st.session_state.get(common.K_COLUMN) not in options:
        st.session_state[common.K_COLUMN] = options[0]
    column = st.selectbox("Column", options, key=common.K_COLUMN)
    series = data.series(url, monitor, "quality", metrics=COLUMN_METRICS, columns=(column,), segment=segment, start=start, end=end)
    st.plotly_chart(
        charts.lines(series, list(COLUMN_METRICS), title=f"Quality of {column}", percent=True),
        key="dl_quality_column",
        config={"displayModeBar": False},
    )


if __name__ == "__main__":
    render()
