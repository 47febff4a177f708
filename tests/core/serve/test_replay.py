"""Replay (issue #26): event-time order, pacing by rate and speedup, retries, bad files."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from core.errors import ConfigError, IngestError
from core.serve.replay import parse_rate, read_events, replay, schedule


class Clock:
    """A fake monotonic clock that ``sleep`` advances."""

    def __init__(self) -> None:
        self.t = 100.0
        self.slept: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds


def _file(tmp_path: Path, n: int = 10, step_s: int = 60) -> Path:
    ts = pd.Timestamp("2026-03-01 10:00") + pd.to_timedelta(range(n), unit="s") * step_s
    frame = pd.DataFrame({"user_id": [f"u{i % 3}" for i in range(n)],
                          "ts": ts.strftime("%Y-%m-%dT%H:%M:%S"),
                          "event_type": ["view"] * n, "amount": [""] * (n - 1) + ["9.5"]})
    path = tmp_path / "events.csv"
    frame.iloc[::-1].to_csv(path, index=False)  # written newest first
    return path


def test_rates_parse_and_bad_ones_say_how() -> None:
    assert parse_rate("2000/s") == 2000 and parse_rate("120/min") == 2 and parse_rate("") is None
    for bad in ("fast", "-1/s", "10/week", "nan"):
        with pytest.raises(ConfigError, match="rate must be"):
            parse_rate(bad)


def test_events_go_in_event_time_order_as_ndjson(tmp_path: Path) -> None:
    frame = read_events(_file(tmp_path))
    bodies: list[bytes] = []

    def post(body: bytes) -> tuple[int, dict[str, str], bytes]:
        bodies.append(body)
        return 200, {}, b"{}"

    clock = Clock()
    report = replay(frame, post, rate=None, speedup=None, batch=4, now=clock.now,
                    sleep=clock.sleep)
    rows = [json.loads(line) for body in bodies for line in body.decode().splitlines()]
    assert [r["ts"] for r in rows] == sorted(r["ts"] for r in rows)
    assert len(bodies) == 3 and report.sent == report.accepted == 10
    assert "amount" not in rows[0] and rows[-1]["amount"] == "9.5"  # empty fields left out


def test_rate_and_speedup_pace_the_batches(tmp_path: Path) -> None:
    frame = read_events(_file(tmp_path, n=10, step_s=60))
    by_rate = [due for due, _ in schedule(frame["_order"], rate=5, speedup=None, batch=2)]
    assert by_rate == [0.0, 0.4, 0.8, 1.2, 1.6]
    by_time = [due for due, _ in schedule(frame["_order"], rate=None, speedup=60, batch=2)]
    assert by_time == [0.0, 2.0, 4.0, 6.0, 8.0]  # 2 minutes of events a batch, 60x faster
    both = [due for due, _ in schedule(frame["_order"], rate=1, speedup=60, batch=2)]
    assert both == [0.0, 2.0, 4.0, 6.0, 8.0]
    clock = Clock()
    replay(frame, lambda body: (200, {}, b"{}"), rate=None, speedup=60, batch=2,
           now=clock.now, sleep=clock.sleep)
    assert clock.t - 100.0 == pytest.approx(8.0)


def test_a_full_queue_is_retried_after_its_retry_after(tmp_path: Path) -> None:
    frame = read_events(_file(tmp_path, n=4))
    answers = iter([(429, {"retry-after": "3"}, b""), (503, {}, b""), (200, {}, b"{}")])
    clock = Clock()
    report = replay(frame, lambda body: next(answers), rate=None, speedup=None, batch=10,
                    now=clock.now, sleep=clock.sleep)
    assert report.accepted == 4 and report.retries == 2 and clock.slept[0] == 3.0


def test_refused_events_are_counted_and_the_replay_goes_on(tmp_path: Path) -> None:
    frame = read_events(_file(tmp_path, n=4))
    refusal = json.dumps({"errors": [{"index": 1, "reason": "ts must be a time"}]}).encode()
    answers = iter([(422, {}, refusal), (200, {}, b"{}")])
    clock = Clock()
    report = replay(frame, lambda body: next(answers), rate=None, speedup=None, batch=2,
                    now=clock.now, sleep=clock.sleep)
    assert report.refused == 1 and report.accepted == 3
    assert "ts must be a time" in report.summary()


def test_an_unauthorised_replay_stops_with_a_clear_message(tmp_path: Path) -> None:
    frame = read_events(_file(tmp_path, n=2))
    with pytest.raises(ConfigError, match="answered 401"):
        replay(frame, lambda body: (401, {}, b'{"detail": "token"}'), rate=None, speedup=None)


def test_bad_files_are_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="no such file"):
        read_events(tmp_path / "nope.csv")
    (tmp_path / "a.csv").write_text("user_id,when\nu1,now\n")
    with pytest.raises(IngestError, match="ts, event_type are missing|ts"):
        read_events(tmp_path / "a.csv")
    (tmp_path / "b.csv").write_text("user_id,ts,event_type\nu1,not a time,view\n")
    with pytest.raises(IngestError, match="row 1 has a timestamp"):
        read_events(tmp_path / "b.csv")
