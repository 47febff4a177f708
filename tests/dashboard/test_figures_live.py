"""The Live page's figures: pure functions, data in, figure out."""

from __future__ import annotations

import numpy as np

from dashboard.figures_live import drift_table, risk_drift


def test_drift_table_gives_each_side_shares_of_its_own_sessions() -> None:
    table = drift_table(np.array([5.0, 95.0, np.nan]), np.array([1.0, 2.0, 3.0, 99.0]))
    assert table["recent"].sum() == 1.0 and table["training"].sum() == 1.0
    assert table.loc[table["risk"] == "90–100", "training"].item() == 0.25


def test_risk_drift_keeps_a_small_tail_visible_on_a_log_axis() -> None:
    training = np.r_[np.full(990, 2.0), np.full(10, 97.0)]  # a 1% tail beside 99% at risk 2
    fig = risk_drift(np.array([97.0, 3.0]), training, window_label="last hour")
    assert fig.layout.yaxis.type == "log" and fig.layout.yaxis.dtick == "D2"  # 1-2-5 ticks
    line = fig.data[1]
    assert line.y[-1] == 0.01 and line.y[0] == 0.99
    assert line.y[5] is None  # an empty bin is a gap, not a point at 0 (log 0 is undefined)
    assert "2 sessions" in fig.data[0].name
