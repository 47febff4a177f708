"""Sign-in and role checks for the dashboard, done on the server before any page runs.

With ``ANOMALYST_AUTH`` off (the local demo) everyone is an admin named by the sidebar. With
``local`` the login form checks the user file; with ``oidc`` Streamlit's ``st.login`` signs the
user in and the user file maps their e-mail to a role (unknown e-mails are viewers). Until a
user is signed in, ``gate`` draws only the login and stops the script, so no page code runs.

A signed-in session is checked against the user file again on every rerun and before every
write (``current``): a removed user is signed out, a changed role applies at once. Wrong
passwords are counted per user name and per client address in this process (not per browser
session, which a script can open by the thousand): after ``LOCK_AFTER`` of them a name or an
address is locked out for a time that doubles with each further failure, up to
``LOCK_MAX_S``. The page and query parameters asked for before sign-in are restored after it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import streamlit as st

from core.app import ConfigError
from core.app.access import ACTIONS, AuthSettings, Principal, UserFile, can
from core.app.access import require as require_role
from dashboard import safe_text as safe
from dashboard import state

_KEY = state.AUTH_PRINCIPAL
_DEEP_LINK = state.AUTH_DEEP_LINK
_NOTICE = state.AUTH_NOTICE
LOCK_AFTER = 5  # wrong passwords per user name or per client before a lockout
LOCK_FIRST_S = 15.0  # the first lockout; each further failure doubles it
LOCK_MAX_S = 15 * 60.0
FORGET_AFTER_S = 60 * 60.0  # a name or address with no failure for this long starts afresh


@dataclass
class _Failures:
    count: int = 0
    last: float = 0.0


_THROTTLE: dict[tuple[str, str], _Failures] = {}
_THROTTLE_LOCK = threading.Lock()


def _now() -> float:
    return time.monotonic()


def _client() -> str:
    """The client's address as the server saw the connection (no forwarded headers: those
    are the client's to write). Loopback connections read as None: one bucket, 'local'."""
    try:
        return str(st.context.ip_address or "local")
    except Exception:  # noqa: BLE001  (no context: bare scripts and tests)
        return "local"


def _keys(name: str) -> list[tuple[str, str]]:
    return [("user", name.strip().casefold()), ("client", _client())]


def locked_for(name: str) -> float:
    """Seconds until ``name`` (and this client) may try a password again; 0 when it may."""
    now, wait = _now(), 0.0
    with _THROTTLE_LOCK:
        for key in _keys(name):
            item = _THROTTLE.get(key)
            if item is None or item.count < LOCK_AFTER:
                continue
            span = min(LOCK_MAX_S, LOCK_FIRST_S * 2 ** (item.count - LOCK_AFTER))
            wait = max(wait, item.last + span - now)
    return max(0.0, wait)


def _record_failure(name: str) -> None:
    now = _now()
    with _THROTTLE_LOCK:
        for key in _keys(name):
            item = _THROTTLE.setdefault(key, _Failures())
            if now - item.last > FORGET_AFTER_S:
                item.count = 0
            item.count += 1
            item.last = now


def _record_success(name: str) -> None:
    with _THROTTLE_LOCK:
        for key in _keys(name):
            _THROTTLE.pop(key, None)


def reset_throttle() -> None:
    """Forget every failure (tests, or an admin's restart)."""
    with _THROTTLE_LOCK:
        _THROTTLE.clear()


def settings() -> AuthSettings:
    return AuthSettings.from_env()


def gate() -> Principal:
    """The signed-in principal; draws the login and stops the run when there is none."""
    config = settings()
    if not config.enabled:
        return Principal(state.analyst_typed() or "anonymous", "admin", authenticated=False)
    if config.mode == "oidc":
        return _oidc(config)
    principal = _refreshed(config)
    if principal is not None:
        return principal
    _remember_deep_link()
    _login_form(config)
    st.stop()
    raise AssertionError("st.stop() returns only under test doubles")


