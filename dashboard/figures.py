"""Pure figure builders: data in, plotly figure out. No streamlit, no store.

Histograms are binned with numpy and drawn as bars: a million raw points would ship megabytes
of JSON per rerun, the bins ship a few kilobytes (docs/BENCHMARKS.md, 'Measurements behind
design choices').
"""

from __future__ import annotations

import html
import math
import re

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.figure_theme import (
    ANOMALY,
    LEGEND_BELOW,
    NEUTRAL,
    NORMAL,
    PALETTE,  # noqa: F401  (figures_entity imports it from here)
    day_axis,
)

THRESHOLD = NEUTRAL  # readable on the light and the dark theme (dashboard/figure_theme.py)
# A light band of the Blues scale: black cell text reads on every cell (figure_theme.text_on).
CELL_BLUES = [[0.0, "#F7FBFF"], [1.0, "#6BAED6"]]
CELL_TEXT = "#000000"
# No plotly template: st.plotly_chart applies the Streamlit theme in the browser, and a template
# is deep-copied into every figure (a cost on every rerun of the Thresholds page). No text
# colour either: the theme colours text, light or dark (dashboard/figure_theme.py).
_LAYOUT = dict(margin=dict(l=10, r=10, t=40, b=10), height=320)


def plain(values):  # noqa: ANN001, ANN201  (a str, a list or a Series in, the same kind out)
    """Text from the data made literal for plotly, which renders a subset of HTML (``<a>``,
    ``<b>``, ``<br>``) in titles, tick labels, text and hover labels: ``&``, ``<``, ``>`` and
    ``%`` become entities."""
    if isinstance(values, str):
        return (values.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
                .replace("%", "&#37;"))
    if isinstance(values, pd.Series | pd.Index):
        text = values.astype(str)
        for old, new in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("%", "&#37;")):
            text = text.str.replace(old, new, regex=False)
        return text
    return [plain(str(v)) for v in values]


_BREAK_AFTER = re.compile(r"(?<=[ _/.:\-])")  # a line may end after a space, _ / . : or -
BREAK = "<br>"


def label(text: object, width: int = 24) -> str:
    """A category label from the data, made literal (:func:`plain`) and wrapped onto lines of
    about ``width`` characters with ``<br>`` (issue #24, item 6: never cut to "payment_met…").
    Nothing is dropped: lines break after a space, ``_``, ``/``, ``.``, ``:`` or ``-`` (kept at
    the end of the line), and a longer run is split; :func:`unwrap` gives the text back."""
    lines: list[str] = []
    line = ""
    for piece in _BREAK_AFTER.split(str(text)):
        if line and len(line) + len(piece.rstrip()) > width:
            lines.append(line)
            line = ""
        line += piece
        while len(line.rstrip()) > width:  # a run with no break point: split it
            lines.append(line[:width])
            line = line[width:]
    if line or not lines:
        lines.append(line)
    return BREAK.join(plain(part) for part in lines)


def labels(values, width: int = 24) -> list[str]:  # noqa: ANN001  (a list, an array, a Series)
    """:func:`label` of each value."""
    return [label(v, width) for v in values]


def unwrap(text: str) -> str:
    """The text :func:`label` was given (line breaks removed, entities decoded)."""
    return html.unescape(str(text).replace(BREAK, ""))


def line_count(wrapped: list[str]) -> int:
    """Lines over all ``wrapped`` labels (to size a figure's height)."""
    return sum(str(w).count(BREAK) + 1 for w in wrapped)


