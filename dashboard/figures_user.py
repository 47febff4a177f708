"""Pure figure builders of the User 360 page: data in, plotly figure out (no streamlit, no
store). Risk is always the policy's 0-100 risk, never a detector's raw score; text from the
data goes through ``plain`` (plotly renders a subset of HTML in hover labels and text).
Colours come from ``dashboard.figure_theme`` (3:1 or more on the light and the dark page; red
for flagged and fraud) and no text colour is set (the theme draws text in the page's colour):
``tests/dashboard/test_chart_contrast.py`` checks both.

- :func:`timeline`: events by type, the sessions as a row of points coloured by risk
  (flagged: diamonds), the focus session as a band; zoomed to ``window`` with range buttons
  and a range slider.
- :func:`risk_over_time`: each session's risk against its start, flagged and decided
  sessions marked, the focus as a star; buckets (highest risk per bucket) beyond the cap.
- :func:`linked_graph`: the user and linked accounts, fill = risk, ring = decision.
- :func:`entities_over_time`, :func:`amounts_over_time` (amounts with their currency).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.figure_theme import ANOMALY, NEUTRAL, NORMAL, PALETTE
from dashboard.figures import plain

_LAYOUT = dict(margin=dict(l=10, r=10, t=40, b=10), height=320)  # as dashboard.figures
# Blue, ochre, red: every colour between them reaches 3:1 on both backgrounds (a light
# yellow middle did not, 1.6:1 on white).
RISK_SCALE = [[0.0, NORMAL], [0.5, PALETTE[4]], [1.0, ANOMALY]]
NO_RISK = NEUTRAL
FOCUS = PALETTE[1]  # orange: the focus star, the focus band's edge
# The focus band's fill: an area at 0.25 opacity, not a mark (its edge, FOCUS, reaches 3:1).
FOCUS_FILL = "#FFA600"
OUTLINE = NEUTRAL  # marker outlines and edges: a dark grey vanished on the dark page
DECISION_COLOURS = {"fraud": ANOMALY, "not fraud": PALETTE[2], "inconclusive": NEUTRAL}
DECISION_WORDS = {"fraud": "decided fraud (red ring)",
                  "not fraud": "decided not fraud (green ring)",
                  "inconclusive": "decided inconclusive (grey ring)",
                  None: "no decision (thin ring)"}
RANGE_BUTTONS = [dict(count=1, label="1h", step="hour", stepmode="backward"),
                 dict(count=1, label="1d", step="day", stepmode="backward"),
                 dict(count=7, label="1w", step="day", stepmode="backward"),
                 dict(count=1, label="1m", step="month", stepmode="backward"),
                 dict(step="all", label="all")]
SESSIONS_ROW = "sessions (risk)"


def _hex(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def risk_colour(risk: float | None) -> str:
    """The colour of a risk 0-100 on ``RISK_SCALE`` (blue low, ochre middle, red high);
    ``NO_RISK`` grey when there is none."""
    if risk is None or not np.isfinite(float(risk)):
        return NO_RISK
    x = min(max(float(risk) / 100.0, 0.0), 1.0)
    for (x0, c0), (x1, c1) in zip(RISK_SCALE, RISK_SCALE[1:], strict=False):
        if x <= x1:
            t = 0.0 if x1 == x0 else (x - x0) / (x1 - x0)
            a, b = _hex(c0), _hex(c1)
            return "#{:02X}{:02X}{:02X}".format(*(round(p + (q - p) * t) for p, q in
                                                  zip(a, b, strict=True)))
    return RISK_SCALE[-1][1]


def risk_colours(risk: pd.Series) -> list[str]:
    return [risk_colour(v) for v in pd.to_numeric(risk, errors="coerce")]


def _risk_text(risk: pd.Series) -> list[str]:
    return ["–" if not np.isfinite(v) else f"{v:.0f}"
            for v in pd.to_numeric(risk, errors="coerce").to_numpy(np.float64)]


def _decision_text(decision: pd.Series) -> list[str]:
    return [str(d) if isinstance(d, str) else "none" for d in decision]


def _session_hover(points: pd.DataFrame) -> np.ndarray:
    return np.c_[plain(points["session_id"].astype(str)), _risk_text(points["risk"]),
                 np.where(points["flagged"].astype(bool), "flagged", "not flagged"),
                 _decision_text(points["decision"])]


_SESSION_TEMPLATE = ("session %{customdata[0]}<br>%{x}<br>risk %{customdata[1]} · "
                     "%{customdata[2]} · decision %{customdata[3]}<extra></extra>")


def _colourbar_trace(y: object) -> go.Scatter:
    """An invisible point carrying the risk colour bar (the markers take explicit colours)."""
    return go.Scatter(x=[None], y=[y], mode="markers", showlegend=False, hoverinfo="skip",
                      marker=dict(color=[0], cmin=0, cmax=100, colorscale=RISK_SCALE,
                                  showscale=True, colorbar=dict(title="risk", thickness=12,
                                                                len=0.8)))


def _focus_band(points: pd.DataFrame, focus: str | None) -> list[dict]:
    if not focus:
        return []
    row = points[points["session_id"].astype(str) == str(focus)]
    if row.empty:
        return []
    start = pd.Timestamp(row["start_ts"].iloc[0])
    end = row["end_ts"].iloc[0] if "end_ts" in row else None
    end = pd.Timestamp(end) if end is not None and pd.notna(end) else start
    end = max(end, start + pd.Timedelta("1min"))
    return [dict(type="rect", xref="x", yref="paper", x0=start, x1=end, y0=0, y1=1,
                 fillcolor=FOCUS_FILL, opacity=0.25, line=dict(color=FOCUS, width=2),
                 layer="below")]


def timeline(events: pd.DataFrame, points: pd.DataFrame, *, focus: str | None = None,
             window: tuple[pd.Timestamp, pd.Timestamp] | None = None,
             buckets: pd.DataFrame | None = None, bucket: str | None = None,
             event_size: pd.Series | None = None) -> go.Figure:
    """Events over time, one row per event type (``event_size``: a 0-100 percentile sizing
    the markers, else one size), above them the sessions (``points``: session_id, start_ts,
    end_ts, risk, flagged, decision) coloured by risk, flagged ones as diamonds; ``buckets``
    (start, max_risk, n_sessions) the highest risk per ``bucket`` of the sessions not drawn
    one by one. ``focus`` is banded; the x-axis starts at ``window`` (None: everything) with
    range buttons and a range slider."""
    kinds = plain(events["event_type"].astype(str)) if len(events) else pd.Series(dtype=str)
    types = sorted(kinds.unique()) if len(events) else []
    size = (pd.Series(9.0, index=events.index) if event_size is None
            else 6 + 12 * pd.to_numeric(event_size, errors="coerce").fillna(0) / 100)
    traces: list[go.Scatter] = []
    for i, kind in enumerate(types):
        part = (kinds == kind).to_numpy()
        amount = events["amount"][part] if "amount" in events else pd.Series(np.nan)
        traces.append(go.Scatter(
            x=events["ts"][part], y=[kind] * int(part.sum()), mode="markers", name=kind,
            marker=dict(size=size[part], color=PALETTE[i % len(PALETTE)], opacity=0.85,
                        line=dict(width=0.5, color=OUTLINE)),
            customdata=np.c_[plain(events["session_id"][part].astype(str)),
                             amount.to_numpy()],
            hovertemplate="%{x}<br>" + kind + "<br>session %{customdata[0]}"
                          "<br>amount %{customdata[1]}<extra></extra>", showlegend=False))
    if buckets is not None and len(buckets):
        traces.append(go.Scatter(
            x=buckets["start"], y=[SESSIONS_ROW] * len(buckets), mode="markers",
            name=f"highest risk per {bucket}", showlegend=False,
            marker=dict(size=8, symbol="square", color=risk_colours(buckets["max_risk"]),
                        opacity=0.5),
            customdata=np.c_[_risk_text(buckets["max_risk"]), buckets["n_sessions"]],
            hovertemplate=f"{bucket} of %{{x}}<br>highest risk %{{customdata[0]}} of "
                          "%{customdata[1]} sessions<extra></extra>"))
    for flagged, symbol, name in ((False, "circle", "not flagged"), (True, "diamond",
                                                                      "flagged")):
        part = points[points["flagged"].astype(bool) == flagged]
        if part.empty:
            continue
        traces.append(go.Scatter(
            x=part["start_ts"], y=[SESSIONS_ROW] * len(part), mode="markers", name=name,
            showlegend=False,
            marker=dict(size=14 if flagged else 10, symbol=symbol,
                        color=risk_colours(part["risk"]),
                        line=dict(width=1.5 if flagged else 0.5,
                                  color=ANOMALY if flagged else OUTLINE)),
            customdata=_session_hover(part), hovertemplate=_SESSION_TEMPLATE))
    if len(points) or (buckets is not None and len(buckets)):
        traces.append(_colourbar_trace(SESSIONS_ROW))
    annotations = []
    shapes = _focus_band(points, focus)
    if shapes:
        annotations.append(dict(x=shapes[0]["x0"], y=0.0, xref="x", yref="paper",
                                text="focus session", showarrow=False, xanchor="left",
                                yanchor="bottom"))  # no font colour: the theme's text
    xaxis = dict(title="time (UTC)",
                 rangeselector=dict(buttons=RANGE_BUTTONS, x=0, xanchor="left", y=1.0,
                                    yanchor="bottom"),
                 rangeslider=dict(visible=True, thickness=0.08), type="date")
    if window is not None:
        xaxis["range"] = [pd.Timestamp(window[0]), pd.Timestamp(window[1])]
    rows = [*types, SESSIONS_ROW]
    layout = dict(title="Timeline: events, and sessions coloured by risk (◆ flagged)",
                  xaxis=xaxis, yaxis=dict(categoryorder="array", categoryarray=rows,
                                          title=None),
                  shapes=shapes, annotations=annotations, showlegend=False,
                  **{**_LAYOUT, "margin": dict(l=10, r=10, t=90, b=10),
                     "height": max(340, 30 * len(rows) + 230)})
    return go.Figure(traces, layout=layout)


def risk_over_time(points: pd.DataFrame, *, focus: str | None = None,
                   buckets: pd.DataFrame | None = None, bucket: str | None = None
                   ) -> go.Figure:
    """Each session's risk (0-100) against its start: flagged ones as red diamonds, decided
    ones ringed by decision, ``focus`` a star; ``buckets`` (start, max_risk) as a line of the
    highest risk per ``bucket`` where sessions were too many to draw one by one."""
    traces: list[go.Scatter] = []
    if buckets is not None and len(buckets):
        traces.append(go.Scatter(
            x=buckets["start"], y=buckets["max_risk"], mode="lines",
            name=f"highest risk per {bucket}", line=dict(color=NEUTRAL, width=1),
            customdata=buckets[["n_sessions", "n_flagged"]].to_numpy(),
            hovertemplate="%{x}<br>highest risk %{y:.0f} of %{customdata[0]} sessions, "
                          "%{customdata[1]} flagged<extra></extra>"))
    flagged = points["flagged"].astype(bool)
    for mask, name, marker in (
            (~flagged, "not flagged", dict(size=8, color=NORMAL, symbol="circle")),
            (flagged, "flagged", dict(size=11, color=ANOMALY, symbol="diamond"))):
        part = points[mask.to_numpy()]
        if part.empty:
            continue
        traces.append(go.Scatter(x=part["start_ts"], y=part["risk"], mode="markers",
                                 name=name, marker=marker, customdata=_session_hover(part),
                                 hovertemplate=_SESSION_TEMPLATE))
    for decision, colour in DECISION_COLOURS.items():
        part = points[(points["decision"] == decision).to_numpy()]
        if part.empty:
            continue
        traces.append(go.Scatter(
            x=part["start_ts"], y=part["risk"], mode="markers", name=DECISION_WORDS[decision],
            marker=dict(size=18, symbol="circle-open", color=colour, line=dict(width=2.5)),
            customdata=_session_hover(part), hovertemplate=_SESSION_TEMPLATE))
    if focus:
        part = points[points["session_id"].astype(str) == str(focus)]
        if not part.empty:
            traces.append(go.Scatter(
                x=part["start_ts"], y=part["risk"].fillna(0), mode="markers",
                name="focus session",
                marker=dict(size=20, symbol="star", color=FOCUS,
                            line=dict(width=1, color=OUTLINE)),
                customdata=_session_hover(part), hovertemplate=_SESSION_TEMPLATE))
    layout = dict(title="Risk over time (0-100 per session)", xaxis_title="session start (UTC)",
                  yaxis=dict(title="risk 0-100", range=[-3, 105]),
                  legend=dict(orientation="h", y=-0.25), **{**_LAYOUT, "height": 360})
    fig = go.Figure(traces, layout=layout)
    starts = pd.to_datetime(points["start_ts"])
    if len(starts) and starts.max() - starts.min() < pd.Timedelta("1h"):
        middle = starts.min() + (starts.max() - starts.min()) / 2  # one session: a day around it
        fig.update_xaxes(range=[middle - pd.Timedelta("12h"), middle + pd.Timedelta("12h")])
    return fig


def linked_graph(users: pd.DataFrame, *, user_id: str) -> go.Figure:
    """``user_id`` in the centre, linked accounts on a ring with an edge to each: the fill is
    the account's highest risk (``max_risk``, the colour bar), the ring its decision
    (``decision``: DECISION_WORDS says which colour). ``users``: user_id, max_risk, decision,
    shared (what they share; NaN for the user), the user's own row among them."""
    me = users[users["user_id"].astype(str) == str(user_id)]
    others = users[users["user_id"].astype(str) != str(user_id)].reset_index(drop=True)
    n = len(others)
    angles = np.linspace(0, 2 * np.pi, n, endpoint=False) if n else np.array([])
    xs, ys = np.cos(angles), np.sin(angles)
    edge_x = [v for x in xs for v in (0.0, float(x), None)]
    edge_y = [v for y in ys for v in (0.0, float(y), None)]
    traces: list[go.Scatter] = [go.Scatter(x=edge_x, y=edge_y, mode="lines",
                                           line=dict(color=OUTLINE, width=1), hoverinfo="skip",
                                           showlegend=False)]
    shared = (others["shared"].astype(str) if "shared" in others
              else pd.Series("", index=others.index))
    for decision, words in DECISION_WORDS.items():
        mask = (others["decision"] == decision).to_numpy() if decision else \
            others["decision"].isna().to_numpy()
        if not mask.any():
            continue
        part = others[mask]
        traces.append(go.Scatter(
            x=xs[mask], y=ys[mask], mode="markers+text", name=words,
            text=plain(part["user_id"].astype(str)), textposition="top center",
            marker=dict(size=16, color=risk_colours(part["max_risk"]),
                        line=dict(width=4 if decision else 1,
                                  color=DECISION_COLOURS.get(decision, OUTLINE))),
            customdata=np.c_[_risk_text(part["max_risk"]), _decision_text(part["decision"]),
                             plain(shared[mask])],
            hovertemplate="%{text}<br>highest risk %{customdata[0]} · decision "
                          "%{customdata[1]}<br>shares %{customdata[2]}<extra></extra>"))
    risk = me["max_risk"] if not me.empty else pd.Series([np.nan])
    decision = me["decision"].iloc[0] if not me.empty else None
    traces.append(go.Scatter(
        x=[0], y=[0], mode="markers+text", text=[plain(str(user_id))],
        textposition="bottom center", name="this user (diamond)",
        marker=dict(size=24, symbol="diamond", color=risk_colours(risk),
                    line=dict(width=4 if isinstance(decision, str) else 1,
                              color=DECISION_COLOURS.get(decision, OUTLINE))),
        customdata=[[_risk_text(risk)[0], _decision_text(pd.Series([decision]))[0]]],
        hovertemplate="%{text} (this user)<br>highest risk %{customdata[0]} · decision "
                      "%{customdata[1]}<extra></extra>"))
    traces.append(_colourbar_trace(0))
    layout = dict(title="Linked accounts: fill = highest risk, ring = decision",
                  xaxis_visible=False, yaxis_visible=False,
                  legend=dict(orientation="h", y=-0.05),
                  **{**_LAYOUT, "height": 420})
    return go.Figure(traces, layout=layout)


