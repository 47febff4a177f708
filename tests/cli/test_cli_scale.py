"""``anomalyst score --events`` and ``anomalyst ingest-scores`` end to end."""

from __future__ import annotations

import shutil
from pathlib import Path

from click.testing import CliRunner

from cli.main import main


def test_score_events_then_ingest_scores(demo_store_copy: Path, demo_store: Path,
                                         tmp_path: Path) -> None:
    shutil.copytree(demo_store.parent / "models", demo_store_copy.parent / "models")
    db, events = str(demo_store_copy), str(demo_store.parent / "sample" / "events.parquet")
    runner = CliRunner()
    out = runner.invoke(main, ["score", "--events", events, "--out", str(tmp_path / "s"),
                               "--detector", "zscore", "--partitions", "2", "--db", db])
    assert out.exit_code == 0, out.output
    assert "scored" in out.output and "2 partition(s)" in out.output
    again = runner.invoke(main, ["score", "--events", events, "--out", str(tmp_path / "s"),
                                 "--detector", "zscore", "--db", db])
    assert again.exit_code != 0 and "must not mix" in again.output
    back = runner.invoke(main, ["ingest-scores", str(tmp_path / "s"), "--db", db])
    assert back.exit_code == 0, back.output
    assert back.output.startswith("Stored ") and "zscore-" in back.output
    half = runner.invoke(main, ["score", "--out", str(tmp_path / "t"), "--db", db])
    assert half.exit_code != 0 and "--events" in half.output
    no_ray = runner.invoke(main, ["score", "--events", events, "--out", str(tmp_path / "u"),
                                  "--detector", "zscore", "--only-new", "--db", db])
    assert no_ray.exit_code != 0 and "--only-new" in no_ray.output
