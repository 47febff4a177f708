"""Sign-in and roles in the dashboard: checked on the server, before any page runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.access import UserFile

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")


@pytest.fixture()
def signed_in_env(demo_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    users = tmp_path / "users.json"
    UserFile(users).add("vera", "viewer", "viewer-password")
    UserFile(users).add("adam", "admin", "admin-password")
    monkeypatch.setenv("ANOMALYST_DB", str(demo_store))
    monkeypatch.setenv("ANOMALYST_AUTH", "local")
    monkeypatch.setenv("ANOMALYST_USERS_FILE", str(users))
    import streamlit as st

    st.cache_data.clear()
    return users


def sign_in(name: str, password: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.text_input(key="login_name").input(name)
    at.text_input(key="login_password").input(password)
    at.button[0].click().run()
    return at


def test_unauthenticated_session_sees_only_the_login(signed_in_env: Path) -> None:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception
    assert {w.key for w in at.text_input} == {"login_name", "login_password"}
    assert not at.metric and not at.dataframe and not at.sidebar.radio
    # Asking for another page does not get past the gate either.
    at.switch_page("views/queue.py").run()
    assert {w.key for w in at.text_input} == {"login_name", "login_password"}
    assert not at.dataframe


def test_wrong_password_is_refused(signed_in_env: Path) -> None:
    at = sign_in("adam", "not-the-password")
    assert any("wrong" in e.value for e in at.error)
    assert {w.key for w in at.text_input} == {"login_name", "login_password"}


def test_admin_signs_in_and_sees_the_pages(signed_in_env: Path) -> None:
    at = sign_in("adam", "admin-password")
    assert not at.exception
    assert any("adam" in c.value and "admin" in c.value for c in at.sidebar.caption)
    at.switch_page("views/thresholds.py").run()
    assert not at.exception
    assert not at.button(key="thr_save").disabled


def test_viewer_cannot_save_a_threshold(signed_in_env: Path) -> None:
    at = sign_in("vera", "viewer-password")
    at.switch_page("views/thresholds.py").run()
    assert not at.exception
    assert at.button(key="thr_save").disabled
    assert any("Only an admin" in c.value for c in at.caption)


def _write_as_viewer() -> None:
    import streamlit as st

    from core.access import Principal
    from dashboard import services

    st.session_state["auth_principal"] = Principal("vera", "viewer", authenticated=True)
    services.safely(lambda: services.save_threshold("m", "all", 0.5, "vera"), "save")


def test_server_refuses_a_viewer_write_whatever_the_page_shows(signed_in_env: Path) -> None:
    at = AppTest.from_function(_write_as_viewer, default_timeout=30)
    at.run()
    assert not at.exception
    assert any("threshold must be done by an admin" in e.value for e in at.error)


def test_auth_off_keeps_the_local_demo_open(demo_store: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANOMALYST_DB", str(demo_store))
    monkeypatch.delenv("ANOMALYST_AUTH", raising=False)
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception
    assert "login_name" not in {w.key for w in at.text_input}
    assert at.sidebar.text_input(key="analyst") is not None


def _case_writes_as_viewer() -> None:
    import streamlit as st

    from core.access import Principal
    from dashboard import services, services_cases

    st.session_state["auth_principal"] = Principal("vera", "viewer", authenticated=True)
    services.safely(lambda: services_cases.open_case("vera", user_id="u000001"), "open")
    services.safely(lambda: services_cases.decide(["C-00001"], "fraud_confirmed", "vera",
                                                  "card_testing", None), "decide")
    services.safely(lambda: services_cases.report("C-00001", "html", False, "vera"), "export")


def test_server_refuses_a_viewer_case_change_or_export(signed_in_env: Path) -> None:
    at = AppTest.from_function(_case_writes_as_viewer, default_timeout=30)
    at.run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any("case must be done by an analyst" in e for e in errors), errors
    assert any("export must be done by an analyst" in e for e in errors), errors
    assert len(errors) == 3
