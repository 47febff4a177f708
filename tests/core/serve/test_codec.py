"""The hot-path JSON codec reads and writes what the standard library does."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.serve import codec


@pytest.mark.parametrize("value", [
    {"event_id": "e1", "amount": 3.25, "quantity": 2, "text": "naïve ✓", "session_id": None},
    [1, -2, 0.5, True, None, "x"],
    {"big": 123456789012345678901234567890, "nested": {"a": [1, 2]}},
])
def test_round_trip_equals_the_standard_library(value):
    assert json.loads(codec.dumps(value)) == value
    text = json.dumps(value)
    assert codec.loads(text) == json.loads(text)
    assert codec.loads(text.encode()) == json.loads(text)


def test_long_integers_keep_every_digit():
    # orjson would read this as a float; an id must not change
    assert codec.loads('{"event_id": 12345678901234567890123}')["event_id"] == (
        12345678901234567890123)
    assert codec.loads(b'[98765432109876543210]') == [98765432109876543210]
    assert codec.loads(bytearray(b'[-98765432109876543210]')) == [-98765432109876543210]


@pytest.mark.parametrize("data, long", [
    ("1234567890123456789", False), ("12345678901234567890", True),
    ("[1234567890, 1234567890]", False), ('{"a": "x98765432109876543210y"}', True),
    ("ü" + "0" * 19 + "ü", False), ("9" * 40, True)])
def test_twenty_digits_in_a_row_are_found_in_text_and_bytes(data, long):
    assert codec._has_long_digits(data) is long
    assert codec._has_long_digits(data.encode()) is long


@pytest.mark.parametrize("text", ["NaN", "[Infinity]", "[1,]", "{", ""])
def test_invalid_json_is_refused(text):
    with pytest.raises(ValueError):
        codec.loads(text)


def test_numpy_scalars_are_numbers():
    out = json.loads(codec.dumps({"risk": np.float64(0.5), "n": np.int64(3),
                                  "flag": np.bool_(True)}))
    assert out == {"risk": 0.5, "n": 3, "flag": True}


def test_without_orjson_the_standard_library_answers(monkeypatch):
    monkeypatch.setattr(codec, "_orjson", None)
    value = {"event_id": "e1", "amount": 1.5, "text": "ü"}
    assert codec.loads(codec.dumps(value)) == value
    with pytest.raises(ValueError):
        codec.loads("[NaN]")
