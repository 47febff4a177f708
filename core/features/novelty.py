"""What a model never saw in training: event types and transitions between event types.

A :class:`NoveltySpec` is learned with the feature spec from the training sessions (the
events before the train end), saved with the model, and turns into three columns per session:
events of a type never seen in training, consecutive pairs of event types never seen in
training, and that count as a share of the session's transitions. A column that is constant
0 in training and moves by one event is a large deviation after scaling
(core.detectors._scaling), so one impossible event among 40 ordinary ones stands out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np

from core.errors import ModelError
from core.store.features import rows as store_rows

NOVELTY_FEATURES = ("unseen_event_types_log", "unseen_transitions_log",
                    "unseen_transition_share")

MAX_TRANSITION_TYPES = 1000
"""With more event types than this in training, transitions are not kept (the pair list would
grow quadratically); only unseen event types are counted then."""


@dataclass(frozen=True)
class NoveltySpec:
    """Event types and (previous, next) type pairs seen in the training sessions."""

    event_types: tuple[str, ...]
    transitions: tuple[tuple[str, str], ...] | None

    @property
    def names(self) -> tuple[str, ...]:
        return NOVELTY_FEATURES

    def to_dict(self) -> dict[str, Any]:
        return {"event_types": list(self.event_types),
                "transitions": None if self.transitions is None
                else [list(p) for p in self.transitions]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NoveltySpec:
        try:
            pairs = data.get("transitions")
            return cls(tuple(str(t) for t in data["event_types"]),
                       None if pairs is None else tuple((str(a), str(b)) for a, b in pairs))
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(
                f"novelty spec must list event_types and transitions, got {exc}. Retrain the "
                "model."
            ) from exc


@dataclass(frozen=True)
class NoveltyHoldout:
    """Event types and transitions that exactly one training session holds, with the hash of
    that session's id (DuckDB's ``hash(session_id)``).

    Used only while the training matrix is built: each training session counts these as
    unseen, as if it had been left out of training (leave-one-session-out). Counted
    in-sample, every training session has novelty 0 by construction, while a new *normal*
    session meets a type or transition its training window never held about as often as a
    training session holds one that no other training session holds (Good-Turing: the share
    of singletons estimates the chance of something new). On a 300-type Markov chain 4.8% of
    training sessions hold such a transition and 4.6% of new normal ones an unseen one; counted
    in-sample, the models never saw that novelty is ordinary, and their label-free thresholds
    flagged ~5% of normal sessions instead of 0.5%. Not saved with the model: scoring counts
    against the whole training vocabulary.
    """

    types: dict[str, int]
    transitions: dict[tuple[str, str], int]


def learn_novelty_and_holdout(
    con: duckdb.DuckDBPyConnection, relation: str, params: dict[str, Any], *,
    holdout: bool = True,
) -> tuple[NoveltySpec, NoveltyHoldout | None]:
    """The event types and transitions of the events in ``relation`` (the training scope),
    and (with ``holdout``) what one training session alone holds: one grouped query per level
    (types, transitions), whose keys are the spec and whose session counts find the
    singletons."""
    per_key = "count(DISTINCT session_id), hash(min(session_id))" if holdout else "0, 0"
    rows = store_rows(con, f"""
        SELECT event_type, {per_key} FROM {relation} e
        WHERE event_type IS NOT NULL GROUP BY event_type""", params)
    types = tuple(sorted(str(t) for t, _, _ in rows))
    held_types = {str(t): int(h) for t, n, h in rows if n == 1}
    if len(types) > MAX_TRANSITION_TYPES:
        return NoveltySpec(types, None), NoveltyHoldout(held_types, {}) if holdout else None
    rows = store_rows(con, f"""
        SELECT prev, event_type, {per_key} FROM (
          SELECT session_id, event_type,
                 lag(event_type) OVER (PARTITION BY session_id ORDER BY ts, event_id) AS prev
          FROM {relation} e)
        WHERE prev IS NOT NULL AND event_type IS NOT NULL GROUP BY prev, event_type""", params)
    spec = NoveltySpec(types, tuple(sorted((str(a), str(b)) for a, b, _, _ in rows)))
    if not holdout:
        return spec, None
    return spec, NoveltyHoldout(held_types,
                                {(str(a), str(b)): int(h) for a, b, n, h in rows if n == 1})


def novelty_counts(spec: NoveltySpec, names: Sequence[str | None], type_codes: np.ndarray,
                   seg: np.ndarray, pos: np.ndarray, counts: np.ndarray,
                   holdout: NoveltyHoldout | None = None,
                   session_hashes: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per session (in ``seg`` order): unseen event types and unseen transitions.

    Args:
        names: event type of each code of ``type_codes``.
        type_codes: per event (scan order), the code of its type.
        seg: per event (scan order), its session index.
        pos: the scan rows in (session, time) order.
        counts: events per session.
        holdout: while building the training matrix, what each training session alone
            holds (counted as unseen for that session); ``session_hashes`` then gives each
            session index's ``hash(session_id)``.
    """
    m = len(counts)
    known = set(spec.event_types)
    unseen_code = np.array([n not in known for n in names], dtype=bool)
    unseen_event = unseen_code[type_codes]
    held = holdout is not None and session_hashes is not None
    if held and holdout.types:  # type: ignore[union-attr]
        owner = np.array([0 if n is None else holdout.types.get(n, 0)  # type: ignore[union-attr]
                          for n in names], dtype=np.uint64)
        owned = owner[type_codes]
        unseen_event = unseen_event | ((owned != 0) & (owned == session_hashes[seg]))  # type: ignore[index]
    unseen = np.bincount(seg[unseen_event], minlength=m)[:m].astype(np.float64)
    out = {"unseen_event_types": unseen}
    if spec.transitions is None or len(pos) < 2:
        out["unseen_transitions"] = np.zeros(m)
        return out
    index = {n: i for i, n in enumerate(names)}
    k = len(names)
    seen = np.zeros((k, k), dtype=bool)
    for a, b in spec.transitions:
        if a in index and b in index:
            seen[index[a], index[b]] = True
    ordered = type_codes[pos]
    seg_sorted = seg[pos]
    same = seg_sorted[1:] == seg_sorted[:-1]
    new_pair = same & ~seen[ordered[:-1], ordered[1:]]
    if held and holdout.transitions:  # type: ignore[union-attr]
        pair_owner = np.zeros((k, k), dtype=np.uint64)
        for (a, b), h in holdout.transitions.items():  # type: ignore[union-attr]
            if a in index and b in index:
                pair_owner[index[a], index[b]] = h
        owned = pair_owner[ordered[:-1], ordered[1:]]
        alone = (owned != 0) & (owned == session_hashes[seg_sorted[1:]])  # type: ignore[index]
        new_pair = new_pair | (same & alone)
    out["unseen_transitions"] = np.bincount(seg_sorted[1:][new_pair],
                                            minlength=m)[:m].astype(np.float64)
    return out
