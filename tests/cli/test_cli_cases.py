"""`anomalyst case ...` and `anomalyst report` through click's CliRunner."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from pypdf import PdfReader

from cli.main import main
from core import cases
from core.store import Store


def run(db: Path, *args: str, analyst: str | None = "ana") -> str:
    env = {"ANOMALYST_ANALYST": analyst} if analyst is not None else {}
    result = CliRunner().invoke(main, [*args, "--db", str(db)], env=env,
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def first_users(db: Path, n: int) -> list[str]:
    with Store.open(db, read_only=True) as store:
        return store.sessions.meta()["user_id"].drop_duplicates().head(n).tolist()


def test_case_commands_walk_a_case_through_its_life(demo_store_copy: Path,
                                                    tmp_path: Path) -> None:
    db = demo_store_copy
    user, other = first_users(db, 2)
    case_id = run(db, "case", "open", "--user", user).strip()
    assert case_id == "C-00001"
    listed = json.loads(run(db, "case", "list", "--json"))
    assert [(c["case_id"], c["status"], c["user_id"]) for c in listed] == [
        (case_id, "open", user)]
    assert "note 1 added" in run(db, "case", "note", case_id, "checked the devices")
    assert "assigned to bob" in run(db, "case", "assign", case_id, "bob")
    out = run(db, "case", "decide", case_id, "--decision", "fraud_confirmed", "--scenario",
              "card_testing", "--note", "confirmed with the bank", "--analyst", "bob")
    assert f"{case_id} closed: fraud_confirmed (card_testing)" in out
    assert case_id in run(db, "case", "list", "--status", "closed")
    assert "No cases." in run(db, "case", "list", "--status", "open")
    assert "reopened" in run(db, "case", "reopen", case_id, "--reason", "chargeback reversed")
    shown = json.loads(run(db, "case", "show", case_id))
    assert [a["action"] for a in shown["audit"]] == ["open", "note", "assign", "note", "decide",
                                                     "reopen"]
    assert [a["actor"] for a in shown["audit"]] == ["ana", "ana", "ana", "bob", "bob", "ana"]
    second = run(db, "case", "open", "--user", other).strip()
    assert f"{second} claimed by cleo" in run(db, "case", "claim", "--analyst", "cleo")
    assert "No open case is waiting" in run(db, "case", "claim")


def test_snooze_lift_and_suppressions(demo_store_copy: Path) -> None:
    db = demo_store_copy
    user = first_users(db, 1)[0]
    out = run(db, "case", "snooze", "--user", user, "--days", "2", "--reason", "QA account")
    assert out.startswith("suppression 1:")
    assert user in run(db, "case", "suppressions")
    with Store.open(db, read_only=True) as store:
        assert cases.suppressed_session_ids(store)
    assert "lifted" in run(db, "case", "lift", "1")
    assert "No active suppressions" in run(db, "case", "suppressions")
    result = CliRunner().invoke(main, ["case", "snooze", "--user", user, "--ip", "1.2.3.4",
                                       "--days", "1", "--reason", "r", "--db", str(db)])
    assert result.exit_code == 2 and "exactly one of --user, --device, --ip" in result.output


def test_report_command_writes_each_format(demo_store_copy: Path, tmp_path: Path) -> None:
    db = demo_store_copy
    case_id = run(db, "case", "open", "--user", first_users(db, 1)[0]).strip()
    for fmt in ("html", "pdf", "json"):
        out = tmp_path / f"case.{fmt}"
        assert "wrote" in run(db, "report", case_id, "--format", fmt, "--out", str(out),
                              "--mask")
        assert out.stat().st_size > 1000
    assert "<!DOCTYPE html>" in (tmp_path / "case.html").read_text(encoding="utf-8")
    assert len(PdfReader(str(tmp_path / "case.pdf")).pages) > 0
    assert json.loads((tmp_path / "case.json").read_text())["masked"] is True
    with Store.open(db, read_only=True) as store:
        trail = cases.audit_trail(store, case_id)
    assert trail["action"].tolist().count("export") == 3


def test_analyst_defaults_and_refusals(demo_store_copy: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    db = demo_store_copy
    user = first_users(db, 1)[0]
    monkeypatch.delenv("ANOMALYST_ANALYST", raising=False)
    case_id = run(db, "case", "open", "--user", user, analyst=None).strip()
    with Store.open(db, read_only=True) as store:
        assert cases.audit_trail(store, case_id)["actor"].tolist() == [getpass.getuser()]
    result = CliRunner().invoke(main, ["case", "note", case_id, "x", "--analyst", " ",
                                       "--db", str(db)])
    assert result.exit_code == 2 and "analyst name must be set" in result.output
    result = CliRunner().invoke(main, ["case", "decide", "C-404", "--decision", "inconclusive",
                                       "--db", str(db)], env={"ANOMALYST_ANALYST": "ana"})
    assert result.exit_code == 2 and "anomalyst case list" in result.output
