"""``anomalyst similar``: the typology line, the similar decided sessions, clean refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import main
from tests.core.explain._similar_store import build


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(build(tmp_path_factory.mktemp("cli-similar") / "s.duckdb"))


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_similar_prints_the_guess_and_the_nearest_decided_sessions(db: str) -> None:
    code, out = run("similar", "ct-5", "--db", db)
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].startswith("Session ct-5: Looks like card testing (confidence ")
    assert "Most similar decided sessions (of 4):" in out
    assert "1. ct-" in lines[2] and "fraud_confirmed" in lines[2] and "case C-00001" in lines[2]
    assert "anomalyst explain ct-" in out and "anomalyst case show C-00001" in out


def test_similar_json(db: str) -> None:
    code, out = run("similar", "ct-5", "--k", "2", "--json", "--db", db)
    assert code == 0, out
    data = json.loads(out)
    assert data["typology"]["scenario"] == "card_testing"
    assert data["index"]["decided_sessions"] == 4
    assert [r["session_id"] for r in data["similar"]] in (["ct-0", "ct-1"], ["ct-1", "ct-0"])
    assert data["similar"][0]["case"] == "anomalyst case show C-00001"


@pytest.mark.parametrize(("args", "message"), [
    (("nope",), "session must be a stored session id, got 'nope'"),
    (("ct-5", "--k", "0"), "k must be a whole number from 1 to 50, got 0"),
])
def test_similar_refuses_with_one_line(db: str, args: tuple[str, ...], message: str) -> None:
    code, out = run("similar", *args, "--db", db)
    assert code == 2 and message in out and "Traceback" not in out


def test_similar_without_decisions(tmp_path: Path) -> None:
    path = str(build(tmp_path / "undecided.duckdb", decide=False))
    code, out = run("similar", "ct-5", "--db", path)
    assert code == 0 and "Looks like card testing" in out and "No decided sessions yet" in out
    code, out = run("similar", "ct-5", "--db", path, "--json")
    assert code == 0 and json.loads(out)["similar"] == []
