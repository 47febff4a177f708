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
    with pytest.raises(IngestError, match="at most"), \
            services_data.staged_upload("big.csv", b"x" * 5000):
        pass
    monkeypatch.undo()
    with pytest.raises(IngestError, match="empty file"), services_data.staged_upload("e.csv", b""):
        pass
    with pytest.raises(IngestError, match="must be one of"), \
            services_data.staged_upload("evil.exe", b"MZ..."):
        pass


def test_staged_name_cannot_escape_its_folder() -> None:
    from dashboard import services_data

    with services_data.staged_upload("../../etc/pass wd;rm -rf.csv", GOOD) as staged:
        assert staged.path.parent.name.startswith("anomalyst-upload-")
        assert ".." not in staged.path.name and "/" not in staged.path.name
        assert staged.path.read_bytes() == GOOD
    assert not staged.path.parent.exists()  # removed when the block ends


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


class FakeUpload:
    """What ``st.file_uploader`` returns for a file (AppTest cannot upload one)."""

    def __init__(self, file_id: str, name: str, data: bytes) -> None:
        self.file_id, self.name, self.data = file_id, name, data

    def getvalue(self) -> bytes:
        return self.data


def _data_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db: Path
               ) -> tuple[AppTest, Path]:
    """(the Data page in an AppTest on ``db``, the folder the page stages uploads in)."""
    import tempfile

    import streamlit as st

    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))  # where the page stages uploads
    monkeypatch.setenv("ANOMALYST_DB", str(db))
    st.cache_data.clear()
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("views/data.py").run()
    return at, temp


def test_upload_page_maps_and_ingests(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import streamlit as st

    db = tmp_path / "up.duckdb"
    at, temp = _data_page(tmp_path, monkeypatch, db)
    assert not at.exception
    # Without a file the page waits for one.
    assert at.get("file_uploader")
    fake = FakeUpload("f1", "events.csv", GOOD)
    monkeypatch.setattr(st, "file_uploader", lambda *a, **k: fake)
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
        assert store.summary.count_events() == 2
    # A bad file is refused whole with a message, and the store keeps what it had.
    bad = b"customer,when,action\nc2,not a time,view\n"
    fake.file_id, fake.data = "f2", bad
    at.run()
    at.button(key="data_ingest").click().run()
    assert any("Could not ingest" in e.value for e in at.error)
    with Store.open(db, read_only=True) as store:
        assert store.summary.count_events() == 2
    # Issue #20, item 15: no staged copy is left behind, whether ingest worked or failed.
    assert not list(temp.glob("anomalyst-upload-*")), list(temp.iterdir())


CARDS = (b"Time,V1,Amount,Class\n0,-1.36,149.62,0\n1,1.19,2.69,0\n1,-0.97,2.69,1\n")


def test_a_card_file_without_users_is_taken_by_event_with_its_labels(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A public card-fraud file as it comes: no user column, the answer in ``Class``."""
    import streamlit as st

    db = tmp_path / "cards.duckdb"
    at, _ = _data_page(tmp_path, monkeypatch, db)
    fake = FakeUpload("c1", "creditcard.csv", CARDS)
    monkeypatch.setattr(st, "file_uploader", lambda *a, **k: fake)
    at.run()
    assert at.button(key="data_ingest").disabled  # by session, a user column is required
    assert any("user_id" in w.value for w in at.warning)
    assert at.selectbox(key="data_labels_column").value == "Class"  # picked for the analyst
    at.toggle(key="data_by_event").set_value(True).run()
    assert not at.button(key="data_ingest").disabled
    at.button(key="data_ingest").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("stored 3 ground-truth event label(s) from column 'Class' (1 anomalous)" in s.value
               for s in at.success), [s.value for s in at.success]
    with Store.open(db, read_only=True) as store:
        assert store.summary.count_events() == 3
        extras = [r[0] for r in store.con.execute("SELECT extra FROM events").fetchall()]
    assert all("Class" not in e and "V1" in e for e in extras)


TRACES = (b'BlockId,Label,Type,Features,TimeInterval\n'
          b'blk_1,Success,,"[E5,E22,E11]","[0.0, 1.0]"\n'
          b'blk_2,Fail,21,"[E5,E7]","[2.0]"\n')


def test_a_log_trace_file_is_taken_as_sessions_of_its_sequences(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """HDFS-shaped traces: one row per block, its events in one cell, no time column."""
    import streamlit as st

    db = tmp_path / "traces.duckdb"
    at, _ = _data_page(tmp_path, monkeypatch, db)
    fake = FakeUpload("t1", "Event_traces.csv", TRACES)
    monkeypatch.setattr(st, "file_uploader", lambda *a, **k: fake)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    # picked for the analyst: the events' column (before the list of intervals), the labels
    assert at.selectbox(key="data_sequence_column").value == "Features"
    assert at.selectbox(key="data_map_ts").disabled
    assert not at.button(key="data_ingest").disabled  # nothing else is required
    at.selectbox(key="data_labels_column").select("Label").run()
    at.button(key="data_ingest").click().run()
    assert not at.exception, [e.value for e in at.exception]
    done = " ".join(s.value for s in at.success)
    assert "Read 2 rows (5 events)" in done and "added 5 events" in done, done
    # the notes name the upload, not the server's staged copy
    assert "Event_traces.csv: 5 events" in done and "anomalyst-upload" not in done, done
    with Store.open(db, read_only=True) as store:
        rows = store.con.execute("SELECT session_id, event_type FROM events "
                                 "ORDER BY ts").fetchall()
        assert rows == [("blk_1", "E5"), ("blk_1", "E22"), ("blk_1", "E11"),
                        ("blk_2", "E5"), ("blk_2", "E7")]
        assert store.con.execute("SELECT count(*) FROM labels WHERE is_anomaly"
                                 ).fetchone()[0] == 1  # blk_2, a session label


def test_a_failed_ingest_removes_its_staged_copy(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    from dashboard import services_data

    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    monkeypatch.setenv("ANOMALYST_DB", str(tmp_path / "x.duckdb"))
    with pytest.raises(IngestError):
        services_data.ingest_upload("bad.csv", b"customer,when,action\nc2,not a time,view\n",
                                    {"user_id": "customer", "ts": "when",
                                     "event_type": "action"},
                                    gap_minutes=30, skip_bad_rows=False)
    report, rejected = services_data.ingest_upload(
        "half.csv", b"customer,when,action\nc2,not a time,view\nc3,2026-01-01,view\n",
        {"user_id": "customer", "ts": "when", "event_type": "action"}, gap_minutes=30,
        skip_bad_rows=True)
    assert len(rejected) == 1 and b"not a time" in rejected[0]
    assert not list(temp.iterdir())


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
