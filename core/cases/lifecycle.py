"""Case lifecycle: open, claim/assign, notes, decide (alone or in bulk), reopen, next case.

Status runs open -> investigating (someone claimed it) -> closed (decided); reopening goes
back. A decision writes one session label per case session with source ``analyst`` (the note
column names the case), so evaluation and the Thresholds page use it at once. Every change and
its audit row are one transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pandas as pd

from core.cases.audit import now_utc, record, require_analyst
from core.cases.scoring import ScoreContext
from core.cases.snapshot import build_snapshot
from core.errors import ConfigError
from core.schema import MAX_TEXT_CHARS, NORMAL_SCENARIO
from core.store import Store
from core.store.cases import Case

STATUSES: tuple[str, ...] = ("open", "investigating", "closed")
DECISIONS: tuple[str, ...] = ("fraud_confirmed", "false_positive", "inconclusive")
MAX_SCENARIO_CHARS = 200


def get_case(store: Store, case_id: str) -> Case:
    """The case ``case_id``; ConfigError naming how to list cases when there is none."""
    case = store.cases.get(case_id)
    if case is None:
        raise ConfigError(
            f"case id must name an existing case, got {case_id!r}. List them with "
            "`anomalyst case list`."
        )
    return case


def list_cases(store: Store, statuses: Sequence[str] = STATUSES,
               assignee: str | None = None) -> pd.DataFrame:
    """Cases with the given statuses (and assignee), oldest first, with session/note counts."""
    for status in statuses:
        _check_choice("status", status, STATUSES)
    return store.cases.by_status(statuses, assignee)


def case_notes(store: Store, case_id: str) -> pd.DataFrame:
    """note_id, author, created_at, text, oldest first."""
    return store.cases.notes(case_id)


def open_case(store: Store, *, analyst: str, user_id: str | None = None,
              session_id: str | None = None, session_ids: Sequence[str] | None = None,
              title: str | None = None) -> Case:
    """Open a case for a user or one of their sessions and return it.

    From a session: the case covers that session. From a user: the sessions given, else the
    user's sessions that a current model flags, else all of them. A user with an active
    (open or investigating) case gets that case back with the new sessions added.
    """
    analyst = require_analyst(analyst)
    if (user_id is None) == (session_id is None):
        raise ConfigError(
            f"a case must be opened from exactly one user or session, got user={user_id!r}, "
            f"session={session_id!r}. Pass --user or --session."
        )
    if session_id is not None:
        owner = store.sessions.owner(session_id)
        if owner is None:
            raise ConfigError(f"session must exist in the store, got {session_id!r}. Check "
                              "the id on the Flagged queue or User page.")
        user_id, wanted = owner, [session_id]
    else:
        assert user_id is not None
        own = store.users.session_ids(user_id)
        if not own:
            raise ConfigError(f"user must have sessions in the store, got {user_id!r}. Check "
                              "the id on the User page.")
        if session_ids:
            unknown = sorted(set(session_ids) - set(own))
            if unknown:
                raise ConfigError(f"sessions must belong to user {user_id!r}, got "
                                  f"{unknown[:5]}. Pick the user's own sessions.")
            wanted = list(session_ids)
        else:
            context = ScoreContext.build(store)
            wanted = context.flagged(own) or own
    now = now_utc()
    with store.transaction():
        existing = store.cases.active_of_user(user_id)
        if existing is not None:
            before = set(store.cases.session_ids(existing))
            added = [s for s in wanted if s not in before]
            if added:
                store.cases.add_sessions(existing, added)
                store.cases.touch(existing, now)
                record(store, analyst, "add_sessions", case_id=existing, entity=user_id,
                       detail={"session_ids": added}, now=now)
            case_id = existing
        else:
            case_id = store.cases.insert(user_id=user_id, title=_clean_text("title", title, 500),
                                         created_by=analyst, now=now)
            store.cases.add_sessions(case_id, wanted)
            record(store, analyst, "open", case_id=case_id, entity=user_id,
                   detail={"session_ids": wanted, "from": "session" if session_id else "user"},
                   now=now)
    return get_case(store, case_id)


def assign_case(store: Store, case_id: str, assignee: str, *, analyst: str) -> Case:
    """Give the case to ``assignee`` (an open case becomes investigating)."""
    return _assign(store, case_id, require_analyst(assignee), require_analyst(analyst),
                   "assign")


def claim_case(store: Store, case_id: str, *, analyst: str) -> Case:
    """Take the case yourself (an open case becomes investigating)."""
    analyst = require_analyst(analyst)
    return _assign(store, case_id, analyst, analyst, "claim")


def next_case(store: Store, *, analyst: str) -> Case | None:
    """Claim and return the oldest open, unassigned case; None when the queue is empty."""
    analyst = require_analyst(analyst)
    case_id = store.cases.next_open()
    return None if case_id is None else claim_case(store, case_id, analyst=analyst)


def add_note(store: Store, case_id: str, text: str, *, analyst: str) -> int:
    """Append a note to the case (closed cases too); returns the note id."""
    analyst = require_analyst(analyst)
    body = _clean_text("note", text, MAX_TEXT_CHARS)
    if not body:
        raise ConfigError("note must not be empty, got an empty text. Write the note first.")
    get_case(store, case_id)
    now = now_utc()
    with store.transaction():
        note_id = _insert_note(store, case_id, body, analyst, now)
    return note_id


def decide_case(store: Store, case_id: str, decision: str, *, analyst: str,
                scenario: str | None = None, note: str | None = None) -> Case:
    """Close the case with ``decision``, freeze the snapshot and write the analyst labels."""
    return decide_cases(store, [case_id], decision, analyst=analyst, scenario=scenario,
                        note=note)[0]


def decide_cases(store: Store, case_ids: Sequence[str], decision: str, *, analyst: str,
                 scenario: str | None = None, note: str | None = None) -> list[Case]:
    """Decide several cases alike, all or nothing (bulk decision)."""
    analyst = require_analyst(analyst)
    _check_choice("decision", decision, DECISIONS)
    scenario = _clean_text("scenario", scenario, MAX_SCENARIO_CHARS) or None
    body = _clean_text("note", note, MAX_TEXT_CHARS) or None
    if not case_ids:
        raise ConfigError("case ids must name at least one case, got none. Select cases first.")
    cases = [get_case(store, c) for c in dict.fromkeys(case_ids)]
    for case in cases:
        if case.status == "closed":
            raise ConfigError(
                f"case {case.case_id} must be open or investigating to be decided, got closed "
                f"({case.decision}). Reopen it first."
            )
    context = ScoreContext.build(store)
    now = now_utc()
    with store.transaction():
        for case in cases:
            snapshot = build_snapshot(store, context, case.session_ids, now)
            n_labels = len(case.session_ids) if decision != "inconclusive" else 0
            store.cases.set_decision(case.case_id, decision=decision, scenario=scenario,
                                     analyst=analyst, now=now, snapshot=snapshot)
            note_id = _insert_note(store, case.case_id, body, analyst, now) if body else None
            record(store, analyst, "decide", case_id=case.case_id, entity=case.user_id,
                   detail={"decision": decision, "scenario": scenario, "note_id": note_id,
                           "n_labels": n_labels, "bulk": len(cases) > 1}, now=now)
        _relabel_sessions(store, [s for c in cases for s in c.session_ids])
    return [get_case(store, c.case_id) for c in cases]


def _relabel_sessions(store: Store, session_ids: Sequence[str]) -> None:
    """Set the analyst label of ``session_ids`` to the latest conclusive decision of any closed
    case holding them (none without one), then the rollup; inside the caller's transaction.
    So a reopen or a later decision on one case never erases another case's decision."""
    store.cases.relabel_sessions(session_ids, normal_scenario=NORMAL_SCENARIO)
    store.labels.refresh_rollup(["analyst"])


