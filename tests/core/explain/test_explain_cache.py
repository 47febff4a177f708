"""The explanations cache, and the ensemble path (member contributions + strongest feature
member), on a private copy of the demo store."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

import core.explain as explain_pkg
from core.errors import ConfigError
from core.explain import explain_session
from core.explain.explanation import SessionExplanation
from core.store import Store


def newest(store: Store) -> dict[str, str]:
    frame = store.models.listing()
    return dict(zip(frame["detector"], frame["model_id"], strict=True))


def top_session(store: Store, model_id: str) -> str:
    scores = store.scores.of_model(model_id)
    return str(scores.sort_values("score")["session_id"].iloc[-1])


def test_cache_hit_returns_the_stored_payload_without_recomputing(
        demo_store_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Store.open(demo_store_copy) as store:
        model_id = newest(store)["sequence_autoencoder"]
        session = top_session(store, model_id)
        first = explain_session(store, session, model_id=model_id)
        assert not first.from_cache
        stored = store.explanations.cached(model_id, session)
        assert set(stored) == {"summary", "occlusion", "reconstruction_error"}

        def no_compute(*args, **kwargs):  # noqa: ANN002, ANN003
            raise AssertionError("a cache hit must not recompute")

        monkeypatch.setattr(explain_pkg, "compute", no_compute)
        second = explain_session(store, session, model_id=model_id)
        assert second.from_cache
        assert second.reasons == stored["summary"]["reasons"] == first.reasons
        assert second.event_contributions["occlusion"].tolist() == pytest.approx(
            stored["occlusion"]["values"])
        same = {k: v for k, v in first.to_dict().items() if k != "from_cache"}
        assert {k: v for k, v in second.to_dict().items() if k != "from_cache"} == same
        # A new score (the model was re-scored) makes the cached explanation stale.
        store.con.execute("UPDATE scores SET score = score + 1 WHERE model_id = ? AND "
                          "session_id = ?", [model_id, session])
        with pytest.raises(AssertionError, match="must not recompute"):
            explain_session(store, session, model_id=model_id)
        monkeypatch.undo()
        fresh = explain_session(store, session, model_id=model_id, use_cache=False)
        assert not fresh.from_cache and fresh.score == pytest.approx(first.score + 1)


def test_read_only_store_computes_but_does_not_write(demo_store_copy: Path) -> None:
    with Store.open(demo_store_copy, read_only=True) as store:
        model_id = newest(store)["zscore"]
        session = top_session(store, model_id)
        why = explain_session(store, session)  # model picked: the one ranking it highest
        assert not why.from_cache and why.percentile == pytest.approx(100.0)
        assert store.explanations.cached_count(why.model_id) == 0
    round_trip = SessionExplanation.from_dict(json.loads(json.dumps(why.to_dict())))
    assert round_trip.features.names == why.features.names
    assert round_trip.context["feature"].tolist() == why.context["feature"].tolist()
    assert round_trip.context["session_value"].tolist() == pytest.approx(
        why.context["session_value"].tolist(), nan_ok=True)
    assert round_trip.features.shap.tolist() == pytest.approx(why.features.shap.tolist())


def test_unknown_session_is_a_clear_error(demo_store_copy: Path) -> None:
    with Store.open(demo_store_copy, read_only=True) as store, pytest.raises(
            ConfigError, match="session must be one of the store's sessions, got 'nope'"):
        explain_session(store, "nope")


def test_ensemble_is_explained_by_members_and_its_strongest_feature_member(
        demo_store_copy: Path) -> None:
    with Store.open(demo_store_copy) as store:
        ids = newest(store)
        session = top_session(store, ids["autoencoder"])
        now = dt.datetime(2026, 11, 1)
        store.models.register(
            model_id="ensemble-test", detector="ensemble", created_at=now, config="{}",
            feature_hash=None, feature_spec=None, train_start=None, train_end=None, n_train=0,
            metrics="{}", path="/nonexistent", origin_path=None, digest=None, device="cpu")
        store.con.execute("INSERT INTO scores VALUES ('ensemble-test', ?, 0.9, ?)",
                          [session, now])
        store.con.executemany(
            "INSERT INTO score_contributions VALUES ('ensemble-test', ?, ?, ?)",
            [[session, ids["sequence_autoencoder"], 0.35], [session, ids["autoencoder"], 0.25],
             [session, ids["zscore"], 0.3]])
        why = explain_session(store, session, model_id="ensemble-test")
        assert why.detector == "ensemble" and why.score == pytest.approx(0.9)
        assert why.members["contribution"].sum() == pytest.approx(why.score)
        # zscore (0.3) is the strongest *feature* member, ahead of autoencoder (0.25).
        assert why.features is not None and why.features.model_id == ids["zscore"]
        assert why.reasons[0].startswith("Ensemble score 0.9, by member: sequence_autoencoder")
        assert any("strongest feature member" in n for n in why.notes)
        cached = explain_session(store, session, model_id="ensemble-test")
        assert cached.from_cache and cached.members["member_id"].tolist() == \
            why.members["member_id"].tolist()


def test_every_part_survives_the_cache_round_trip() -> None:
    """Attention maps and the per-event 'attention' method are separate cache rows."""
    import numpy as np
    import pandas as pd

    from core.explain import cache
    from core.explain.explanation import AttentionMaps

    maps = np.random.default_rng(0).random((2, 3, 4, 4)).astype(np.float32)
    events = pd.DataFrame({"event_id": ["a", "b", "c"], "position": [0, 1, 2],
                           "ts": pd.to_datetime(["2026-09-01 10:00", "2026-09-01 10:01",
                                                 "2026-09-01 10:02"]),
                           "event_type": ["login", "view", "payment_failed"],
                           "amount": [None, 2.5, 1.0]})
    original = SessionExplanation(
        session_id="s1", user_id="u1", model_id="m1", detector="transformer",
        input_kind="sequences", score=0.75, percentile=99.5, threshold=0.5, is_flagged=True,
        features=None, events=events,
        event_contributions={"occlusion": np.array([0.1, -0.2, 0.6]),
                             "attention": np.array([0.2, 0.3, 0.5]),
                             "rollout": np.array([0.3, 0.3, 0.4]),
                             "event_head": np.array([0.01, 0.02, np.nan])},
        attention=AttentionMaps(maps), members=None, context=pd.DataFrame(),
        reasons=["one", "two"], computed_at=dt.datetime(2026, 11, 1, 12, 0))
    with Store.open(":memory:") as store:
        assert cache.save(store, original) == 6
        back = cache.load(store, "m1", "s1")
    assert back is not None and back.from_cache
    np.testing.assert_allclose(back.attention.weights, maps, atol=5e-5)
    assert set(back.event_contributions) == set(original.event_contributions)
    np.testing.assert_allclose(back.event_contributions["event_head"],
                               [0.01, 0.02, np.nan])
    assert back.events["ts"].tolist() == events["ts"].tolist()
    assert back.reasons == ["one", "two"] and back.is_flagged and back.percentile == 99.5
    with Store.open(":memory:") as store:  # written by an older version: computed again
        cache.save(store, original)
        rows = store.explanations.cached("m1", "s1")
        rows["summary"]["format"] = cache.FORMAT - 1
        store.explanations.replace("m1", "s1", rows, computed_at=original.computed_at)
        assert cache.load(store, "m1", "s1") is None


def test_a_real_ensemble_is_explained_through_its_members(demo_store_copy: Path) -> None:
    from core.pipeline.ensemble import score_ensemble, train_ensemble

    with Store.open(demo_store_copy) as store:
        trained = train_ensemble(store)
        score_ensemble(store, trained.model_id)
        session = top_session(store, trained.model_id)
        why = explain_session(store, session, model_id=trained.model_id)
        ids = newest(store)
    assert why.detector == "ensemble"
    assert why.members["contribution"].sum() == pytest.approx(why.score, rel=1e-6)
    feature_members = [m for m in why.members["member_id"]
                       if m in (ids["zscore"], ids["autoencoder"])]
    assert why.features is not None and why.features.model_id == feature_members[0]
    assert why.reasons[0].startswith("Ensemble score")
