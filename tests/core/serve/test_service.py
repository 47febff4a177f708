"""ScoringService: store, score, alert; replay after a stop; back-pressure; dead letters."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.policy import publish_policy
from core.serve.event_log import LogFull
from core.serve.events_in import parse_events
from core.serve.service import ScoringService, ServiceConfig
from core.serve.writer import DEAD_LETTER_NAME, NO_POLICY
from core.store import Store

FAST = ServiceConfig(fsync=False, wait_s=30.0, batch_ms=5.0)


def events(user: str, *minutes: int) -> bytes:
    return json.dumps([{"user_id": user, "ts": f"2026-09-10T10:{m:02d}:00",
                        "event_type": "view", "amount": 10 + m} for m in minutes]).encode()


def flag_everything(path: Path) -> str:
    """Publish a policy on the zscore model that flags every scored session."""
    with Store.open(path) as store:
        listing = store.models.listing()
        model_id = str(listing[listing["detector"] == "zscore"]["model_id"].iloc[0])
        publish_policy(store, analyst="test", model_id=model_id, thresholds={"all": -1e9})
    return model_id


def count(path: Path, sql: str) -> int:
    with Store.open(path, read_only=True) as store:
        return int(store.con.execute(sql).fetchone()[0])


def test_events_are_stored_scored_and_alerted_once(demo_store_copy: Path) -> None:
    model_id = flag_everything(demo_store_copy)
    with ScoringService.open(demo_store_copy, FAST) as service:
        first = service.submit(parse_events(events("live_a", 0, 5)), wait_store=True)
        again = service.submit(parse_events(events("live_a", 9)), wait_store=True)
        dup = service.submit(parse_events(events("live_a", 0)), wait_store=True)
        assert first.applied and again.applied
        answers = first.events + again.events
        assert {e["session_id"] for e in answers} == {"live_a@2026-09-10T10:00:00"}
        assert [e["new_session"] for e in answers] == [True, False, False]
        assert all(e["flagged"] and e["risk"] is not None and e["reasons"] for e in answers)
        assert dup.events[0]["duplicate"] is True
        alerts = service.alerts()
        assert [a["session_id"] for a in alerts] == ["live_a@2026-09-10T10:00:00"]
        assert alerts[0]["model_id"] == model_id and alerts[0]["reasons"]
        assert not alerts[0]["reasons"][0].startswith("score ")  # the explanation's reasons
        assert answers[-1]["reasons"] == alerts[0]["reasons"]  # kept for later events
        assert service.writer.stats.events_stored == 3
    sid = "'live_a@2026-09-10T10:00:00'"
    assert count(demo_store_copy, f"SELECT count(*) FROM events WHERE session_id = {sid}") == 3
    assert count(demo_store_copy, f"SELECT n_events FROM sessions WHERE session_id = {sid}") == 3
    assert count(demo_store_copy, f"SELECT count(*) FROM scores WHERE session_id = {sid} "
                                  f"AND model_id = '{model_id}'") == 1


def test_acked_events_are_replayed_exactly_once_after_a_stop(demo_store_copy: Path) -> None:
    service = ScoringService.open(demo_store_copy, FAST, start=False)  # writer never runs
    answer = service.submit(parse_events(events("live_r", 0, 1, 2)), wait_s=0.05)
    assert not answer.applied and [e["seq"] for e in answer.events] == [1, 2, 3]
    service.close()
    with ScoringService.open(demo_store_copy, FAST) as service:
        assert service.writer.wait_applied(3, 30)
    log_dir = demo_store_copy.parent / "event_log"
    (log_dir / "checkpoint.json").unlink()  # as if killed after the commit, before the
    with ScoringService.open(demo_store_copy, FAST) as service:  # checkpoint: all replayed
        assert service.writer.wait_applied(3, 30)
        assert service.writer.stats.duplicates == 3 and service.writer.stats.events_stored == 0
    assert count(demo_store_copy,
                 "SELECT count(*) FROM events WHERE user_id = 'live_r'") == 3


def test_a_full_log_refuses_with_a_retry_hint(demo_store_copy: Path) -> None:
    config = ServiceConfig(fsync=False, max_pending=2)
    with ScoringService.open(demo_store_copy, config, start=False) as service:
        service.submit(parse_events(events("live_f", 0, 1)), wait_s=0)
        with pytest.raises(LogFull, match="Retry later") as caught:
            service.submit(parse_events(events("live_f", 2)), wait_s=0)
        assert caught.value.retry_after_s > 0


def test_a_poison_record_goes_to_the_dead_letter_file(demo_store_copy: Path) -> None:
    with ScoringService.open(demo_store_copy, FAST, start=False) as service:
        service.log.append([b"not an event"])
        service.start()
        answer = service.submit(parse_events(events("live_p", 0)), wait_store=True)
        assert answer.applied and answer.events[0]["session_id"] == "live_p@2026-09-10T10:00:00"
        assert service.writer.stats.dead_letters == 1
    lines = (demo_store_copy.parent / "event_log" / DEAD_LETTER_NAME).read_text().splitlines()
    assert json.loads(lines[0])["seq"] == 1 and "must be a parsed event" in lines[0]


def test_without_a_policy_events_are_stored_not_scored(tmp_path: Path) -> None:
    with ScoringService.open(tmp_path / "fresh.duckdb", FAST) as service:
        answer = service.submit(parse_events(events("live_n", 0)))
        assert answer.applied and answer.events[0]["note"] == NO_POLICY
        assert answer.events[0]["score"] is None
        assert service.score_inline(parse_events(events("live_n", 0)))["note"] == NO_POLICY
    assert count(tmp_path / "fresh.duckdb", "SELECT count(*) FROM events") == 1


def test_inline_scoring_stores_nothing(demo_store_copy: Path) -> None:
    flag_everything(demo_store_copy)
    with ScoringService.open(demo_store_copy, FAST) as service:
        with service.store.held():
            before = service.store.summary.count_events()
        out = service.score_inline(parse_events(events("live_i", 0, 3)))
        assert out["session_id"] == "live_i@2026-09-10T10:00:00" and out["flagged"] is True
        assert isinstance(out["score"], float)
        with service.store.held():
            assert service.store.summary.count_events() == before


def test_a_failing_store_write_is_retried_not_lost(demo_store_copy: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import core.serve.writer as writer

    real, calls = writer.ingest_events, []

    def flaky(*args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("disk hiccup")
        return real(*args, **kwargs)

    monkeypatch.setattr(writer, "ingest_events", flaky)
    with ScoringService.open(demo_store_copy, FAST) as service:
        answer = service.submit(parse_events(events("live_t", 0)))
        assert answer.applied and answer.events[0]["session_id"] == "live_t@2026-09-10T10:00:00"
        assert service.writer.stats.failures == 1 and len(calls) == 2
        assert "disk hiccup" in (service.writer.stats.last_error or "")


def test_a_batch_mixing_whole_and_fractional_seconds_is_stored(demo_store_copy: Path) -> None:
    body = json.dumps([{"user_id": "live_t", "ts": ts, "event_type": "view"} for ts in (
        "2026-09-10T11:00:00.250", "2026-09-10T11:01:00", "2026-09-10T11:02:00.5")]).encode()
    with ScoringService.open(demo_store_copy, FAST) as service:
        answer = service.submit(parse_events(body))
        assert answer.applied and service.writer.stats.failures == 0
    assert count(demo_store_copy, "SELECT count(*) FROM events WHERE user_id = 'live_t'") == 3


def test_another_process_reads_the_store_while_the_service_runs(demo_store_copy: Path) -> None:
    import subprocess
    import sys

    read = ("from core.store import Store\n"
            f"with Store.open({str(demo_store_copy)!r}, read_only=True, wait_s=20) as s:\n"
            "    print(s.con.execute(\"SELECT count(*) FROM events WHERE user_id = 'live_r'\")"
            ".fetchall()[0][0])\n")
    root = Path(__file__).resolve().parents[3]
    with ScoringService.open(demo_store_copy, FAST) as service:
        assert service.submit(parse_events(events("live_r", 0, 1)), wait_store=True).applied
        done = subprocess.run([sys.executable, "-c", read], cwd=root, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        assert done.stdout.strip() == "2"
        assert service.submit(parse_events(events("live_r", 2))).applied  # and writes again


def test_the_daily_budget_caps_live_alerts_highest_scores_first(demo_store_copy: Path) -> None:
    with Store.open(demo_store_copy) as store:
        listing = store.models.listing()
        model_id = str(listing[listing["detector"] == "zscore"]["model_id"].iloc[0])
        publish_policy(store, analyst="test", model_id=model_id, thresholds={"all": -1e9},
                       daily_budget=2)
    body = json.dumps([{"user_id": f"budget_{i}", "ts": f"2026-09-10T11:0{i}:00",
                        "event_type": "view", "amount": 10 ** i} for i in range(4)]).encode()
    with ScoringService.open(demo_store_copy, FAST) as service:
        answers = service.submit(parse_events(body), wait_store=True).events
        later = service.submit(parse_events(json.dumps([{
            "user_id": "budget_9", "ts": "2026-09-10T12:00:00", "event_type": "view",
            "amount": 10 ** 6}]).encode()), wait_store=True).events
        alerts = service.alerts()
    alerted = {a["session_id"] for a in alerts}
    assert len(alerted) == 2  # the budget, although every session is above the threshold
    top_two = sorted(answers, key=lambda a: -a["score"])[:2]
    assert alerted == {a["session_id"] for a in top_two}
    for answer in answers:
        if answer["session_id"] not in alerted:
            assert answer["flagged"] is False and "daily budget of 2" in answer["reasons"][0]
    assert later[0]["flagged"] is False  # the day's budget is spent, whatever the score


def test_a_new_text_is_answered_provisional_then_revised(demo_store_copy: Path,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    import threading
    import time

    from core.serve.embedder import Embedder

    release = threading.Event()
    real = Embedder._vectors

    def held_back(self: Embedder, texts: list[str]) -> object:
        release.wait(60)  # the encoder is busy: the answer must not wait for it
        return real(self, texts)

    monkeypatch.setattr(Embedder, "_vectors", held_back)
    model_id = flag_everything(demo_store_copy)
    body = json.dumps([{"user_id": "live_t", "ts": "2026-09-10T10:00:00", "event_type": "review",
                        "text": "a text nobody wrote before, long enough to compare"}]).encode()
    with ScoringService.open(demo_store_copy, FAST) as service:
        if service.health()["scoring"] != "memory" or service.fast._state.spec.text is None:
            pytest.skip("the demo model has no text features here")
        answer = service.submit(parse_events(body)).events[0]
        assert answer["provisional"] is True and answer["score"] is not None
        release.set()
        sid = answer["session_id"]
        deadline = time.monotonic() + 60
        while service.fast.verdict(sid).provisional and time.monotonic() < deadline:
            time.sleep(0.02)  # polling a condition, bounded
        final = service.fast.verdict(sid)
        assert final.provisional is False
        assert service.writer.wait_applied(answer["seq"], 30)

        def stored() -> float | None:
            with service.store.held():
                scores = service.store.scores.of_model(model_id).set_index("session_id")
            return float(scores["score"][sid]) if sid in scores.index else None

        deadline = time.monotonic() + 60  # the revised score reaches the store
        while stored() != pytest.approx(final.score, rel=1e-9) and time.monotonic() < deadline:
            time.sleep(0.05)
        stored_score = stored()
    assert stored_score == pytest.approx(final.score, rel=1e-9)


def test_kill_9_under_load_loses_no_acknowledged_event(demo_store_copy: Path) -> None:
    """A service process is killed (SIGKILL) while requests keep coming; after a restart
    every event it acknowledged is in the store."""
    import signal
    import subprocess
    import sys

    flag_everything(demo_store_copy)
    loop = (
        "import json, sys\n"
        "from core.serve.events_in import parse_events\n"
        "from core.serve.service import ScoringService, ServiceConfig\n"
        f"service = ScoringService.open({str(demo_store_copy)!r}, ServiceConfig(wait_s=30))\n"
        "for i in range(100000):\n"
        "    body = json.dumps([{'event_id': f'k9-{i}-{j}', 'user_id': f'k9_{i % 7}',\n"
        "                        'ts': f'2026-09-10T1{i // 3600 % 10}:{i // 60 % 60:02d}:'\n"
        "                              f'{i % 60:02d}', 'event_type': 'view'}\n"
        "                       for j in range(3)]).encode()\n"
        "    result = service.submit(parse_events(body))\n"
        "    print(json.dumps([e['event_id'] for e in result.events]), flush=True)\n")
    root = Path(__file__).resolve().parents[3]
    proc = subprocess.Popen([sys.executable, "-c", loop], cwd=root, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    acked: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # bounded by the child's own loop and the test timeout
            acked.extend(json.loads(line))
            if len(acked) >= 600:
                break
        proc.send_signal(signal.SIGKILL)  # mid-loop: requests in flight
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert len(acked) >= 600
    with ScoringService.open(demo_store_copy, FAST) as service:
        assert service.writer.wait_applied(service.log.last_seq, 120)
    with Store.open(demo_store_copy, read_only=True) as store:
        got = store.con.execute("SELECT count(*) FROM events WHERE event_id IN "
                                "(SELECT unnest($ids))", {"ids": acked}).fetchone()[0]
        stored = store.con.execute("SELECT count(*) FROM events WHERE event_id LIKE 'k9-%'"
                                   ).fetchone()[0]
    assert got == len(acked)  # every acknowledged event is stored
    assert stored >= len(acked)  # (and those acknowledged after the last line was read)