def _refreshed(config: AuthSettings) -> Principal | None:
    """The session's principal as the user file has it now: None (and signed out) when the
    user was removed or the file cannot be read; the file's role when it changed."""
    principal = st.session_state.get(_KEY)
    if not isinstance(principal, Principal):
        return None
    try:
        role = UserFile(config.users_file).users().get(principal.name)
    except ConfigError:
        role = None
    if role is None:
        st.session_state.pop(_KEY, None)
        st.session_state[_NOTICE] = "removed"
        return None
    if role != principal.role:
        principal = Principal(principal.name, role, authenticated=True)
        st.session_state[_KEY] = principal
    return principal


def _remember_deep_link() -> None:
    """Keep the page and query parameters asked for, to restore them after sign-in."""
    if _DEEP_LINK in st.session_state:
        return
    try:
        url = st.context.url or ""
    except Exception:  # noqa: BLE001  (no context: bare scripts and tests)
        url = ""
    path = url.split("://", 1)[-1].partition("/")[2].strip("/")
    st.session_state[_DEEP_LINK] = (path.rsplit("/", 1)[-1], st.query_params.to_dict())


def pending_deep_link(pages: dict[str, st.Page]) -> tuple[st.Page, dict[str, str]] | None:
    """The page and query parameters asked for before sign-in (once; None when there were
    none, or sign-in is off). Call after ``st.navigation`` has registered ``pages``."""
    wanted = st.session_state.pop(_DEEP_LINK, None)
    if not wanted or not isinstance(st.session_state.get(_KEY), Principal):
        return None
    path, params = wanted
    page = next((p for p in pages.values() if p.url_path == path and path), None)
    if page is None and not params:
        return None
    return page or next(p for p in pages.values() if p.default), dict(params)


def _login_form(config: AuthSettings) -> None:
    st.title(":material/shield: Anomalyst")
    st.caption("Sign in to continue.")
    if st.session_state.pop(_NOTICE, None) == "removed":
        st.warning("You were signed out: your account is no longer in the user file. Sign in "
                   "again, or ask an admin.")
    with st.form("login"):
        name = st.text_input("User name", key="login_name")
        password = st.text_input("Password", type="password", key="login_password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if not submitted:
        return
    wait = locked_for(name)
    if wait > 0:  # refused without looking at the password: guessing gets nothing
        st.error(safe.fmt("Too many wrong passwords for this user name or from this address. "
                          "Try again in {wait:.0f} s; an admin can reset a password with "
                          "`anomalyst users add NAME --role ROLE`.", wait=wait))
        return
    principal = UserFile(config.users_file).verify(name, password)
    if principal is None:
        _record_failure(name)
        st.error("User name or password is wrong. Ask an admin to add you with "
                 "`anomalyst users add NAME --role analyst`.")
        return
    _record_success(name)
    st.session_state[_KEY] = principal
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
    """The principal of this browser session (call after ``gate``), re-read from the user
    file: a write checks the role the file gives now, not the one given at sign-in."""
    config = settings()
    if config.enabled and config.mode != "oidc":
        principal = _refreshed(config)
        if principal is not None:
            return principal
    return gate()


def allowed(action: str) -> bool:
    return can(current(), action)


def why_not(action: str) -> safe.Markdown | None:
    """Why the current user may not do ``action`` now (None when they may): the one rule
    every page's buttons follow, so an action is enabled or disabled the same everywhere.
    With sign-in off anyone may act once named (actions record who did them)."""
    principal = current()
    if not principal.authenticated and not state.analyst_typed():
        return safe.Markdown("Type your name in the sidebar first: every action records who "
                             "did it.")
    if not can(principal, action):
        return safe.fmt("Needs the {need} role; {name} is a {role}. Ask an admin.",
                        need=safe.Markdown(ACTIONS[action]), name=principal.name,
                        role=safe.Markdown(principal.role))
    return None


def require(action: str) -> Principal:
    """AccessDeniedError unless the current principal may do ``action``; checked on the server
    by every write in ``dashboard.services``, whatever the page showed."""
    principal = current()
    require_role(principal, action)
    return principal
