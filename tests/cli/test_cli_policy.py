"""`anomalyst policy show|set|history` through click's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from cli.main import main


def invoke(db: Path, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(main, [*args, "--db", str(db)],
                                env={"ANOMALYST_ANALYST": "ana"}, catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


def test_show_set_and_history(demo_store_copy: Path) -> None:
    db = demo_store_copy
    shown = json.loads(invoke(db, "policy", "show", "--json"))
    assert shown["version"] == 0 and shown["thresholds"] == {}
    assert "percentile" in shown["risk"] or "probability" in shown["risk"]
    assert "No policy published yet" in invoke(db, "policy", "history")
    out = invoke(db, "policy", "set", "--threshold", "all=2.5", "--threshold",
                 "country:DE=3", "--budget", "20", "--note", "first")
    assert "Published policy v1" in out
    text = invoke(db, "policy", "show")
    assert "Policy v1, published by ana" in text and "threshold country:DE: 3" in text
    assert "daily budget: 20 alerts" in text
    history = json.loads(invoke(db, "policy", "history", "--json"))
    assert [(h["version"], h["published_by"], h["thresholds"]) for h in history] == [
        (1, "ana", {"all": 2.5, "country:DE": 3.0})]


def test_bad_input_is_refused_with_a_reason(demo_store_copy: Path) -> None:
    db = demo_store_copy
    assert "SEGMENT=NUMBER" in invoke(db, "policy", "set", "--threshold", "all", code=2)
    assert "segment must be" in invoke(db, "policy", "set", "--threshold", "eu=1", code=2)
    assert "registered models" in invoke(db, "policy", "set", "--model", "nope", code=2)
    assert "daily budget" in invoke(db, "policy", "set", "--budget", "0", code=2)
    assert "No policy published yet" in invoke(db, "policy", "history")
