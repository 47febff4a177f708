"""Uploads only from a signed-in admin, and never more than the cap, at the HTTP endpoint.

Streamlit stores whatever a client PUTs to ``/_stcore/upload_file/<session>/<file id>`` in
memory, for any live session and any file id, until the session ends; the size check is per
file (``server.maxUploadSize``). So a stranger who merely opened the login page could fill the
server's memory with as many files as they liked (issue #20, item 3). ``install`` wraps the
runtime's upload manager once per process: a file is kept only when its session's principal
may ingest (re-read from the user file; sign-in off: anyone, as for every other action), and
only while that session's uploads stay within ``MAX_UPLOAD_MB`` and the whole process's within
``MAX_TOTAL_MB``. Anything else is answered 403 or 413 and its bytes are dropped.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

log = logging.getLogger(__name__)

MAX_UPLOAD_MB = 200  # the same as server.maxUploadSize in .streamlit/config.toml
MAX_TOTAL_MB = 2 * MAX_UPLOAD_MB
_INSTALL_LOCK = threading.Lock()


class UploadRefused(Exception):
    """An upload the guard will not keep (``status``: the HTTP status to answer)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status


def may_upload(session_state: Any) -> bool:
    """Whether the browser session holding ``session_state`` may upload (ingest) now."""
    from core.app import AnomalystError
    from core.app.access import Principal, UserFile, can
    from dashboard.auth import settings
    from dashboard.state import AUTH_PRINCIPAL

    config = settings()
    if not config.enabled:
        return True
    try:
        principal = session_state[AUTH_PRINCIPAL]
    except (KeyError, AttributeError):
        return False
    if not isinstance(principal, Principal):
        return False
    try:
        if config.mode == "oidc":
            role = UserFile(config.users_file).role_of(principal.name)
        else:
            role = UserFile(config.users_file).users().get(principal.name)
    except AnomalystError:
        return False
    return role is not None and can(Principal(principal.name, role, True), "ingest")


def check(manager: Any, session_id: str, session_state: Any, size: int, file_id: str) -> None:
    """UploadRefused unless a file of ``size`` bytes may join ``session_id``'s uploads."""
    if not may_upload(session_state):
        raise UploadRefused(403, "uploads need a signed-in admin")
    storage = getattr(manager, "file_storage", {})
    mine = sum(len(f.data) for fid, f in storage.get(session_id, {}).items() if fid != file_id)
    every = sum(len(f.data) for files in list(storage.values()) for f in files.values())
    if mine + size > MAX_UPLOAD_MB * 2**20 or every + size > MAX_TOTAL_MB * 2**20:
        raise UploadRefused(413, "uploads over the size cap")


def install() -> bool:
    """Guard this process's upload manager (once); False when there is no server runtime."""
    from streamlit.runtime import Runtime

    if not Runtime.exists():
        return False
    runtime = Runtime.instance()
    manager = runtime.uploaded_file_mgr
    with _INSTALL_LOCK:
        if getattr(manager, "_anomalyst_guarded", False):
            return True
        original = manager.add_file
        lock = threading.Lock()

        def add_file(session_id: str, file: Any) -> None:
            info = runtime._session_mgr.get_session_info(session_id)  # noqa: SLF001
            state = info.session.session_state if info is not None else None
            with lock:  # the cap is checked and the file stored as one step
                try:
                    check(manager, session_id, state, len(file.data), file.file_id)
                except UploadRefused as refused:
                    log.warning("upload refused (%s) for session %s", refused, session_id)
                    _raise_http(refused)
                original(session_id=session_id, file=file)

        manager.add_file = add_file
        manager._anomalyst_guarded = True  # noqa: SLF001
    return True


def _raise_http(refused: UploadRefused) -> None:
    try:
        from starlette.exceptions import HTTPException
    except ImportError:  # another server: refuse all the same
        raise refused from None
    raise HTTPException(status_code=refused.status, detail=str(refused)) from None
