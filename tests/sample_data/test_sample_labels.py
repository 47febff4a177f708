from __future__ import annotations

import numpy as np
import pandas as pd

from sample_data import SCENARIOS, GeneratedData, GeneratorConfig, generate


def _level(data: GeneratedData, level: str) -> pd.DataFrame:
    labels = data.labels
    return labels[labels["level"] == level]


def test_labels_reference_existing_ids(small: GeneratedData) -> None:
    events = small.events
    for level, column in (("event", "event_id"), ("session", "session_id"), ("user", "user_id")):
        ids = _level(small, level)["entity_id"]
        assert ids.is_unique, level
        assert ids.isin(events[column]).all(), level


def test_every_session_and_user_is_labelled(small: GeneratedData) -> None:
    assert set(_level(small, "session")["entity_id"]) == set(small.events["session_id"])
    assert set(_level(small, "user")["entity_id"]) == set(small.events["user_id"])


def test_event_labels_cover_exactly_the_anomalous_sessions(
    rated: GeneratedData, rated_events: pd.DataFrame
) -> None:
    events = rated_events
    in_anomalous = events[events["scenario"] != "normal"]
    labelled = _level(rated, "event").set_index("entity_id")
    assert set(labelled.index) == set(in_anomalous["event_id"])
    flagged = labelled.loc[in_anomalous["event_id"], "scenario"].to_numpy()
    # Injected events carry their session's scenario; benign ones in those sessions are normal.
    assert set(np.unique(flagged)) == {"normal", *SCENARIOS}
    same = flagged == in_anomalous["scenario"].to_numpy()
    assert ((flagged == "normal") | same).all()
    assert 0.3 < labelled["is_anomaly"].mean() < 0.98


def test_user_is_anomalous_iff_one_of_its_sessions_is(
    rated: GeneratedData, rated_events: pd.DataFrame
) -> None:
    events = rated_events
    bad_users = set(events.loc[events["scenario"] != "normal", "user_id"])
    users = _level(rated, "user").set_index("entity_id")["is_anomaly"]
    assert set(users[users].index) == bad_users


def test_every_scenario_at_the_requested_rate(rated: GeneratedData) -> None:
    sessions = _level(rated, "session")
    rate = rated.config.anomaly_rate
    assert abs(sessions["is_anomaly"].mean() - rate) < 0.002
    per = sessions.loc[sessions["is_anomaly"], "scenario"].value_counts()
    assert set(per.index) == set(SCENARIOS)
    expected = rate * len(sessions) / len(SCENARIOS)
    assert ((per - expected).abs() <= 1.5).all(), per.to_dict()


def test_anomaly_rate_parameter_is_respected() -> None:
    for rate in (0.0, 0.01, 0.1):
        data = generate(GeneratorConfig(users=400, days=7, seed=2, anomaly_rate=rate))
        sessions = _level(data, "session")
        assert abs(sessions["is_anomaly"].mean() - rate) < 0.005 + (rate == 0.01) * 0.01, rate
    quiet = generate(GeneratorConfig(users=200, days=5, anomaly_rate=0.0))
    assert not quiet.labels["is_anomaly"].any()


def test_scenario_subset() -> None:
    data = generate(GeneratorConfig(users=300, days=7, scenarios=("card_testing",),
                                    anomaly_rate=0.05))
    assert set(data.labels["scenario"]) == {"normal", "card_testing"}
