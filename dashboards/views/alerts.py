"""Alerts: alert states and history, notifications with their delivery status and errors, retrain
triggers and silences. Secrets never appear: channels are shown by name and type, errors as the
outbox stored them (redacted), and no payload or channel URL is read."""

from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
import streamlit as st

from dashboards import charts, common, data

STATUS_ORDER = {"firing": 0, "pending": 1, "resolved": 2, "ok": 3}
TIME_FORMAT = "YYYY-MM-DD HH:mm"


def render() -> None:
    selected = common.filters()
    if selected is None or selected.monitor is None:
        return
    url, monitor, segment = selected.url, selected.monitor, selected.segment
    st.title(f"Alerts · {monitor}")
    if not data.alerting(url):
        st.info(
            "### Alerting is not configured\n"
            "This store has no alert tables: alerts, Slack and webhook deliveries, retrain triggers and silences "
            "appear here once a monitor has an `alerts:` section and a run with alerting has migrated the store."
        )
        return
    info = selected.info
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    # The whole population (*) lists alerts of every segment; a segment lists its own.
    alerts = data.alerts(url, monitor, None if segment == "*" else segment)
    deliveries = data.deliveries(url, monitor, None, selected.start, selected.end)
    silences = data.silences(url, monitor, now)
    configured = info is not None and info.alerting
    if not configured and alerts.empty and deliveries.empty and silences.empty:
        st.info(
            "### Alerting is not configured for this monitor\n"
            f"Monitor **{monitor}** has no `alerts:` section, so its breaches are stored and shown on the other pages "
            "but raise no alert. Add routes to a Slack or webhook channel in its config (README: *Alerts*)."
        )
        return
    st.caption(
        f"{'every segment' if segment == '*' else segment}"
        + (f" · notifications of windows in {selected.range_text()}" if selected.start is not None else "")
        + (f" · routes: {', '.join(info.alert_channels)}" if info is not None and info.alert_channels else "")
        + (f" · retraining via {info.retrain_channel}" if info is not None and info.retrain_channel else "")
    )
    notify = deliveries[deliveries["kind"] == "notify"]
    retrain = deliveries[deliveries["kind"] == "retrain"]
    counts = alerts["status"].value_counts()
    tiles = st.columns(6)
    tiles[0].metric("Firing", int(counts.get("firing", 0)))
    tiles[1].metric("Pending", int(counts.get("pending", 0)), help="Breaching, not yet for enough consecutive windows to fire.")
    tiles[2].metric("Notifications", len(notify), help="Messages queued for windows in the range.")
    tiles[3].metric("Failed deliveries", int((deliveries["status"] == "failed").sum()), help="Deliveries that gave up (see their errors below).")
    tiles[4].metric("Retrain triggers", len(retrain))
    tiles[5].metric("Active silences", int(silences["active"].sum()) if not silences.empty else 0)

    st.subheader("Alert states")
    raised = alerts[alerts["status"] != "ok"]
    if raised.empty:
        st.success("No alert has been raised for this monitor" + ("" if segment == "*" else f" in {segment}") + ".")
    else:
        st.plotly_chart(_timeline(raised, now), key="dl_alert_timeline", config={"displayModeBar": False})
        table = raised.assign(_order=raised["status"].map(STATUS_ORDER)).sort_values(["_order", "since"], ascending=[True, False])
        table["column"] = table["column"].replace({"": "(dataset)"})
        st.dataframe(
            table.drop(columns=["_order"]),
            hide_index=True,
            width="stretch",
            column_config={
                "consecutive": st.column_config.NumberColumn("windows", help="Consecutive breaching windows."),
                "breaches": st.column_config.NumberColumn("metrics", help="Breached metrics in its last breaching window."),
                **{name: st.column_config.DatetimeColumn(name.replace("_", " "), format=TIME_FORMAT)
                   for name in ("since", "fired_at", "resolved_at", "last_window_end", "last_notified_at")},
            },
        )  # fmt: skip
        back = len(alerts) - len(raised)
        if back:
            st.caption(f"{back} other alert key(s) are back to ok.")

    st.subheader("Notifications")
    _deliveries_table(notify, "No notification for windows in this range.", key="dl_notifications")
    st.subheader("Retrain triggers")
    _deliveries_table(retrain, "No retraining was triggered for windows in this range.", key="dl_retrains")
    st.subheader("Silences")
    if silences.empty:
        st.caption("No silence. `driftline silence add --monitor ...` mutes matching alerts for a while.")
    else:
        st.dataframe(
            silences,
            hide_index=True,
            width="stretch",
            column_config={
                "starts_at": st.column_config.DatetimeColumn("starts", format=TIME_FORMAT),
                "ends_at": st.column_config.DatetimeColumn("ends", format=TIME_FORMAT),
            },
        )


