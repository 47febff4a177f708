from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from sample_data.__main__ import main


def test_cli_writes_files_and_prints_paths_and_counts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--users", "100", "--days", "3", "--seed", "4", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    events = pd.read_parquet(tmp_path / "events.parquet")
    assert f"Generated {len(events):,} events" in out
    assert str(tmp_path / "events.parquet") in out and str(tmp_path / "labels.parquet") in out
    assert "card_testing:" in out


def test_cli_rejects_bad_values_with_advice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--users", "3", "--out", str(tmp_path)]) == 2
    assert "users must be >= 10, got 3. Pass --users 10 or more." in capsys.readouterr().err
    assert not (tmp_path / "events.parquet").exists()


def test_python_dash_m_entry_point(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sample_data", "--users", "50", "--days", "2", "--out",
         str(tmp_path)], capture_output=True, text=True, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "events:" in done.stdout
