"""Cases: open, claim, note, decide, reopen and snooze, and a case's report.

Every write names its analyst. ``core.cases`` loads the detectors (its learning view scores
with them), so its names are imported on first use: ``anomalyst --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.app._lazy import lazy_exports
from core.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

    from core.cases import (  # noqa: F401  (the lazy names below, for type checkers)
        DECISIONS,
        STATUSES,
        SUPPRESSION_KINDS,
        Case,
        LearningEffect,
        active_suppressions,
        add_note,
        assign_case,
        audit_trail,
        case_notes,
        claim_case,
        decide_cases,
        get_case,
        learning_effect,
        lift,
        list_cases,
        next_case,
        open_case,
        reopen_case,
        snooze,
        suppressed_session_ids,
    )
    from core.cases.audit import record  # noqa: F401
    from core.csv_safe import csv_text  # noqa: F401
    from core.json_safe import json_records, json_safe  # noqa: F401
    from core.store import Store

_LAZY = {
    **dict.fromkeys((
        "DECISIONS", "STATUSES", "SUPPRESSION_KINDS", "Case", "LearningEffect",
        "active_suppressions", "add_note", "assign_case", "audit_trail", "case_notes",
        "claim_case", "decide_cases", "get_case", "learning_effect", "lift", "list_cases",
        "next_case", "open_case", "reopen_case", "snooze", "suppressed_session_ids"),
        "core.cases"),
    "record": "core.cases.audit",
    "csv_text": "core.csv_safe",
    "json_records": "core.json_safe",
    "json_safe": "core.json_safe",
}

__getattr__ = lazy_exports(__name__, _LAZY)


def cases_with_statuses(store: Store, statuses: tuple[str, ...] = (),
                        assignee: str | None = None) -> pd.DataFrame:
    """Cases with ``statuses`` (none given: all), oldest first, with session/note counts."""
    from core.cases import STATUSES, list_cases

    return list_cases(store, statuses or STATUSES, assignee)


def case_detail(store: Store, case_id: str) -> dict[str, Any]:
    """The case with its notes and audit trail, as JSON-safe values."""
    from core.cases import audit_trail, case_notes, get_case
    from core.json_safe import json_safe

    found = get_case(store, case_id)
    return json_safe({**found.to_dict(),
                      "notes": case_notes(store, case_id).to_dict(orient="records"),
                      "audit": audit_trail(store, case_id).to_dict(orient="records")})


def claim(store: Store, case_id: str | None, *, analyst: str) -> Case | None:
    """Claim ``case_id``, or without one the next open case (None when none is waiting)."""
    from core.cases import claim_case, next_case

    return (claim_case(store, case_id, analyst=analyst) if case_id
            else next_case(store, analyst=analyst))


def snooze_target(*, user_id: str | None = None, device: str | None = None,
                  ip: str | None = None) -> tuple[str, str]:
    """(kind, value) of the one user, device or IP named; ConfigError otherwise."""
    chosen = [(k, v) for k, v in (("user", user_id), ("device", device), ("ip", ip)) if v]
    if len(chosen) != 1:
        raise ConfigError(f"snooze must name exactly one of --user, --device, --ip, got "
                          f"{len(chosen)}. Name one.")
    return chosen[0]


def export_report(store: Store, case_id: str, fmt: str, out: Path, *,
                  mask_personal_data: bool = False, actor: str) -> Path:
    """Write the case report (html, pdf or a json bundle) to ``out``; returns the path."""
    from core.reports import export_case_report

    return export_case_report(store, case_id, fmt, Path(out),  # type: ignore[arg-type]
                              mask_personal_data=mask_personal_data, actor=actor)


def case_scores(store: Store, case_id: str) -> tuple[str, dict[str, Any]]:
    """('decision' | 'now', every detector's score, threshold and percentile of each of the
    case's sessions): frozen at the decision once decided, else as of now."""
    from core.cases import get_case
    from core.cases.snapshot import case_session_scores

    found = get_case(store, case_id)
    return case_session_scores(store, found.snapshot, found.session_ids)


def report_bytes(store: Store, case_id: str, fmt: str, *, actor: str,
                 mask_personal_data: bool = False) -> bytes:
    """The rendered case report (html, pdf or json); its 'export' audit row is written too."""
    from core.reports import render_case_report

    return render_case_report(store, case_id, fmt,  # type: ignore[arg-type]
                              actor=actor, mask_personal_data=mask_personal_data)
