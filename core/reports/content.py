"""Everything a case report shows, gathered once as plain JSON-ready values.

HTML, PDF and the JSON bundle all render this one structure, so the three formats cannot
disagree. A decided case reads its scores, thresholds and model versions from the snapshot
frozen at the decision; an undecided one from the store as it is now.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import pandas as pd

from core.cases import audit_trail, case_notes, get_case
from core.cases.audit import now_utc
from core.cases.snapshot import case_session_scores
from core.errors import AnomalystError
from core.json_safe import json_records, json_safe
from core.reports.masking import Masker, mask_ip
from core.store import Store

log = logging.getLogger(__name__)

REPORT_FORMAT = "anomalyst-case-report"
REPORT_VERSION = 1
MAX_EXPLAINED_SESSIONS = 10
"""Explanations are computed per session (SHAP and friends): the first ten flagged sessions
(then unflagged ones) are explained; the report says when more were left out."""


@dataclass(frozen=True)
class CaseReport:
    """The report's content (JSON-ready) and the user's events (for CSV, timeline, tables)."""

    content: dict[str, Any]
    events: pd.DataFrame  # the user's events; ``in_case`` marks the case's sessions


def gather_case_report(store: Store, case_id: str, *, actor: str, mask: bool = False,
                       explain: bool = True) -> CaseReport:
    """Collect the case, user, sessions and scores, explanations, notes and audit trail."""
    case = get_case(store, case_id)
    session_ids = list(case.session_ids)
    events = _events(store, case.user_id, session_ids)
    as_of, frozen = case_session_scores(store, case.snapshot, session_ids)
    sessions = _sessions(store, session_ids, frozen["sessions"])
    content: dict[str, Any] = {
        "format": REPORT_FORMAT, "format_version": REPORT_VERSION,
        "generated_at": now_utc().isoformat(), "generated_by": actor, "masked": mask,
        "case": {k: v for k, v in case.to_dict().items() if k != "snapshot"},
        "user": _profile(store, case.user_id),
        "scores_as_of": as_of,
        "models": frozen["models"], "thresholds": frozen["thresholds"],
        "policy": frozen.get("policy"),
        "sessions": sessions,
        "explanations": _explanations(store, sessions) if explain else {},
        "notes": json_records(case_notes(store, case_id)),
        "audit": json_records(audit_trail(store, case_id)),
        "snapshot": case.snapshot,
        "event_model": events.attrs.get("event_model"),
        "n_events": int(events.attrs.get("n_events", len(events))),
        "n_events_in_report": int(len(events)),
        "events_note": events.attrs.get("note"),
    }
    if mask:
        masker = Masker(devices=events["device_id"].dropna().unique(),
                        payments=events["payment_id"].dropna().unique())
        content, events = _masked(content, events, masker)
    return CaseReport(json_safe(content), events)


MAX_REPORT_EVENTS = 20_000
"""A report holds at most this many of the user's events (the case's sessions' first, then the
newest), and says so: a bot's million events made a report too big and too slow to use
(issue #20, item 10; docs/BENCHMARKS.md, 'Measurements behind design choices')."""


def _events(store: Store, user_id: str, session_ids: list[str]) -> pd.DataFrame:
    from core.lookups import user_counts, user_events_preferring

    models = store.cases.event_score_models(session_ids)
    model_id = models[0] if models else None
    total = user_counts(store, user_id)[0]
    note = None
    if total > MAX_REPORT_EVENTS:
        events = user_events_preferring(store, user_id, model_id, session_ids,
                                        MAX_REPORT_EVENTS)
        note = (f"This report holds {len(events):,} of the user's {total:,} events: those of "
                "the case's sessions first, then the newest others. The store has them all.")
    else:
        events = store.users.events(user_id, model_id)
    events["in_case"] = events["session_id"].isin(session_ids)
    events.attrs.update(event_model=model_id, n_events=total, note=note)
    return events


def _sessions(store: Store, session_ids: list[str], scored: list[dict[str, Any]]
              ) -> list[dict[str, Any]]:
    meta = store.sessions.meta_of(session_ids).set_index("session_id")
    labels = {}
    for source in ("ground_truth", "analyst"):
        frame = store.labels.session_labels([source])
        frame = frame[frame["session_id"].isin(session_ids)]
        labels[source] = {r.session_id: {"is_anomaly": bool(r.is_anomaly), "scenario": r.scenario}
                          for r in frame.itertuples()}
    by_id = {s["session_id"]: s for s in scored}
    out = []
    for session_id in session_ids:
        row = meta.loc[session_id] if session_id in meta.index else None
        frozen = by_id.get(session_id, {})
        scores = frozen.get("scores", {})
        out.append({
            "session_id": session_id,
            "start_ts": frozen.get("start_ts") or (None if row is None else row["start_ts"]),
            "end_ts": None if row is None else row["end_ts"],
            "n_events": None if row is None else int(row["n_events"]),
            "country": frozen.get("country") or (None if row is None else row["country"]),
            "tenure": frozen.get("tenure"),
            # the policy's verdict (snapshot 2); a version-1 snapshot had only per-model flags
            "flagged": bool(frozen["flagged"]) if "flagged" in frozen else any(
                v.get("flagged") for v in scores.values()),
            "risk": frozen.get("risk"),
            "scores": scores,
            "ground_truth": labels["ground_truth"].get(session_id),
            "analyst": labels["analyst"].get(session_id),
        })
    return json_safe(out)


def _profile(store: Store, user_id: str) -> dict[str, Any]:
    row = store.users.profile(user_id)
    labels = store.users.label_rows(user_id)
    return json_safe({"user_id": user_id, **row, "labels": json_records(labels)})


def _explanations(store: Store, sessions: list[dict[str, Any]]) -> dict[str, Any]:
    ordered = sorted(sessions, key=lambda s: not s["flagged"])
    out: dict[str, Any] = {}
    for i, session in enumerate(ordered):
        sid = session["session_id"]
        if i >= MAX_EXPLAINED_SESSIONS:
            out[sid] = {"available": False, "reason": f"only the first "
                        f"{MAX_EXPLAINED_SESSIONS} sessions are explained in a report"}
            continue
        try:
            from core.explain import explain_why  # built beside this feature; optional

            found = explain_why(store, sid)  # the combined Why, then its leading model's view
            lead = found.why.models[0].model_id if found.why.models else None
            detail = found.explanations.get(lead) if lead else None
            out[sid] = {"available": True, "reasons": found.why.lines(),
                        "why": json_safe(found.why.to_dict()),
                        "detail": None if detail is None else json_safe(detail.to_dict())}
        except ImportError as exc:
            out[sid] = {"available": False, "reason": f"the explain module is missing ({exc})"}
        except AnomalystError as exc:
            out[sid] = {"available": False, "reason": str(exc)}
    return out


def _masked(content: dict[str, Any], events: pd.DataFrame, masker: Masker
            ) -> tuple[dict[str, Any], pd.DataFrame]:
    events = events.copy()
    for column in ("device_id", "payment_id"):
        kind = "device" if column == "device_id" else "payment"
        events[column] = events[column].map(lambda v, k=kind: v if pd.isna(v) else
                                             masker.token(k, str(v)))
    events["ip"] = events["ip"].map(lambda v: v if pd.isna(v) else mask_ip(str(v)))
    events["text"] = events["text"].map(lambda v: v if pd.isna(v) else masker.text(str(v)))
    masked = dict(content)
    for key in ("notes", "audit", "explanations"):
        masked[key] = masker.deep(content[key])
    masked["case"] = {**content["case"], "title": masker.deep(content["case"]["title"])}
    entity = content["case"].get("entity_value")  # a case opened on an entity (v13)
    if entity is not None:
        kind = content["case"].get("entity_kind")
        masked["case"]["entity_value"] = (
            masker.token("device", entity) if kind == "device_id"
            else masker.token("payment", entity) if kind == "payment_id"
            else mask_ip(entity) if kind == "ip" else masker.deep(entity))
    return masked, events
