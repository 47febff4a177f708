"""The audit log: one row per action with actor and time, written with the change, append-only."""

from __future__ import annotations

import datetime as dt
import importlib
import re
from pathlib import Path

import pytest
from _case_helpers import flagged_session

from core import cases
from core.cases.audit import now_utc
from core.store import Store
from core.store.audit import _INSERT as AUDIT_INSERT

ROOT = Path(__file__).resolve().parents[3]


def test_every_action_leaves_a_row_with_actor_and_time(store: Store, tmp_path: Path) -> None:
    from core.reports import export_case_report

    start = now_utc() - dt.timedelta(seconds=1)
    opened = cases.open_case(store, analyst="ana", session_id=flagged_session(store))
    cases.assign_case(store, opened.case_id, "bob", analyst="ana")
    cases.claim_case(store, opened.case_id, analyst="cleo")
    cases.add_note(store, opened.case_id, "looked at devices", analyst="cleo")
    cases.decide_case(store, opened.case_id, "fraud_confirmed", analyst="cleo",
                      scenario="account_takeover")
    cases.reopen_case(store, opened.case_id, analyst="dan", reason="second look")
    cases.snooze(store, "user", opened.user_id, days=3, reason="known tester", analyst="eve",
                 case_id=opened.case_id)
    export_case_report(store, opened.case_id, "json", tmp_path / "c.json", actor="fay")
    trail = cases.audit_trail(store, opened.case_id)
    assert list(zip(trail["action"], trail["actor"], strict=True)) == [
        ("open", "ana"), ("assign", "ana"), ("claim", "cleo"), ("note", "cleo"),
        ("decide", "cleo"), ("reopen", "dan"), ("snooze", "eve"), ("export", "fay")]
    assert trail["logged_at"].is_monotonic_increasing
    assert (trail["logged_at"] >= start).all() and (trail["logged_at"] <= now_utc()).all()
    assert trail["audit_id"].is_unique
    assert trail.iloc[1]["detail"] == {"assignee": "bob", "previous_assignee": None}
    assert trail.iloc[3]["detail"]["text"] == "looked at devices"
    assert trail.iloc[7]["detail"]["format"] == "json"
    recent = cases.recent_audit(store, limit=3)
    assert recent["action"].tolist() == ["export", "snooze", "reopen"]


def test_a_failed_audit_write_rolls_the_change_back(store: Store,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import core.cases.lifecycle as lifecycle

    session_id = flagged_session(store)
    opened = cases.open_case(store, analyst="ana", session_id=session_id)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(lifecycle, "record", broken)
    with pytest.raises(RuntimeError):
        cases.decide_case(store, opened.case_id, "fraud_confirmed", analyst="bob")
    other = store.sessions.meta()
    other_user = other[other["user_id"] != opened.user_id]["user_id"].iloc[0]
    with pytest.raises(RuntimeError):
        cases.open_case(store, analyst="bob", user_id=other_user)
    assert cases.get_case(store, opened.case_id).status == "open"
    assert store.cases.analyst_labels(opened.case_id).empty
    assert cases.case_notes(store, opened.case_id).empty
    assert len(cases.list_cases(store)) == 1


_WRITE_TO_AUDIT = re.compile(
    r"(?is)\b(?:update\s+audit_log|delete\s+from\s+audit_log|truncate\s+(?:table\s+)?audit_log"
    r"|drop\s+table\s+(?:if\s+exists\s+)?audit_log|alter\s+table\s+audit_log"
    r"|insert\s+or\s+replace\s+into\s+audit_log|into\s+audit_log\b[^;]*on\s+conflict)")


def _store_statements() -> dict[str, str]:
    """Every module-level SQL string of the store's modules, by 'module.NAME'."""
    out = {}
    for path in sorted((ROOT / "core" / "store").glob("*.py")):
        module = importlib.import_module(f"core.store.{path.stem}" if path.stem != "__init__"
                                         else "core.store")
        out |= {f"{module.__name__}.{k}": v for k, v in vars(module).items()
                if isinstance(v, str) and re.search(r"(?i)\b(select|insert|update|delete)\b", v)}
    return out


def test_no_query_in_the_code_base_edits_or_deletes_the_audit_log() -> None:
    statements = _store_statements()
    assert len(statements) > 50
    offenders = [name for name, sql in statements.items() if _WRITE_TO_AUDIT.search(sql)]
    assert offenders == []
    writers = [name for name, sql in statements.items() if re.search(r"(?i)audit_log", sql)
               and re.search(r"(?i)^\s*(insert|update|delete)", sql)]
    assert writers == ["core.store.audit._INSERT"]
    files = [p for folder in ("core", "dashboard", "sample_data")
             for p in (ROOT / folder).rglob("*.py")]
    assert len(files) > 20
    hits = [str(p.relative_to(ROOT)) for p in files if _WRITE_TO_AUDIT.search(p.read_text())]
    assert hits == []


def test_the_scan_would_catch_an_edit() -> None:
    for sql in ("UPDATE audit_log SET actor = 'x'", "delete from  audit_log where 1",
                "INSERT OR REPLACE INTO audit_log VALUES (1)", "TRUNCATE audit_log",
                "INSERT INTO audit_log VALUES (1) ON CONFLICT DO UPDATE SET actor = 'x'"):
        assert _WRITE_TO_AUDIT.search(sql), sql
    assert not _WRITE_TO_AUDIT.search(AUDIT_INSERT)
