"""Pure figure builders for the Explain page: arrays and DataFrames in, plotly figures out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.figures import ANOMALY, NORMAL, plain

_LAYOUT = dict(margin=dict(l=10, r=10, t=40, b=10), template="plotly_white")
UP, DOWN = ANOMALY, NORMAL  # raises the score / lowers it
WARM = [[0.0, "#FCD5CF"], [1.0, "#A50F15"]]  # light (never white: cells stay visible) to dark
MAX_LABELLED_CELLS = 24  # above this, event types only show on hover (labels would overlap)


def _short(text: str, width: int = 34) -> str:
    """Shortened and made literal for plotly (see ``figures.plain``)."""
    return plain(text if len(text) <= width else text[: width - 1] + "…")


def shap_waterfall(names: list[str] | tuple[str, ...], shap: np.ndarray, base_value: float,
                   score: float, *, top_n: int = 12, title: str = "") -> go.Figure:
    """From the base value (mean background score) through the ``top_n`` largest |SHAP|
    contributions and the rest, to the session's score; read top to bottom."""
    shap = np.asarray(shap, dtype=np.float64)
    order = np.argsort(-np.abs(shap), kind="stable")[:top_n]
    rest = float(shap.sum() - shap[order].sum())
    labels = ["base value", *[_short(str(names[i])) for i in order]]
    values = [float(base_value), *shap[order].tolist()]
    measure = ["absolute", *["relative"] * len(order)]
    if len(shap) > len(order):
        labels.append(f"{len(shap) - len(order)} other features")
        values.append(rest)
        measure.append("relative")
    labels.append("score")
    values.append(float(score))
    measure.append("total")
    fig = go.Figure(go.Waterfall(
        orientation="h", y=labels, x=values, measure=measure,
        increasing=dict(marker_color=UP), decreasing=dict(marker_color=DOWN),
        totals=dict(marker_color="#555555"), connector=dict(line=dict(color="#bbbbbb")),
        hovertemplate="%{y}: %{x:+.4g}<extra></extra>"))
    fig.update_layout(title=title or "SHAP: how each feature moves the score",
                      xaxis_title="anomaly score", showlegend=False,
                      **{**_LAYOUT, "height": 120 + 26 * len(labels)})
    fig.update_yaxes(autorange="reversed")
    return fig


def shap_bars(frame: pd.DataFrame, value: str = "shap", *, top_n: int = 15,
              title: str = "") -> go.Figure:
    """Horizontal bars of ``value`` per ``feature`` (largest |value| on top); red raises the
    score, blue lowers it."""
    part = frame.reindex(frame[value].abs().sort_values(ascending=False).index).head(top_n)
    colours = np.where(part[value] >= 0, UP, DOWN)
    fig = go.Figure(go.Bar(x=part[value], y=[_short(str(f)) for f in part["feature"]],
                           orientation="h", marker_color=colours,
                           hovertemplate="%{y}: %{x:.4g}<extra></extra>"))
    fig.update_layout(title=title, xaxis_title=value.replace("_", " "), showlegend=False,
                      **{**_LAYOUT, "height": 120 + 24 * len(part)})
    fig.update_yaxes(autorange="reversed")
    return fig


def _event_text(events: pd.DataFrame) -> list[str]:
    out = []
    for row in events.to_dict(orient="records"):
        parts = [f"#{int(row['position']) + 1} {plain(str(row.get('event_type', '')))}"]
        ts = row.get("ts")
        if ts is not None and not pd.isna(ts):
            parts.append(f"{pd.Timestamp(ts):%Y-%m-%d %H:%M:%S}")
        amount = row.get("amount")
        if amount is not None and not pd.isna(amount):
            parts.append(f"amount {float(amount):,.2f}")
        out.append("<br>".join(parts))
    return out


def event_strip(events: pd.DataFrame, values: np.ndarray, *, title: str = "",
                diverging: bool = False) -> go.Figure:
    """The session's events as one strip of cells in order, coloured by contribution; each
    cell is labelled with its event type. ``diverging``: centre the colours on 0 (for score
    drops, which can be negative)."""
    values = np.asarray(values, dtype=np.float64)
    types = [_short(str(t), 12) for t in events["event_type"]]
    limit = float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 1.0
    colour = dict(colorscale="RdBu_r", zmid=0.0, zmin=-limit, zmax=limit) if diverging else (
        dict(colorscale=WARM))
    labelled = len(values) <= MAX_LABELLED_CELLS
    fig = go.Figure(go.Heatmap(
        z=[values], x=list(range(1, len(values) + 1)), y=[""], text=[types],
        texttemplate="%{text}" if labelled else "", textfont=dict(size=10),
        customdata=[_event_text(events)],
        hovertemplate="%{customdata}<br>contribution %{z:.4g}<extra></extra>",
        colorbar=dict(thickness=10, len=0.9), xgap=2, **colour))
    fig.update_layout(title=title, xaxis_title="event (in order)", **{**_LAYOUT, "height": 190})
    fig.update_xaxes(dtick=1 if len(values) <= 40 else None)
    return fig


def event_bars(events: pd.DataFrame, values: np.ndarray, *, title: str = "",
               axis: str = "per-event score") -> go.Figure:
    """Bars of a per-event value (reconstruction error, event-head probability) in order."""
    values = np.asarray(values, dtype=np.float64)
    fig = go.Figure(go.Bar(
        x=list(range(1, len(values) + 1)), y=values, marker=dict(color=values,
                                                                 colorscale=WARM),
        customdata=_event_text(events), hovertemplate="%{customdata}<br>%{y:.4g}<extra></extra>"))
    fig.update_layout(title=title, xaxis_title="event (in order)", yaxis_title=axis,
                      **{**_LAYOUT, "height": 260})
    return fig


def attention_heatmap(weights: np.ndarray, events: pd.DataFrame, *, title: str = ""
                      ) -> go.Figure:
    """A (k + 1, k + 1) attention map: rows attend to columns; index 0 is the session token."""
    weights = np.asarray(weights, dtype=np.float64)
    labels = ["[session]", *[f"{i + 1} {_short(str(t), 14)}"
                             for i, t in enumerate(events["event_type"])]]
    labels = labels[: weights.shape[0]]
    fig = go.Figure(go.Heatmap(
        z=weights, x=labels, y=labels, colorscale="Blues", zmin=0.0,
        hovertemplate="%{y} → %{x}: %{z:.3f}<extra></extra>", colorbar=dict(thickness=10)))
    size = min(900, 160 + 16 * len(labels))
    fig.update_layout(title=title, xaxis_title="attends to", yaxis_title="token",
                      **{**_LAYOUT, "height": size})
    fig.update_yaxes(autorange="reversed")
    return fig


def member_bars(members: pd.DataFrame, *, title: str = "Ensemble members") -> go.Figure:
    """Each member's contribution to an ensemble's score (they sum to it)."""
    part = members.sort_values("contribution", ascending=True)
    fig = go.Figure(go.Bar(x=part["contribution"], y=part["detector"].astype(str),
                           orientation="h", marker_color=ANOMALY,
                           customdata=part["member_id"],
                           hovertemplate="%{y} (%{customdata}): %{x:.4g}<extra></extra>"))
    fig.update_layout(title=title, xaxis_title="contribution to the score", showlegend=False,
                      **{**_LAYOUT, "height": 120 + 30 * len(part)})
    return fig
