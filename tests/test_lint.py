"""Style is part of the contract: ruff (E, F, I, UP, B, T20; see pyproject.toml) stays clean."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_is_clean() -> None:
    if shutil.which("ruff") is None and subprocess.run(
        [sys.executable, "-m", "ruff", "--version"], capture_output=True, check=False
    ).returncode != 0:
        pytest.fail("ruff is missing: install the dev extra (pip install -e '.[dev]').")
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "cli", "core", "dashboard", "sample_data",
         "tests", "benchmarks"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
