"""``dashboard.charts.chart`` draws the figure and, collapsed under it, the table behind it
(issue #24, item 6: a text alternative for every chart)."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from dashboard import charts


def _page() -> None:
    import pandas as pd
    import plotly.graph_objects as go
    import streamlit as st

    from dashboard import charts

    n = int(st.session_state.get("rows", 3))
    table = pd.DataFrame({"day": [f"2026-01-{i % 28 + 1:02d}" for i in range(n)],
                          "alerts": list(range(n)),
                          "event type": ["<b>payment_method_add</b> :red[x]"] * n})
    fig = go.Figure(go.Bar(x=table["day"], y=table["alerts"]), layout=dict(title="Alerts"))
    charts.chart(fig, table, key="alerts", caption="Alerts per day, red is for anomalies.",
                 max_rows=int(st.session_state.get("max_rows", 1000)))
    left, _ = st.columns(2)
    charts.chart(go.Figure(), pd.DataFrame(), key="empty", where=left)


def _run(**state: int) -> AppTest:
    at = AppTest.from_function(_page, default_timeout=30)
    for name, value in state.items():
        at.session_state[name] = value
    at.run()
    assert not at.exception, at.exception
    return at


def test_chart_draws_the_figure_and_a_collapsed_table_under_it() -> None:
    at = _run()
    assert [c.proto.id for c in at.get("plotly_chart")] and len(at.get("plotly_chart")) == 2
    expanders = at.expander
    assert [e.label for e in expanders] == [charts.TABLE_LABEL] * 2
    first = expanders[0]
    assert not first.proto.expanded  # collapsed until the reader opens it
    frames = first.dataframe
    assert len(frames) == 1
    shown = frames[0].value
    assert list(shown.columns) == ["day", "alerts", "event type"]
    assert shown["alerts"].tolist() == [0, 1, 2]
    # the cells are data, drawn as plain text (never markdown)
    assert shown["event type"].iloc[0] == "<b>payment_method_add</b> :red[x]"
    assert [c.value for c in at.caption][0] == "Alerts per day, red is for anomalies."
    # the empty table says so instead of drawing an empty grid
    assert not expanders[1].dataframe
    assert "No rows." in [c.value for c in expanders[1].caption]


def test_the_table_is_bounded_and_says_how_much_is_left_out() -> None:
    at = _run(rows=50, max_rows=20)
    table = at.expander[0].dataframe[0].value
    assert len(table) == 20
    assert table["alerts"].tolist() == list(range(20))
    notes = [c.value for c in at.expander[0].caption]
    assert any("first 20 of 50 rows" in n for n in notes), notes


def test_the_chart_has_a_text_name_and_its_text_is_restyled_for_contrast() -> None:
    at = _run()
    chart = at.get("plotly_chart")[0]
    assert chart.proto.alt == "Alerts"  # the figure's title is the chart's accessible name
    assert chart.proto.theme == "streamlit"  # drawn in the light or dark theme
    styles = [e for e in at.get("html")]
    assert styles and "currentColor" in styles[0].proto.body


def test_bounded_keeps_the_row_count() -> None:
    import pandas as pd

    rows, total = charts.bounded(pd.DataFrame({"a": range(5)}), 2)
    assert len(rows) == 2 and total == 5
    assert charts.bounded(None)[1] == 0


def test_the_accessible_name_is_the_title_as_plain_text() -> None:
    import plotly.graph_objects as go

    assert charts._title(go.Figure(layout=dict(title="Risk &amp; alerts<br>per day"))) == (
        "Risk & alerts per day")
    assert charts._title(go.Figure()) == ""
