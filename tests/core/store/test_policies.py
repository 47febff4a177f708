"""store.policies and store.saved_views: versions append, views are per analyst and page."""

from __future__ import annotations

import datetime as dt

from core.store import Store

NOW = dt.datetime(2026, 12, 5, 12, 0)


def test_versions_count_up_and_history_is_newest_first() -> None:
    with Store.open(":memory:") as store:
        assert store.policies.latest() is None
        first = store.policies.publish(model_id="m1", detector="ensemble",
                                       thresholds={"all": 0.5}, daily_budget=None,
                                       published_by="ana", published_at=NOW, note="first")
        second = store.policies.publish(model_id="m2", detector="mlp",
                                        thresholds={"country:DE": 0.7, "all": 0.6},
                                        daily_budget=40, published_by="bo",
                                        published_at=NOW, note="")
        assert (first, second) == (1, 2)
        latest = store.policies.latest()
        assert latest is not None and latest.version == 2 and latest.daily_budget == 40
        assert latest.thresholds == {"all": 0.6, "country:DE": 0.7}
        assert [p.version for p in store.policies.history()] == [2, 1]
        old = store.policies.version(1)
        assert old is not None and old.model_id == "m1" and old.note == "first"
        assert store.policies.version(9) is None


def test_saved_views_belong_to_one_analyst_and_page() -> None:
    with Store.open(":memory:") as store:
        store.saved_views.save("ana", "queue", "DE today", {"country": ["DE"]}, NOW)
        store.saved_views.save("ana", "queue", "DE today", {"country": ["DE", "FR"]}, NOW)
        store.saved_views.save("bo", "queue", "mine", {"status": ["new"]}, NOW)
        views = store.saved_views.of("ana", "queue")
        assert views["name"].tolist() == ["DE today"]
        assert views["params"].iloc[0] == {"country": ["DE", "FR"]}
        store.saved_views.delete("ana", "queue", "DE today")
        assert store.saved_views.of("ana", "queue").empty
        assert len(store.saved_views.of("bo", "queue")) == 1
