"""Publishing the alert policy from the dashboard: admins only, checked on the server."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.access import ACTIONS, Principal
from core.app import AccessDeniedError
from core.store import Store
from dashboard import auth, services


def test_publishing_a_policy_is_an_admin_action():
    assert ACTIONS["policy"] == "admin"


@pytest.mark.parametrize("role", ["viewer", "analyst"])
def test_only_an_admin_publishes(role: str, demo_store_copy: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANOMALYST_DB", str(demo_store_copy))
    monkeypatch.setattr(auth, "current", lambda: Principal("ana", role, authenticated=True))
    with Store.open(demo_store_copy, read_only=True) as store:
        before = len(store.policies.history())
    with pytest.raises(AccessDeniedError):
        services.publish_policy("m", {"all": 0.5}, None, "", "ana")
    with Store.open(demo_store_copy, read_only=True) as store:
        assert len(store.policies.history()) == before


def test_an_admin_publishes_and_every_reader_sees_it(demo_store_copy: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANOMALYST_DB", str(demo_store_copy))
    monkeypatch.setattr(auth, "current", lambda: Principal("adam", "admin", authenticated=True))
    before = services.policy(*services.key())
    published = services.publish_policy(before.model_id, {"all": 0.5}, 10, "tighter", "adam")
    after = services.policy(*services.key())  # a new stamp: not the cached version
    assert after.version == published.version == before.version + 1
    assert after.thresholds == {"all": 0.5} and after.daily_budget == 10
    assert after.published_by == "adam"