def score_histogram(scores: np.ndarray, *, anomalous: np.ndarray | None = None,
                    threshold: float | None = None, log_y: bool = False, bins: int = 60,
                    title: str = "", x_title: str = "anomaly score") -> go.Figure:
    """Distribution of scores, labelled anomalies overlaid, the threshold as a line."""
    fig = go.Figure()
    scores = np.asarray(scores, dtype=np.float64)
    finite = np.isfinite(scores)  # unscored sessions (just ingested) have no score yet
    mask = (np.zeros(len(scores), bool) if anomalous is None
            else np.asarray(anomalous, bool))[finite]
    scores = scores[finite]
    if len(scores):
        edges = np.histogram_bin_edges(scores, bins=bins)
        centres, width = (edges[:-1] + edges[1:]) / 2, float(edges[1] - edges[0]) or 1.0
        counts, _ = np.histogram(scores[~mask], bins=edges)
        fig.add_bar(x=centres, y=counts, width=width, name="not labelled anomalous",
                    marker_color=NORMAL, opacity=0.8)
        if mask.any():
            counts_a, _ = np.histogram(scores[mask], bins=edges)
            fig.add_bar(x=centres, y=counts_a, width=width, name="labelled anomalous",
                        marker_color=ANOMALY, opacity=0.9)
    if threshold is not None and math.isfinite(threshold):
        fig.add_vline(x=threshold, line_color=THRESHOLD, line_dash="dash",
                      annotation_text="threshold", annotation_position="top")
    fig.update_layout(barmode="overlay", title=title, xaxis_title=x_title,
                      yaxis_title="sessions", yaxis_type="log" if log_y else "linear",
                      legend=LEGEND_BELOW, **_LAYOUT)
    if log_y:
        fig.update_yaxes(dtick=1)  # label powers of ten only: 1, 10, 100, ...
    return fig


def alerts_over_time(daily: pd.DataFrame, title: str = "Alerts per day") -> go.Figure:
    """Bars of ``alerts`` per ``day``; the count axis has whole-number ticks."""
    fig = go.Figure(go.Bar(x=daily["day"], y=daily["alerts"], marker_color=ANOMALY))
    fig.update_layout(title=title, xaxis=day_axis(daily["day"]), yaxis_title="alerts",
                      yaxis=count_axis(daily["alerts"]), **_LAYOUT)
    return fig


def count_axis(counts: pd.Series) -> dict[str, object]:
    """A y axis for counts: whole-number ticks (no 0.2 alerts), at most ~6 of them.

    >>> count_axis(pd.Series([0, 1, 1]))
    {'tickformat': ',d', 'rangemode': 'tozero', 'dtick': 1}
    >>> count_axis(pd.Series([0, 40]))
    {'tickformat': ',d', 'rangemode': 'tozero'}
    """
    axis: dict[str, object] = {"tickformat": ",d", "rangemode": "tozero"}
    top = float(pd.to_numeric(counts, errors="coerce").max()) if len(counts) else 0.0
    if not top == top or top <= 5:  # NaN (no rows) or few: one tick per whole number
        axis["dtick"] = 1
    return axis


# The four figures below are redrawn on every slider move: each is built in one constructor
# call, since every add_*/update_* call re-validates the figure.
def pr_curve(recall: np.ndarray, precision: np.ndarray, point: tuple[float, float] | None
             ) -> go.Figure:
    """Precision against recall, the operating point marked."""
    traces = [go.Scatter(x=recall, y=precision, mode="lines", name="PR", line_color=NORMAL)]
    if point is not None:
        traces.append(go.Scatter(x=[point[0]], y=[point[1]], mode="markers",
                                 name="operating point", marker=dict(size=12, color=ANOMALY)))
    return go.Figure(traces, layout=dict(
        title="Precision–recall", xaxis_title="recall", yaxis_title="precision",
        xaxis_range=[0, 1.02], yaxis_range=[0, 1.02], showlegend=False, **_LAYOUT))


def roc_curve(fpr: np.ndarray, tpr: np.ndarray, point: tuple[float, float] | None) -> go.Figure:
    """True against false positive rate, the operating point marked."""
    traces = [go.Scatter(x=fpr, y=tpr, mode="lines", name="ROC", line_color=NORMAL),
              go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(dash="dot", color=NEUTRAL),
                         name="chance")]
    if point is not None:
        traces.append(go.Scatter(x=[point[0]], y=[point[1]], mode="markers",
                                 name="operating point", marker=dict(size=12, color=ANOMALY)))
    return go.Figure(traces, layout=dict(
        title="ROC", xaxis_title="false positive rate", yaxis_title="true positive rate",
        showlegend=False, **_LAYOUT))


