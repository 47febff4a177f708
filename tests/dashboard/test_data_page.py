"""The Data page: uploads are size- and type-checked, mapped, and ingested with the CLI's rules."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.errors import IngestError
from core.ingest import preview_file, suggest_mapping
from core.store import Store

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")

GOOD = (b"customer,when,action,price\nc1,2026-01-01T10:00:00,view,\n"
        b"c1,2026-01-01T10:01:00,purchase,9.5\n")


def test_stage_upload_refuses_big_empty_and_foreign_files(monkeypatch: pytest.MonkeyPatch) -> None:
    from dashboard import services_data

    monkeypatch.setattr(services_data, "MAX_UPLOAD_MB", 0.001)
    with pytest.raises(IngestError, match="at most"):
        services_data.stage_upload("big.csv", b"x" * 5000)
    monkeypatch.undo()
    with pytest.raises(IngestError, match="empty file"):
        services_data.stage_upload("e.csv", b"")
    with pytest.raises(IngestError, match="must be one of"):
        services_data.stage_upload("evil.exe", b"MZ...")


def test_staged_name_cannot_escape_its_folder() -> None:
    from dashboard import services_data

    staged = services_data.stage_upload("../../etc/pass wd;rm -rf.csv", GOOD)
    assert staged.path.parent.name.startswith("anomalyst-upload-")
    assert ".." not in staged.path.name and "/" not in staged.path.name
    assert staged.path.read_bytes() == GOOD


def test_preview_and_suggested_mapping(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(GOOD)
    head = preview_file(path)
    assert list(head.columns) == ["customer", "when", "action", "price"]
    assert suggest_mapping(list(head.columns)) == {"user_id": "customer", "event_type": "action",
                                                   "amount": "price"}
    broken = tmp_path / "b.parquet"
    broken.write_bytes(b"PAR1 not really")
    with pytest.raises(IngestError, match="readable PARQUET"):
        preview_file(broken)




def test_upload_page_maps_and_ingests(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "up.duckdb"
    monkeypatch.setenv("ANOMALYST_DB", str(db))
    import streamlit as st

    st.cache_data.clear()
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("views/data.py").run()
    assert not at.exception
    # Without a file the page waits for one.
    assert at.get("file_uploader")
    # The page only proceeds with a staged upload; AppTest cannot upload, so stage it and
    # make the uploader report a file by monkeypatching st.file_uploader.
    from dashboard import services_data

    staged = services_data.stage_upload("events.csv", GOOD)

    class Fake:
        file_id, name = "f1", "events.csv"

        def getvalue(self) -> bytes:
            return GOOD

    monkeypatch.setattr(st, "file_uploader", lambda *a, **k: Fake())
    at.session_state["data_staged"], at.session_state["data_staged_key"] = staged, ("f1",
                                                                                   "events.csv")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.button(key="data_ingest").disabled  # ts is not mapped yet
    assert any("ts" in w.value for w in at.warning)
    at.selectbox(key="data_map_ts").select("when").run()
    assert not at.button(key="data_ingest").disabled
    at.button(key="data_ingest").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("added 2 events" in s.value for s in at.success), [s.value for s in at.success]
    with Store.open(db, read_only=True) as store:
        assert store.scalar("count_events") == 2
    # A bad file is refused whole with a message, and the store keeps what it had.
    bad = b"customer,when,action\nc2,not a time,view\n"
    staged_bad = services_data.stage_upload("bad.csv", bad)
    at.session_state["data_staged"], at.session_state["data_staged_key"] = staged_bad, (
        "f1", "events.csv")
    at.run()
    at.button(key="data_ingest").click().run()
    assert any("Could not ingest" in e.value for e in at.error)
    with Store.open(db, read_only=True) as store:
        assert store.scalar("count_events") == 2


def test_data_page_is_closed_to_non_admins(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from core.access import UserFile

    users = tmp_path / "users.json"
    UserFile(users).add("ana", "analyst", "analyst-password")
    monkeypatch.setenv("ANOMALYST_DB", str(tmp_path / "x.duckdb"))
    monkeypatch.setenv("ANOMALYST_AUTH", "local")
    monkeypatch.setenv("ANOMALYST_USERS_FILE", str(users))
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.text_input(key="login_name").input("ana")
    at.text_input(key="login_password").input("analyst-password")
    at.button[0].click().run()
    at.switch_page("views/data.py").run()
    assert not at.exception
    assert any("Only an admin" in i.value for i in at.info)
    assert not at.get("file_uploader")
