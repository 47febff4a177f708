"""kill -9 in the middle of real CLI commands: the store opens, holds all or none of the
interrupted work, and running the command again completes it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.store import Store

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, crash_at: str | None = None) -> subprocess.Popen[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("ANOMALYST_CRASH_AT", None)
    if crash_at:
        env["ANOMALYST_CRASH_AT"] = crash_at
    return subprocess.Popen([sys.executable, "-m", "cli", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def run_cli(*args: str, crash_at: str | None = None) -> subprocess.CompletedProcess[str]:
    proc = cli(*args, crash_at=crash_at)
    out, _ = proc.communicate(timeout=300)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, None)


def counts(db: Path) -> tuple[int, int, int]:
    with Store.open(db, read_only=True) as store:
        return (store.summary.count_events(), store.summary.count_sessions(),
                len(store.summary.ingest_log()))


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two Parquet files of sample events (disjoint users)."""
    from sample_data import GeneratorConfig, generate

    events = generate(GeneratorConfig(users=400, days=10, seed=5)).events
    users = sorted(events["user_id"].unique())
    half = set(users[: len(users) // 2])
    folder = tmp_path_factory.mktemp("crash")
    first, second = folder / "a.parquet", folder / "b.parquet"
    events[events["user_id"].isin(half)].to_parquet(first, index=False)
    events[~events["user_id"].isin(half)].to_parquet(second, index=False)
    return first, second


@pytest.fixture()
def store_with_first(parts: tuple[Path, Path], tmp_path: Path) -> Path:
    db = tmp_path / "s.duckdb"
    done = run_cli("ingest", str(parts[0]), "--db", str(db))
    assert done.returncode == 0, done.stdout
    return db


def test_kill_inside_the_ingest_transaction_writes_nothing(
    parts: tuple[Path, Path], store_with_first: Path
) -> None:
    before = counts(store_with_first)
    killed = run_cli("ingest", str(parts[1]), "--db", str(store_with_first),
                     crash_at="ingest.before_commit")
    assert killed.returncode == -9, killed.stdout
    assert counts(store_with_first) == before
    again = run_cli("ingest", str(parts[1]), "--db", str(store_with_first))
    assert again.returncode == 0, again.stdout
    after = counts(store_with_first)
    assert after[0] > before[0] and after[2] == before[2] + 1
    # And once more: idempotent, nothing new.
    assert run_cli("ingest", str(parts[1]), "--db", str(store_with_first)).returncode == 0
    assert counts(store_with_first)[:2] == after[:2]


@pytest.mark.parametrize("delay_s", [0.3, 1.5, 3.0])
def test_kill_at_any_moment_of_an_ingest_is_all_or_none(
    parts: tuple[Path, Path], store_with_first: Path, delay_s: float
) -> None:
    before = counts(store_with_first)
    proc = cli("ingest", str(parts[1]), "--db", str(store_with_first))
    time.sleep(delay_s)
    proc.kill()
    proc.wait(timeout=60)
    middle = counts(store_with_first)
    complete = run_cli("ingest", str(parts[1]), "--db", str(store_with_first))
    assert complete.returncode == 0, complete.stdout
    after = counts(store_with_first)
    assert middle[:2] in (before[:2], after[:2])
    assert after[0] > before[0]


def model_state(db: Path) -> tuple[list[str], dict[str, tuple[int, float]]]:
    """Registered model ids, and per model (number of scores, their sum)."""
    with Store.open(db, read_only=True) as store:
        ids = store.models.listing()["model_id"].tolist()
        rows = store.con.execute(
            "SELECT model_id, count(*), sum(score) FROM scores GROUP BY 1").fetchall()
    return ids, {m: (n, round(total, 6)) for m, n, total in rows}


@pytest.mark.parametrize("point", ["train.after_save", "train.before_commit"])
def test_kill_during_training_registers_nothing_and_a_rerun_trains(
    demo_store: Path, tmp_path: Path, point: str
) -> None:
    import shutil

    db = tmp_path / "t.duckdb"
    shutil.copy(demo_store, db)
    before = model_state(db)
    args = ("train", "--detector", "zscore", "--db", str(db), "--quiet")
    killed = run_cli(*args, crash_at=point)
    assert killed.returncode == -9, killed.stdout
    assert model_state(db) == before
    models = tmp_path / "models"
    left = sorted(p.name for p in models.iterdir())
    assert len(left) == 1 and left[0].startswith(".partial-"), left  # unregistered, hidden
    again = run_cli(*args)
    assert again.returncode == 0, again.stdout
    ids, _ = model_state(db)
    assert len(ids) == len(before[0]) + 1
    assert sorted(p.name for p in models.iterdir()) == [ids[-1]]  # the killed run's is swept


def test_kill_after_the_commit_leaves_a_model_that_loads_and_scores(
    demo_store: Path, tmp_path: Path
) -> None:
    import shutil

    db = tmp_path / "c.duckdb"
    shutil.copy(demo_store, db)
    before = model_state(db)
    killed = run_cli("train", "--detector", "zscore", "--db", str(db), "--quiet",
                     crash_at="train.after_commit")
    assert killed.returncode == -9, killed.stdout
    ids, _ = model_state(db)
    new = ids[-1]
    assert len(ids) == len(before[0]) + 1  # registered, its folder not yet renamed
    assert not (tmp_path / "models" / new).exists()
    scored = run_cli("score", "--model", new, "--db", str(db))
    assert scored.returncode == 0, scored.stdout
    assert (tmp_path / "models" / new).is_dir()  # the reader completed the rename
    assert model_state(db)[1][new][0] > 0


def test_kill_while_scoring_keeps_the_previous_scores(demo_store: Path, tmp_path: Path) -> None:
    import shutil

    db = tmp_path / "s.duckdb"
    shutil.copy(demo_store, db)
    ids, scores_before = model_state(db)
    model_id = next(m for m in ids if m.startswith("zscore"))
    with Store.open(db) as store:  # make the rerun's effect visible: drop half the scores
        store.con.execute("DELETE FROM scores WHERE model_id = ? AND session_id IN (SELECT "
                          "session_id FROM sessions ORDER BY session_id LIMIT 100)", [model_id])
    partial = model_state(db)[1]
    killed = run_cli("score", "--model", model_id, "--db", str(db), crash_at="score.before_commit")
    assert killed.returncode == -9, killed.stdout
    assert model_state(db)[1] == partial  # all or none: the old rows, untouched
    again = run_cli("score", "--model", model_id, "--db", str(db))
    assert again.returncode == 0, again.stdout
    assert model_state(db)[1][model_id] == scores_before[model_id]
