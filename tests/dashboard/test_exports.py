"""Exports (issue #20, items 5 and 6's dashboard part): no toolbar download on tables; one
"Export CSV" path for analysts and above, checked on the server, audited, formula-safe."""

from __future__ import annotations

import io
import tomllib
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from core.access import UserFile
from core.cases.audit import recent_audit
from core.store import Store

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "dashboard" / "app.py")


def test_the_table_toolbar_download_is_off() -> None:
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["client"]["disableDataExport"] is True


@pytest.fixture()
def team(demo_store_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    users = tmp_path / "users.json"
    UserFile(users).add("vera", "viewer", "viewer-password")
    UserFile(users).add("ana", "analyst", "analyst-password")
    monkeypatch.setenv("ANOMALYST_DB", str(demo_store_copy))
    monkeypatch.setenv("ANOMALYST_AUTH", "local")
    monkeypatch.setenv("ANOMALYST_USERS_FILE", str(users))
    import streamlit as st

    from dashboard import auth

    auth.reset_throttle()
    st.cache_data.clear()
    st.cache_resource.clear()
    return demo_store_copy


def _signed_in(name: str, password: str, page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.text_input(key="login_name").input(name)
    at.text_input(key="login_password").input(password)
    at.button[0].click().run()
    at.switch_page(f"views/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _exports(db: Path) -> pd.DataFrame:
    with Store.open(db, read_only=True) as store:
        audit = recent_audit(store)
    return audit[audit["action"] == "export"]


def test_an_analyst_exports_the_queue_and_it_is_audited(team: Path) -> None:
    at = _signed_in("ana", "analyst-password", "queue")
    assert not at.get("download_button")
    at.button(key="q_prepare").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.get("download_button")
    rows = _exports(team)
    assert len(rows) == 1
    row = rows.iloc[0]
    assert row["actor"] == "ana" and row["entity"] == "work_queue"
    assert row["detail"]["rows"] > 0 and row["detail"]["format"] == "csv"


def test_a_viewer_gets_no_export_and_the_server_refuses_one(team: Path) -> None:
    for page in ("queue", "cases", "user"):
        at = _signed_in("vera", "viewer-password", page)
        assert not [b for b in at.button if str(b.key).endswith("_prepare")], page
    at = AppTest.from_function(_export_as_viewer, default_timeout=30)
    at.run()
    assert not at.exception
    assert any("export must be done by an analyst" in e.value for e in at.error)
    assert _exports(team).empty


def _export_as_viewer() -> None:
    import pandas as pd
    import streamlit as st

    from core.access import Principal
    from dashboard import exports, services

    st.session_state["auth_principal"] = Principal("vera", "viewer", authenticated=True)
    services.safely(lambda: exports.prepare(pd.DataFrame({"a": [1]}), "queue"), "export")


def _export_hostile_cells() -> None:
    import pandas as pd
    import streamlit as st

    from dashboard import exports

    frame = pd.DataFrame({"user_id": ["=cmd|' /C calc'!A0", "+1+1", "@SUM(A1)", "u1"],
                          "note": ['=HYPERLINK("http://198.51.100.7/p","x")', "-", "ok", None],
                          "amount": [-12.5, 3.0, 1.0, 2.0]})
    st.session_state["csv"] = exports.prepare(frame, "hostile").decode()


def test_exported_cells_are_formula_safe(demo_store_copy: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANOMALYST_DB", str(demo_store_copy))
    monkeypatch.delenv("ANOMALYST_AUTH", raising=False)
    at = AppTest.from_function(_export_hostile_cells, default_timeout=30)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    back = pd.read_csv(io.StringIO(at.session_state["csv"]), keep_default_na=False)
    assert back["user_id"].tolist() == ["'=cmd|' /C calc'!A0", "'+1+1", "'@SUM(A1)", "u1"]
    assert back["note"].iloc[0].startswith("'=HYPERLINK")
    assert back["amount"].tolist() == [-12.5, 3.0, 1.0, 2.0]  # numbers stay numbers
