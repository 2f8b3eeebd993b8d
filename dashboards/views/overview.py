"""Overview: every monitor as one row of health at a glance, with links to its detail pages."""

from __future__ import annotations

from datetime import datetime, timezone

import streamlit as st

from dashboards import charts, common, data


def render() -> None:
    selected = common.filters()
    if selected is None:
        return
    url = selected.url
    st.title("Overview")
    names = selected.monitors
    # `now` to the minute: lags stay right while the cached health is shared for a minute.
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    rows = data.health(url, tuple(names), now)
    # Alert counts only where alerting is in use: a configured monitor, or alerts in the store.
    alerting = data.alerting(url) and (
        any(m.alerting for m in selected.settings.monitors) or any(h.open_alerts for h in rows)
    )
    tiles = st.columns(5 if alerting else 4)
    healthy = sum(h.last_status == "ok" and not h.stale for h in rows)
    breaching = sum(h.last_status == "breach" for h in rows)
    failing = sum(h.last_status == "failed" for h in rows)
    quiet = sum(h.last_status is None or h.stale or h.last_status == "no_data" for h in rows)
    tiles[0].metric("Healthy", f"{healthy} / {len(rows)}", help="Latest window checked, no breach, not stale.")
    tiles[1].metric("Breaching", breaching, help="Monitors whose latest window breached a check.")
    tiles[2].metric("Failed", failing, help="Monitors whose latest run failed (see Runs).")
    tiles[3].metric("Stale or no data", quiet, help="No window yet, an empty latest window, or no new window for more than two windows.")
    if alerting:
        tiles[4].metric("Open alerts", sum(h.open_alerts or 0 for h in rows))
    st.caption(f"Times in UTC · health as of {common.fmt_time(now)} · volume over the selected range")
    for health in rows:
        _monitor_row(selected, health, alerting)


def _monitor_row(selected: common.Filters, health, alerting: bool) -> None:  # noqa: ANN001
    url = selected.url
    name = health.monitor
    with st.container(border=True, key=f"dl_row_{name}"):
        left, middle, right, links = st.columns([3, 3, 4, 2], vertical_alignment="top")
        badges = common.STATUS_BADGES.get(health.last_status, common.STATUS_BADGES[None])
        if health.stale:
            badges += " " + common.STATUS_BADGES["stale"]
        left.markdown(f"#### {name} {badges}")
        if health.last_window is None:
            left.markdown("**No data yet**: no window of this monitor has been checked.")
        else:
            status = health.last_status.replace("_", " ")
            left.markdown(
                f"Latest window **{common.fmt_time(health.last_window.start)} → {common.fmt_time(health.last_window.end)}** "
                f"({common.fmt_duration(health.window)}): **{status}**, {common.fmt_number(health.last_rows)} rows"
            )
            lag = f"Lag **{common.fmt_duration(health.lag)}** since its end"
            if health.stale:
                left.warning(f"{lag}: no new window for more than two windows.", icon="⏰")
            else:
                left.markdown(lag)
            if health.last_error:
                left.error(health.last_error[:300])
        if health.breaching:
            shown = list(health.breaching[:6])
            more = len(health.breaching) - len(shown)
            middle.markdown("**Breaching in the latest window**\n" + "\n".join(f"- `{b}`" for b in shown) + (f"\n- and {more} more" if more > 0 else ""))
        elif health.last_status in ("ok",):
            middle.markdown("**All checks passed** in the latest window.")
        if alerting:
            middle.metric("Open alerts", health.open_alerts or 0)
        if health.last_window is not None:
            start, end = common.range_for(selected, name)
            trend = data.run_buckets(url, name, start, end)
            right.plotly_chart(charts.sparkline(trend), key=f"dl_spark_{name}", config={"displayModeBar": False})
            windows = int(trend["windows"].sum())
            if (trend["windows"] > 1).any():
                right.caption(f"Rows per window over {windows:,} windows (bars of {int(trend['windows'].max())} windows, coloured by their worst run)")
            else:
                counts = trend["status"].value_counts()
                right.caption(
                    f"Rows per window, {windows} window(s) in range: "
                    + ", ".join(f"{int(counts.get(s, 0))} {s.replace('_', ' ')}" for s in ("ok", "breach", "no_data", "failed") if counts.get(s, 0))
                )
        with links:
            common.page_link("kpis", "KPIs", monitor=name)
            common.page_link("drift", "Drift", monitor=name)
            common.page_link("quality", "Data quality", monitor=name)
            common.page_link("alerts", "Alerts", monitor=name)
            common.page_link("runs", "Runs", monitor=name)


if __name__ == "__main__":
    render()
