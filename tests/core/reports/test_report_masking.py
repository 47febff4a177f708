"""Masking personal data inside free text, without touching ids, times and amounts."""

from __future__ import annotations

import pytest

from core.reports.masking import Masker, mask_ip


@pytest.mark.parametrize(("text", "masked"), [
    ("from 203.0.113.7 today", "from 203.0.113.••• today"),
    ("ip=10.0.0.1.", "ip=10.0.0.•••."),
    ("v6 2001:db8:85a3::8a2e:370:7334 seen", "v6 2001:db8:••• seen"),
    ("mail bob.smith+x@example.co.uk now", "mail •••@example.co.uk now"),
    ("call +1 (415) 555-0100", "call +• (•••) •••-••00"),
    ("or 0151 2345 6789", "or •••• •••• ••89"),
    ("bare 4155550100", "bare ••••••••00"),
])
def test_personal_data_is_masked(text: str, masked: str) -> None:
    assert Masker(key=b"k").text(text) == masked


@pytest.mark.parametrize("text", [
    "ts 2026-09-01T00:32:58.319 at 15:02:19",
    "session u1@2026-09-01T00:32:58 and s000123",
    "model autoencoder-20261123-150219-5e33",
    "amount 149.99, order 1234567, score 0.48100215196609497",
])
def test_ids_times_and_amounts_stay(text: str) -> None:
    assert Masker(key=b"k").text(text) == text


def test_device_tokens_are_keyed_and_stable_within_a_report() -> None:
    one = Masker(devices=["d1987801517"], payments=["card-77"], key=b"one")
    two = Masker(devices=["d1987801517"], key=b"two")
    text = "device d1987801517 paid with card-77 on d1987801517"
    out = one.text(text)
    token = one.token("device", "d1987801517")
    assert out == f"device {token} paid with {one.token('payment', 'card-77')} on {token}"
    assert token.startswith("device-") and token != two.token("device", "d1987801517")
    nested = one.deep({"a": [text, 3.5, None], "b": {"c": "from 198.51.100.2"}})
    assert nested == {"a": [out, 3.5, None], "b": {"c": "from 198.51.100.•••"}}
    assert mask_ip("198.51.100.2") == "198.51.100.•••"
