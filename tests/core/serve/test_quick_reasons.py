"""Quick live reasons name the most unusual features in plain words."""

from __future__ import annotations

import numpy as np

from core.serve.quick_reasons import quick_reasons


def test_the_furthest_features_are_named_one_per_topic() -> None:
    names = ["n_payment_failed_log", "count_log[payment_failed]", "amount_max_log",
             "text_emb_0", "hour_sin", "n_events_log"]
    centre = np.zeros(len(names))
    scale = np.ones(len(names))
    row = np.array([np.log1p(20), np.log1p(20), 0.5, 9.0, 8.0, np.log1p(40)])
    reasons = quick_reasons(names, row, centre, scale)
    assert reasons[0] == "events: 40 (typical 0)"
    assert reasons[1] == "failed payments: 20 (typical 0)"
    assert not any("topic coordinate" in r for r in reasons)  # embeddings are not reasons
    assert sum("payment" in r for r in reasons) == 1  # one reason per topic
    assert all("(typical" in r for r in reasons)
    assert len(reasons) == 2  # the amount is within 2 scales of typical: not named


def test_a_share_reads_as_a_sentence() -> None:
    reasons = quick_reasons(["share[payment_failed]"], np.array([1.0]), np.zeros(1),
                            np.full(1, 0.1))
    assert reasons == ("100% of events are payment_failed (typical 0%)",)


def test_nothing_unusual_gives_no_reasons() -> None:
    names = ["n_events_log", "amount_max_log"]
    assert quick_reasons(names, np.array([1.0, 1.0]), np.ones(2), np.ones(2)) == ()
