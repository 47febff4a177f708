"""Cases, their sessions and notes, and the analyst labels their decisions write.

Case ids are C-00001, C-00002, ...: the next number is read inside the opening transaction
(DuckDB has one writer per file, and the primary key refuses a clash).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from core.store import Store


@dataclass(frozen=True)
class Case:
    """One case as stored, with the sessions it covers and the frozen snapshot (if decided)."""

    case_id: str
    user_id: str
    status: str
    assignee: str | None
    decision: str | None
    scenario: str | None
    title: str | None
    created_by: str
    created_at: dt.datetime
    updated_at: dt.datetime
    decided_by: str | None
    decided_at: dt.datetime | None
    entity_kind: str | None = None  # a case opened on an entity (v13): its column and value
    entity_value: str | None = None
    session_ids: tuple[str, ...] = ()
    snapshot: dict[str, Any] | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["session_ids"] = list(self.session_ids)
        for key in ("created_at", "updated_at", "decided_at"):
            out[key] = None if out[key] is None else pd.Timestamp(out[key]).isoformat()
        return out


_NEXT_ID = """
    SELECT coalesce(max(TRY_CAST(substr(case_id, 3) AS BIGINT)), 0) + 1 FROM cases
    WHERE case_id LIKE 'C-%'
"""
_INSERT = """
    INSERT INTO cases (case_id, user_id, status, assignee, title, created_by, created_at,
                       updated_at)
    VALUES ($case_id, $user_id, 'open', NULL, $title, $created_by, $now, $now)
"""
_ADD_SESSIONS = """
    INSERT OR IGNORE INTO case_sessions
    SELECT $case_id, s.session_id FROM unnest($session_ids) AS s(session_id)
"""
_BY_ID = "SELECT * FROM cases WHERE case_id = $case_id"
_SESSION_IDS = """
    SELECT cs.session_id FROM case_sessions cs JOIN sessions se USING (session_id)
    WHERE cs.case_id = $case_id ORDER BY se.start_ts, cs.session_id
"""
_ACTIVE_OF_USER = """
    SELECT case_id FROM cases WHERE user_id = $user_id AND status <> 'closed'
      AND entity_kind IS NULL
    ORDER BY created_at, case_id LIMIT 1
"""
_SET_ASSIGNEE = """
    UPDATE cases SET assignee = $assignee, status = $status, updated_at = $now
    WHERE case_id = $case_id
"""
_TOUCH = "UPDATE cases SET updated_at = $now WHERE case_id = $case_id"
_SET_DECISION = """
    UPDATE cases SET status = 'closed', decision = $decision, scenario = $scenario,
                     decided_by = $analyst, decided_at = $now, updated_at = $now,
                     snapshot = $snapshot
    WHERE case_id = $case_id
"""
_CLEAR_DECISION = """
    UPDATE cases SET status = $status, decision = NULL, scenario = NULL, decided_by = NULL,
                     decided_at = NULL, snapshot = NULL, updated_at = $now
    WHERE case_id = $case_id
"""
_LIST = """
    SELECT c.case_id, c.user_id, c.status, c.assignee, c.decision, c.scenario, c.title,
           c.created_by, c.created_at, c.updated_at, c.decided_by, c.decided_at,
           c.entity_kind, c.entity_value,
           (SELECT count(*) FROM case_sessions cs WHERE cs.case_id = c.case_id) AS n_sessions,
           (SELECT count(*) FROM case_notes n WHERE n.case_id = c.case_id) AS n_notes
    FROM cases c
    WHERE list_contains($statuses, c.status)
      AND (coalesce($assignee, '') = '' OR c.assignee = $assignee)
    ORDER BY c.created_at, c.case_id
"""
_NEXT_OPEN = """
    SELECT case_id FROM cases WHERE status = 'open' AND assignee IS NULL
    ORDER BY created_at, case_id LIMIT 1
