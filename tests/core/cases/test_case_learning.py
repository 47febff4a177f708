"""Decisions become analyst labels that evaluation and the learning-effect panel use at once."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest

from core import cases
from core.cases.scoring import ScoreContext
from core.evaluate import ThresholdTable
from core.pipeline import evaluate_models, labelled_scores
from core.store import Store
from core.store.label_rollup import refresh_session_labels


def newest_model(store: Store) -> str:
    models = store.models.scored().sort_values("created_at")
    return str(models["model_id"].iloc[-1])


def test_decisions_flow_into_evaluation(store: Store) -> None:
    users = store.sessions.meta()["user_id"].drop_duplicates().head(2).tolist()
    fraud = cases.open_case(store, analyst="ana", user_id=users[0])
    normal = cases.open_case(store, analyst="ana", user_id=users[1])
    assert all(r["n_sessions"] == 0 for r in evaluate_models(
        store, sources=("analyst",), session_ids=list(fraud.session_ids + normal.session_ids)))
    cases.decide_case(store, fraud.case_id, "fraud_confirmed", analyst="bob",
                      scenario="refund_abuse")
    cases.decide_case(store, normal.case_id, "false_positive", analyst="bob")
    decided = list(fraud.session_ids + normal.session_ids)
    results = evaluate_models(store, sources=("analyst",), session_ids=decided)
    assert results
    for entry in results:
        assert entry["n_sessions"] == len(decided)
        assert entry["n_anomalous"] == len(fraud.session_ids)
        assert "roc_auc" in entry
    frame = labelled_scores(store, newest_model(store), ("analyst",))
    known = frame[frame["is_anomaly"].notna()].set_index("session_id")
    assert set(known.index) == set(decided)
    assert (known.loc[list(fraud.session_ids), "scenario"] == "refund_abuse").all()


def test_analyst_overrides_ground_truth(store: Store) -> None:
    gt = store.labels.session_labels(["ground_truth"])
    target = gt[gt["is_anomaly"]].iloc[0]
    opened = cases.open_case(store, analyst="ana", session_id=target["session_id"])
    cases.decide_case(store, opened.case_id, "false_positive", analyst="bob")
    both = store.labels.session_labels(["ground_truth", "analyst"])
    row = both[both["session_id"] == target["session_id"]].iloc[0]
    assert (bool(row["is_anomaly"]), row["source"]) == (False, "analyst")


def test_learning_effect_moves_after_a_decision(store: Store) -> None:
    # A session a model flags and the ground truth calls anomalous, judged a false positive by
    # the analyst: precision with analysts must drop (one true positive becomes a false one).
    context = ScoreContext.build(store)
    gt = store.labels.session_labels(["ground_truth"])
    anomalous = gt[gt["is_anomaly"]]["session_id"]
    model_id, candidates = "", []
    for model_id in context.model_ids:
        candidates = sorted(set(context.above_threshold(anomalous, model_id)))
        if candidates:
            break
    assert candidates, "the demo store must have a flagged, truly anomalous session"
    before = cases.learning_effect(store, model_id)
    assert before.n_analyst_labels == 0
    assert before.n_labelled_ground_truth == before.n_labelled_with_analysts
    assert before.precision_ground_truth == pytest.approx(before.precision_with_analysts)
    opened = cases.open_case(store, analyst="ana", session_id=candidates[0])
    cases.decide_case(store, opened.case_id, "false_positive", analyst="bob")
    after = cases.learning_effect(store, model_id)
    assert after.n_analyst_labels == 1 == cases.analyst_label_count(store)
    assert after.threshold == before.threshold
    frame = labelled_scores(store, model_id, ("ground_truth", "analyst"))
    known = frame[frame["is_anomaly"].notna()]
    expected = ThresholdTable.from_scores(known["score"].to_numpy(np.float64),
                                          known["is_anomaly"].astype(bool)).at(after.threshold)
    assert after.precision_with_analysts == pytest.approx(expected.precision)
    assert after.precision_with_analysts < before.precision_ground_truth
    assert after.precision_ground_truth == pytest.approx(before.precision_ground_truth)
    assert after.to_dict()["n_added"] == after.n_added == 0


def test_learning_effect_counts_newly_labelled_sessions(store: Store) -> None:
    model_id = newest_model(store)
    # Every demo session carries ground truth; forget one session's to make room for growth.
    fresh = str(store.sessions.meta()["session_id"].iloc[0])
    store.con.execute("DELETE FROM labels WHERE source = 'ground_truth' AND (entity_id = ? OR "
                      "entity_id IN (SELECT event_id FROM events WHERE session_id = ?))",
                      [fresh, fresh])
    refresh_session_labels(store, ["ground_truth"])  # the raw DELETE bypassed the writers
    base = cases.learning_effect(store, model_id)
    opened = cases.open_case(store, analyst="ana", session_id=fresh)
    cases.decide_case(store, opened.case_id, "fraud_confirmed", analyst="bob")
    effect = cases.learning_effect(store, model_id)
    assert base.n_added == 0 and effect.n_added == 1
    assert effect.n_labelled_with_analysts == base.n_labelled_ground_truth + 1
    assert not math.isnan(effect.threshold)


def test_learning_effect_honours_a_segment_threshold(store: Store) -> None:
    # A threshold saved for one country applies to that country's sessions (it used to read
    # segment "all" alone): raising it out of reach removes exactly their alerts.
    model_id = newest_model(store)
    before = cases.learning_effect(store, model_id)
    frame = labelled_scores(store, model_id, ("ground_truth",))
    known = frame[frame["is_anomaly"].notna()]
    country = store.scores.segments().set_index("session_id").loc[known["session_id"],
                                                                  "country"].to_numpy()
    flagged = known["score"].to_numpy(np.float64) >= before.threshold
    busiest = max(set(country[flagged]), key=lambda c: int((country[flagged] == c).sum()))
    store.thresholds.save(model_id, f"country:{busiest}", 1e9, set_by="t",
                          set_at=dt.datetime(2026, 1, 1))
    after = cases.learning_effect(store, model_id)
    assert after.threshold == before.threshold  # segment "all" is untouched
    assert after.n_alerts_ground_truth == before.n_alerts_ground_truth - int(
        (country[flagged] == busiest).sum())
    assert after.n_alerts_ground_truth < before.n_alerts_ground_truth
