"""The report's timeline, laid out once in unit coordinates and drawn as SVG (HTML) or with
fpdf2 primitives (PDF): one row per event type, one dot per event (bigger = higher per-event
score), the case's sessions as shaded bands.

Drawing it ourselves keeps the HTML report free of JavaScript and of any external URL (an
inlined plotly.js is megabytes and carries CDN and map-tile URLs), and makes the PDF's figure the
same as the HTML's.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import numpy as np
import pandas as pd

PALETTE = ("#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#EECA3B", "#B279A2",
           "#FF9DA6", "#9D755D", "#BAB0AC", "#2F4B7C", "#A05195", "#D45087", "#665191",
           "#FFA600", "#003F5C")
MAX_POINTS = 3000
"""Beyond this, events outside the case's sessions are thinned (a bot can have 100k events)."""
MIN_BAND = 0.008  # a two-minute session in a month still shows as a visible band


@dataclass(frozen=True)
class Point:
    x: float  # 0..1 along the time axis
    row: int
    size: float  # 0..1, from the per-event score (0.3 without scores)
    color: str
    label: str  # tooltip text (plain; escaped when drawn)


@dataclass(frozen=True)
class Band:
    x0: float
    x1: float
    label: str


@dataclass(frozen=True)
class Timeline:
    rows: tuple[str, ...]
    points: tuple[Point, ...]
    bands: tuple[Band, ...]
    ticks: tuple[tuple[float, str], ...]
    n_hidden: int  # events left out by thinning


def build_timeline(events: pd.DataFrame, case_sessions: pd.DataFrame) -> Timeline:
    """Lay out ``events`` (ts, event_type, session_id, amount, event_score, in_case) and the
    bands of ``case_sessions`` (session_id, start_ts, end_ts)."""
    if events.empty:
        return Timeline((), (), (), (), 0)
    events = events.sort_values("ts")
    n_hidden = 0
    if len(events) > MAX_POINTS:
        inside = events[events["in_case"]]
        outside = events[~events["in_case"]]
        keep = max(MAX_POINTS - len(inside), 0)
        step = int(np.ceil(len(outside) / keep)) if keep else len(outside) + 1
        kept = outside.iloc[::step] if keep else outside.iloc[0:0]
        n_hidden = len(outside) - len(kept)
        events = pd.concat([inside, kept]).sort_values("ts")
    ts = pd.to_datetime(events["ts"])
    start, end = ts.min(), ts.max()
    span = max((end - start).total_seconds(), 60.0)
    start = start - pd.Timedelta(seconds=span * 0.02)
    span *= 1.04

    def x_of(value: pd.Timestamp) -> float:
        return float(min(max((pd.Timestamp(value) - start).total_seconds() / span, 0.0), 1.0))

    rows = tuple(sorted(events["event_type"].astype(str).unique()))
    row_of = {name: i for i, name in enumerate(rows)}
    score = pd.to_numeric(events.get("event_score"), errors="coerce") if (
        "event_score" in events) else pd.Series(np.nan, index=events.index)
    lo, hi = (float(score.min()), float(score.max())) if score.notna().any() else (0.0, 0.0)
    points = []
    for (_, event), when in zip(events.iterrows(), ts, strict=True):
        value = score.loc[_]
        size = 0.3 if pd.isna(value) else 0.25 + 0.75 * (float(value) - lo) / max(hi - lo, 1e-9)
        kind = str(event["event_type"])
        amount = "" if pd.isna(event.get("amount")) else f" · amount {float(event['amount']):.2f}"
        scored = "" if pd.isna(value) else f" · event score {float(value):.3f}"
        points.append(Point(x_of(when), row_of[kind], size, PALETTE[row_of[kind] % len(PALETTE)],
                            f"{when:%Y-%m-%d %H:%M:%S} · {kind} · session "
                            f"{event['session_id']}{amount}{scored}"))
    bands = []
    for row in case_sessions.itertuples():
        x0 = x_of(row.start_ts)
        x1 = max(x_of(row.end_ts), x0 + MIN_BAND)
        bands.append(Band(x0, min(x1, 1.0), f"case session {row.session_id}"))
    ticks = tuple((i / 4, f"{start + pd.Timedelta(seconds=span * i / 4):%Y-%m-%d %H:%M}")
                  for i in range(5))
    return Timeline(rows, tuple(points), tuple(bands), ticks, n_hidden)


def timeline_svg(timeline: Timeline, *, width: int = 960) -> str:
    """The timeline as an inline SVG element (no script, no external reference)."""
    if not timeline.rows:
        return "<p class='muted'>No events.</p>"
    left, right, top, row_h = 150, 20, 16, 26
    plot_w = width - left - right
    height = top + row_h * len(timeline.rows) + 40
    bottom = top + row_h * len(timeline.rows)
    e = html.escape
    parts = [f"<svg class='timeline' role='img' width='{width}' height='{height}' "
             f"viewBox='0 0 {width} {height}' aria-label='Timeline of the user&#x27;s events'>"]
    for band in timeline.bands:
        x0, w = left + band.x0 * plot_w, max((band.x1 - band.x0) * plot_w, 2)
        parts.append(f"<rect x='{x0:.1f}' y='{top}' width='{w:.1f}'"
                     f" height='{bottom - top}' fill='#E45756' fill-opacity='0.14'>"
                     f"<title>{e(band.label)}</title></rect>")
    for i, name in enumerate(timeline.rows):
        y = top + row_h * i + row_h / 2
        parts.append(f"<line x1='{left}' x2='{width - right}' y1='{y:.1f}' y2='{y:.1f}' "
                     "stroke='#e5e5e5'/>")
        parts.append(f"<text x='{left - 8}' y='{y + 4:.1f}' text-anchor='end' "
                     f"font-size='12'>{e(name)}</text>")
    for point in timeline.points:
        cx = left + point.x * plot_w
        cy = top + row_h * point.row + row_h / 2
        parts.append(f"<circle cx='{cx:.1f}' cy='{cy:.1f}' r='{2 + 7 * point.size:.1f}' "
                     f"fill='{point.color}' fill-opacity='0.8' stroke='#333' stroke-width='0.4'>"
                     f"<title>{e(point.label)}</title></circle>")
    for x, label in timeline.ticks:
        px = left + x * plot_w
        parts.append(f"<line x1='{px:.1f}' x2='{px:.1f}' y1='{bottom}' y2='{bottom + 5}' "
                     "stroke='#666'/>")
        anchor = "start" if x == 0 else "end" if x == 1 else "middle"
        parts.append(f"<text x='{px:.1f}' y='{bottom + 18}' text-anchor='{anchor}' "
                     f"font-size='11' fill='#444'>{e(label)}</text>")
    parts.append("</svg>")
    return "".join(parts)
