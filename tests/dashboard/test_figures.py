"""Figures are pure functions: data in, plotly figure out, no browser needed."""

from __future__ import annotations

import numpy as np

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
