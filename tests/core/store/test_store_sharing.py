"""A long-lived writer shares its store file: open only inside ``held()`` (the service)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from core.errors import StoreError
from core.store import Store

ROOT = Path(__file__).resolve().parents[3]


def _other_process_reads(path: Path) -> subprocess.CompletedProcess[str]:
    code = (f"from core.store import Store\nwith Store.open({str(path)!r}, read_only=True, "
            "wait_s=0.5) as s:\n    print(s.con.execute('SELECT 1').fetchall()[0][0])\n")
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def test_the_file_is_free_between_holds_and_busy_within(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    store = Store.open(path)
    try:
        assert _other_process_reads(path).returncode != 0  # held for writing: busy
        store.share_when_idle(wait_s=5)
        assert _other_process_reads(path).stdout.strip() == "1"
        with pytest.raises(StoreError, match="inside `with store.held"):
            store.summary.count_events()
        with store.held(), store.held():  # nested holds keep it open
            assert store.summary.count_events() == 0
            assert _other_process_reads(path).returncode != 0
        assert _other_process_reads(path).stdout.strip() == "1"
    finally:
        store.close()
