"""Plain-language reasons: numbers, the user's own baseline, the population's typical value."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from core.explain import explain_session
from core.explain.context import Reference, decode, describe, format_value
from core.explain.reasons import event_reasons, feature_reasons, feature_sentence
from core.store import Store


def reference() -> Reference:
    names = ("n_payment_failed_log", "is_new_device", "share[view]", "hour_sin", "hour_cos",
             "gap_mean_log")
    session = np.array([np.log1p(7), 1.0, 0.25, 1.0, 0.0, np.log1p(0.4)])
    user = np.array([[0.0, 0.0, 0.8, 0.0, 1.0, np.log1p(20)],
                     [np.log1p(1), 1.0, 0.6, 0.0, 1.0, np.log1p(30)]])
    population = np.array([[0.0, 0.0, 0.5, 0.0, -1.0, np.log1p(15)]] * 3)
    return Reference(names, session, user, population, user_span_days=90.0, duration_s=180.0)


def test_decoding_and_formatting() -> None:
    assert decode("count", np.log1p([0.0, 7.0])).round(6).tolist() == [0.0, 7.0]
    assert decode("amount", np.sign([-3.0]) * np.log1p([3.0])).round(6).tolist() == [-3.0]
    assert format_value("share", 0.834) == "83%" and format_value("flag", 1.0) == "yes"
    assert format_value("seconds", 95.0) == "2 min" and format_value("count", 7.0) == "7"
    assert describe("count_log[payment_failed]") == ("count", "payment_failed events")
    assert describe("share[view]") == ("share", "of events are view")


def test_sentences_carry_the_numbers_and_both_baselines() -> None:
    ref = reference()
    context = ref.table(["n_payment_failed_log", "is_new_device", "share[view]", "hour_cos",
                         "gap_mean_log"],
                        {"n_payment_failed_log": 3.0, "is_new_device": 1.0, "share[view]": 0.5,
                         "hour_cos": 0.2, "gap_mean_log": -1.0})
    assert len(context) == 5 and context.iloc[3]["session_value"] == 6.0  # 06:00 from sin/cos
    sentences = feature_reasons(context, duration_s=ref.duration_s,
                                user_span_days=ref.user_span_days, k=10)
    assert sentences[0] == ("7 failed payments in 3 min (this user: 1 in 2 other sessions over "
                            "90 days; typical session: 0)")
    assert sentences[1] == ("Session on a device this user never used before (this user: 1 of "
                            "2 other sessions; 0% of all sessions)")
    assert sentences[2] == ("25% of events are view (this user usually: 70%, over 2 other "
                            "sessions; typical session: 50%)")
    assert sentences[3].startswith("Started at 06:00 UTC (this user usually: 00:00 UTC")
    assert len(sentences) == 4  # gap_mean_log lowers the score: not a reason


def test_a_user_without_history_is_said_so() -> None:
    row = {"feature": "n_devices_log", "meaning": "devices", "kind": "distinct",
           "session_value": 3.0, "user_value": float("nan"), "user_total": float("nan"),
           "user_sessions": 0, "population_value": 1.0}
    assert feature_sentence(row, duration_s=60, user_span_days=float("nan")) == (
        "3 devices (this user has no other sessions; typical session: 1)")


def test_event_reasons_name_the_event_and_the_score_drop() -> None:
    events = pd.DataFrame({"position": [0, 1, 2], "event_type": ["login", "payment_failed",
                                                                 "payment_failed"],
                           "ts": pd.to_datetime(["2026-09-01 10:00:00", "2026-09-01 10:00:05",
                                                 "2026-09-01 10:00:09"]),
                           "amount": [None, 1.0, 2.0]})
    out = event_reasons(events, {"occlusion": np.array([-0.1, 0.8, 0.5]),
                                 "reconstruction_error": np.array([1.0, 6.0, 2.0])}, score=2.0)
    assert out[0] == ("Event 2 of 3 (payment_failed at 10:00:05, amount 1.00) raises the score "
                      "most: without it the score falls from 2 to 1.2 (40% of it).")
    assert out[1] == "The 2 events that raise the score most: 2× payment_failed."
    assert "error 6, 3.0× the session's median event" in out[2]


def test_reasons_of_real_explanations_hold_numbers_and_the_user_baseline(
        store: Store, model_of: dict[str, str]) -> None:
    sessions = store.sessions.meta()
    per_user = sessions.groupby("user_id")["session_id"].transform("size")
    session = sessions.loc[per_user >= 3, "session_id"].iloc[-1]  # a user with history
    for name in ("zscore", "sequence_autoencoder"):
        why = explain_session(store, session, model_id=model_of[name], use_cache=False)
        with_baseline = [r for r in why.reasons if "this user:" in r or "this user usually" in r]
        assert with_baseline, (name, why.reasons)
        assert all(re.search(r"\d", r) for r in why.reasons)
        assert all("typical session" in r or "of all sessions" in r for r in with_baseline)
        assert (why.context["user_sessions"] >= 2).all()