def entities_over_time(events: pd.DataFrame, *, per_kind: int = 15) -> go.Figure:
    """Devices, IPs, countries and payment methods over time (the ``per_kind`` most used of
    each), first use marked (a red star; the very first event is never "new")."""
    traces, n = [], 0
    for column, label in (("device_id", "device"), ("ip", "ip"), ("country", "country"),
                          ("payment_id", "payment")):
        if column not in events or events[column].isna().all():
            continue
        seen = events.dropna(subset=[column]).sort_values("ts")
        top = seen[column].value_counts().head(per_kind).index
        first = seen.groupby(column)["ts"].transform("min") == seen["ts"]
        is_new = (first & (seen["ts"] > seen["ts"].min())).to_numpy()
        keep = seen[column].isin(top).to_numpy()
        seen, is_new = seen[keep], is_new[keep]
        y = label + ": " + plain(seen[column].astype(str))
        n += seen[column].nunique()
        traces.append(go.Scatter(
            x=seen["ts"], y=y, mode="markers", name=label,
            marker=dict(size=7, color=PALETTE[len(traces) // 2 % len(PALETTE)]),
            hovertemplate="%{y}<br>%{x}<extra></extra>"))
        traces.append(go.Scatter(
            x=seen["ts"][is_new], y=y[is_new], mode="markers", name=f"new {label}",
            marker=dict(size=14, color=ANOMALY, symbol="star"),
            hovertemplate="first use: %{y}<br>%{x}<extra></extra>"))
    layout = dict(title="Devices, IPs, countries, payment methods (★ first use)",
                  showlegend=False, **{**_LAYOUT, "height": max(220, 22 * max(n, 1) + 120)})
    return go.Figure(traces, layout=layout)


def amounts_over_time(amounts: pd.DataFrame, *, per: str = "session") -> go.Figure:
    """Amounts per session (or per day) over time, one trace per currency, the currency in
    the legend and the hover. ``amounts``: ts, currency, amount."""
    traces = []
    currencies = list(dict.fromkeys(amounts["currency"].astype(str))) if len(amounts) else []
    for i, currency in enumerate(currencies):
        part = amounts[amounts["currency"].astype(str) == currency]
        label = plain(currency)
        traces.append(go.Scatter(
            x=part["ts"], y=part["amount"], mode="markers", name=label,
            marker=dict(color=PALETTE[(i + 1) % len(PALETTE)], size=8),
            hovertemplate="%{y:,.2f} " + label + "<br>%{x}<extra></extra>"))
    unit = currencies[0] if len(currencies) == 1 else "by currency"
    unit = unit if unit.startswith("(") else f"({unit})"
    layout = dict(title=plain(f"Amounts per {per} {unit}"),
                  yaxis_title=plain(f"amount {unit}"), showlegend=len(currencies) > 1,
                  legend=dict(orientation="h", y=-0.2), **_LAYOUT)
    return go.Figure(traces, layout=layout)
