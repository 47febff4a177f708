"""One way to draw a chart: the plotly figure, and under it, collapsed, the table behind it
(issue #24, item 6: a text alternative for people who cannot read the chart, and for anyone
who wants the numbers).

``chart(fig, table, key=...)`` draws ``st.plotly_chart`` (theme="streamlit", so the figure
follows the light or dark theme) and an expander "Table behind this chart" holding
``st.dataframe(table, hide_index=True)``, bounded to ``max_rows`` rows. The table is drawn as
plain cells (never markdown), so ids and event types from the data are safe in it. Pass
``where=`` a column or container to draw inside it.
"""

from __future__ import annotations

import html
import re
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
import streamlit as st

from dashboard import safe_text as safe

# Plotly encodes figures with orjson whenever it is installed (the scoring service needs it),
# and that path turns datetime64 values into Python datetimes, which stop at year 9999: a
# store holding a far-off timestamp then broke the User page. The standard library engine
# writes them as text, as before orjson was installed (tests/core/test_stored_timestamps.py).
pio.json.config.default_engine = "json"

TABLE_LABEL = "Table behind this chart"
MAX_ROWS = 1000
# Streamlit's plotly theme draws tick labels, axis titles, legends and annotations in a grey
# (#808495 on white: 3.8:1, under WCAG's 4.5:1 for text). These rules draw them in the theme's
# text colour instead (``currentColor``: the app's textColor, light or dark, whichever the
# reader has), which tests/dashboard/test_chart_contrast.py checks against the backgrounds.
# Text inside heatmap cells is left alone: figures give it its own colour (figure_theme.py).
_SCOPE = '[data-testid="stPlotlyChart"] .main-svg'
TEXT_SELECTORS = (".xtick text", ".ytick text", "[class*='tick'] > text", ".xtitle", ".ytitle",
                  ".gtitle", ".legendtext", ".legendtitletext", ".annotation-text",
                  ".colorbar text", ".hoverlayer .hovertext text", ".hoverlayer .axistext text")
_TAGS = re.compile(r"<[^>]*>")
CSS = ("<style>" + ", ".join(f"{_SCOPE} {sel}" for sel in TEXT_SELECTORS)
       + " { fill: currentColor !important; }</style>")


def _title(fig: go.Figure) -> str:
    """The figure's title as plain text (line breaks as spaces, entities decoded)."""
    try:
        text = str(fig.layout.title.text or "")
    except (AttributeError, ValueError):
        return ""
    return " ".join(html.unescape(_TAGS.sub(" ", text)).split())


def bounded(table: pd.DataFrame | None, max_rows: int = MAX_ROWS) -> tuple[pd.DataFrame, int]:
    """(the first ``max_rows`` rows of ``table``, its full row count)."""
    if table is None:
        return pd.DataFrame(), 0
    frame = table if isinstance(table, pd.DataFrame) else pd.DataFrame(table)
    return frame.head(max(0, int(max_rows))), len(frame)


def chart(fig: go.Figure, table: pd.DataFrame | None, *, key: str,
          caption: str | safe.Markdown | None = None, max_rows: int = MAX_ROWS,
          where: Any = None, alt: str | None = None) -> None:
    """Draw ``fig`` and, collapsed under it, the table it was drawn from.

    ``caption`` (optional) goes under the chart: a :class:`safe_text.Markdown` keeps its
    formatting, any other string is drawn as plain prose (or a literal code span when it holds
    markdown). ``alt`` (default: the figure's title) is the chart's accessible name.
    """
    target = st if where is None else where
    st.html(CSS)  # style only: goes to the event container, takes no space
    label = alt if alt is not None else _title(fig)
    if label:
        target.plotly_chart(fig, key=key, alt=label)
    else:
        target.plotly_chart(fig, key=key)
    if caption:
        shown = caption if isinstance(caption, safe.Markdown) else safe.prose(caption)
        target.caption(safe.fmt("{text}", text=shown))
    rows, total = bounded(table, max_rows)
    with target.expander("Table behind this chart", expanded=False):
        if total == 0:
            st.caption("No rows.")
            return
        st.dataframe(rows, hide_index=True, key=f"{key}__table")
        if total > len(rows):
            st.caption(safe.fmt("Showing the first {shown:,} of {total:,} rows.",
                                shown=len(rows), total=total))
