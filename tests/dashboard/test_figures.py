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


def _user_events() -> tuple[pd.DataFrame, pd.DataFrame]:
    ts = pd.to_datetime(["2026-01-01 10:00", "2026-01-01 10:02", "2026-01-03 09:00",
                         "2026-01-03 09:01"])
    events = pd.DataFrame({
        "ts": ts, "session_id": ["s1", "s1", "s2", "s2"],
        "event_type": ["login", "checkout", "login", "checkout"],
        "amount": [None, 20.0, None, 900.0], "device_id": ["d1", "d1", "d2", "d2"],
        "ip": ["1.1.1.1"] * 4, "country": ["DE"] * 4, "payment_id": [None, "c1", None, "c2"],
        "event_score": [0.1, 0.2, 0.3, 0.9],
    })
    sessions = pd.DataFrame({"session_id": ["s1", "s2"], "start_ts": ts[[0, 2]],
                             "end_ts": ts[[1, 3]]})
    return events, sessions


def test_user_timeline_bands_sessions_and_sizes_events_by_score() -> None:
    events, sessions = _user_events()
    fig = figures.user_timeline(events, sessions)
    assert [t.name for t in fig.data] == ["checkout", "login"]
    assert len(fig.layout.shapes) == 2  # one band per session
    checkout = fig.data[0]
    assert list(checkout.marker.size) == [6 + 18 * (0.2 - 0.1) / 0.8, 24.0]
    unscored = figures.user_timeline(events.drop(columns="event_score"), sessions)
    assert set(unscored.data[0].marker.size) == {9.0}


def test_entities_mark_first_use_after_the_first_event() -> None:
    events, _ = _user_events()
    fig = figures.entities_over_time(events)
    by_name = {t.name: t for t in fig.data}
    assert len(by_name["device"].x) == 4
    assert list(by_name["new device"].y) == ["device: d2"]  # d1 came with the first event
    assert list(by_name["new device"].x) == [pd.Timestamp("2026-01-03 09:00")]
    assert len(by_name["new ip"].x) == 0  # never a new one
    assert list(by_name["new payment"].y) == ["payment: c2"]


def test_linked_graph_draws_one_edge_per_account() -> None:
    linked = pd.DataFrame({"user_id": ["b", "c", "d"],
                           "shared": [["device:d1"], ["ip:1.1.1.1"], ["payment:c"]]})
    fig = figures.linked_graph("a", linked)
    edges, ring, centre = fig.data
    assert len(edges.x) == 9 and list(edges.x[2::3]) == [None] * 3
    assert list(ring.text) == ["b", "c", "d"] and list(centre.text) == ["a"]
    assert len(figures.linked_graph("a", linked.head(0)).data[1].x) == 0
