"""Request bodies: JSON arrays and NDJSON, ingest's rules per event, hostile input."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from core.ingest.events import ingest_events
from core.serve.events_in import BodyError, parse_events
from core.store import Store

GOOD = {"user_id": "u1", "ts": "2026-01-01T10:00:00Z", "event_type": "view", "amount": "12.5",
        "quantity": 2, "device_id": "d1", "campaign": "spring"}


def test_a_json_array_and_ndjson_give_the_same_rows() -> None:
    second = {"user_id": "u2", "ts": 1767261600}
    array = parse_events(json.dumps([GOOD, second]).encode())
    ndjson = parse_events(f"{json.dumps(GOOD)}\n\n{json.dumps(second)}\n".encode())
    assert array.rows == ndjson.rows and not array.rejected
    first = array.rows[0]
    assert first["ts"] == "2026-01-01T10:00:00" and first["amount"] == 12.5
    assert first["quantity"] == 2 and json.loads(first["extra"]) == {"campaign": "spring"}
    assert array.rows[1]["event_type"] == "event"  # ingest's default for a missing type


def test_event_ids_are_batch_ingests_content_hash() -> None:
    plain = {k: v for k, v in GOOD.items() if k != "campaign"}
    parsed = parse_events(json.dumps([plain]).encode())
    with Store.open(":memory:") as store:
        ingest_events(store, pd.DataFrame([plain]))
        stored = store.con.execute("SELECT event_id FROM events").fetchone()[0]
    assert parsed.rows[0]["event_id"] == stored


def test_bad_events_get_ingests_reasons_by_index() -> None:
    body = json.dumps([GOOD, {"ts": "2026-01-01"}, {"user_id": "u", "ts": "soon"},
                       {"user_id": "u", "ts": "2999-01-01"}, [1], {"user_id": {"a": 1}},
                       {"user_id": "u", "ts": "2026-01-01", "amount": "x"},
                       {"user_id": "x" * 1001, "ts": "2026-01-01"}, True]).encode()
    parsed = parse_events(body)
    reasons = dict(parsed.rejected)
    assert [r["index"] for r in parsed.rows] == [0]
    assert reasons[1] == "user_id is empty"
    assert reasons[2].startswith("ts soon is not a timestamp")
    assert "outside the plausible time window" in reasons[3]
    assert reasons[4] == "an event must be a JSON object, got an array"
    assert reasons[5] == "user_id must be a string or a number, got an object"
    assert reasons[6] == "amount x is not a number"
    assert reasons[7] == "user_id is 1001 characters long (at most 1000)"
    assert reasons[8] == "an event must be a JSON object, got a boolean"


@pytest.mark.parametrize(("body", "status", "words"), [
    (b"\xff\xfe[]", 400, "must be UTF-8"),
    (b"[" * 100_000, 400, "nesting too deep"),
    (b"[{\"a\": NaN}]", 400, "must be valid JSON"),
    (b"[{\"a\": " + b"9" * 5000 + b"}]", 400, "must be valid JSON"),
    (b"{\"a\": 1}\n{oops", 400, "NDJSON line 2"),
    (b"   ", 400, "empty body"),
    (b"x" * 2000, 413, "at most 1,000 bytes"),
    (b"[" + b",".join([b"{}"] * 11) + b"]", 413, "at most 10 events"),
])
def test_hostile_bodies_are_refused_whole(body: bytes, status: int, words: str) -> None:
    with pytest.raises(BodyError, match=words) as caught:
        parse_events(body, max_bytes=1000 if status == 413 else 1 << 20, max_events=10)
    assert caught.value.status == status


def test_huge_and_odd_numbers_never_crash() -> None:
    body = b'[{"user_id": 1e308, "ts": 1e300}, {"user_id": 12345678901234567890, ' \
           b'"ts": -5}, {"user_id": "u", "ts": "2026-01-01", "quantity": 1e12}]'
    parsed = parse_events(body)
    assert [i for i, _ in parsed.rejected] == [0, 1, 2]
    assert "quantity" in dict(parsed.rejected)[2]
