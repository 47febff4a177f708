"""Explanations cached in the store's ``explanations`` table, one row per (model, session, method).

Rows: ``summary`` (header, events, reasons, context, members), ``shap`` (the feature
attribution), one row per per-event method (``occlusion``, ``attention``, ``rollout``, ...) and
``attention_maps`` (the maps). A cached explanation is used while the model's score of the
session is the one it explained; after re-scoring with other results it is computed again.
All rows of a (model, session) are replaced together in one transaction.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from core.explain.explanation import SessionExplanation
from core.store import Store

SUMMARY = "summary"
SHAP = "shap"
ATTENTION = "attention_maps"  # not "attention": that is a per-event method's name
FORMAT = 3
"""Bumped when what an explanation holds changes (2: log-odds attributions of probability
outputs; 3: extra columns' context rows in words, 2026-12-07); a cached explanation of another
format is computed again."""


def _split(explanation: SessionExplanation) -> dict[str, dict[str, Any]]:
    whole = explanation.to_dict()
    rows: dict[str, dict[str, Any]] = {}
    if whole["features"] is not None:
        rows[SHAP] = whole["features"]
    if whole["attention"] is not None:
        rows[ATTENTION] = whole["attention"]
    for method, values in whole["event_contributions"].items():
        rows[method] = {"values": values}
    summary = {k: v for k, v in whole.items()
               if k not in ("features", "attention", "event_contributions", "from_cache")}
    summary["methods"] = sorted(whole["event_contributions"])
    summary["format"] = FORMAT
    rows[SUMMARY] = summary
    return rows


def save(store: Store, explanation: SessionExplanation) -> int:
    """Replace the cached rows of (model, session) with ``explanation``'s; returns the rows."""
    rows = _split(explanation)
    store.explanations.replace(explanation.model_id, explanation.session_id, rows,
                               computed_at=explanation.computed_at)
    return len(rows)


def load(store: Store, model_id: str, session_id: str) -> SessionExplanation | None:
    """The cached explanation, or None when there is none (or it is incomplete)."""
    payloads = store.explanations.cached(model_id, session_id)
    summary = payloads.get(SUMMARY)
    if summary is None or summary.pop("format", None) != FORMAT:
        return None
    methods = summary.pop("methods", [])
    if any(m not in payloads for m in methods):
        return None
    whole = {**summary, "features": payloads.get(SHAP), "attention": payloads.get(ATTENTION),
             "event_contributions": {m: payloads[m]["values"] for m in methods}}
    return SessionExplanation.from_dict(whole, from_cache=True)


def is_current(cached: SessionExplanation, score: float | None) -> bool:
    """Whether ``cached`` explains the score the model gives the session now."""
    if score is None or not math.isfinite(score):
        return True  # the model has not scored the session: nothing newer to compare with
    return math.isclose(cached.score, score, rel_tol=1e-9, abs_tol=1e-12)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)