"""
_NOTE_INSERT = """
    INSERT INTO case_notes VALUES (nextval('case_note_id_seq'), $case_id, $author, $now, $text)
    RETURNING note_id
"""
_NOTES = """
    SELECT note_id, author, created_at, text FROM case_notes WHERE case_id = $case_id
    ORDER BY created_at, note_id
"""
# Analyst labels: one per session; the note names the case that wrote it.
_ANALYST_LABELS_OF_CASE = """
    SELECT entity_id AS session_id, is_anomaly, scenario, created_at, note FROM labels
    WHERE level = 'session' AND source = 'analyst' AND note = $note
    ORDER BY entity_id
"""
# A session's analyst label is the latest conclusive decision of any closed case holding it
# (inconclusive adds none): rebuilt for the touched sessions after a decide or reopen.
_ANALYST_LABELS_CLEAR = """
    DELETE FROM labels
    WHERE level = 'session' AND source = 'analyst' AND starts_with(note, 'case:')
      AND list_contains($session_ids, entity_id)
"""
_ANALYST_LABELS_REBUILD = """
    INSERT OR REPLACE INTO labels (level, entity_id, is_anomaly, scenario, source, created_at,
                                   note, ingest_id)
    SELECT 'session', cs.session_id, c.decision = 'fraud_confirmed',
           CASE WHEN c.decision = 'fraud_confirmed' THEN c.scenario ELSE $normal END,
           'analyst', c.decided_at, 'case:' || c.case_id, NULL
    FROM case_sessions cs JOIN cases c ON c.case_id = cs.case_id
    WHERE list_contains($session_ids, cs.session_id) AND c.status = 'closed'
      AND c.decision IN ('fraud_confirmed', 'false_positive')
    QUALIFY row_number() OVER (PARTITION BY cs.session_id
                               ORDER BY c.decided_at DESC, c.case_id DESC) = 1
"""
_ANALYST_LABEL_COUNT = """
    SELECT count(*) FROM labels WHERE source = 'analyst' AND level = 'session'
"""
_EVENT_SCORE_MODELS = """
    SELECT m.model_id FROM models m
    WHERE m.model_id IN (SELECT DISTINCT model_id FROM event_scores
                         WHERE list_contains($session_ids, session_id))
    ORDER BY m.created_at DESC, m.model_id