def _deliveries_table(frame: pd.DataFrame, empty: str, *, key: str) -> None:
    if frame.empty:
        st.caption(empty)
        return
    failed = frame[frame["status"] == "failed"]
    if not failed.empty:
        st.error(f"{len(failed)} delivery(ies) failed; latest error: {failed.iloc[0]['last_error'] or 'none recorded'}")
    shown = frame[["created_at", "window_start", "reason", "status", "attempts", "channel", "channel_type", "sent_at",
                   "alerts", "resolved", "retrain", "external_id", "last_error"]]  # fmt: skip
    shown = shown.dropna(axis="columns", how="all")
    st.dataframe(
        shown,
        hide_index=True,
        width="stretch",
        key=key,
        column_config={
            "created_at": st.column_config.DatetimeColumn("queued", format=TIME_FORMAT),
            "window_start": st.column_config.DatetimeColumn("window", format=TIME_FORMAT),
            "sent_at": st.column_config.DatetimeColumn("sent", format=TIME_FORMAT),
            "channel_type": st.column_config.TextColumn("type"),
            "alerts": st.column_config.NumberColumn("firing", help="Alerts firing in the message."),
            "external_id": st.column_config.TextColumn("external id", help="Slack message ts or Databricks run id."),
            "last_error": st.column_config.TextColumn("last error", width="large"),
        },
    )


def _timeline(alerts: pd.DataFrame, now: datetime):  # noqa: ANN202
    """Each alert key as a bar over the windows it covers: from the window it started breaching in to
    the last window it saw (window times, not wall-clock times: a backfill raises alerts in the past)."""
    import plotly.graph_objects as go

    frame = alerts[alerts["since"].notna()].copy()
    if frame.empty:
        return charts.empty_figure("no alert has a start time yet")
    frame["label"] = [
        f"{c}:{col or '(dataset)'}" + ("" if s == "*" else f" [{s}]") for c, col, s in zip(frame["check"], frame["column"], frame["segment"])
    ]
    frame["until"] = frame["last_window_end"].fillna(frame["resolved_at"]).fillna(pd.Timestamp(now))
    colors = {"firing": charts.RED, "pending": charts.ORANGE, "resolved": charts.GREEN, "ok": charts.GREY}
    fig = go.Figure()
    for status, part in frame.groupby("status", sort=False):
        fig.add_trace(
            go.Bar(
                y=part["label"],
                x=(part["until"] - part["since"]).dt.total_seconds() * 1000,
                base=part["since"],
                orientation="h",
                marker_color=colors.get(str(status), charts.GREY),
                name=str(status),
                hovertemplate="%{y}<br>since the window of %{base|%Y-%m-%d %H:%M}<extra>" + str(status) + "</extra>",
            )
        )
    fig.update_xaxes(type="date")
    fig.update_yaxes(autorange="reversed")
    return charts.layout(fig, title="Alerts over time", height=max(200, 28 * len(frame) + 100), hovermode="closest", barmode="overlay")


if __name__ == "__main__":
    render()
