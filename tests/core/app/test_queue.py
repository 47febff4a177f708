"""core.app.queue: the work queue holds exactly the policy's flags, with statuses, ages, SLA
and agreement; its filters, sorts and saved views."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.app import cases, policy, queue
from core.app.alerts import newest_per_detector
from core.errors import ConfigError
from core.store import Store


def _queue() -> pd.DataFrame:
    """Four flagged sessions as ``work_queue`` returns them."""
    return pd.DataFrame({
        "session_id": ["s1", "s2", "s3", "s4"], "user_id": ["u1", "u1", "u2", "u3"],
        "country": ["DE", "FR", "DE", "FR"], "risk": [90.0, 99.0, 50.0, 70.0],
        "status": ["new", "in case", "decided", "snoozed"], "age_h": [1.0, 30.0, 5.0, 2.0],
        "sla": ["ok", "overdue", "due", "ok"], "n_agree": [0, 2, 1, 2],
        "amount": [10.0, 500.0, 60.0, 0.0],
    })


def _kept(view: queue.QueueView) -> list[str]:
    return queue.filter_queue(_queue(), view)["session_id"].tolist()


@pytest.mark.parametrize(("view", "kept"), [
    (queue.QueueView(), ["s1", "s2"]),  # decided and snoozed hidden by default
    (queue.QueueView(statuses=()), ["s1", "s2", "s3", "s4"]),
    (queue.QueueView(statuses=("decided", "snoozed")), ["s3", "s4"]),
    (queue.QueueView(statuses=(), sla=("overdue", "due")), ["s2", "s3"]),
    (queue.QueueView(statuses=(), countries=("DE",)), ["s1", "s3"]),
    (queue.QueueView(statuses=(), min_risk=70), ["s1", "s2", "s4"]),
    (queue.QueueView(statuses=(), min_agree=2), ["s2", "s4"]),
    (queue.QueueView(statuses=(), min_amount=50), ["s2", "s3"]),
])
def test_filters_narrow_as_named(view: queue.QueueView, kept: list[str]) -> None:
    assert _kept(view) == kept


@pytest.mark.parametrize(("sort", "first"), [
    ("risk", ["s2", "s1", "s4", "s3"]), ("oldest", ["s2", "s3", "s4", "s1"]),
    ("amount", ["s2", "s3", "s1", "s4"]), ("agreement", ["s2", "s4", "s3", "s1"]),
])
def test_sorts(sort: str, first: list[str]) -> None:
    assert queue.sort_queue(_queue(), sort)["session_id"].tolist() == first


def test_a_view_round_trips_through_its_params_and_survives_bad_ones() -> None:
    view = queue.QueueView(statuses=("new",), sla=("due",), countries=("DE",), min_risk=12.5,
                           min_agree=2, min_amount=3.0, sort="oldest")
    assert queue.QueueView.from_params(view.to_params()) == view
    odd = queue.QueueView.from_params({"statuses": ["new", "bogus"], "min_risk": "x",
                                       "sort": "nope", "extra": 1})
    assert odd == queue.QueueView(statuses=("new",))


def test_status_precedence_decided_then_snoozed_then_in_case() -> None:
    t, f = True, False
    got = queue.status_of(np.array([t, f, f, f, f]), np.array([f, t, f, f, f]),
                          np.array([t, f, t, t, f]), np.array([t, f, t, f, f]))
    assert got.tolist() == ["decided", "decided", "snoozed", "in case", "new"]


def test_sla_buckets_and_age_text() -> None:
    ages = np.array([0.5, queue.SLA_OK_HOURS - 0.01, queue.SLA_OK_HOURS, 23.9,
                     queue.SLA_DUE_HOURS, 72.0, np.nan])
    assert queue.sla_of(ages).tolist() == ["ok", "ok", "due", "due", "overdue", "overdue", ""]
    assert queue.age_text(ages) == ["30 min", "4 h", "4 h", "24 h", "24 h", "3 d", ""]


def test_agreement_counts_and_names_the_detectors_that_flag() -> None:
    table = pd.DataFrame({"score:a": [1.0, 0.0, 1.0], "score:b": [1.0, 1.0, 0.0]})

    def flags(frame: pd.DataFrame, m: str) -> np.ndarray:
        return frame[f"score:{m}"].to_numpy() > 0.5

    count, names = queue.agreement(table, ["a", "b"], {"a": flags, "b": flags}, ["A", "B"])
    assert count.tolist() == [2, 1, 1] and names == ["A, B", "B", "A"]
    assert queue.agreement(table, [], {}, [])[1] == ["", "", ""]


# --- on a real store ----------------------------------------------------------------------------
def _work_queue(store: Store, now: dt.datetime | None = None) -> pd.DataFrame:
    found = policy.in_force(store)
    assert found is not None
    models = store.models.scored()
    return queue.work_queue(store, found, model_ids=newest_per_detector(models),
                            detectors=dict(zip(models["model_id"], models["detector"],
                                               strict=True)), now=now)


def test_the_queue_holds_exactly_the_policys_flagged_sessions(demo_store_copy: Path) -> None:
    with Store.open(demo_store_copy) as store:
        found = policy.in_force(store)
        assert found is not None
        expected = set(policy.risk_table(store, found).query("flagged")["session_id"])
        got = _work_queue(store)
        assert set(got["session_id"]) == expected and len(got) == len(expected) > 0
        assert got["risk"].is_monotonic_decreasing
        # Publishing a stricter policy shrinks the queue to its flags, whatever detectors say.
        top = float(got["score"].iloc[1])
        policy.publish(store, analyst="admin", model_id=found.model_id,
                       thresholds={"all": top}, note="stricter")
        stricter = _work_queue(store)
        assert set(stricter["session_id"]) == set(got.loc[got["score"] >= top, "session_id"])


def test_statuses_on_a_real_store(demo_store_copy: Path) -> None:
    with Store.open(demo_store_copy) as store:
        # A policy that flags the top 5% of its model's scores: sessions of several users,
        # whatever the model's own default flags on this tiny store.
        found = policy.in_force(store)
        assert found is not None
        scores = store.scores.of_model(found.model_id)["score"].to_numpy(float)
        policy.publish(store, analyst="admin", model_id=found.model_id,
                       thresholds={"all": float(np.quantile(scores, 0.95))}, note="top 5%")
        start = _work_queue(store)
        assert set(start["status"]) == {"new"} and (start["n_detectors"] >= 1).all()
        picks = start.drop_duplicates("user_id").head(3)  # one case per user: three users
        assert len(picks) == 3, "the demo store must flag sessions of three users"
        s_case, s_decided, s_snoozed = (picks.iloc[i] for i in range(3))
        cases.open_case(store, analyst="ann", session_id=s_case["session_id"])
        other = cases.open_case(store, analyst="ann", session_id=s_decided["session_id"])
        cases.decide_cases(store, [other.case_id], "false_positive", analyst="ann", note="ok")
        cases.snooze(store, "user", str(s_snoozed["user_id"]), days=1, reason="QA",
                     analyst="ann")
        later = _work_queue(store).set_index("session_id")
        assert later.loc[s_case["session_id"], "status"] == "in case"
        assert later.loc[s_case["session_id"], "case_id"].startswith("C-")
        assert later.loc[s_decided["session_id"], "status"] == "decided"
        assert later.loc[s_snoozed["session_id"], "status"] == "snoozed"
        shown = queue.filter_queue(later.reset_index(), queue.QueueView())
        assert not {s_decided["session_id"], s_snoozed["session_id"]} & set(shown["session_id"])


def test_age_counts_from_when_the_policy_model_scored(demo_store_copy: Path) -> None:
    with Store.open(demo_store_copy, read_only=True) as store:
        scored_at = pd.Timestamp(_work_queue(store)["scored_at"].iloc[0])
        late = _work_queue(store, now=(scored_at + pd.Timedelta(hours=30)).to_pydatetime())
    assert late["age_h"].round(3).eq(30.0).all() and set(late["sla"]) == {"overdue"}
    assert set(late["age"]) == {"30 h"}


def test_saved_views_belong_to_an_analyst(demo_store_copy: Path) -> None:
    view = dataclasses.replace(queue.QueueView(), countries=("DE",), sort="oldest")
    with Store.open(demo_store_copy) as store:
        queue.save_view(store, "ann", "German, oldest", view)
        assert queue.saved_views(store, "ann") == {"German, oldest": view}
        assert queue.saved_views(store, "bob") == {}
        with pytest.raises(ConfigError, match="name"):
            queue.save_view(store, "", "x", view)
        queue.delete_view(store, "ann", "German, oldest")
        assert queue.saved_views(store, "ann") == {}


def test_ranked_offers_the_open_sessions_riskiest_first() -> None:
    frame = _queue().assign(agreeing=["A", "", "A, B", "B"])
    got = queue.ranked(frame)
    assert got["session_id"].tolist() == ["s2", "s1"]  # decided and snoozed are not offered
    assert got["flagged_by"].tolist() == ["risk 99", "risk 90; A"]
    assert queue.ranked(pd.DataFrame()).empty


def test_detector_scores_read_for_the_flagged_only_match_a_full_table(demo_store: Path
                                                                      ) -> None:
    from core import lookups

    with Store.open(demo_store, read_only=True) as store:
        found = policy.in_force(store)
        assert found is not None
        models = store.models.scored()
        ids = [m for m in newest_per_detector(models) if m != found.model_id]
        full = queue.work_queue(store, found, model_ids=ids,
                                table=lookups.score_table(store, [found.model_id, *ids]))
        lean = queue.work_queue(store, found, model_ids=ids)  # the policy's model alone
    assert ids and lean["session_id"].tolist() == full["session_id"].tolist()
    assert lean["n_agree"].tolist() == full["n_agree"].tolist()
    for m in ids:  # ties: the lean read counts only the scores strictly lower
        left, anyway = lean[f"pct:{m}"].to_numpy(), full[f"pct:{m}"].to_numpy()
        assert (np.isnan(left) == np.isnan(anyway)).all()
        assert (left[~np.isnan(left)] <= anyway[~np.isnan(anyway)] + 1e-9).all()
        assert np.allclose(left, anyway, atol=5, equal_nan=True)


def test_the_queue_read_from_candidates_equals_one_from_the_full_table(demo_store_copy: Path
                                                                       ) -> None:
    """The lean read (sessions at or above the lowest threshold) flags exactly what the
    policy flags on the whole score table, with segment thresholds and a daily budget."""
    from core import lookups

    with Store.open(demo_store_copy) as store:
        found = policy.in_force(store)
        assert found is not None
        table = lookups.score_table(store, [found.model_id])
        scores = table[f"score:{found.model_id}"]
        country = table["country"].value_counts().index[0]
        policy.publish(store, analyst="admin", model_id=found.model_id, daily_budget=3,
                       thresholds={"all": float(scores.quantile(0.9)),
                                   "tenure:new": float(scores.quantile(0.95)),
                                   f"country:{country}": float(scores.quantile(0.8))},
                       note="segments and a budget")
        stricter = policy.in_force(store)
        assert stricter.lowest_threshold() == pytest.approx(float(scores.quantile(0.8)))
        full = queue.work_queue(store, stricter, table=lookups.score_table(store, [
            found.model_id]))
        lean = queue.work_queue(store, stricter)
    expected = table.loc[stricter.flags(table), "session_id"]
    assert set(lean["session_id"]) == set(expected) and len(lean) == len(expected) > 0
    pd.testing.assert_frame_equal(lean.drop(columns=["age_h", "age"]),
                                  full.drop(columns=["age_h", "age"]), check_dtype=False)
