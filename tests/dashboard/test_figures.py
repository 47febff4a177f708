"""Figures are pure functions: data in, plotly figure out, no browser needed."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dashboard import figures


def test_histogram_skips_unscored_sessions_and_keeps_labels_aligned() -> None:
    scores = np.array([0.1, np.nan, 0.2, 5.0, np.nan])
    anomalous = np.array([False, True, False, True, False])
    fig = figures.score_histogram(scores, anomalous=anomalous, threshold=1.0)
    bars = [t for t in fig.data if t.type == "bar"]
    assert sum(sum(t.y) for t in bars) == 3  # the two NaN scores are left out
    labelled = [t for t in bars if "anomal" in (t.name or "") and "not" not in t.name]
    assert labelled and sum(labelled[0].y) == 1  # 5.0 is the one scored anomaly


def test_histogram_of_nothing_is_an_empty_figure() -> None:
    fig = figures.score_histogram(np.array([np.nan, np.nan]), anomalous=np.array([True, False]))
    assert not [t for t in fig.data if t.type == "bar"]


# -- labels are never cut (issue #24, item 6) -------------------------------------------------

LONG = "payment_method_add events in the session"
RUN = "amount_sum_last_24h_over_the_median_of_the_same_user_and_device"  # no spaces
HOSTILE = "<b>card</b> & 50% off_coupon_abuse_in_checkout"


def _strings(node: object):  # noqa: ANN202
    """Every string in a figure's spec (template left out), each line break removed and
    entities decoded (what the reader sees, on the axis or in the hover)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key != "template":
                yield from _strings(value)
    elif isinstance(node, list | tuple):
        for value in node:
            yield from _strings(value)
    elif isinstance(node, np.ndarray):
        for value in node.ravel().tolist():
            yield from _strings(value)
    elif isinstance(node, str):
        yield figures.unwrap(node)


def _shows_in_full(fig, *texts: str) -> None:  # noqa: ANN001
    seen = list(_strings(fig.to_plotly_json()))
    for text in texts:
        assert any(text in s for s in seen), f"{text!r} is not shown in full"
    assert not any("…" in s for s in seen), [s for s in seen if "…" in s]


def test_label_wraps_without_dropping_a_character() -> None:
    for text in (LONG, RUN, HOSTILE, "", "short", "a b", "x" * 100):
        wrapped = figures.label(text, 16)
        assert figures.unwrap(wrapped) == text
        assert "<b>" not in wrapped and "%" not in wrapped.replace("&#37;", "")
        assert all(len(line.rstrip()) <= 16 for line in figures.unwrap(
            wrapped.replace("<br>", "\n")).split("\n"))
    assert figures.label(LONG, 24) == "payment_method_add <br>events in the session"


def test_no_figure_cuts_a_long_label() -> None:
    from dashboard import figures_entity, figures_explain, figures_user

    names = [LONG, RUN, HOSTILE, "n_events"]
    shap = np.array([0.4, -0.3, 0.2, 0.01])
    _shows_in_full(figures_explain.shap_waterfall(names, shap, 0.1, 0.41), LONG, RUN, HOSTILE)
    _shows_in_full(figures_explain.shap_bars(pd.DataFrame({"feature": names, "shap": shap})),
                   LONG, RUN, HOSTILE)
    _shows_in_full(figures_explain.member_bars(pd.DataFrame(
        {"detector": [RUN, "zscore"], "contribution": [0.2, 0.1], "member_id": [HOSTILE, "m"]})),
        RUN, HOSTILE)
    _shows_in_full(figures.scenario_recall(pd.DataFrame(
        {"scenario": [LONG, RUN, HOSTILE], "recall": [0.1, 0.5, 1.0], "n": [3, 4, 5]})),
        LONG, RUN, HOSTILE)
    events = pd.DataFrame({"position": range(3), "event_type": [LONG, RUN, HOSTILE],
                           "ts": pd.date_range("2026-01-01", periods=3, freq="min"),
                           "amount": [None, 5.0, None], "session_id": ["s1"] * 3})
    values = np.array([0.1, -0.2, 0.3])
    for fig in (figures_explain.event_strip(events, values),
                figures_explain.event_strip(events, values, diverging=True),
                figures_explain.event_bars(events, values),
                figures_explain.attention_heatmap(np.ones((4, 4)) / 4, events)):
        _shows_in_full(fig, LONG, RUN, HOSTILE)
    days = pd.date_range("2026-01-01", periods=2, freq="D")
    _shows_in_full(figures_entity.volume_over_time(pd.DataFrame(
        {"day": days, "sessions": [1, 2], "users": [1, 1], "new_users": [0, 1]}), title=LONG),
        LONG)
    points = pd.DataFrame({"session_id": ["s1"], "start_ts": [days[0]], "end_ts": [days[0]],
                           "risk": [50.0], "flagged": [False], "decision": [None]})
    _shows_in_full(figures_user.timeline(events, points), LONG, RUN, HOSTILE)


def test_tables_behind_the_figures() -> None:
    table = figures.confusion_table(1, 2, 3, 4)
    assert table.set_index("outcome")["sessions"].to_dict() == {
        "caught": 1, "missed": 3, "false alarm": 2, "cleared": 4}
    points = figures.curve_table(np.arange(1000.0), np.zeros(1000), np.ones(1000),
                                 np.zeros(1000), max_rows=50)
    assert len(points) == 50 and points["threshold"].iloc[[0, -1]].tolist() == [0.0, 999.0]
    hist = figures.histogram_table(np.array([0.1, 0.2, np.nan, 0.9]),
                                   anomalous=np.array([False, True, True, True]), bins=2)
    assert hist["sessions"].sum() == 3 and hist["labelled anomalous"].sum() == 2


def test_day_axes_tick_once_a_day_only_over_a_short_parsable_span() -> None:
    import datetime as dt

    from dashboard.figure_theme import DAY_MS, day_axis

    assert day_axis(["2026-01-01", "2026-01-05"])["dtick"] == DAY_MS  # not at 12:00
    assert "dtick" not in day_axis(pd.date_range("2026-01-01", periods=60, freq="D"))
    # a day pandas cannot hold (year 9999): plotly spaces the ticks (one a day would not end)
    assert "dtick" not in day_axis([dt.date(2026, 1, 1), dt.date(9999, 1, 1)])
    assert "dtick" not in day_axis([dt.date(1700, 1, 1), dt.date(2260, 1, 1)])
