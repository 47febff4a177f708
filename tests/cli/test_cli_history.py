"""`anomalyst train --history/--no-history` overrides a detector's history-feature default."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from cli.main import main
from core.store import Store


def _spec_of(db: Path, model_id: str) -> dict:
    """The model's stored config."""
    with Store.open(db, read_only=True) as store:
        row = store.models.by_id(model_id)
    return json.loads(row["config"])


def test_history_can_be_turned_on_and_off(demo_store_copy: Path) -> None:
    runner = CliRunner()
    on = runner.invoke(main, ["train", "--detector", "zscore", "--history", "--quiet",
                              "--db", str(demo_store_copy)])
    assert on.exit_code == 0, on.output
    off = runner.invoke(main, ["train", "--detector", "zscore", "--quiet",
                               "--db", str(demo_store_copy)])
    assert off.exit_code == 0, off.output
    assert _spec_of(demo_store_copy, on.output.strip().splitlines()[-1])[
        "history_features"] is True
    assert _spec_of(demo_store_copy, off.output.strip().splitlines()[-1])[
        "history_features"] is False
    with Store.open(demo_store_copy, read_only=True) as store:
        hashes = {store.models.by_id(r.output.strip().splitlines()[-1])["feature_hash"]
                  for r in (on, off)}
    assert len(hashes) == 2  # the history block changes the feature matrix