"""


def label_note(case_id: str) -> str:
    """The note an analyst label carries: which case wrote it."""
    return f"case:{case_id}"


class Cases:
    """Reads and writes of ``cases``, ``case_sessions``, ``case_notes`` and analyst labels.
    Writers run inside the caller's transaction (with the audit row of the change)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    # --- reads ----------------------------------------------------------------------------
    def get(self, case_id: str) -> Case | None:
        """The case with its sessions (in time order), or None."""
        rows = self._store._frame("cases.get", _BY_ID, {"case_id": case_id})
        if rows.empty:
            return None
        row = {k: _none(v) for k, v in rows.iloc[0].to_dict().items()}
        raw = row.pop("snapshot", None)
        return Case(**row, session_ids=tuple(self.session_ids(case_id)),
                    snapshot=json.loads(raw) if raw else None)

    def session_ids(self, case_id: str) -> list[str]:
        rows = self._store._rows("cases.session_ids", _SESSION_IDS, {"case_id": case_id})
        return [str(r[0]) for r in rows]

    def active_of_user(self, user_id: str) -> str | None:
        """The user's oldest open or investigating case."""
        found = self._store._scalar("cases.active_of_user", _ACTIVE_OF_USER, {"user_id": user_id})
        return None if found is None else str(found)

    def next_open(self) -> str | None:
        """The oldest open, unassigned case."""
        found = self._store._scalar("cases.next_open", _NEXT_OPEN)
        return None if found is None else str(found)

    def by_status(self, statuses: Sequence[str], assignee: str | None = None) -> pd.DataFrame:
        """Cases of ``statuses`` (and ``assignee``), oldest first, with n_sessions, n_notes."""
        return self._store._frame("cases.by_status", _LIST,
                                  {"statuses": list(statuses), "assignee": assignee})

    def notes(self, case_id: str) -> pd.DataFrame:
        """note_id, author, created_at, text, oldest first."""
        return self._store._frame("cases.notes", _NOTES, {"case_id": case_id})

    def analyst_labels(self, case_id: str) -> pd.DataFrame:
        """session_id, is_anomaly, scenario, created_at, note of the labels ``case_id`` wrote."""
        return self._store._frame("cases.analyst_labels", _ANALYST_LABELS_OF_CASE,
                                  {"note": label_note(case_id)})

    def analyst_label_count(self) -> int:
        """How many session labels analysts' decisions have written."""
        return int(self._store._scalar("cases.analyst_label_count", _ANALYST_LABEL_COUNT) or 0)

    def event_score_models(self, session_ids: Sequence[str]) -> list[str]:
        """Models with per-event scores of any of ``session_ids``, newest first."""
        rows = self._store._rows("cases.event_score_models", _EVENT_SCORE_MODELS,
                                 {"session_ids": list(session_ids)})
        return [str(r[0]) for r in rows]

    # --- writes (inside the caller's transaction) -----------------------------------------
    def insert(self, *, user_id: str, title: str, created_by: str, now: dt.datetime) -> str:
        """Create an open case and return its new id."""
        case_id = f"C-{int(self._store._scalar('cases.next_id', _NEXT_ID)):05d}"
        self._store._execute("cases.insert", _INSERT, {
            "case_id": case_id, "user_id": user_id, "title": title, "created_by": created_by,
            "now": now})
        return case_id

    def add_sessions(self, case_id: str, session_ids: Sequence[str]) -> None:
        self._store._execute("cases.add_sessions", _ADD_SESSIONS,
                             {"case_id": case_id, "session_ids": list(session_ids)})

    def touch(self, case_id: str, now: dt.datetime) -> None:
        self._store._execute("cases.touch", _TOUCH, {"case_id": case_id, "now": now})

    def set_assignee(self, case_id: str, *, assignee: str, status: str,
                     now: dt.datetime) -> None:
        self._store._execute("cases.set_assignee", _SET_ASSIGNEE, {
            "case_id": case_id, "assignee": assignee, "status": status, "now": now})

    def set_decision(self, case_id: str, *, decision: str, scenario: str | None, analyst: str,
                     now: dt.datetime, snapshot: dict[str, Any]) -> None:
        self._store._execute("cases.set_decision", _SET_DECISION, {
            "case_id": case_id, "decision": decision, "scenario": scenario,
            "analyst": analyst, "now": now, "snapshot": json.dumps(snapshot)})

    def clear_decision(self, case_id: str, *, status: str, now: dt.datetime) -> None:
        self._store._execute("cases.clear_decision", _CLEAR_DECISION, {
            "case_id": case_id, "status": status, "now": now})

    def insert_note(self, case_id: str, *, author: str, text: str, now: dt.datetime) -> int:
        """Append a note; returns its id."""
        return int(self._store._scalar("cases.insert_note", _NOTE_INSERT, {
            "case_id": case_id, "author": author, "now": now, "text": text}))

    def relabel_sessions(self, session_ids: Sequence[str], *, normal_scenario: str) -> None:
        """Set the analyst label of ``session_ids`` to the latest conclusive decision of any
        closed case holding them (none without one). The label rollup is the caller's."""
        params = {"session_ids": list(dict.fromkeys(session_ids))}
        self._store._execute("cases.analyst_labels_clear", _ANALYST_LABELS_CLEAR, params)
        self._store._execute("cases.analyst_labels_rebuild", _ANALYST_LABELS_REBUILD,
                             {**params, "normal": normal_scenario})


def _none(value: Any) -> Any:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value
