"""Pure figure builders of the Live page: data in, plotly figure out (no streamlit, no store).

- :func:`risk_drift`: the recent sessions' risk histogram against the training sessions',
  both as shares of their sessions, on the same 10-point bins;
- :func:`drift_table`: the table behind it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.figure_theme import LEGEND_BELOW, NEUTRAL, PALETTE

_LAYOUT = dict(margin=dict(l=10, r=10, t=40, b=10), height=300)
EDGES = np.linspace(0, 100, 11)


def _shares(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    counts = np.histogram(np.clip(values, 0, 100), bins=EDGES)[0].astype(float)
    return counts / max(len(values), 1)


def drift_table(recent: np.ndarray, training: np.ndarray) -> pd.DataFrame:
    """risk bin, share of recent sessions, share of training sessions."""
    labels = [f"{int(a)}–{int(b)}" for a, b in zip(EDGES[:-1], EDGES[1:], strict=True)]
    return pd.DataFrame({"risk": labels, "recent": _shares(recent),
                         "training": _shares(training)})


def _drawn(shares: pd.Series) -> list[float | None]:
    """Shares for a log axis: an empty bin is a gap, not a point at 0."""
    return [float(v) if v > 0 else None for v in shares]


def risk_drift(recent: np.ndarray, training: np.ndarray, *, window_label: str,
               title: str = "Risk: recent sessions against training") -> go.Figure:
    """Bars of the recent risks' shares, a line of the training shares, on a log axis: most
    sessions sit in the lowest bin, and the high-risk tail (a few percent, where drift
    matters) would be a flat line at 0% on a linear one."""
    table = drift_table(recent, training)
    n = int(np.isfinite(np.asarray(recent, dtype=np.float64)).sum())
    return go.Figure([
        go.Bar(x=table["risk"], y=_drawn(table["recent"]),
               name=f"{window_label} ({n:,} sessions)", marker_color=PALETTE[0]),
        go.Scatter(x=table["risk"], y=_drawn(table["training"]), name="training",
                   mode="lines+markers", line=dict(color=NEUTRAL, dash="dot", width=2))],
        layout=dict(title=title, **_LAYOUT, xaxis_title="risk (0–100)",
                    yaxis=dict(title="share of sessions (log scale)", type="log",
                               tickformat=".2~%", dtick="D2"),  # 1, 2, 5 a decade
                    legend=LEGEND_BELOW, bargap=0.1))