def confusion_matrix(tp: int, fp: int, fn: int, tn: int) -> go.Figure:
    """2×2 counts: rows are the truth, columns the decision. Cells run from near white to a
    mid blue (log counts), so their black text reads on every cell, in either theme."""
    z = [[tp, fn], [fp, tn]]
    text = [[f"caught<br>{tp:,}", f"missed<br>{fn:,}"], [f"false alarms<br>{fp:,}",
                                                          f"cleared<br>{tn:,}"]]
    heatmap = go.Heatmap(z=np.log1p(z), x=["flagged", "not flagged"], y=["anomalous", "normal"],
                         text=text, texttemplate="%{text}", textfont=dict(color=CELL_TEXT),
                         colorscale=CELL_BLUES, showscale=False, hoverinfo="skip")
    return go.Figure(heatmap, layout=dict(title="Confusion matrix (labelled sessions)",
                                          yaxis_autorange="reversed", **_LAYOUT))


def scenario_recall(per_scenario: pd.DataFrame) -> go.Figure:
    """Horizontal bars of ``recall`` per ``scenario`` (with ``n`` in the hover). Long scenario
    names wrap (:func:`label`); the hover shows the name in full."""
    frame = per_scenario.sort_values("recall")
    names = labels(frame["scenario"])
    bars = go.Bar(x=frame["recall"], y=names, orientation="h", marker_color=ANOMALY,
                  customdata=frame["n"], hovertemplate="%{y}: %{x:.0%} of %{customdata} sessions"
                                                       "<extra></extra>")
    return go.Figure(bars, layout=dict(title="Recall per scenario at this threshold",
                                       xaxis_range=[0, 1.04], xaxis_tickformat=".0%",  # 100% shown
                                       **{**_LAYOUT, "height": max(320, 100 + 18 * line_count(
                                           names))}))


# The tables behind the figures (dashboard/charts.py draws one under each chart).
def confusion_table(tp: int, fp: int, fn: int, tn: int) -> pd.DataFrame:
    """The confusion matrix's four cells, one row each."""
    return pd.DataFrame({"truth": ["anomalous", "anomalous", "normal", "normal"],
                         "decision": ["flagged", "not flagged", "flagged", "not flagged"],
                         "outcome": ["caught", "missed", "false alarm", "cleared"],
                         "sessions": [int(tp), int(fn), int(fp), int(tn)]})


def curve_table(thresholds: np.ndarray, precision: np.ndarray, recall: np.ndarray,
                fpr: np.ndarray, max_rows: int = 200) -> pd.DataFrame:
    """The PR/ROC curve's points, thinned evenly to at most ``max_rows`` (ends kept)."""
    frame = pd.DataFrame({"threshold": np.asarray(thresholds, np.float64),
                          "precision": precision, "recall": recall,
                          "false positive rate": fpr})
    if len(frame) > max_rows:
        keep = np.unique(np.linspace(0, len(frame) - 1, max_rows).round().astype(np.int64))
        frame = frame.iloc[keep]
    return frame.reset_index(drop=True)


def histogram_table(scores: np.ndarray, *, anomalous: np.ndarray | None = None,
                    bins: int = 60) -> pd.DataFrame:
    """The bins of :func:`score_histogram`: bin edges and sessions per bin (and labelled
    anomalous ones)."""
    scores = np.asarray(scores, dtype=np.float64)
    finite = np.isfinite(scores)
    mask = (np.zeros(len(scores), bool) if anomalous is None
            else np.asarray(anomalous, bool))[finite]
    scores = scores[finite]
    if not len(scores):
        return pd.DataFrame(columns=["from score", "to score", "sessions", "labelled anomalous"])
    edges = np.histogram_bin_edges(scores, bins=bins)
    total, _ = np.histogram(scores, bins=edges)
    flagged, _ = np.histogram(scores[mask], bins=edges)
    return pd.DataFrame({"from score": edges[:-1], "to score": edges[1:], "sessions": total,
                         "labelled anomalous": flagged})

