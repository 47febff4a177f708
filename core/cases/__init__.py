"""Cases: the analyst's workflow from a flagged session to a decision that teaches the models.

    open_case -> claim_case / assign_case -> add_note -> decide_case -> (reopen_case)

Every action is written to the append-only audit log in the same transaction as the change;
decisions become session labels with source ``analyst``; snoozing hides a user, device or IP
from the flagged queue until it expires.
"""

from __future__ import annotations

from core.cases.audit import AUDIT_ACTIONS, audit_trail, recent_audit, require_analyst
from core.cases.learning import LearningEffect, analyst_label_count, learning_effect
from core.cases.lifecycle import (
    DECISIONS,
    STATUSES,
    Case,
    add_note,
    assign_case,
    case_notes,
    claim_case,
    decide_case,
    decide_cases,
    get_case,
    list_cases,
    next_case,
    open_case,
    reopen_case,
)
from core.cases.suppressions import (
    SUPPRESSION_KINDS,
    active_suppressions,
    drop_suppressed,
    lift,
    snooze,
    suppressed_session_ids,
)

__all__ = [
    "AUDIT_ACTIONS",
    "DECISIONS",
    "STATUSES",
    "SUPPRESSION_KINDS",
    "Case",
    "LearningEffect",
    "active_suppressions",
    "add_note",
    "analyst_label_count",
    "assign_case",
    "audit_trail",
    "case_notes",
    "claim_case",
    "decide_case",
    "decide_cases",
    "drop_suppressed",
    "get_case",
    "learning_effect",
    "lift",
    "list_cases",
    "next_case",
    "open_case",
    "recent_audit",
    "reopen_case",
    "require_analyst",
    "snooze",
    "suppressed_session_ids",
]
