"""Hostile and personal text planted in the report tests, and a stand-in explain module."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.errors import ConfigError
from core.store import Store

XSS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '<a href="javascript:alert(1)">click</a>',
    "[click me](javascript:alert(1))",
    '"><svg onload=alert(1)>',
]
PII_TEXT = "call +1 415 555 0100, mail victim@example.com, from 198.51.100.23"
PII_RAW = ["415 555 0100", "victim@example.com", "198.51.100.23"]


@dataclass(frozen=True)
class Planted:
    db: Path
    decided: str  # case id, decided fraud_confirmed
    open: str  # case id, not decided
    device_ids: tuple[str, ...]  # the decided case user's devices
    ips: tuple[str, ...]


class FakeExplanation:
    def __init__(self, session_id: str) -> None:
        self.reasons = [f"odd burst of payments in {session_id}", XSS[0], PII_TEXT]

    def to_dict(self) -> dict[str, object]:
        return {"method": "fake", "reasons": self.reasons, "top_feature": XSS[1]}


def fake_explain(store: Store, session_id: str, model_id: str | None = None) -> FakeExplanation:
    if session_id.endswith(("1", "3", "5", "7", "9")):
        raise ConfigError(f"model must support explanations, got none for {session_id}.")
    return FakeExplanation(session_id)


@dataclass(frozen=True)
class FakeModel:
    model_id: str = "fake-model"


class FakeWhy:
    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        self.models = (FakeModel(),)

    def lines(self) -> list[str]:
        return FakeExplanation(self.session_id).reasons

    def to_dict(self) -> dict[str, object]:
        return {"reasons": self.lines(), "note": XSS[2]}


@dataclass(frozen=True)
class FakeFound:
    why: FakeWhy
    explanations: dict[str, FakeExplanation]


def fake_explain_why(store: Store, session_id: str) -> FakeFound:
    """The combined Why's stand-in: the same reasons, and the leading model's view."""
    return FakeFound(FakeWhy(session_id),
                     {"fake-model": fake_explain(store, session_id)})
