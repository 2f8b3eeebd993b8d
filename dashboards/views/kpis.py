"""KPIs: what a stakeholder asks first — volume, prediction mix, performance once labels land,
latency against its threshold, and the configured business KPIs against their bounds."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboards import charts, common, data
from monitor import read

SCORE_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "r2")
ERROR_METRICS = ("log_loss", "brier", "mae", "rmse", "bias")
PERCENT_TILES = {"positive_share", "accuracy", "precision", "recall", "f1", "label_coverage"}


def _latest(series: pd.DataFrame, metric: str, column: str | None = None) -> pd.Series | None:
    """The latest row of ``metric`` that has a value (labels arrive late: skip their empty windows)."""
    rows = series[(series["metric"] == metric) & series["value"].notna()]
    if column is not None:
        rows = rows[rows["column"] == column]
    return None if rows.empty else rows.sort_values("window_start").iloc[-1]


def _tile(container, label: str, row: pd.Series | None, *, unit: str = "", percent: bool = False, bound: str | None = None) -> None:  # noqa: ANN001
    if row is None:
        container.metric(label, "—")
        return
    value = row["value"]
    text = f"{value:.1%}" if percent else common.fmt_number(value) + unit
    status = str(row["status"])
    note = None
    if bound:
        note = bound
    elif pd.notna(row["threshold"]):
        threshold = f"{row['threshold']:.0%}" if percent else common.fmt_number(row["threshold"]) + unit
        note = f"{'floor' if row['direction'] == 'min' else 'ceiling'} {threshold}"
    common.status_metric(
        container, label, text, status if status in ("ok", "breach") else None, note, help=f"Window {common.fmt_time(row['window_start'])}"
    )


def render() -> None:
    selected = common.filters()
    if selected is None or selected.monitor is None:
        return
    url, monitor, segment = selected.url, selected.monitor, selected.segment
    start, end = selected.start, selected.end
    st.title(f"KPIs · {monitor}")
    st.caption(f"{common.segment_label(segment)} · {selected.range_text()}")
    if monitor not in data.monitors(url) or start is None:
        common.no_data_message(monitor)
        return
    volume = data.series(url, monitor, "quality", metrics=("row_count",), columns=("",), segment=segment, start=start, end=end)
    prediction = data.series(url, monitor, "prediction", segment=segment, start=start, end=end)
    performance = data.series(url, monitor, "performance", segment=segment, start=start, end=end)
    latency = data.series(url, monitor, "latency", segment=segment, start=start, end=end)
    kpis = data.series(url, monitor, "kpi", segment=segment, start=start, end=end)
    if all(frame.empty for frame in (volume, prediction, performance, latency, kpis)):
        common.no_data_message(monitor)
        return
    info = selected.info

    # ------------------------------------------------------------ the latest window, in tiles
    kpi_names = _kpi_names(info, kpis)
    tiles = st.columns(min(6, 4 + len(kpi_names)))
    _tile(tiles[0], "Rows (latest window)", _latest(volume, "row_count"))
    positive = _latest(prediction, "positive_share")
    _tile(tiles[1], "Positive share" if positive is not None else "Mean prediction", positive if positive is not None else _latest(prediction, "mean"),
          percent=positive is not None)  # fmt: skip
    perf_metric = next((m for m in ("roc_auc", "accuracy", "r2", "mae") if _latest(performance, m) is not None), None)
    _tile(tiles[2], f"{perf_metric} (labelled)" if perf_metric else "Performance", _latest(performance, perf_metric) if perf_metric else None)
    _tile(tiles[3], "Latency p95", _latest(latency, "p95"), unit=" ms")
    for i, (name, agg, kpi) in enumerate(kpi_names[: len(tiles) - 4]):
        bound = _bounds_text(kpi)
        _tile(tiles[4 + i], name, _latest(kpis, agg, column=name), percent=agg == "share", bound=bound)

    # -------------------------------------------------------------------------- the charts
    st.subheader("Volume")
    st.plotly_chart(charts.volume(volume), key="dl_volume", config={"displayModeBar": False})

    st.subheader("Predictions")
    if prediction.empty:
        st.info("This monitor has no prediction column configured (columns.prediction).")
    else:
        left, right = st.columns(2)
        left.plotly_chart(
            charts.band(prediction, low="p10", mid="p50", high="p90", extra="mean", title="Prediction distribution"),
            key="dl_prediction_band",
            config={"displayModeBar": False},
        )
        if (prediction["metric"] == "positive_share").any():
            right.plotly_chart(
                charts.lines(prediction, ["positive_share"], title="Share of positive predictions", percent=True),
                key="dl_positive_share",
                config={"displayModeBar": False},
            )

    st.subheader("Performance")
    labelled = performance[performance["value"].notna() & (performance["metric"] != "label_coverage")]
    if labelled.empty:
        st.info("No labels yet in this range: performance appears once the target column is filled in (labels often arrive days late).")
    else:
        last_labelled = labelled["window_start"].max()
        newest = performance["window_start"].max()
        if newest > last_labelled:
            st.caption(f"Labels reach up to the window of {common.fmt_time(last_labelled)}; later windows are waiting for theirs.")
        left, right = st.columns(2)
        scores = [m for m in SCORE_METRICS if m in set(labelled["metric"])]
        errors = [m for m in ERROR_METRICS if m in set(labelled["metric"])]
        left.plotly_chart(charts.lines(performance, scores, title="Scores"), key="dl_perf_scores", config={"displayModeBar": False})
        right.plotly_chart(charts.lines(performance, errors, title="Errors"), key="dl_perf_errors", config={"displayModeBar": False})
        if (performance["metric"] == "label_coverage").any():
            st.plotly_chart(
                charts.lines(performance, ["label_coverage"], title="Label coverage", percent=True, height=220),
                key="dl_label_coverage",
                config={"displayModeBar": False},
            )

    st.subheader("Latency")
    if latency.empty:
        st.info("This monitor has no latency column configured (columns.latency).")
    else:
        st.plotly_chart(
            charts.lines(latency, ["p50", "p95", "p99"], title="Latency percentiles", yaxis="ms"),
            key="dl_latency",
            config={"displayModeBar": False},
        )

    st.subheader("Business KPIs")
    if not kpi_names:
        st.info("No KPIs configured: add a `kpis:` list to the monitor (see the README).")
    for name, agg, kpi in kpi_names:
        part = kpis[kpis["column"] == name]
        bounds = {"min": kpi.min, "max": kpi.max} if kpi is not None else None
        title = f"{name} ({agg}" + (f" of {kpi.column} where {kpi.column} {kpi.where}" if kpi is not None and kpi.where else (f" of {kpi.column}" if kpi else "")) + ")"
        st.plotly_chart(
            charts.lines(part, [agg], title=title, bounds=bounds, names={agg: name}, percent=agg == "share", height=260),
            key=f"dl_kpi_{name}",
            config={"displayModeBar": False},
        )
        if kpi is not None:
            st.caption(f"Bounds: {_bounds_text(kpi)}" if _bounds_text(kpi) else "No bounds configured: shown for information.")


def _kpi_names(info: read.MonitorInfo | None, kpis: pd.DataFrame) -> list[tuple[str, str, read.KpiInfo | None]]:
    """KPIs in config order (with their bounds), then any the store holds that the config no longer lists."""
    out: list[tuple[str, str, read.KpiInfo | None]] = []
    configured = {k.name: k for k in info.kpis} if info is not None else {}
    for kpi in configured.values():
        out.append((kpi.name, kpi.agg, kpi))
    stored = kpis[["column", "metric"]].drop_duplicates() if not kpis.empty else pd.DataFrame(columns=["column", "metric"])
    for name, agg in zip(stored["column"], stored["metric"]):
        if name not in configured:
            out.append((str(name), str(agg), None))
    return out


def _bounds_text(kpi: read.KpiInfo | None) -> str | None:
    if kpi is None or (kpi.min is None and kpi.max is None):
        return None
    parts = []
    if kpi.min is not None:
        parts.append(f"min {kpi.min:g}")
    if kpi.max is not None:
        parts.append(f"max {kpi.max:g}")
    return ", ".join(parts)


if __name__ == "__main__":
    render()
