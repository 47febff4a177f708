"""Pure figure builders of the Entity page: an entity's volume and risk per day."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.figure_theme import LEGEND_BELOW, day_axis
from dashboard.figures import ANOMALY, NORMAL, PALETTE, plain

_LAYOUT = dict(margin=dict(l=10, r=10, t=40, b=10), height=320)  # as dashboard.figures


def volume_over_time(volume: pd.DataFrame, title: str = "Volume per day") -> go.Figure:
    """Sessions per day as bars; distinct users and new accounts as lines.

    ``volume``: day, sessions, users, new_users (``core.app.entities.EntityView.volume``)."""
    fig = go.Figure()
    if not volume.empty:
        fig.add_bar(x=volume["day"], y=volume["sessions"], name="sessions",
                    marker_color=NORMAL)
        fig.add_scatter(x=volume["day"], y=volume["users"], name="distinct users",
                        mode="lines+markers", line=dict(color=PALETTE[1]))
        fig.add_scatter(x=volume["day"], y=volume["new_users"],
                        name="new accounts (first session that day)", mode="lines+markers",
                        line=dict(color=ANOMALY, dash="dot"))
    fig.update_layout(**_LAYOUT, title=plain(title), xaxis=day_axis(volume.get("day", [])),
                      yaxis_title="count", legend=LEGEND_BELOW)
    return fig


def risk_over_time(risk: pd.DataFrame, title: str = "Risk per day") -> go.Figure:
    """The day's highest risk (0-100) when the model has a calibration, else the highest and
    mean raw score of the sessions touching the entity.

    ``risk``: day, n_scored, max_score, mean_score, max_risk."""
    fig = go.Figure()
    has_risk = not risk.empty and bool(np.isfinite(
        pd.to_numeric(risk["max_risk"], errors="coerce").to_numpy(np.float64)).any())
    if has_risk:
        fig.add_scatter(x=risk["day"], y=risk["max_risk"], name="highest risk",
                        mode="lines+markers", line=dict(color=ANOMALY),
                        customdata=risk[["n_scored", "mean_score"]].to_numpy(),
                        hovertemplate="%{x|%Y-%m-%d}: risk %{y:.0f} "
                                      "(%{customdata[0]} sessions scored)<extra></extra>")
        # a little room past 0 and 100: a marker at the edge is not cut in half
        fig.update_layout(yaxis=dict(title="risk 0-100", range=[-3, 103], tickvals=[
            0, 20, 40, 60, 80, 100]))
    elif not risk.empty:
        fig.add_scatter(x=risk["day"], y=risk["max_score"], name="highest score",
                        mode="lines+markers", line=dict(color=ANOMALY))
        fig.add_scatter(x=risk["day"], y=risk["mean_score"], name="mean score",
                        mode="lines+markers", line=dict(color=NORMAL))
        fig.update_layout(yaxis_title="score of the policy's model")
    fig.update_layout(**_LAYOUT, title=plain(title), xaxis=day_axis(risk.get("day", [])),
                      legend=LEGEND_BELOW)
    return fig
