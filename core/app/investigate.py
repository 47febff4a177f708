"""Investigate: explain a session, a user's view, and the lookups pages need.

Use cases take an open ``Store`` first. SHAP and the detectors load inside the functions that
explain, so a front end that only reads stays fast.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd

from core import lookups
from core.schema import LABEL_SOURCES
from core.store import Store, iso_text

if TYPE_CHECKING:  # core.explain loads torch (slow): only the functions that explain import it
    from core.explain import AttentionMaps, SessionExplanation, WhyExplained

__all__ = [  # and, on first use, METHOD_TEXT and display_table (core.explain)
    "AttentionView", "UserView", "attention_view", "context_table", "event_type_names",
    "events_fingerprint", "explain", "explain_session", "find_users", "global_view",
    "headline", "label_versions", "method_text", "readable_name", "save_explanation",
    "scored_models", "session_labels", "session_models", "session_risk",
    "sessions_with_event_types", "store_summary", "user_view", "why", "why_saved",
]
_LAZY = {"METHOD_TEXT": "core.explain", "display_table": "core.explain"}


def __getattr__(name: str) -> Any:
    """``METHOD_TEXT`` and ``display_table``, re-exported on first use."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_LAZY[name]), name)


# --- lookups ----------------------------------------------------------------------------------
def store_summary(store: Store) -> dict[str, Any]:
    """The headline counts of the store."""
    return lookups.store_summary(store)


def events_fingerprint(store: Store) -> tuple:
    """Changes whenever events (and so sessions and users) may have: (events, last ingest
    id, its start time). A decision or a publish leaves it as it was."""
    return tuple(store.summary.events_fingerprint())


def headline(store: Store) -> dict[str, Any]:
    """The store's headline counts (events, sessions, users, time span, unit, path): what
    only an ingest changes, so a page can keep it on :func:`events_fingerprint`."""
    summary = store.summary
    first, last = summary.time_range()
    return {"path": str(store.path), "n_events": summary.count_events(),
            "n_sessions": summary.count_sessions(), "n_users": summary.count_users(),
            "unit": store.ingests.unit() or "session",
            "first_event_at": iso_text(first), "last_event_at": iso_text(last)}


def scored_models(store: Store) -> pd.DataFrame:
    """model_id, detector, created_at, train_end, n_scores, input_kind of every scored model."""
    return lookups.scored_models(store)


def session_labels(store: Store, sources: Sequence[str] = LABEL_SOURCES) -> pd.DataFrame:
    return lookups.session_labels(store, sources)


def label_versions(store: Store) -> dict[str, tuple[int, int]]:
    """source -> a fingerprint of its session labels: a cache of ground-truth labels keyed
    on it survives an analyst's decision."""
    return store.labels.versions()


def find_users(store: Store, text: str) -> list[str]:
    return lookups.find_users(store, text)


def event_type_names(store: Store) -> list[str]:
    return lookups.event_type_names(store)


def sessions_with_event_types(store: Store, event_types: Sequence[str]) -> list[str]:
    return lookups.sessions_with_event_types(store, event_types)


