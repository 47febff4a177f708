"""Pure figure builders for the Explain page: arrays and DataFrames in, plotly figures out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.figure_theme import NEUTRAL
from dashboard.figures import ANOMALY, CELL_TEXT, NORMAL, labels, line_count, plain

# No template and no text colour: st.plotly_chart draws in the Streamlit theme, light or dark.
_LAYOUT = dict(margin=dict(l=10, r=10, t=40, b=10))
UP, DOWN = ANOMALY, NORMAL  # raises the score / lowers it
# Cell colours light enough that black cell text reads on every one (dashboard/figure_theme.py).
WARM = [[0.0, "#FCE4E0"], [1.0, "#E45756"]]  # light (never white: cells stay visible) to red
DIVERGING = [[0.0, "#7FA3D1"], [0.5, "#F7F7F7"], [1.0, "#E45756"]]  # lowers / 0 / raises
MAX_LABELLED_CELLS = 24  # above this, event types only show on hover (labels would overlap)
MAX_LABELLED_TOKENS = 36  # attention maps label every token up to this many (else plotly thins)
LABEL_WIDTH = 28  # characters a line of a feature name (longer names wrap, never cut)


def shap_waterfall(names: list[str] | tuple[str, ...], shap: np.ndarray, base_value: float,
                   score: float, *, top_n: int = 12, title: str = "",
                   x_title: str = "anomaly score", parts: str = "features") -> go.Figure:
    """From the base value (mean background score) through the ``top_n`` largest |SHAP|
    contributions and the rest (``parts``: what the bars are), to the session's score, in
    the units ``x_title`` names; read top to bottom."""
    shap = np.asarray(shap, dtype=np.float64)
    order = np.argsort(-np.abs(shap), kind="stable")[:top_n]
    rest = float(shap.sum() - shap[order].sum())
    ticks = ["base value", *labels([names[i] for i in order], LABEL_WIDTH)]
    values = [float(base_value), *shap[order].tolist()]
    measure = ["absolute", *["relative"] * len(order)]
    if len(shap) > len(order):
        ticks.append(f"{len(shap) - len(order)} other {parts}")
        values.append(rest)
        measure.append("relative")
    ticks.append("score")
    values.append(float(score))
    measure.append("total")
    fig = go.Figure(go.Waterfall(
        orientation="h", y=ticks, x=values, measure=measure,
        increasing=dict(marker_color=UP), decreasing=dict(marker_color=DOWN),
        totals=dict(marker_color=NEUTRAL), connector=dict(line=dict(color=NEUTRAL, width=1)),
        hovertemplate="%{y}: %{x:+.4g}<extra></extra>"))
    fig.update_layout(title=title or "SHAP: how each feature moves the score",
                      xaxis_title=x_title, showlegend=False,
                      **{**_LAYOUT, "height": 120 + 18 * line_count(ticks) + 8 * len(ticks)})
    fig.update_yaxes(autorange="reversed")
    return fig


def shap_bars(frame: pd.DataFrame, value: str = "shap", *, top_n: int = 15,
              title: str = "") -> go.Figure:
    """Horizontal bars of ``value`` per ``feature`` (largest |value| on top); red raises the
    score, blue lowers it."""
    part = frame.reindex(frame[value].abs().sort_values(ascending=False).index).head(top_n)
    colours = np.where(part[value] >= 0, UP, DOWN)
    ticks = labels(part["feature"], LABEL_WIDTH)
    fig = go.Figure(go.Bar(x=part[value], y=ticks,
                           orientation="h", marker_color=colours,
                           hovertemplate="%{y}: %{x:.4g}<extra></extra>"))
    fig.update_layout(title=title, xaxis_title=value.replace("_", " "), showlegend=False,
                      **{**_LAYOUT, "height": 120 + 18 * line_count(ticks) + 6 * len(ticks)})
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
    types = labels(events["event_type"], 10)  # wrapped in the cell, in full in the hover
    limit = float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 1.0
    colour = dict(colorscale=DIVERGING, zmid=0.0, zmin=-limit, zmax=limit) if diverging else (
        dict(colorscale=WARM))
    labelled = len(values) <= MAX_LABELLED_CELLS
    fig = go.Figure(go.Heatmap(
        z=[values], x=list(range(1, len(values) + 1)), y=[""], text=[types],
        texttemplate="%{text}" if labelled else "", textfont=dict(size=10, color=CELL_TEXT),
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
        x=list(range(1, len(values) + 1)), y=values, marker_color=ANOMALY,
        customdata=_event_text(events), hovertemplate="%{customdata}<br>%{y:.4g}<extra></extra>"))
    fig.update_layout(title=title, xaxis_title="event (in order)", yaxis_title=axis,
                      **{**_LAYOUT, "height": 260})
    return fig


def attention_heatmap(weights: np.ndarray, events: pd.DataFrame, *, title: str = ""
                      ) -> go.Figure:
    """A (k + 1, k + 1) attention map: rows attend to columns; index 0 is the session token.
    Colours come from the theme's sequential scale (the strongest cells stand out on a light
    and on a dark page alike); every token is labelled up to ``MAX_LABELLED_TOKENS``."""
    weights = np.asarray(weights, dtype=np.float64)
    ticks = ["[session]", *labels([f"{i + 1} {t}" for i, t in enumerate(events["event_type"])],
                                  16)]
    ticks = ticks[: weights.shape[0]]
    fig = go.Figure(go.Heatmap(
        z=weights, x=ticks, y=ticks, zmin=0.0,
        hovertemplate="%{y} → %{x}: %{z:.3f}<extra></extra>", colorbar=dict(thickness=10)))
    every = len(ticks) <= MAX_LABELLED_TOKENS
    size = min(1200, 200 + (28 if every else 14) * len(ticks))
    fig.update_layout(title=title, xaxis_title="attends to", yaxis_title="token",
                      **{**_LAYOUT, "height": size})
    fig.update_yaxes(autorange="reversed", dtick=1 if every else None)
    fig.update_xaxes(dtick=1 if every else None)
    return fig


def member_bars(members: pd.DataFrame, *, title: str = "Ensemble members") -> go.Figure:
    """Each member's contribution to an ensemble's score (they sum to it)."""
    part = members.sort_values("contribution", ascending=True)
    ticks = labels(part["detector"], LABEL_WIDTH)
    fig = go.Figure(go.Bar(x=part["contribution"], y=ticks,
                           orientation="h", marker_color=ANOMALY,
                           customdata=plain(part["member_id"].astype(str)),
                           hovertemplate="%{y} (%{customdata}): %{x:.4g}<extra></extra>"))
    fig.update_layout(title=title, xaxis_title="contribution to the score", showlegend=False,
                      **{**_LAYOUT, "height": 120 + 18 * line_count(ticks) + 12 * len(ticks)})
    return fig


# The tables behind the figures (dashboard/charts.py draws one under each chart). Cells are
# drawn as plain text by st.dataframe: no escaping here.
def shap_table(names: list[str] | tuple[str, ...], shap: np.ndarray, base_value: float,
               score: float) -> pd.DataFrame:
    """Every feature's SHAP value, largest |value| first, between the base value and the
    score (the waterfall's rows, none left out)."""
    shap = np.asarray(shap, dtype=np.float64)
    order = np.argsort(-np.abs(shap), kind="stable")
    return pd.DataFrame({
        "step": ["base value", *[str(names[i]) for i in order], "score"],
        "value": [float(base_value), *shap[order].tolist(), float(score)]})


def events_table(events: pd.DataFrame, values: np.ndarray, value: str = "value"
                 ) -> pd.DataFrame:
    """The session's events in order with the per-event ``value`` drawn for each."""
    values = np.asarray(values, dtype=np.float64)
    n = min(len(events), len(values))
    out = pd.DataFrame({"event": np.arange(1, n + 1)})
    for column in ("event_type", "ts", "amount"):
        if column in events:
            out[column.replace("_", " ")] = events[column].to_numpy()[:n]
    out[value.replace("_", " ")] = values[:n]
    return out


def attention_table(weights: np.ndarray, events: pd.DataFrame) -> pd.DataFrame:
    """The attention map as rows (token, attends to, weight), strongest first."""
    weights = np.asarray(weights, dtype=np.float64)
    names = ["[session]", *[f"{i + 1} {t}" for i, t in enumerate(events["event_type"])]]
    names = names[: weights.shape[0]]
    rows, cols = np.indices(weights.shape)
    frame = pd.DataFrame({"token": np.asarray(names, dtype=object)[rows.ravel()],
                          "attends to": np.asarray(names, dtype=object)[cols.ravel()],
                          "weight": weights.ravel()})
    return frame.sort_values("weight", ascending=False, kind="stable").reset_index(drop=True)
