"""Sign-in and role checks for the dashboard, done on the server before any page runs.

With ``ANOMALYST_AUTH`` off (the local demo) everyone is an admin named by the sidebar. With
``local`` the login form checks the user file; with ``oidc`` Streamlit's ``st.login`` signs the
user in and the user file maps their e-mail to a role (unknown e-mails are viewers). Until a
user is signed in, ``gate`` draws only the login and stops the script, so no page code runs.
"""

from __future__ import annotations

import time

import streamlit as st

from core.access import AuthSettings, Principal, UserFile, can
from core.access import require as require_role

_KEY = "auth_principal"
_FAILURES = "auth_failures"
_MAX_FAST_TRIES = 3  # after this many wrong passwords in a session, each try waits a little


def settings() -> AuthSettings:
    return AuthSettings.from_env()


def gate() -> Principal:
    """The signed-in principal; draws the login and stops the run when there is none."""
    config = settings()
    if not config.enabled:
        name = (st.session_state.get("analyst") or "").strip() or "anonymous"
        return Principal(name, "admin", authenticated=False)
    if config.mode == "oidc":
        return _oidc(config)
    principal = st.session_state.get(_KEY)
    if isinstance(principal, Principal):
        return principal
    _login_form(config)
    st.stop()
    raise AssertionError("st.stop() returns only under test doubles")


def _login_form(config: AuthSettings) -> None:
    st.title(":material/shield: Anomalyst")
    st.caption("Sign in to continue.")
    with st.form("login"):
        name = st.text_input("User name", key="login_name")
        password = st.text_input("Password", type="password", key="login_password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if not submitted:
        return
    failures = int(st.session_state.get(_FAILURES, 0))
    if failures >= _MAX_FAST_TRIES:
        time.sleep(min(2.0, 0.25 * (failures - _MAX_FAST_TRIES + 1)))
    principal = UserFile(config.users_file).verify(name, password)
    if principal is None:
        st.session_state[_FAILURES] = failures + 1
        st.error("User name or password is wrong. Ask an admin to add you with "
                 "`anomalyst users add NAME --role analyst`.")
        return
    st.session_state[_KEY] = principal
    st.session_state.pop(_FAILURES, None)
    st.rerun()


def _oidc(config: AuthSettings) -> Principal:
    if not getattr(st.user, "is_logged_in", False):
        st.title(":material/shield: Anomalyst")
        st.caption("Sign in with your organisation's account to continue.")
        if st.button("Sign in", type="primary"):
            st.login()
        st.stop()
    email = str(st.user.get("email") or st.user.get("name") or "")
    return Principal(email, UserFile(config.users_file).role_of(email), authenticated=True)


def sign_out() -> None:
    if settings().mode == "oidc":
        st.logout()
    st.session_state.pop(_KEY, None)
    st.rerun()


def current() -> Principal:
    """The principal of this browser session (call after ``gate``)."""
    principal = st.session_state.get(_KEY)
    if settings().enabled and isinstance(principal, Principal):
        return principal
    return gate()


def allowed(action: str) -> bool:
    return can(current(), action)


def require(action: str) -> Principal:
    """AccessDeniedError unless the current principal may do ``action``; checked on the server
    by every write in ``dashboard.services``, whatever the page showed."""
    principal = current()
    require_role(principal, action)
    return principal