def reopen_case(store: Store, case_id: str, *, analyst: str, reason: str | None = None) -> Case:
    """Reopen a closed case: its decision and analyst labels are withdrawn (kept in the audit)."""
    analyst = require_analyst(analyst)
    case = get_case(store, case_id)
    if case.status != "closed":
        raise ConfigError(f"case {case_id} must be closed to be reopened, got {case.status}. "
                          "Decide it instead.")
    now = now_utc()
    with store.transaction():
        removed = store.cases.analyst_labels(case_id)
        status = "investigating" if case.assignee else "open"
        store.cases.clear_decision(case_id, status=status, now=now)
        _relabel_sessions(store, case.session_ids)
        record(store, analyst, "reopen", case_id=case_id, entity=case.user_id, detail={
            "reason": _clean_text("reason", reason, MAX_TEXT_CHARS) or None,
            "previous_decision": case.decision, "previous_scenario": case.scenario,
            "previous_decided_by": case.decided_by,
            "previous_decided_at": None if case.decided_at is None else str(case.decided_at),
            "labels_removed": removed["session_id"].tolist(),
            "previous_snapshot": case.snapshot}, now=now)
    return get_case(store, case_id)


def _assign(store: Store, case_id: str, assignee: str, analyst: str, action: str) -> Case:
    case = get_case(store, case_id)
    if case.status == "closed":
        raise ConfigError(f"case {case_id} must be open or investigating to be assigned, got "
                          "closed. Reopen it first.")
    now = now_utc()
    with store.transaction():
        store.cases.set_assignee(case_id, assignee=assignee, status="investigating", now=now)
        record(store, analyst, action, case_id=case_id, entity=case.user_id,
               detail={"assignee": assignee, "previous_assignee": case.assignee}, now=now)
    return get_case(store, case_id)


def _insert_note(store: Store, case_id: str, body: str, analyst: str, now: dt.datetime) -> int:
    note_id = store.cases.insert_note(case_id, author=analyst, text=body, now=now)
    store.cases.touch(case_id, now)
    record(store, analyst, "note", case_id=case_id, entity=f"note:{note_id}",
           detail={"note_id": note_id, "text": body}, now=now)
    return note_id


def _check_choice(what: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ConfigError(f"{what} must be one of {', '.join(choices)}, got {value!r}.")


def _clean_text(what: str, value: str | None, limit: int) -> str:
    text = (value or "").strip()
    if len(text) > limit:
        raise ConfigError(f"{what} must be at most {limit:,} characters, got {len(text):,}. "
                          "Shorten it.")
    return text