# --- a user -----------------------------------------------------------------------------------
class UserView(NamedTuple):
    """What a front end shows of one user: a page of sessions with scores, events (with
    per-event scores of one model, or none; aggregated per ``bucket`` beyond ``max_events``),
    linked accounts, and the user's totals."""

    sessions: pd.DataFrame
    events: pd.DataFrame
    linked: pd.DataFrame
    n_sessions: int
    n_events: int
    bucket: str | None  # None: every event is there; else e.g. "minute"

    @property
    def amount(self) -> float:
        """The sum of the user's event amounts (aggregated rows hold their sums)."""
        return float(self.events["amount"].sum())

    @property
    def devices_and_ips(self) -> tuple[int, int] | None:
        """(distinct devices, distinct IPs); None when events are aggregated (not counted)."""
        if self.bucket:
            return None
        return int(self.events["device_id"].nunique()), int(self.events["ip"].nunique())

    def n_pages(self, per_page: int) -> int:
        """How many pages of ``per_page`` sessions the user's sessions fill."""
        return -(-self.n_sessions // per_page)


def user_view(store: Store, user_id: str, event_model: str | None, page: int = 0, *,
              max_events: int, per_page: int) -> UserView:
    """One user, bounded whatever they did: at most ``max_events`` event rows and
    ``per_page`` sessions (page ``page``, newest first)."""
    n_events, n_sessions = lookups.user_counts(store, user_id)
    events = lookups.user_events_bounded(store, user_id, event_model, max_events, n_events)
    sessions = lookups.user_sessions_page(store, user_id, per_page, page * per_page)
    return UserView(sessions, events, lookups.linked_accounts(store, user_id), n_sessions,
                    n_events, events.attrs.get("bucket"))


# --- explanations -----------------------------------------------------------------------------
def explain(store: Store, session_id: str, model_id: str | None = None) -> SessionExplanation:
    """Why ``session_id`` was flagged (cached explanations reused), without writing it."""
    from core.explain import explain_session

    return explain_session(store, session_id, model_id=model_id, save=False)


def explain_session(store: Store, session_id: str, *, model_id: str | None = None,
                    use_cache: bool = True) -> SessionExplanation:
    """Why ``session_id`` was flagged; a newly computed explanation is saved when the store
    is writable (``core.explain.explain_session``)."""
    from core.explain import explain_session as explain_it

    return explain_it(store, session_id, model_id=model_id, use_cache=use_cache)


def why(store: Store, session_id: str) -> WhyExplained:
    """One "Why" across the models that flag the session (``core.explain.why``), from cached
    explanations where current; new ones are returned, not written (see ``save_explanation``)."""
    from core.explain import explain_why
    from core.policy import policy_in_force

    policy = policy_in_force(store)
    return explain_why(store, session_id, save=False,
                       policy_model=None if policy is None else policy.model_id)


def why_saved(store: Store, session_id: str, *, use_cache: bool = True) -> WhyExplained:
    """``why``, saving newly computed explanations when the store is writable (the CLI)."""
    from core.explain import explain_why
    from core.policy import policy_in_force

    policy = policy_in_force(store)
    return explain_why(store, session_id, use_cache=use_cache,
                       policy_model=None if policy is None else policy.model_id)


@dataclass(frozen=True)
class SessionRisk:
    """The alert policy's view of one session: its risk (0-100) and what that risk means."""

    risk: float | None
    kind: str | None  # "probability" or "percentile"
    model_id: str | None
    detector: str | None


def session_risk(store: Store, session_id: str) -> SessionRisk:
    """The session's risk under the alert policy's model (None before anything is scored or
    when that model has not scored the session)."""
    from core.policy import policy_in_force, risk_calibration

    policy = policy_in_force(store)
    if policy is None:
        return SessionRisk(None, None, None, None)
    score = store.scores.session_score(policy.model_id, session_id)
    calibration = risk_calibration(store, policy.model_id)
    if score is None or calibration is None:
        return SessionRisk(None, None, policy.model_id, policy.detector)
    risk = float(calibration.risk(np.array([score], dtype=np.float64))[0])
    return SessionRisk(risk, calibration.kind, policy.model_id, policy.detector)


def readable_name(name: str) -> str:
    """A feature name for people ('purchase events in the session', not count_log[...])."""
    from core.explain.why import readable_name as readable

    return readable(name)


def save_explanation(store: Store, found: SessionExplanation) -> None:
    """Keep ``found`` in the store's cache for the CLI, reports and other analysts."""
    from core.explain import save_explanation as save

    save(store, found)


def session_models(store: Store, session_id: str) -> pd.DataFrame:
    """model_id, detector, score, percentile, is_flagged for each model that scored it,
    the model ranking it highest first."""
    from core.explain.session import model_ranks, session_info

    ranks = model_ranks(store, session_info(store, session_id))
    return pd.DataFrame([{"model_id": r.model_id, "detector": r.detector, "score": r.score,
                          "percentile": r.percentile, "is_flagged": r.is_flagged}
                         for r in ranks],
                        columns=["model_id", "detector", "score", "percentile", "is_flagged"])


def global_view(store: Store, model_id: str, max_sessions: int) -> pd.DataFrame:
    """Mean |SHAP| per feature over ``model_id``'s flagged sessions (highest scores first)."""
    from core.explain import global_shap

    return global_shap(store, model_id, max_sessions=max_sessions)


def method_text() -> dict[str, str]:
    """Per-event method -> what it measures, in the order pages offer them."""
    from core.explain import METHOD_TEXT

    return dict(METHOD_TEXT)


def context_table(context: pd.DataFrame) -> pd.DataFrame:
    """An explanation's context (the session beside the user's and everyone's typical
    values) as shown to a person."""
    from core.explain import display_table

    return display_table(context)


@dataclass(frozen=True)
class AttentionView:
    """One choice of layer and head over a transformer's attention maps."""

    rollout: np.ndarray | None  # per event, when the layer is 'rollout'
    matrix: np.ndarray  # (events+1, events+1)
    title: str


def attention_view(maps: AttentionMaps, layer: int | str, head: int | str) -> AttentionView:
    """``layer`` 'rollout' (every layer, mixed with the residual stream, and the last layer's
    mean map) or 1-based; ``head`` 'mean' or 1-based."""
    from core.explain.sequence import attention_rollout

    if layer == "rollout":
        return AttentionView(attention_rollout(maps.weights), maps.weights[-1].mean(axis=0),
                             "Attention, last layer, mean of heads")
    chosen = maps.weights[int(layer) - 1]
    matrix = chosen.mean(axis=0) if head == "mean" else chosen[int(head) - 1]
    return AttentionView(None, matrix, f"Attention, layer {layer}, head {head}")
