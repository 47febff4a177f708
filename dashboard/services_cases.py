"""The Cases page's door to ``core.app.cases``: cached reads, audited writes.

Reads are cached on the store's stamp like every other read (``dashboard.services``). Writes
open the store read-write through ``services.with_store`` (which checks the signed-in role on
the server) and clear the cached reads, so the page shows the change on the rerun.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import pandas as pd
import streamlit as st

from core.app import cases as core_cases
from dashboard import services

if TYPE_CHECKING:
    from core.app.data import Store

T = TypeVar("T")


def decisions() -> tuple[str, ...]:
    """The decisions a case can close with."""
    return tuple(core_cases.DECISIONS)


def suppression_kinds() -> tuple[str, ...]:
    """What can be snoozed: users, devices, IPs."""
    return tuple(core_cases.SUPPRESSION_KINDS)


# --- reads ------------------------------------------------------------------------------------
@st.cache_data(show_spinner=False, max_entries=16)
def case_table(stamp: str, path: str, statuses: tuple[str, ...]) -> pd.DataFrame:
    return services.with_store(lambda s: core_cases.list_cases(s, statuses))


@st.cache_data(show_spinner=False, max_entries=32)
def case(stamp: str, path: str, case_id: str) -> core_cases.Case:
    return services.with_store(lambda s: core_cases.get_case(s, case_id))


@st.cache_data(show_spinner=False, max_entries=32)
def notes(stamp: str, path: str, case_id: str) -> pd.DataFrame:
    return services.with_store(lambda s: core_cases.case_notes(s, case_id))


@st.cache_data(show_spinner=False, max_entries=32)
def audit(stamp: str, path: str, case_id: str) -> pd.DataFrame:
    frame = services.with_store(lambda s: core_cases.audit_trail(s, case_id))
    return frame.assign(detail=frame["detail"].map(_detail_text))


@st.cache_data(show_spinner="Reading scores…", max_entries=32)
def session_scores(stamp: str, path: str, case_id: str) -> tuple[str, pd.DataFrame]:
    """('decision' | 'now', one row per case session): the policy's risk (0-100) and verdict
    first, then each detector's score as its percentile (raw scores have seven scales)."""
    as_of, frozen = services.with_store(lambda s: core_cases.case_scores(s, case_id))
    rows = []
    for item in frozen["sessions"]:
        risk = item.get("risk")
        row: dict[str, Any] = {"session_id": item["session_id"],
                               "risk": None if risk is None else round(float(risk)),
                               # the policy's verdict; snapshots before policies: any model
                               "flagged": item["flagged"] if "flagged" in item else any(
                                   v.get("flagged") for v in item["scores"].values()),
                               "start": pd.Timestamp(item["start_ts"])}
        for value in item["scores"].values():
            pct = value["percentile"]
            row[f"{value['detector']} %ile"] = None if pct is None else round(float(pct))
        rows.append(row)
    return as_of, pd.DataFrame(rows)


@st.cache_data(show_spinner=False, max_entries=4, ttl=60)
def suppressions(stamp: str, path: str) -> pd.DataFrame:
    """Active suppressions (re-read every minute too: they expire without any write)."""
    return services.with_store(core_cases.active_suppressions)


# --- writes (audited in core; role-checked in services.with_store) -----------------------------
def _write(func: Callable[[Store], T], action: str) -> T:
    try:
        return services.with_store(func, write=True, action=action)
    finally:
        services.forget_reads()


def open_case(analyst: str, *, user_id: str | None = None,
              session_id: str | None = None) -> core_cases.Case:
    return _write(lambda s: core_cases.open_case(s, analyst=analyst, user_id=user_id,
                                                 session_id=session_id), "case")


def claim(case_id: str, analyst: str) -> core_cases.Case:
    return _write(lambda s: core_cases.claim_case(s, case_id, analyst=analyst), "case")


def next_case(analyst: str) -> core_cases.Case | None:
    return _write(lambda s: core_cases.next_case(s, analyst=analyst), "case")


def assign(case_id: str, assignee: str, analyst: str) -> core_cases.Case:
    return _write(lambda s: core_cases.assign_case(s, case_id, assignee, analyst=analyst),
                  "case")


def add_note(case_id: str, text: str, analyst: str) -> int:
    return _write(lambda s: core_cases.add_note(s, case_id, text, analyst=analyst), "case")


def decide(case_ids: Sequence[str], decision: str, analyst: str, scenario: str | None,
           note: str | None) -> list[core_cases.Case]:
    return _write(lambda s: core_cases.decide_cases(s, list(case_ids), decision,
                                                    analyst=analyst, scenario=scenario,
                                                    note=note), "case")


def reopen(case_id: str, analyst: str, reason: str | None) -> core_cases.Case:
    return _write(lambda s: core_cases.reopen_case(s, case_id, analyst=analyst, reason=reason),
                  "case")


def snooze(kind: str, value: str, days: float, reason: str, analyst: str,
           case_id: str | None = None) -> int:
    return _write(lambda s: core_cases.snooze(s, kind, value, days=days, reason=reason,
                                              analyst=analyst, case_id=case_id), "snooze")


def lift(suppression_id: int, analyst: str) -> int:
    _write(lambda s: core_cases.lift(s, suppression_id, analyst=analyst), "snooze")
    return suppression_id


def report(case_id: str, fmt: str, mask: bool, analyst: str) -> bytes:
    """The rendered report (its 'export' audit row is written with it)."""
    return _write(lambda s: core_cases.report_bytes(s, case_id, fmt, actor=analyst,
                                                    mask_personal_data=mask), "export")


def _detail_text(detail: Any) -> str:
    if not isinstance(detail, dict):
        return ""
    shown = {k: v for k, v in detail.items()
             if k != "previous_snapshot" and v is not None and v is not False}
    return ", ".join(f"{k}: {v}" for k, v in shown.items())
