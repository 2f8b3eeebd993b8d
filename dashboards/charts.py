"""Plotly figures of stored results: pure functions of the frames ``monitor.read`` returns.

Nothing here computes a statistic: values, thresholds and breaches are drawn as stored, and
profiles are drawn from their decoded counts (a bar's height is its bin's share of the rows,
divided by the bin's width for numeric histograms so that unequal quantile bins compare fairly).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from checks.profiles import CategoricalProfile, NumericProfile
from monitor import read

GREEN, RED, GREY, BLUE, ORANGE, PURPLE = "#2e7d32", "#d32f2f", "#9e9e9e", "#1565c0", "#ef6c00", "#6a1b9a"
REFERENCE_COLOR = "#90a4ae"
CURRENT_COLOR = "#1e88e5"
STATUS_COLORS = {"ok": GREEN, "breach": RED, "no_data": GREY, "failed": PURPLE, "info": BLUE, "error": ORANGE}
PALETTE = ["#1e88e5", "#43a047", "#fb8c00", "#8e24aa", "#00acc1", "#6d4c41", "#c0ca33", "#5e35b1"]

ISO = "%Y-%m-%dT%H:%M:%SZ"  # as monitor.read.iso writes times, for a whole column at once
CHECK_LABELS = {"drift": "", "prediction_drift": "prediction", "target_drift": "target"}


def layout(fig: go.Figure, *, title: str | None = None, height: int = 320, **kwargs: Any) -> go.Figure:
    settings: dict[str, Any] = {
        "title": None if title is None else {"text": title, "x": 0, "xanchor": "left", "font": {"size": 15}},
        "height": height,
        "margin": {"l": 10, "r": 10, "t": 40 if title else 10, "b": 10},
        # Below the x axis's tick labels (two lines for dates: about 50 px), whatever the chart's height.
        "legend": {"orientation": "h", "yanchor": "top", "y": -min(0.45, 54 / max(height - 80, 100)), "xanchor": "left", "x": 0},
        "hovermode": "x unified",
    }
    fig.update_layout(**{**settings, **kwargs})
    return fig


def empty_figure(message: str, height: int = 200) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5, font={"size": 14, "color": GREY})
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return layout(fig, height=height)


def row_label(check: str, column: str) -> str:
    """A heat map row: the column, tagged when it is the prediction or the target.

    >>> row_label("drift", "income"), row_label("prediction_drift", "score")
    ('income', 'score (prediction)')
    """
    tag = CHECK_LABELS.get(check, "")
    return f"{column} ({tag})" if tag else (column or "(dataset)")


# ------------------------------------------------------------------------------ heat maps


def heatmap(grid: read.Grid, *, value_name: str = "effect size", order: str = "breaches", height: int | None = None) -> go.Figure:
    """A column x time heat map of ``grid``: colour = the value (the threshold sits mid-scale),
    an ``x`` on every cell that breached. Each cell carries ``customdata`` = [check, column,
    bucket start ISO, bucket end ISO] so a click or box selection can drill into it."""
    frame = grid.frame
    if frame.empty:
        return empty_figure("nothing to show in this range")
    frame = frame.assign(label=[row_label(c, col) for c, col in zip(frame["check"], frame["column"])])
    if order == "breaches":
        ranking = frame.groupby("label").agg(breaches=("breaches", "sum"), peak=("value", "max")).fillna(0)
        labels = ranking.sort_values(["breaches", "peak"], ascending=[False, False]).index.tolist()
    else:
        labels = sorted(frame["label"].unique())
    times = sorted(frame["bucket_start"].unique())
    z = frame.pivot_table(index="label", columns="bucket_start", values="value", aggfunc="max", dropna=False)
    z = z.reindex(index=labels, columns=times)
    # Plotly centres a heat map's cells on their x: draw each bucket at its middle.
    step = frame["bucket_end"].iloc[0] - frame["bucket_start"].iloc[0]
    centers = frame["bucket_start"] + step / 2
    thresholds = frame["threshold"].dropna()
    middle = float(thresholds.median()) if not thresholds.empty else float(np.nanmax(frame["value"].to_numpy(dtype=float), initial=1.0)) / 2 or 1.0
    per_bucket = grid.windows_per_bucket
    # Plotly draws the top row last: reverse so the worst column is on top.
    fig = go.Figure(
        go.Heatmap(
            z=z.to_numpy(dtype=float)[::-1],
            x=[pd.Timestamp(t) + step / 2 for t in times],
            y=labels[::-1],
            zmin=0,
            zmax=2 * middle,
            colorscale=[[0, "#e8f5e9"], [0.35, "#c5e1a5"], [0.5, "#fff59d"], [0.75, "#ff8a65"], [1, "#b71c1c"]],
            colorbar={"title": {"text": value_name}, "thickness": 12},
            hoverinfo="skip",
            xgap=1,
            ygap=1,
        )
    )
    breached = frame["breaches"] > 0
    # Numbers only in customdata (plotly copies object arrays point by point, which a year of
    # cells makes slow): the cell's row in ``grid.frame`` identifies it for a selection.
    custom = np.column_stack(
        [np.arange(len(frame), dtype=float), frame["value"].to_numpy(dtype=float), frame["threshold"].to_numpy(dtype=float),
         frame["windows"].to_numpy(dtype=float), frame["breaches"].to_numpy(dtype=float)]
    )  # fmt: skip
    when = frame["bucket_start"].dt.strftime("%Y-%m-%d %H:%M").str.removesuffix(" 00:00")
    text = (when + " · " + frame["metric"].astype(str)).to_numpy(dtype=object)
    windows_text = "" if per_bucket == 1 else "<br>%{customdata[3]:.0f} windows, %{customdata[4]:.0f} breached"
    # Breaches: an x per breached cell; no hover or click of its own, never dimmed by a selection.
    fig.add_trace(
        go.Scatter(
            x=centers[breached],
            y=frame.loc[breached, "label"],
            mode="markers",
            marker={"symbol": "x-thin-open", "size": 9, "color": "#212121", "line": {"width": 2, "color": "#212121"}},
            selected={"marker": {"opacity": 1}},
            unselected={"marker": {"opacity": 1}},
            hoverinfo="skip",
            showlegend=False,
            name="breach",
        )
    )
    # Click targets: one invisible marker per cell; the selected cell is outlined.
    fig.add_trace(
        go.Scatter(
            x=centers,
            y=frame["label"],
            mode="markers",
            marker={"symbol": "square-open", "size": 14, "color": "#1a237e", "line": {"width": 2}, "opacity": 0},
            selected={"marker": {"opacity": 1}},
            unselected={"marker": {"opacity": 0}},
            customdata=custom,
            text=text,
            hovertemplate=(
                f"<b>%{{y}}</b> · %{{text}}<br>{value_name}: %{{customdata[1]:.4g}}<br>threshold: %{{customdata[2]:.4g}}"
                + windows_text
                + "<extra></extra>"
            ),
            showlegend=False,
            name="cells",
        )
    )
    fig.update_yaxes(categoryorder="array", categoryarray=labels[::-1], showgrid=False)
    fig.update_xaxes(showgrid=False)
    fig.update_layout(hovermode="closest")
    return layout(fig, height=height or max(220, 26 * len(labels) + 90), hovermode="closest")


def _cell_index(custom: Any) -> int | None:
    """The cell number a point's customdata starts with. Plotly.js hands a row of a typed array
    back as an object (``{"0": 12.0, "1": ...}``), a plain array as a list."""
    try:
        if isinstance(custom, dict):
            first = custom.get("0", custom.get(0))
        elif isinstance(custom, (list, tuple)):
            first = custom[0] if custom else None
        else:
            first = custom
        return None if first is None else int(first)
    except (TypeError, ValueError, IndexError):
        return None


def selected_cell(event: Any, frame: pd.DataFrame) -> pd.Series | None:
    """The row of ``frame`` (a :class:`monitor.read.Grid`'s cells) a heat map click or box selection
    picked: a box over several cells picks the column with the most selected cells (the first on a
    tie) and the latest of its cells.

    >>> cells = pd.DataFrame({"column": ["age", "income", "income"], "bucket_start": [1, 1, 2]})
    >>> int(selected_cell({"selection": {"points": [{"customdata": [1.0, 0.2]}, {"customdata": [2.0, 0.3]}]}}, cells)["bucket_start"])
    2
    >>> selected_cell({"selection": {"points": [{"customdata": {"0": 0.0, "1": 0.1}}]}}, cells)["column"]
    'age'
    >>> selected_cell({"selection": {"points": []}}, cells) is None
    True
    """
    selection = event.get("selection") if isinstance(event, dict) else getattr(event, "selection", None)
    if selection is None:
        return None
    points = selection.get("points") if isinstance(selection, dict) else getattr(selection, "points", None)
    rows = []
    for point in points or []:
        index = _cell_index(point.get("customdata") if isinstance(point, dict) else None)
        if index is not None and 0 <= index < len(frame):
            rows.append(index)
    if not rows:
        return None
    picked = frame.iloc[rows]
    best = picked["column"].value_counts(sort=True).index[0]
    return picked[picked["column"] == best].sort_values("bucket_start").iloc[-1]


# ----------------------------------------------------------------------------- time series


def _breach_markers(fig: go.Figure, frame: pd.DataFrame, name: str = "breach", row: Any = None) -> None:
    hits = frame[frame["breaches"] > 0]
    if hits.empty:
        return
    fig.add_trace(
        go.Scatter(
            x=hits["window_start"],
            y=hits["value"],
            mode="markers",
            marker={"color": RED, "size": 9, "symbol": "circle-open", "line": {"width": 2}},
            name=name,
            hovertemplate="breach: %{y:.4g}<extra></extra>",
        )
    )


def history(series: pd.DataFrame, *, title: str, selected: pd.Timestamp | None = None, value_name: str = "value") -> go.Figure:
    """One metric over time with its threshold band (the healthy side shaded) and breaches marked."""
    if series.empty:
        return empty_figure("no history in this range")
    series = series.sort_values("window_start")
    fig = go.Figure()
    threshold = series["threshold"]
    direction = series["direction"].dropna()
    floor = not direction.empty and direction.iloc[-1] == "min"
    if threshold.notna().any():
        if floor:
            top = max(float(np.nanmax(series["value"].to_numpy(dtype=float), initial=0)), float(threshold.max())) * 1.1
            fig.add_trace(go.Scatter(x=series["window_start"], y=[top] * len(series), mode="lines", line={"width": 0}, showlegend=False, hoverinfo="skip"))
            fig.add_trace(
                go.Scatter(x=series["window_start"], y=threshold, mode="lines", line={"color": RED, "dash": "dash", "width": 1.5},
                           fill="tonexty", fillcolor="rgba(46,125,50,0.10)", name="threshold (floor)")  # fmt: skip
            )
        else:
            fig.add_trace(
                go.Scatter(x=series["window_start"], y=threshold, mode="lines", line={"color": RED, "dash": "dash", "width": 1.5},
                           fill="tozeroy", fillcolor="rgba(46,125,50,0.10)", name="threshold")  # fmt: skip
            )
    fig.add_trace(
        go.Scatter(
            x=series["window_start"], y=series["value"], mode="lines+markers", name=value_name,
            line={"color": CURRENT_COLOR, "width": 2}, marker={"size": 4},
        )  # fmt: skip
    )
    _breach_markers(fig, series)
    if selected is not None:
        fig.add_vline(x=pd.Timestamp(selected), line={"color": "#424242", "width": 1, "dash": "dot"})
    return layout(fig, title=title)


def lines(
    series: pd.DataFrame,
    metrics: Sequence[str],
    *,
    title: str,
    names: dict[str, str] | None = None,
    yaxis: str | None = None,
    bounds: dict[str, float | None] | None = None,
    percent: bool = False,
    height: int = 320,
) -> go.Figure:
    """Several metrics of one column over time, each with its stored threshold (dashed) and breaches;
    ``bounds`` adds fixed lines (a KPI's configured min and max)."""
    shown = series[series["metric"].isin(metrics)]
    if shown.empty:
        return empty_figure(f"no {title.lower()} in this range")
    fig = go.Figure()
    for i, metric in enumerate(m for m in metrics if m in set(shown["metric"])):
        part = shown[shown["metric"] == metric].sort_values("window_start")
        color = PALETTE[i % len(PALETTE)]
        label = (names or {}).get(metric, metric)
        fig.add_trace(go.Scatter(x=part["window_start"], y=part["value"], mode="lines", name=label, line={"color": color, "width": 2}))
        if part["threshold"].notna().any() and not bounds:
            fig.add_trace(
                go.Scatter(x=part["window_start"], y=part["threshold"], mode="lines", name=f"{label} threshold",
                           line={"color": color, "dash": "dash", "width": 1.2})  # fmt: skip
            )
        _breach_markers(fig, part, name=f"{label} breach")
    for name, value in (bounds or {}).items():
        if value is not None:
            fig.add_hline(y=value, line={"color": RED, "dash": "dash", "width": 1.5}, annotation_text=f"{name} {value:g}", annotation_position="top left")
    if percent:
        fig.update_yaxes(tickformat=".3~%")
    if yaxis:
        fig.update_yaxes(title_text=yaxis)
    return layout(fig, title=title, height=height)


def band(series: pd.DataFrame, *, low: str, mid: str, high: str, extra: str | None, title: str, yaxis: str | None = None) -> go.Figure:
    """A distribution over time: the ``low``..``high`` band, the ``mid`` line and an ``extra`` line (e.g. p10-p90, p50, mean)."""
    wide = series.pivot_table(index="window_start", columns="metric", values="value", aggfunc="max").sort_index()
    if wide.empty or mid not in wide:
        return empty_figure(f"no {title.lower()} in this range")
    fig = go.Figure()
    if low in wide and high in wide:
        fig.add_trace(go.Scatter(x=wide.index, y=wide[high], mode="lines", line={"width": 0}, name=high, showlegend=False))
        fig.add_trace(
            go.Scatter(x=wide.index, y=wide[low], mode="lines", line={"width": 0}, fill="tonexty",
                       fillcolor="rgba(30,136,229,0.18)", name=f"{low}–{high}")  # fmt: skip
        )
    fig.add_trace(go.Scatter(x=wide.index, y=wide[mid], mode="lines", name=mid, line={"color": CURRENT_COLOR, "width": 2}))
    if extra and extra in wide:
        fig.add_trace(go.Scatter(x=wide.index, y=wide[extra], mode="lines", name=extra, line={"color": ORANGE, "dash": "dot"}))
    if yaxis:
        fig.update_yaxes(title_text=yaxis)
    return layout(fig, title=title)


def volume(series: pd.DataFrame, *, title: str = "Rows per window") -> go.Figure:
    """Row counts per window as bars (per-window average when windows are bucketed)."""
    if series.empty:
        return empty_figure("no rows in this range")
    series = series.sort_values("window_start")
    bucketed = bool((series["windows"] > 1).any())
    fig = go.Figure(
        go.Bar(x=series["window_start"], y=series["value"], marker_color=CURRENT_COLOR, name="rows per window" + (" (bucket average)" if bucketed else ""))
    )
    return layout(fig, title=title, bargap=0.1)


def sparkline(runs: pd.DataFrame, height: int = 70) -> go.Figure:
    """Rows per run, coloured by the run's status: a monitor's volume trend at a glance."""
    fig = go.Figure()
    if runs.empty:
        return empty_figure("no runs", height=height)
    colors = runs["status"].map(STATUS_COLORS).fillna(GREY)
    fig.add_trace(go.Bar(x=runs["window_start"], y=runs["rows"], marker_color=colors, hovertemplate="%{x}: %{y:,} rows<extra></extra>"))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(height=height, margin={"l": 0, "r": 0, "t": 0, "b": 0}, bargap=0.05, showlegend=False)
    return fig


def runs_timeline(runs: pd.DataFrame) -> go.Figure:
    """Each run's duration, coloured by status (failed runs stand out), rows in the hover."""
    if runs.empty:
        return empty_figure("no runs in this range")
    fig = go.Figure()
    for status, part in runs.groupby("status", sort=False):
        failed = status == "failed"
        fig.add_trace(
            go.Scatter(
                x=part["window_start"], y=part["duration_s"], mode="markers", name=str(status),
                marker={"color": STATUS_COLORS.get(str(status), GREY), "size": 7},
                customdata=part["rows"].to_numpy(dtype=float),
                # Errors only where there are some: text per point is costly on a year of runs.
                text=part["error"].fillna("").str.slice(0, 160).to_numpy(dtype=object) if failed else None,
                hovertemplate="%{x}<br>%{y:.2f} s, %{customdata:,.0f} rows" + ("<br>%{text}" if failed else "") + "<extra>" + str(status) + "</extra>",
            )  # fmt: skip
        )
    fig.update_yaxes(title_text="seconds", rangemode="tozero")
    return layout(fig, title="Run duration by window", hovermode="closest")


# ---------------------------------------------------------------------------- distributions


def distribution(dist: read.Distribution, *, height: int = 360) -> go.Figure:
    """Reference vs the window's distribution of one column, overlaid."""
    if dist.reference is None and dist.current is None:
        return empty_figure("no stored profile of this column")
    if dist.kind == "numeric":
        return _numeric(dist, height)
    return _categorical(dist, height)


def numeric_edges(profile: NumericProfile) -> np.ndarray:
    """Bin edges of a numeric profile's histogram: the reference's range around its cut points
    (the outer bins end at the reference's min and max; values beyond count as out of range).

    >>> from checks.profiles import NumericBinning
    >>> b = NumericBinning(np.array([1.0, 2.0]), 0.0, 3.0)
    >>> numeric_edges(NumericProfile.from_values(np.array([0.5, 1.5, 2.5]), b)).tolist()
    [0.0, 1.0, 2.0, 3.0]
    """
    binning = profile.binning
    low = binning.low if np.isfinite(binning.low) else profile.min
    high = binning.high if np.isfinite(binning.high) else profile.max
    return np.concatenate([[low], binning.cuts, [high]]).astype(float)


def view_range(edges: np.ndarray) -> list[float] | None:
    """The x range a numeric histogram opens on: its inner bins plus one inner width on each side.

    The two outer bins run to the reference's min and max, which for a long tail (incomes) would
    squeeze every other bin into a corner; they stay a zoom-out away.

    >>> view_range(np.array([0.0, 10.0, 11.0, 12.0, 100.0]))
    [9.0, 13.0]
    """
    if len(edges) < 5 or not np.all(np.isfinite(edges)):
        return None
    low = max(edges[0], edges[1] - (edges[2] - edges[1]))
    high = min(edges[-1], edges[-2] + (edges[-2] - edges[-3]))
    return [float(low), float(high)]


def _heights(profile: NumericProfile | None, widths: np.ndarray) -> np.ndarray | None:
    if profile is None or profile.count == 0:
        return None
    share = profile.counts / profile.count
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(widths > 0, share / widths, np.nan)


def _numeric(dist: read.Distribution, height: int) -> go.Figure:
    base = dist.reference if isinstance(dist.reference, NumericProfile) else dist.current
    assert isinstance(base, NumericProfile)
    edges = numeric_edges(base)
    widths = np.diff(edges)
    centers = edges[:-1] + widths / 2
    fig = go.Figure()
    for profile, name, color in ((dist.reference, "reference", REFERENCE_COLOR), (dist.current, "window", CURRENT_COLOR)):
        heights = _heights(profile if isinstance(profile, NumericProfile) else None, widths)
        if heights is None:
            continue
        shares = profile.counts / profile.count  # type: ignore[union-attr]
        fig.add_trace(
            go.Bar(
                x=centers, y=heights, width=widths, name=name, marker_color=color, opacity=0.6,
                customdata=np.stack([edges[:-1], edges[1:], shares], axis=-1),
                hovertemplate="[%{customdata[0]:.4g}, %{customdata[1]:.4g}): %{customdata[2]:.1%} of rows<extra>" + name + "</extra>",
            )  # fmt: skip
        )
    fig.update_layout(barmode="overlay", bargap=0)
    fig.update_yaxes(title_text="share of rows per unit", showticklabels=False)
    fig.update_xaxes(title_text=dist.column, range=view_range(edges))
    return layout(fig, title=f"{dist.column}: reference vs window", height=height, hovermode="closest")


UNSEEN_SUFFIX = " (unseen)"


def category_shares(dist: read.Distribution) -> pd.DataFrame:
    """``category, reference, window, unseen`` shares of a categorical column's stored counts: the
    reference's categories, its rare ones as ``other``, and each unseen value the window kept."""
    ref = dist.reference if isinstance(dist.reference, CategoricalProfile) else None
    cur = dist.current if isinstance(dist.current, CategoricalProfile) else None
    base = ref or cur
    if base is None:
        return pd.DataFrame(columns=["category", "reference", "window", "unseen"])
    labels = [*base.binning.categories, "other (rare in reference)"]
    ref_shares = list(np.concatenate([ref.counts, [ref.other]]) / ref.count) if ref is not None and ref.count else [np.nan] * len(labels)
    cur_shares = list(np.concatenate([cur.counts, [cur.other]]) / cur.count) if cur is not None and cur.count else [np.nan] * len(labels)
    unseen = [False] * len(labels)
    if cur is not None and cur.count and cur.unseen:
        kept = 0
        for value, count in cur.unseen_values.items():
            labels.append(f"{value}{UNSEEN_SUFFIX}")
            ref_shares.append(0.0)
            cur_shares.append(count / cur.count)
            unseen.append(True)
            kept += count
        if cur.unseen > kept:
            labels.append(f"other unseen values{UNSEEN_SUFFIX}")
            ref_shares.append(0.0)
            cur_shares.append((cur.unseen - kept) / cur.count)
            unseen.append(True)
    frame = pd.DataFrame({"category": labels, "reference": ref_shares, "window": cur_shares, "unseen": unseen})
    # "other" only when either side has some.
    other = frame["category"] == "other (rare in reference)"
    keep = ~other | (frame[["reference", "window"]].fillna(0).sum(axis=1) > 0)
    return frame[keep].reset_index(drop=True)


def _categorical(dist: read.Distribution, height: int) -> go.Figure:
    shares = category_shares(dist)
    fig = go.Figure()
    fig.add_trace(go.Bar(x=shares["category"], y=shares["reference"], name="reference", marker_color=REFERENCE_COLOR,
                         hovertemplate="%{x}: %{y:.1%}<extra>reference</extra>"))  # fmt: skip
    colors = np.where(shares["unseen"], RED, CURRENT_COLOR)
    fig.add_trace(go.Bar(x=shares["category"], y=shares["window"], name="window", marker_color=colors,
                         hovertemplate="%{x}: %{y:.1%}<extra>window</extra>"))  # fmt: skip
    fig.update_layout(barmode="group", bargap=0.25)
    fig.update_yaxes(title_text="share of rows", tickformat=".3~%")
    return layout(fig, title=f"{dist.column}: reference vs window", height=height, hovermode="closest")
