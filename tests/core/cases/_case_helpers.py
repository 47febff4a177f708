"""Helpers shared by the case tests."""

from __future__ import annotations

from core.store import Store


def flagged_session(store: Store) -> str:
    """A session the policy in force flags (the demo store always has some)."""
    from core.cases.scoring import ScoreContext

    context = ScoreContext.build(store)
    flagged = context.flagged(context.table.index)
    assert flagged, "the demo store must flag at least one session"
    return flagged[0]
