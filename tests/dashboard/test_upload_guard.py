"""Uploads need a signed-in admin, checked at Streamlit's HTTP endpoint (issue #20, item 3).

A live server with sign-in on; a client that never signs in opens a session over the
websocket (as the login page does), then PUTs files to ``/_stcore/upload_file``. Before the
guard, each was stored in server memory (204) for as long as the session lived.
"""

from __future__ import annotations

import http.client
import urllib.parse
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
from _browser import LAST_SERVER_PID, dashboard_server

from core.access import Principal, UserFile

MB = 2**20


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _open_session(url: str):  # noqa: ANN202
    """(session id, xsrf cookie, open websocket) of a fresh, never signed-in session."""
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    from websockets.sync.client import connect

    host = urllib.parse.urlparse(url).netloc
    conn = http.client.HTTPConnection(host, timeout=30)
    conn.request("GET", "/_stcore/health")  # sets the XSRF cookie, as for a browser
    reply = conn.getresponse()
    reply.read()
    cookie = reply.getheader("Set-Cookie") or ""
    xsrf = next((c.split("=", 1)[1] for c in cookie.split(";")
                 if c.strip().startswith("_streamlit_xsrf=")), "")
    ws = connect(f"ws://{host}/_stcore/stream", subprotocols=["streamlit", xsrf or "x"],
                 additional_headers={"Cookie": cookie.split(";")[0]} if cookie else None,
                 open_timeout=30, legacy=True)  # returned open, closed by the caller
    back = BackMsg()
    back.rerun_script.query_string = ""
    back.rerun_script.page_script_hash = ""
    ws.send(back.SerializeToString())
    session_id = None
    for _ in range(500):  # until the login page's run has finished (its imports are done)
        msg = ForwardMsg()
        msg.ParseFromString(ws.recv(timeout=60))
        if msg.WhichOneof("type") == "new_session":
            session_id = msg.new_session.initialize.session_id
        if msg.WhichOneof("type") == "script_finished" and session_id:
            return session_id, cookie.split(";")[0], ws
    raise AssertionError("the login page's run did not finish")


def _put(url: str, session_id: str, cookie: str, size_mb: int) -> int:
    host = urllib.parse.urlparse(url).netloc
    boundary = uuid.uuid4().hex
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"x.csv\"\r\nContent-Type: text/csv\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    body = head + b"a" * (size_mb * MB) + tail
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}",
               "Content-Length": str(len(body))}
    if cookie:
        headers["Cookie"] = cookie
        headers["X-Xsrftoken"] = cookie.split("=", 1)[1]
    conn = http.client.HTTPConnection(host, timeout=60)
    conn.request("PUT", f"/_stcore/upload_file/{session_id}/{uuid.uuid4()}", body, headers)
    status = conn.getresponse().status
    conn.close()
    return status


@pytest.mark.browser  # a live server, like the browser tests (no browser needed)
def test_a_stranger_cannot_upload_and_memory_stays_flat(demo_store: Path,
                                                        tmp_path: Path) -> None:
    users = tmp_path / "users.json"
    UserFile(users).add("adam", "admin", "admin-password")
    env = {"ANOMALYST_DB": str(demo_store), "ANOMALYST_AUTH": "local",
           "ANOMALYST_USERS_FILE": str(users)}
    with dashboard_server(env) as url:
        session_id, cookie, ws = _open_session(url)
        with ws:
            # first use of the upload route, and of a 60 MB body: the server's read buffers
            # (which the allocator may keep) are in the baseline, not counted as kept files
            statuses = [_put(url, session_id, cookie, 1), _put(url, session_id, cookie, 60)]
            before = _rss_mb(LAST_SERVER_PID[0])
            statuses += [_put(url, session_id, cookie, 60) for _ in range(4)]
            after = _rss_mb(LAST_SERVER_PID[0])
    assert statuses == [403] * 6, statuses
    assert after - before < 60, (before, after)  # 240 MB more sent, none of it kept


def _state(principal: Principal | None) -> dict:
    return {} if principal is None else {"auth_principal": principal}


def test_the_guard_keeps_only_an_admins_files_within_the_cap(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dashboard import upload_guard

    users = tmp_path / "users.json"
    UserFile(users).add("adam", "admin", "admin-password")
    UserFile(users).add("ana", "analyst", "analyst-password")
    monkeypatch.setenv("ANOMALYST_AUTH", "local")
    monkeypatch.setenv("ANOMALYST_USERS_FILE", str(users))
    manager = SimpleNamespace(file_storage={})
    admin = Principal("adam", "admin", True)
    for state, status in ((_state(None), 403), (_state(Principal("ana", "analyst", True)), 403),
                          (_state(Principal("gone", "admin", True)), 403)):
        with pytest.raises(upload_guard.UploadRefused) as refused:
            upload_guard.check(manager, "s1", state, 10, "f1")
        assert refused.value.status == status
    upload_guard.check(manager, "s1", _state(admin), 10 * MB, "f1")  # allowed
    kept = SimpleNamespace(data=b"x" * (upload_guard.MAX_UPLOAD_MB * MB - 5))
    manager.file_storage["s1"] = {"f1": kept}
    with pytest.raises(upload_guard.UploadRefused) as refused:  # over the session's cap
        upload_guard.check(manager, "s1", _state(admin), 10, "f2")
    assert refused.value.status == 413
    upload_guard.check(manager, "s1", _state(admin), 10, "f1")  # replacing f1 is fine
    monkeypatch.setenv("ANOMALYST_AUTH", "off")
    upload_guard.check(manager, "s2", _state(None), 10, "f1")  # the local demo: open
