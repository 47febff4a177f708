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
    draft(at)
    assert not at.button(key="thr_publish").disabled


def draft(at) -> None:
    """Tune the slider away from the policy, so there is a version to publish."""
    at.slider(key="thr_value").set_value(at.slider(key="thr_value").min).run()


def test_viewer_cannot_save_a_threshold(signed_in_env: Path) -> None:
    at = sign_in("vera", "viewer-password")
    at.switch_page("views/thresholds.py").run()
    assert not at.exception
    draft(at)
    assert at.button(key="thr_publish").disabled
    assert any("Needs the admin role" in c.value for c in at.caption)


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


# --- issue #20, item 4: sign-in that holds ---------------------------------------------------
@pytest.fixture(autouse=True)
def _fresh_throttle():
    from dashboard import auth

    reset = getattr(auth, "reset_throttle", lambda: None)  # (absent before issue #20)
    reset()
    yield
    reset()


def test_a_removed_admin_is_signed_out_on_the_next_rerun(signed_in_env: Path) -> None:
    at = sign_in("adam", "admin-password")
    at.switch_page("views/thresholds.py").run()
    draft(at)
    assert not at.button(key="thr_publish").disabled
    UserFile(signed_in_env).remove("adam")
    at.run()
    assert not at.exception
    assert {w.key for w in at.text_input} == {"login_name", "login_password"}
    assert any("no longer in the user file" in w.value for w in at.warning)
    assert not any(b.key == "thr_publish" for b in at.button)


def _save_as_stale_admin() -> None:
    import streamlit as st

    from core.access import Principal
    from dashboard import services

    # The session still says admin; the user file no longer has adam.
    st.session_state["auth_principal"] = Principal("adam", "admin", authenticated=True)
    services.safely(lambda: services.save_threshold("m", "all", 0.5, "adam"), "save")
    st.session_state["reached"] = True


def test_a_removed_admin_cannot_write_from_an_open_session(
        signed_in_env: Path, demo_store_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.store import Store

    monkeypatch.setenv("ANOMALYST_DB", str(demo_store_copy))
    UserFile(signed_in_env).remove("adam")
    at = AppTest.from_function(_save_as_stale_admin, default_timeout=30)
    at.run()
    assert not at.exception
    assert "reached" not in at.session_state  # the write stopped at the login
    assert {w.key for w in at.text_input} == {"login_name", "login_password"}
    with Store.open(demo_store_copy, read_only=True) as store:
        assert store.thresholds.for_model("m").empty


def test_a_downgraded_analyst_can_no_longer_open_a_case(signed_in_env: Path) -> None:
    UserFile(signed_in_env).add("ana", "analyst", "analyst-password")
    at = sign_in("ana", "analyst-password")
    at.switch_page("views/cases.py").run()
    assert not at.exception and not at.button(key="cs_open").disabled
    UserFile(signed_in_env).add("ana", "viewer", "analyst-password")
    at.run()
    assert not at.exception
    assert at.button(key="cs_open").disabled
    assert any("ana" in c.value and "viewer" in c.value for c in at.sidebar.caption)


def _open_case_as_stale_analyst() -> None:
    import streamlit as st

    from core.access import Principal
    from dashboard import services, services_cases

    st.session_state["auth_principal"] = Principal("ana", "analyst", authenticated=True)
    services.safely(lambda: services_cases.open_case("ana", user_id="u000001"), "open")


def test_the_server_uses_the_role_in_the_user_file_now(signed_in_env: Path) -> None:
    UserFile(signed_in_env).add("ana", "viewer", "analyst-password")  # was analyst at sign-in
    at = AppTest.from_function(_open_case_as_stale_analyst, default_timeout=30)
    at.run()
    assert not at.exception
    assert any("case must be done by an analyst" in e.value for e in at.error)


def _clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    from dashboard import auth

    now = [1000.0]
    monkeypatch.setattr(auth, "_now", lambda: now[0], raising=False)
    return now


def test_wrong_passwords_lock_out_the_user_name_across_sessions_and_clients(
        signed_in_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dashboard import auth

    now = _clock(monkeypatch)
    clients = iter(f"203.0.113.{i}" for i in range(100))
    monkeypatch.setattr(auth, "_client", lambda: current_client[0], raising=False)
    current_client = [next(clients)]
    for _ in range(auth.LOCK_AFTER):  # each guess from a new browser session and address
        current_client[0] = next(clients)
        at = sign_in("adam", "guess-password")
        assert any("wrong" in e.value for e in at.error)
    current_client[0] = next(clients)
    at = sign_in("adam", "admin-password")  # the right password, but the name is locked
    assert any("Too many wrong passwords" in e.value for e in at.error)
    assert {w.key for w in at.text_input} == {"login_name", "login_password"}
    now[0] += auth.LOCK_FIRST_S + 1  # the lockout ends
    at = sign_in("adam", "admin-password")
    assert not at.error and any("adam" in c.value for c in at.sidebar.caption)


def test_wrong_passwords_lock_out_the_client_whatever_the_name(
        signed_in_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dashboard import auth

    now = _clock(monkeypatch)
    monkeypatch.setattr(auth, "_client", lambda: "203.0.113.99", raising=False)
    for i in range(auth.LOCK_AFTER):
        sign_in(f"nobody{i}", "guess-password")
    at = sign_in("vera", "viewer-password")
    assert any("Too many wrong passwords" in e.value for e in at.error)
    now[0] += auth.LOCK_FIRST_S - 5
    assert auth.locked_for("vera") > 0
    sign_in("nobody", "guess-password")  # refused while locked: not even checked
    now[0] += 6
    at = sign_in("vera", "viewer-password")
    assert not at.error
    # Another address was never locked.
    monkeypatch.setattr(auth, "_client", lambda: "203.0.113.100")
    assert auth.locked_for("someone") == 0
