"""Pure figure builders of the Models page: data in, plotly figure out (no streamlit, no store).

- :func:`loss_curves`: training and validation loss per check (and components such as a VAE's
  reconstruction and KL terms), from ``core.app.model_catalog.loss_curves``'s long table;
- :func:`roc`, :func:`pr`: the model's curves on its own window, one or two models;
- :func:`calibration`: risk (as a probability) against the observed anomaly share per bin.

Each has a ``*_table`` builder beside it for the table under the chart (``charts.chart``).
Colours come from ``dashboard.figure_theme``; no text colour is set (the theme draws text).
Series and model names from the store go through ``plain`` (plotly renders some HTML).
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import plotly.graph_objects as go

from dashboard.figure_theme import LEGEND_BELOW, NEUTRAL, PALETTE
from dashboard.figures import plain

_LAYOUT = dict(margin=dict(l=10, r=10, t=40, b=10), height=320)


def _empty(title: str, note: str) -> go.Figure:
    return go.Figure(layout=dict(
        title=title, **_LAYOUT, xaxis=dict(visible=False), yaxis=dict(visible=False),
        annotations=[dict(text=plain(note), showarrow=False, x=0.5, y=0.5, xref="paper",
                          yref="paper")]))


def loss_curves(curves: pd.DataFrame, *, title: str = "Training curves") -> go.Figure:
    """One line per series (train, validation, components) against the training step: a
    colour per quantity (the loss, each component), solid on the training rows and dotted on
    the validation rows, so "kl (train)" and "kl (validation)" read as one pair."""
    if curves is None or curves.empty:
        return _empty(title, "This detector keeps no training curve.")
    traces = []
    colours: dict[str, str] = {}
    for name, part in curves.groupby("series", sort=False):
        quantity = _quantity(str(name))
        colour = colours.setdefault(quantity, PALETTE[len(colours) % len(PALETTE)])
        dash = "dot" if "valid" in str(name) else "solid"
        traces.append(go.Scatter(
            x=part["step"], y=part["value"], mode="lines", name=plain(str(name)),
            line=dict(color=colour, dash=dash, width=2)))
    return go.Figure(traces, layout=dict(
        title=title, **_LAYOUT, xaxis_title="training step", yaxis_title="loss",
        legend=LEGEND_BELOW))


def _quantity(series: str) -> str:
    """ "recon (validation)" -> "recon"; "train" and "validation" -> "loss"."""
    base = series.rsplit(" (", 1)[0] if series.endswith(")") else series
    return "loss" if base in ("train", "validation") else base


def loss_table(curves: pd.DataFrame) -> pd.DataFrame:
    """step, then one column per series."""
    if curves is None or curves.empty:
        return pd.DataFrame(columns=["step"])
    return (curves.pivot_table(index="step", columns="series", values="value", sort=False)
            .reset_index())


def _lines(frames: Mapping[str, pd.DataFrame], x: str, y: str) -> list[go.Scatter]:
    return [go.Scatter(x=frame[x], y=frame[y], mode="lines", name=plain(str(name)),
                       line=dict(color=PALETTE[i % len(PALETTE)], width=2))
            for i, (name, frame) in enumerate(frames.items()) if not frame.empty]


def roc(frames: Mapping[str, pd.DataFrame], *, title: str = "ROC on its own window"
        ) -> go.Figure:
    """model -> (fpr, tpr) frame; the diagonal is chance."""
    traces = _lines(frames, "fpr", "tpr")
    if not traces:
        return _empty(title, "Needs labelled anomalous and normal sessions after the train end.")
    chance = go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="chance",
                        line=dict(color=NEUTRAL, dash="dash", width=1))
    return go.Figure([*traces, chance], layout=dict(
        title=title, **_LAYOUT, xaxis=dict(title="false-positive rate", range=[0, 1]),
        yaxis=dict(title="recall (true-positive rate)", range=[0, 1.02]), legend=LEGEND_BELOW))


def pr(frames: Mapping[str, pd.DataFrame], *, title: str = "Precision and recall on its own "
       "window") -> go.Figure:
    """model -> (recall, precision) frame."""
    traces = _lines(frames, "recall", "precision")
    if not traces:
        return _empty(title, "Needs labelled anomalous and normal sessions after the train end.")
    return go.Figure(traces, layout=dict(
        title=title, **_LAYOUT, xaxis=dict(title="recall", range=[0, 1]),
        yaxis=dict(title="precision", range=[0, 1.02]), legend=LEGEND_BELOW))


def calibration(frames: Mapping[str, pd.DataFrame], *, title: str = "Calibration: risk "
                "against what happened") -> go.Figure:
    """model -> (mean_risk, observed, count) per bin; the diagonal is perfect calibration."""
    traces = [go.Scatter(x=frame["mean_risk"], y=frame["observed"], mode="lines+markers",
                         name=plain(str(name)), line=dict(color=PALETTE[i % len(PALETTE)]),
                         marker=dict(size=8), customdata=frame["count"],
                         hovertemplate="risk %{x:.2f}: %{y:.3f} anomalous of %{customdata} "
                                       "sessions<extra></extra>")
              for i, (name, frame) in enumerate(frames.items()) if not frame.empty]
    if not traces:
        return _empty(title, "Needs labelled sessions after the train end.")
    ideal = go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfectly calibrated",
                       line=dict(color=NEUTRAL, dash="dash", width=1))
    return go.Figure([*traces, ideal], layout=dict(
        title=title, **_LAYOUT, xaxis=dict(title="risk / 100 (bin mean)", range=[0, 1]),
        yaxis=dict(title="share labelled anomalous", range=[0, 1.02]), legend=LEGEND_BELOW))


def curve_table(frames: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """The frames stacked with a ``model`` column first."""
    parts = [frame.assign(model=str(name)) for name, frame in frames.items() if not frame.empty]
    if not parts:
        return pd.DataFrame(columns=["model"])
    table = pd.concat(parts, ignore_index=True)
    return table[["model", *[c for c in table.columns if c != "model"]]]
