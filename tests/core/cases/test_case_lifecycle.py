"""Case lifecycle: open, claim/assign, notes, decide (alone and in bulk), reopen, next case."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from _case_helpers import flagged_session

from core import cases, lookups
from core.cases.scoring import ScoreContext
from core.errors import ConfigError
from core.pipeline.operating_point import operating_point
from core.store import Store


def users_with_sessions(store: Store, n: int) -> list[str]:
    return store.sessions.meta()["user_id"].drop_duplicates().head(n).tolist()


def test_open_from_a_session_covers_that_session(store: Store) -> None:
    session_id = flagged_session(store)
    opened = cases.open_case(store, analyst="ana", session_id=session_id)
    owner = store.sessions.owner(session_id)
    assert (opened.case_id, opened.status, opened.user_id) == ("C-00001", "open", owner)
    assert opened.session_ids == (session_id,)
    assert opened.assignee is None and opened.decision is None and opened.snapshot is None


def test_open_from_a_user_takes_the_flagged_sessions_else_all(store: Store) -> None:
    context = ScoreContext.build(store)
    for user_id in users_with_sessions(store, 8):
        own = store.users.session_ids(user_id)
        expected = context.flagged(own) or own
        opened = cases.open_case(store, analyst="ana", user_id=user_id)
        assert sorted(opened.session_ids) == sorted(expected)


def test_the_policy_alone_decides_which_sessions_a_case_takes(store: Store) -> None:
    """Publish a policy on one model that flags exactly one session of a user: the case
    opened from that user holds that session, whatever the other models say."""
    from core.lookups import score_table
    from core.policy import publish_policy

    model_id = str(store.models.scored().iloc[0]["model_id"])
    table = score_table(store, [model_id])
    many = table.groupby("user_id")["session_id"].transform("size") > 1
    row = table[many].sort_values(f"score:{model_id}").iloc[-1]
    user_id, top = str(row["user_id"]), float(row[f"score:{model_id}"])
    publish_policy(store, analyst="ana", model_id=model_id, thresholds={"all": top})
    opened = cases.open_case(store, analyst="ana", user_id=user_id)
    assert opened.session_ids == (str(row["session_id"]),)


def test_a_second_open_for_the_same_user_adds_to_the_active_case(store: Store) -> None:
    user_id = users_with_sessions(store, 1)[0]
    own = store.users.session_ids(user_id)
    first = cases.open_case(store, analyst="ana", user_id=user_id, session_ids=own[:1])
    again = cases.open_case(store, analyst="bob", session_id=own[-1])
    assert again.case_id == first.case_id
    assert set(again.session_ids) == {own[0], own[-1]}
    actions = cases.audit_trail(store, first.case_id)["action"].tolist()
    assert actions == (["open", "add_sessions"] if len(own) > 1 else ["open"])


@pytest.mark.parametrize("kwargs", [{}, {"user_id": "u", "session_id": "s"},
                                    {"session_id": "no-such-session"},
                                    {"user_id": "no-such-user"}])
def test_open_refuses_bad_targets(store: Store, kwargs: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        cases.open_case(store, analyst="ana", **kwargs)
    assert cases.list_cases(store).empty


@pytest.mark.parametrize("name", ["", "   ", None])
def test_every_write_needs_an_analyst_name(store: Store, name: str | None) -> None:
    session_id = flagged_session(store)
    with pytest.raises(ConfigError, match="analyst name must be set"):
        cases.open_case(store, analyst=name, session_id=session_id)  # type: ignore[arg-type]
    opened = cases.open_case(store, analyst="ana", session_id=session_id)
    for write in (lambda: cases.claim_case(store, opened.case_id, analyst=name),
                  lambda: cases.add_note(store, opened.case_id, "x", analyst=name),
                  lambda: cases.decide_case(store, opened.case_id, "false_positive",
                                            analyst=name),
                  lambda: cases.snooze(store, "user", opened.user_id, days=1, reason="r",
                                       analyst=name)):
        with pytest.raises(ConfigError, match="analyst name must be set"):
            write()
    assert cases.audit_trail(store, opened.case_id)["action"].tolist() == ["open"]


def test_claim_assign_and_status(store: Store) -> None:
    opened = cases.open_case(store, analyst="ana", session_id=flagged_session(store))
    claimed = cases.claim_case(store, opened.case_id, analyst="bob")
    assert (claimed.status, claimed.assignee) == ("investigating", "bob")
    moved = cases.assign_case(store, opened.case_id, "cleo", analyst="bob")
    assert (moved.status, moved.assignee) == ("investigating", "cleo")
    cases.decide_case(store, opened.case_id, "false_positive", analyst="cleo")
    with pytest.raises(ConfigError, match="Reopen it first"):
        cases.claim_case(store, opened.case_id, analyst="bob")


def test_decide_writes_labels_and_freezes_the_snapshot(store: Store) -> None:
    session_id = flagged_session(store)
    opened = cases.open_case(store, analyst="ana", session_id=session_id)
    decided = cases.decide_case(store, opened.case_id, "fraud_confirmed", analyst="bob",
                                scenario="card_testing", note="three cards in a minute")
    assert (decided.status, decided.decision, decided.scenario, decided.decided_by) == (
        "closed", "fraud_confirmed", "card_testing", "bob")
    labels = store.cases.analyst_labels(opened.case_id)
    assert labels["session_id"].tolist() == [session_id]
    assert bool(labels["is_anomaly"].iloc[0]) and labels["scenario"].iloc[0] == "card_testing"
    snap = decided.snapshot
    assert snap is not None
    models = lookups.scored_models(store)
    assert [m["model_id"] for m in snap["models"]] == models["model_id"].tolist()
    assert [m["created_at"][:19] for m in snap["models"]] == [
        str(t)[:19].replace(" ", "T") for t in models["created_at"]]
    table = lookups.score_table(store, models["model_id"].tolist()).set_index("session_id")
    frozen = snap["sessions"][0]
    assert frozen["session_id"] == session_id
    for model_id, value in frozen["scores"].items():
        assert value["score"] == pytest.approx(table.loc[session_id, f"score:{model_id}"])
        assert value["percentile"] == pytest.approx(table.loc[session_id, f"pct:{model_id}"])
        assert snap["thresholds"][model_id]["default"] == pytest.approx(
            operating_point(store, model_id).threshold)
    first, last = store.summary.time_range()
    assert snap["data_time_range"]["first_event_at"] == first.isoformat()
    assert snap["data_time_range"]["last_event_at"] == last.isoformat()
    assert frozen["flagged"] is True  # flagged_session: the policy flags it
    assert snap["policy"]["version"] == 0 and snap["policy"]["model_id"] in frozen["scores"]
    assert 0 <= frozen["risk"] <= 100
    notes = cases.case_notes(store, opened.case_id)
    assert notes["text"].tolist() == ["three cards in a minute"]
    with pytest.raises(ConfigError, match="Reopen it first"):
        cases.decide_case(store, opened.case_id, "false_positive", analyst="bob")


def test_snapshot_stays_frozen_when_thresholds_move(store: Store) -> None:
    opened = cases.open_case(store, analyst="ana", session_id=flagged_session(store))
    before = cases.decide_case(store, opened.case_id, "false_positive", analyst="bob").snapshot
    model_id = before["models"][0]["model_id"]
    store.thresholds.save(model_id, "all", 1e9, set_by="t", set_at=dt.datetime(2026, 1, 1))
    assert cases.get_case(store, opened.case_id).snapshot == before
    assert before["thresholds"][model_id]["saved"] == {}


def test_decisions_map_to_labels_and_reopen_withdraws_them(store: Store) -> None:
    opened = cases.open_case(store, analyst="ana", session_id=flagged_session(store))
    cases.decide_case(store, opened.case_id, "false_positive", analyst="bob",
                      scenario="ignored for normal")
    labels = store.cases.analyst_labels(opened.case_id)
    assert labels["is_anomaly"].tolist() == [False] and labels["scenario"].tolist() == ["normal"]
    reopened = cases.reopen_case(store, opened.case_id, analyst="cleo", reason="new evidence")
    assert reopened.status == "open" and reopened.decision is None
    assert reopened.snapshot is None
    assert store.cases.analyst_labels(opened.case_id).empty
    reopen_row = cases.audit_trail(store, opened.case_id).iloc[-1]
    assert reopen_row["action"] == "reopen" and reopen_row["actor"] == "cleo"
    assert reopen_row["detail"]["previous_decision"] == "false_positive"
    assert reopen_row["detail"]["labels_removed"] == list(opened.session_ids)
    assert reopen_row["detail"]["previous_snapshot"]["sessions"]
    cases.decide_case(store, opened.case_id, "inconclusive", analyst="cleo")
    assert store.cases.analyst_labels(opened.case_id).empty
    with pytest.raises(ConfigError, match="must be closed"):
        cases.reopen_case(store, cases.open_case(
            store, analyst="a", user_id=users_with_sessions(store, 3)[-1]).case_id, analyst="a")


def test_bulk_decide_is_all_or_nothing(store: Store) -> None:
    ids = [cases.open_case(store, analyst="ana", user_id=u).case_id
           for u in users_with_sessions(store, 3)]
    done = cases.decide_cases(store, ids[:2], "fraud_confirmed", analyst="bob",
                              scenario="coupon_abuse")
    assert [c.status for c in done] == ["closed", "closed"]
    assert all(cases.audit_trail(store, i)["detail"].iloc[-1]["bulk"] for i in ids[:2])
    with pytest.raises(ConfigError, match="Reopen it first"):
        cases.decide_cases(store, [ids[2], ids[0]], "false_positive", analyst="bob")
    assert cases.get_case(store, ids[2]).status == "open"  # nothing of the batch landed


def test_next_case_claims_the_oldest_open_unassigned_case(store: Store) -> None:
    ids = [cases.open_case(store, analyst="ana", user_id=u).case_id
           for u in users_with_sessions(store, 3)]
    cases.claim_case(store, ids[0], analyst="zoe")
    first = cases.next_case(store, analyst="bob")
    second = cases.next_case(store, analyst="cleo")
    assert (first.case_id, first.assignee, first.status) == (ids[1], "bob", "investigating")
    assert (second.case_id, second.assignee) == (ids[2], "cleo")
    assert cases.next_case(store, analyst="dan") is None
    mine = cases.list_cases(store, ("investigating",), assignee="bob")
    assert mine["case_id"].tolist() == [ids[1]]


def test_notes_and_their_limits(store: Store) -> None:
    opened = cases.open_case(store, analyst="ana", session_id=flagged_session(store))
    first = cases.add_note(store, opened.case_id, "first look", analyst="ana")
    second = cases.add_note(store, opened.case_id, "second look", analyst="bob")
    assert second > first
    frame = cases.case_notes(store, opened.case_id)
    assert frame[["author", "text"]].values.tolist() == [["ana", "first look"],
                                                         ["bob", "second look"]]
    with pytest.raises(ConfigError, match="note must not be empty"):
        cases.add_note(store, opened.case_id, "  ", analyst="ana")
    with pytest.raises(ConfigError, match="case id must name an existing case"):
        cases.add_note(store, "C-99999", "x", analyst="ana")
    assert cases.list_cases(store)["n_notes"].tolist() == [2]
    assert json.loads(json.dumps(opened.to_dict()))["case_id"] == opened.case_id


def test_a_session_keeps_the_latest_decision_across_its_cases(store: Store) -> None:
    """Decide C1 fraud on s, then C2 false positive on s, then reopen C2: s is fraud again
    (C1's decision), not unlabelled."""
    session_id = flagged_session(store)

    def analyst_label() -> tuple[bool, str] | None:
        labels = lookups.session_labels(store, ["analyst"]).set_index("session_id")
        if session_id not in labels.index:
            return None
        row = labels.loc[session_id]
        return bool(row["is_anomaly"]), str(row["scenario"])

    first = cases.open_case(store, analyst="ana", session_id=session_id)
    cases.decide_case(store, first.case_id, "fraud_confirmed", analyst="ana",
                      scenario="card_testing")
    assert analyst_label() == (True, "card_testing")
    second = cases.open_case(store, analyst="bob", session_id=session_id)
    assert second.case_id != first.case_id
    cases.decide_case(store, second.case_id, "false_positive", analyst="bob")
    assert analyst_label() == (False, "normal")  # the latest decision wins
    cases.reopen_case(store, second.case_id, analyst="bob")
    assert analyst_label() == (True, "card_testing")
    assert cases.get_case(store, first.case_id).decision == "fraud_confirmed"
    cases.decide_case(store, second.case_id, "inconclusive", analyst="bob")
    assert analyst_label() == (True, "card_testing")  # inconclusive adds no label
    cases.reopen_case(store, first.case_id, analyst="ana")
    assert analyst_label() is None
