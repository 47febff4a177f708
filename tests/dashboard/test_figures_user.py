"""The User 360 figures (dashboard/figures_user.py): the focus session banded and zoomed to
with a range selector, risk 0-100 not raw scores, colours by risk, rings by decision,
amounts with their currency, and text from the data escaped."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dashboard import figures_user as fu
from dashboard.figure_theme import contrast

T0 = pd.Timestamp("2026-05-01 10:00:00")


def _sessions() -> pd.DataFrame:
    return pd.DataFrame({
        "session_id": ["s1", "s2", "<b>s3</b>"],
        "start_ts": [T0, T0 + pd.Timedelta("2h"), T0 + pd.Timedelta("1D")],
        "end_ts": [T0 + pd.Timedelta("5min"), T0 + pd.Timedelta("2h10min"),
                   T0 + pd.Timedelta("1D1min")],
        "risk": [5.0, 97.0, np.nan], "flagged": [False, True, False],
        "decision": [None, "fraud", "not fraud"], "score": [0.1, 9.9, np.nan]})


def _events() -> pd.DataFrame:
    return pd.DataFrame({
        "ts": [T0, T0 + pd.Timedelta("1min"), T0 + pd.Timedelta("2h1min")],
        "event_type": ["login", "<i>view</i>", "purchase"],
        "session_id": ["s1", "s1", "s2"], "amount": [np.nan, np.nan, 12.5]})


def test_risk_colour_runs_blue_to_red_and_grey_without_risk() -> None:
    assert fu.risk_colour(0) == "#4C78A8" and fu.risk_colour(100) == "#E45756"
    assert fu.risk_colour(50) == "#A88A1F" and fu.risk_colour(None) == fu.NO_RISK
    assert fu.risk_colour(float("nan")) == fu.NO_RISK
    low, high = fu.risk_colour(20), fu.risk_colour(80)
    assert int(low[1:3], 16) < int(high[1:3], 16)  # redder as the risk rises
    # every risk's colour is a mark that reads on the light and the dark page (3:1)
    for risk in [*range(101), None]:
        for page in ("#FFFFFF", "#12151C"):
            assert contrast(fu.risk_colour(risk), page) >= 3.0, (risk, page)


def test_timeline_bands_the_focus_and_starts_zoomed_on_it_with_a_range_selector() -> None:
    window = (T0 + pd.Timedelta("90min"), T0 + pd.Timedelta("160min"))
    fig = fu.timeline(_events(), _sessions(), focus="s2", window=window)
    xaxis = fig.layout.xaxis
    assert [pd.Timestamp(x) for x in xaxis.range] == list(window)
    assert [b.label for b in xaxis.rangeselector.buttons] == ["1h", "1d", "1w", "1m", "all"]
    assert xaxis.rangeslider.visible
    band = fig.layout.shapes[0]
    assert pd.Timestamp(band.x0) == T0 + pd.Timedelta("2h") and band.fillcolor == fu.FOCUS_FILL
    assert band.line.color == fu.FOCUS
    assert any(a.text == "focus session" for a in fig.layout.annotations)
    sessions = [t for t in fig.data if t.name in {"flagged", "not flagged"}]
    flagged = next(t for t in sessions if t.name == "flagged")
    assert flagged.marker.symbol == "diamond"
    assert list(flagged.marker.color) == [fu.risk_colour(97.0)]
    assert all(set(t.y) == {fu.SESSIONS_ROW} for t in sessions)
    names = {t.name for t in fig.data}
    assert "<i>view</i>" not in names and "&lt;i&gt;view&lt;/i&gt;" in names
    text = fig.to_json()
    assert "<i>" not in text and "\\u003ci\\u003e" not in text and "<b>s3" not in text
    assert "\\u003cb\\u003es3" not in text and "&lt;b&gt;s3" in text
    # risk 97 in the hover, not the raw 9.9
    assert flagged.customdata[0][1] == "97"
    no_focus = fu.timeline(_events(), _sessions())
    assert no_focus.layout.xaxis.range is None and not no_focus.layout.shapes


def test_risk_over_time_marks_flagged_decided_and_focus() -> None:
    fig = fu.risk_over_time(_sessions(), focus="s1")
    names = [t.name for t in fig.data]
    assert {"flagged", "not flagged", "focus session", fu.DECISION_WORDS["fraud"],
            fu.DECISION_WORDS["not fraud"]} <= set(names)
    assert tuple(fig.layout.yaxis.range) == (-3, 105)
    ring = next(t for t in fig.data if t.name == fu.DECISION_WORDS["fraud"])
    assert list(ring.y) == [97.0] and ring.marker.color == fu.DECISION_COLOURS["fraud"]
    star = next(t for t in fig.data if t.name == "focus session")
    assert list(star.y) == [5.0] and star.marker.symbol == "star"
    buckets = pd.DataFrame({"start": [T0], "n_sessions": [3000], "max_risk": [88.0],
                            "n_flagged": [2], "n_decided": [0]})
    bucketed = fu.risk_over_time(_sessions(), buckets=buckets, bucket="day")
    assert bucketed.data[0].name == "highest risk per day"


def test_linked_graph_colours_by_risk_and_rings_by_decision() -> None:
    users = pd.DataFrame({
        "user_id": ["me", "a", "b", "<b>c</b>"], "max_risk": [90.0, 10.0, 95.0, np.nan],
        "decision": [None, "fraud", None, "not fraud"],
        "shared": [None, "device:d1", "ip:1.2.3.4", "device:d1"]})
    fig = fu.linked_graph(users, user_id="me")
    fraud = next(t for t in fig.data if t.name == fu.DECISION_WORDS["fraud"])
    assert list(fraud.marker.color) == [fu.risk_colour(10.0)]
    assert fraud.marker.line.color == fu.DECISION_COLOURS["fraud"]
    undecided = next(t for t in fig.data if t.name == fu.DECISION_WORDS[None])
    assert list(undecided.marker.color) == [fu.risk_colour(95.0)]
    cleared = next(t for t in fig.data if t.name == fu.DECISION_WORDS["not fraud"])
    assert list(cleared.marker.color) == [fu.NO_RISK] and "&lt;b&gt;c" in cleared.text[0]
    centre = next(t for t in fig.data if t.name == "this user (diamond)")
    assert list(centre.marker.color) == [fu.risk_colour(90.0)]
    assert sum(len(t.x) for t in fig.data if t.name in fu.DECISION_WORDS.values()) == 3
    assert any(getattr(t.marker, "showscale", False) for t in fig.data)  # the colour bar


def test_amounts_carry_their_currency() -> None:
    one = pd.DataFrame({"ts": [T0, T0], "currency": ["EUR", "EUR"], "amount": [1.0, 2.0]})
    fig = fu.amounts_over_time(one)
    assert fig.layout.title.text == "Amounts per session (EUR)" and "EUR" in \
        fig.data[0].hovertemplate
    unset = one.assign(currency="(currency not set)")
    assert fu.amounts_over_time(unset, per="day").layout.title.text == \
        "Amounts per day (currency not set)"
    two = pd.DataFrame({"ts": [T0, T0], "currency": ["EUR", "<USD>"], "amount": [1.0, 2.0]})
    fig = fu.amounts_over_time(two)
    assert {t.name for t in fig.data} == {"EUR", "&lt;USD&gt;"} and fig.layout.showlegend


def test_entities_over_time_caps_values_per_kind() -> None:
    events = pd.DataFrame({"ts": T0 + pd.to_timedelta(np.arange(100), unit="min"),
                           "device_id": [f"d{i}" for i in range(100)]})
    fig = fu.entities_over_time(events, per_kind=5)
    assert len(set(fig.data[0].y)) == 5
