"""Colours the figures share, chosen to read in the light and the dark theme (issue #24, item 6).

The app follows the browser's light/dark preference (``.streamlit/config.toml`` has a
``[theme.light]`` and a ``[theme.dark]`` palette) and ``st.plotly_chart`` draws every figure in
the Streamlit theme, which colours titles, tick labels, axis titles, legends and hover labels
from the active theme's text colour. So figures never set a text colour over the chart
background: one fixed colour cannot reach 4.5:1 against both a white and a near-black page.
Where a figure writes text on a coloured cell (a heatmap), it picks black or white per cell
with :func:`text_on` (always at least 4.5:1).

Marks (bars, lines, markers) are not text: WCAG asks 3:1 of them (1.4.11). Every colour here
reaches 3:1 against both themes' backgrounds; ``tests/dashboard/test_chart_contrast.py``
checks it, and the text colours against the backgrounds, from ``config.toml``.

Red is kept for anomalies: the series palette has none.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import pandas as pd

NORMAL = "#4C78A8"  # sessions not flagged / not labelled anomalous; "lowers the score"
ANOMALY = "#E45756"  # anomalies, alerts, "raises the score"
NEUTRAL = "#7F7F7F"  # reference lines (threshold, chance), totals: 3:1 on white and on dark
PALETTE = ["#4C78A8", "#CC6F1A", "#4E9A45", "#2E8B84", "#A88A1F", "#9467BD", "#9D755D",
           "#7F7F7F", "#A05195", "#5D7FC0"]
# Sequential cell colours (heatmaps): text on them is black or white, per cell (text_on).
BLUES = "Blues"
WARM = [[0.0, "#FCD5CF"], [1.0, "#A50F15"]]  # light (never white: cells stay visible) to dark
INK_DARK, INK_LIGHT = "#000000", "#FFFFFF"
# A horizontal legend at the foot of the figure (the container, not the plot area: a legend
# at y=-0.2 of the plot sat on the date tick labels and the axis title).
LEGEND_BELOW = dict(orientation="h", yref="container", y=0, yanchor="bottom", x=0,
                    xanchor="left")

DAY_MS = 86_400_000


def day_axis(days: Iterable) -> dict:  # noqa: ANN001
    """An x axis of days: a tick a day over two weeks or less (plotly would put ticks at
    12:00 and label them with the hour), else plotly's own spacing (also when a day is out of
    pandas' range: a tick a day over centuries would never finish); dates as "Sep 22"."""
    given = pd.Series(list(days), dtype=object)
    values = pd.to_datetime(given, errors="coerce").dropna()
    axis: dict = {"title": "day", "tickformat": "%b %-d", "hoverformat": "%Y-%m-%d"}
    if len(values) and len(values) == len(given):  # a day pandas cannot hold: plotly's ticks
        span = (values.max().to_pydatetime() - values.min().to_pydatetime()).days
        if span <= 14:
            axis["dtick"] = DAY_MS
    return axis


_HEX = re.compile(r"#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})")
_RGB = re.compile(r"rgba?\(\s*([\d.]+)\s*,\s*([\d.]+)\s*,\s*([\d.]+)")


def rgb(colour: str) -> tuple[float, float, float]:
    """``#rgb``, ``#rrggbb`` or ``rgb(r, g, b)`` as channels in 0..1."""
    text = colour.strip()
    match = _HEX.fullmatch(text)
    if match:
        digits = match.group(1)
        if len(digits) == 3:
            digits = "".join(c * 2 for c in digits)
        return tuple(int(digits[i:i + 2], 16) / 255 for i in (0, 2, 4))  # type: ignore[return-value]
    match = _RGB.match(text)
    if match:
        return tuple(float(v) / 255 for v in match.groups())  # type: ignore[return-value]
    raise ValueError(f"not a colour this module reads: {colour!r}")


def luminance(colour: str) -> float:
    """WCAG 2 relative luminance."""
    def channel(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (channel(c) for c in rgb(colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    """WCAG 2 contrast ratio of two colours (1 to 21)."""
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def text_on(background: str) -> str:
    """Black or white, whichever reads better on ``background`` (never under 4.5:1)."""
    dark, light = contrast(INK_DARK, background), contrast(INK_LIGHT, background)
    return INK_DARK if dark >= light else INK_LIGHT
