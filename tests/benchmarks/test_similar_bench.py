"""Smoke runs of benchmarks.similar and benchmarks.typology on a tiny store (no timings)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.similar import bench_similar
from benchmarks.similar import main as similar_main
from benchmarks.typology import bench_typology
from tests.core.explain._similar_store import build


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("bench-similar") / "s.duckdb")


def test_similar_benchmark_runs(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = bench_similar(db, n_decided=20, n_queries=4, k=3)
    assert out["decided"] == 20 and out["queries"] == 3 and out["k"] == 3
    assert out["query_ms_median"] is not None and out["build_s"] >= 0
    similar_main(["--db", str(db), "--decided", "10", "--queries", "3"])
    assert "index built in" in capsys.readouterr().out


def test_typology_benchmark_runs(db: Path) -> None:
    out = bench_typology(db, seeds=(0, 1), test_share=0.25, n_normal=5)
    assert out["pool"] == 24 and out["seeds"] == [0, 1]
    assert set(out["per_scenario"]) == {"card_testing", "scraping_bot"}
    mean, _sd = out["accuracy"]
    assert 0.0 <= mean <= 1.0 and 0.0 <= out["no_match"][0] <= 1.0
    assert out["majority"][0] > 0
