"""A case decision reaches the Thresholds page's numbers by re-reading only the analysts'
labels: the ground truth and the sorted scores stay cached (issue #23's 1 s at 1M)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core import cases
from core.store import Store
from dashboard import services

BOTH = ("ground_truth", "analyst")


def _as_set(frame: pd.DataFrame) -> set[tuple]:
    return set(frame[["session_id", "is_anomaly", "scenario", "source"]]
               .itertuples(index=False, name=None))


def test_a_decision_moves_the_view_and_keeps_the_ground_truth_cached(
        demo_store_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANOMALYST_DB", str(demo_store_copy))
    key = services.key()
    model_id = services.policy(*key).model_id
    before = services.segment_view(*key, model_id, "all", BOTH)
    truth = services.labels(*key, ("ground_truth",))
    table = services.score_table(*key, (model_id,))
    scores = table[f"score:{model_id}"].to_numpy("float64")
    # the top-scored session labelled normal by the ground truth: a decision flips it
    normal = set(truth.loc[~truth["is_anomaly"].astype(bool), "session_id"])
    ranked = table.iloc[np.argsort(-np.nan_to_num(scores, nan=-np.inf))]
    session_id = next(s for s in ranked["session_id"] if s in normal)
    threshold = float(scores[table["session_id"].to_numpy() == session_id][0])
    with Store.open(demo_store_copy) as store:
        case = cases.open_case(store, analyst="ana", session_id=session_id)
        cases.decide_case(store, case.case_id, "fraud_confirmed", analyst="ana",
                          scenario="card_testing")
    key = services.key()  # the write changed the stamp
    after = services.segment_view(*key, model_id, "all", BOTH)
    assert after.table.at(threshold).tp == before.table.at(threshold).tp + 1
    assert after.table.at(threshold).fp == before.table.at(threshold).fp - 1
    assert services.labels(*key, ("ground_truth",)) is truth  # not re-read
    assert after.sorted_scores is before.sorted_scores  # not re-sorted
    with Store.open(demo_store_copy, read_only=True) as store:
        for sources in (BOTH, ("analyst",), ("ground_truth",)):
            assert _as_set(services.labels(*key, sources)) == \
                _as_set(store.labels.session_labels(sources))


def test_the_headline_counts_follow_ingests_not_decisions(demo_store_copy: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    import datetime as dt

    from core.ingest import ingest_events

    monkeypatch.setenv("ANOMALYST_DB", str(demo_store_copy))
    before = services.summary(*services.key())
    events = services._fresh(*services.key()).events
    with Store.open(demo_store_copy) as store:
        session_id = store.con.execute("SELECT session_id FROM sessions LIMIT 1").fetchone()[0]
        case = cases.open_case(store, analyst="ana", session_id=session_id)
        cases.decide_case(store, case.case_id, "false_positive", analyst="ana")
    assert services._fresh(*services.key()).events == events  # the headline is kept
    assert services.summary(*services.key()) == before
    stamp = dt.datetime(2026, 2, 1, 12)
    with Store.open(demo_store_copy) as store:
        ingest_events(store, pd.DataFrame({"user_id": ["new-user"], "ts": [stamp],
                                           "event_type": ["login"]}))
    after = services.summary(*services.key())
    assert after["n_events"] == before["n_events"] + 1
    assert after["n_users"] == before["n_users"] + 1
