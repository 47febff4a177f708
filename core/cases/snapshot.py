"""The decision snapshot: what the detectors said when the analyst decided, frozen as JSON.

A report of a closed case reads its numbers from here, so it can be reproduced after the
models are retrained, thresholds moved or new data ingested.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import pandas as pd

from core.cases.scoring import ScoreContext
from core.store import Store

SNAPSHOT_VERSION = 2
"""2: the policy in force, and per session its risk and verdict (``flagged``); per model
``above_threshold`` (1 had per model ``flagged``)."""


def build_snapshot(store: Store, context: ScoreContext, session_ids: Sequence[str],
                   frozen_at: dt.datetime) -> dict[str, Any]:
    """Model versions, thresholds in force, each session's scores and percentiles per model,
    and the data's time range, as plain JSON-ready values."""
    first, last = store.summary.time_range()
    return {
        "snapshot_version": SNAPSHOT_VERSION,
        "frozen_at": frozen_at.isoformat(),
        "data_time_range": {"first_event_at": _iso(first), "last_event_at": _iso(last),
                            "n_sessions": int(len(context.table))},
        "models": context.model_versions(),
        "thresholds": context.thresholds(),
        "policy": context.policy_dict(),
        "sessions": context.sessions(session_ids),
    }


def case_session_scores(store: Store, snapshot: dict[str, Any] | None,
                        session_ids: Sequence[str]) -> tuple[str, dict[str, Any]]:
    """('decision', the snapshot) for a decided case, else ('now', the same keys computed from
    the store as it is now)."""
    if snapshot is not None:
        return "decision", snapshot
    context = ScoreContext.build(store)
    return "now", {"sessions": context.sessions(session_ids),
                   "models": context.model_versions(), "thresholds": context.thresholds(),
                   "policy": context.policy_dict()}


def _iso(value: Any) -> str | None:
    """ISO text; a stored timestamp beyond Python's years arrives as text and stays so."""
    if value is None or isinstance(value, str):
        return value
    return pd.Timestamp(value).isoformat()
