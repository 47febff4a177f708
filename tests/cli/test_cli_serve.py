"""`anomalyst serve` and `anomalyst serve token add|list|revoke` through CliRunner."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from cli.main import main

ROOT = Path(__file__).resolve().parents[2]


def invoke(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


def test_tokens_add_list_revoke(tmp_path: Path) -> None:
    db = str(tmp_path / "s.duckdb")
    secret = invoke("serve", "token", "add", "ci", "--role", "analyst", "--db", db).split()[0]
    assert len(secret) >= 40
    stored = (tmp_path / "api_tokens.json").read_text()
    assert secret not in stored
    listed = json.loads(invoke("serve", "token", "list", "--json", "--db", db))
    assert [(t["name"], t["role"]) for t in listed] == [("ci", "analyst")]
    assert "Token ci revoked." in invoke("serve", "token", "revoke", "ci", "--db", db)
    assert "No tokens" in invoke("serve", "token", "list", "--db", db)
    assert "token must be one of none" in invoke("serve", "token", "revoke", "ci", "--db", db,
                                                 code=2)


def test_serve_refuses_insecure_local_off_loopback_and_no_tokens(tmp_path: Path) -> None:
    db = str(tmp_path / "s.duckdb")
    out = invoke("serve", "--db", db, "--host", "0.0.0.0", "--insecure-local", code=2)
    assert "--insecure-local must bind a loopback host" in out
    assert "at least one API token" in invoke("serve", "--db", db, code=2)
    assert "single writer" in invoke("serve", "--help")


def test_serve_refuses_a_store_in_use(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from core.store import Store; "
         f"s = Store.open({str(db)!r}); print('ready', flush=True); time.sleep(60)"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        out = invoke("serve", "--db", str(db), "--insecure-local", code=2)
        assert "is in use by another process" in out
    finally:
        os.kill(holder.pid, signal.SIGTERM)
        holder.wait(10)
