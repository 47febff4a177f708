"""The Python typing of well-formed requests equals batch ingest's SQL, row for row."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

import core.serve.events_in as events_in
from core.ingest.time_window import TimeWindow
from core.serve.events_fast import fast_rows
from core.serve.events_in import _flatten, parse_events

WINDOW = TimeWindow.parse()


def _both(body: bytes) -> tuple[Any, Any]:
    """parse_events with the fast path, then with the SQL alone."""
    fast = parse_events(body)
    events_in.FAST_PATH = False
    try:
        slow = parse_events(body)
    finally:
        events_in.FAST_PATH = True
    return fast, slow


def _event(rng: random.Random, i: int, odd: bool) -> dict[str, Any]:
    """A generated event of the common shape; ``odd``: now and then an edge of it."""
    second = rng.randrange(0, 86_400 * 30)
    frac = rng.choice(["", ".5", ".123456", ".000001", ".1"])
    sep = rng.choice(["T", " "])
    day, rest = divmod(second, 86_400)
    ts = (f"2026-11-{day + 1:02d}{sep}{rest // 3600:02d}:{rest % 3600 // 60:02d}:"
          f"{rest % 60:02d}{frac}")
    event: dict[str, Any] = {"event_id": f"e{i}", "user_id": f"u{rng.randrange(50)}",
                             "ts": ts, "event_type": rng.choice(["view", "login", "purchase"])}
    clean = {"amount": [12.5, 0, 3, -4.25, 123456.789, "7.50", "0012", 0.1, 19.99],
             "quantity": [1, 2, 0, -3, "5", "07"],
             "device_id": ["d1", "", "dé", "d'1"], "session_id": ["s1", ""],
             "text": ["great product", "", "naïve \"quote\"", "a\\b"],
             "browser": ["firefox", None, "Mozilla/5.0 (X11; Linux)"], "age": [31, "31", None]}
    edges = {"amount": ["", "12,5", 1.5e300, "nan", " 4", 1e-7, "1e3"],
             "quantity": ["2.0", 2.5, "x", 99999999999, ""],
             "browser": ["x\"y", "é", 3, "tab\there", "a\\b"]}
    for name, values in clean.items():
        if rng.random() < 0.4:
            pool = values + edges.get(name, []) if odd else values
            event[name] = rng.choice(pool)
    if odd and rng.random() < 0.05:
        event.pop("event_id")
    if odd and rng.random() < 0.03:
        event["ts"] = rng.choice(["1764590400", "2026-11-01T10:00:00Z", "2026-02-30 10:00:00",
                                  "1999-01-01 00:00:00", "2026-11-01T10:00:00.1234567"])
    return event


@pytest.mark.parametrize("batch", [1, 3, 25])
def test_generated_requests_type_the_same_on_both_paths(batch: int) -> None:
    rng = random.Random(batch)
    fast_taken = 0
    for k in range(150):
        odd = k % 2 == 1
        events = [_event(rng, k * batch + j, odd) for j in range(batch)]
        cells = [(i, _flatten(e)[0]) for i, e in enumerate(events)]
        fast_taken += fast_rows(cells, WINDOW) is not None
        fast, slow = _both(json.dumps(events).encode())
        assert fast.rows == slow.rows, events
        assert fast.rejected == slow.rejected, events
    assert fast_taken > 0  # the comparison covered the fast path, not only the fallback


def test_the_common_request_takes_the_fast_path() -> None:
    event = {"event_id": "e1", "user_id": "u1", "ts": "2026-11-02T10:00:00.25",
             "event_type": "purchase", "amount": 19.99, "quantity": 2, "ip": "10.0.0.1",
             "browser": "firefox"}
    rows = fast_rows([(0, _flatten(event)[0])], WINDOW)
    assert rows is not None and rows[0]["amount"] == 19.99 and rows[0]["quantity"] == 2
    assert rows[0]["extra"] == '{"browser":"firefox"}'


@pytest.mark.parametrize("change", [
    {"event_id": None}, {"ts": "1764590400"}, {"ts": "2026-11-02T10:00:00+01:00"},
    {"amount": "1e3"}, {"browser": 'say "hi"'}, {"ts": "1969-01-01T00:00:00"},
    {"user_id": ""},
])
def test_anything_unusual_goes_to_the_sql(change: dict[str, Any]) -> None:
    event = {"event_id": "e1", "user_id": "u1", "ts": "2026-11-02T10:00:00",
             "event_type": "view", "browser": "x"} | change
    event = {k: v for k, v in event.items() if v is not None}
    assert fast_rows([(0, _flatten(event)[0])], WINDOW) is None
    fast, slow = _both(json.dumps([event]).encode())
    assert (fast.rows, fast.rejected) == (slow.rows, slow.rejected)
