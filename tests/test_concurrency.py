"""Real processes at once on one store: analysts deciding cases from the CLI, dashboard sessions
reading pages, while `anomalyst ingest` and `anomalyst score` run. Nothing crashes, no decision
or label is lost, and everything that was written is counted afterwards."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from core.store import Store

ROOT = Path(__file__).resolve().parents[1]

READER = textwrap.dedent("""
    import json, sys, time, logging
    from streamlit.testing.v1 import AppTest
    logging.disable(logging.WARNING)
    app, seconds = sys.argv[1], float(sys.argv[2])
    pages = ["views/queue.py", "views/thresholds.py", "views/cases.py", None]
    runs, exceptions, busy = 0, [], 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for page in pages:
            at = AppTest.from_file(app, default_timeout=300)
            if page:
                at.switch_page(page)
            at.run()
            runs += 1
            exceptions += [str(e.value)[:200] for e in at.exception]
            busy += sum("busy" in e.value.lower() or "held by" in e.value for e in at.error)
    print(json.dumps({"runs": runs, "exceptions": exceptions, "busy_messages": busy}))
""")


def cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "cli", *args], cwd=ROOT,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def analyst_script(db: Path, name: str, sessions: list[str]) -> str:
    """Shell lines: open a case per session, then decide it (waiting up to 5 min for the lock)."""
    lines = []
    for session in sessions:
        lines.append(
            f"id=$({sys.executable} -m cli case open --session {session} --analyst {name} "
            f"--db {db} --wait 300 | tail -1) && "
            f"{sys.executable} -m cli case decide $id --decision fraud_confirmed "
            f"--scenario account_takeover --analyst {name} --db {db} --wait 300 || exit 1")
    return "\n".join(["set -e", *lines])


@pytest.mark.slow
def test_analysts_dashboard_ingest_and_score_at_once(demo_store: Path, tmp_path: Path) -> None:
    db = tmp_path / "busy.duckdb"
    shutil.copy(demo_store, db)
    from sample_data import GeneratorConfig, generate

    extra = generate(GeneratorConfig(users=150, days=5, seed=99)).events
    extra["user_id"] = "new-" + extra["user_id"].astype(str)
    extra = extra.drop(columns=["session_id", "event_id"], errors="ignore")
    new_events = tmp_path / "new.parquet"
    extra.to_parquet(new_events, index=False)
    with Store.open(db, read_only=True) as store:
        before_events = store.summary.count_events()
        picks = store.con.execute(
            "SELECT any_value(session_id) FROM sessions GROUP BY user_id ORDER BY 1 LIMIT 8"
        ).fetchall()
    sessions = [s for (s,) in picks]

    env = {**os.environ, "ANOMALYST_DB": str(db), "HF_HUB_OFFLINE": "1"}
    reader = subprocess.Popen([sys.executable, "-c", READER, str(ROOT / "dashboard" / "app.py"),
                               "60"], cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL)
    analysts = [subprocess.Popen(["bash", "-c", analyst_script(db, f"analyst{i}", part)],
                                 cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT)
                for i, part in enumerate((sessions[:4], sessions[4:]))]
    ingest = cli("ingest", str(new_events), "--db", str(db), "--wait", "300", "--json")
    ingest_out, _ = ingest.communicate(timeout=600)
    score = cli("score", "--only-new", "--db", str(db), "--wait", "300")
    score_out, _ = score.communicate(timeout=600)
    analyst_outs = [a.communicate(timeout=900)[0] for a in analysts]
    reader_out, _ = reader.communicate(timeout=900)

    assert ingest.returncode == 0, ingest_out
    assert score.returncode == 0, score_out
    for proc, out in zip(analysts, analyst_outs, strict=True):
        assert proc.returncode == 0, out
    seen = json.loads(reader_out.strip().splitlines()[-1])
    assert seen["runs"] >= 4 and seen["exceptions"] == [], seen

    report = json.loads(ingest_out[ingest_out.index("{"):])
    # Identical rows share a content hash: the generator's exact repeats land once.
    assert len(extra) - 5 <= report["n_added"] <= len(extra)
    with Store.open(db, read_only=True) as store:
        assert store.summary.count_events() == before_events + report["n_added"]
        labels = store.con.execute(
            "SELECT entity_id FROM labels WHERE source = 'analyst' AND is_anomaly").fetchall()
        assert sorted(s for (s,) in labels) == sorted(sessions)  # every decision landed
        closed = store.con.execute(
            "SELECT count(*) FROM cases WHERE status = 'closed'").fetchall()[0][0]
        assert closed == len(sessions)
        actions = store.con.execute(
            "SELECT action, count(*) FROM audit_log GROUP BY 1").fetchall()
        assert dict(actions).get("decide") == len(sessions)
        unscored = store.con.execute(
            "SELECT count(*) FROM sessions se WHERE NOT EXISTS (SELECT 1 FROM scores s "
            "WHERE s.session_id = se.session_id)").fetchall()[0][0]
        assert unscored == 0
    print(f"\nconcurrency: reader {seen}; ingested {report['n_added']} events; "
          f"{len(sessions)} decisions, all landed")
