"""The case report laid out once: a title and an ordered list of sections made of blocks.

The HTML template (``templates/case_report.html.j2``) and the PDF layout (``pdf_report.py``)
both iterate over :func:`report_document`, so the sections, their titles, their order and
their rows cannot drift between the two formats. Values stay plain text here; each renderer
escapes (HTML) or transliterates (PDF) them where it writes them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, ClassVar

import pandas as pd

from core.reports.content import CaseReport
from core.reports.timeline import Timeline, build_timeline

MAX_EVENT_ROWS = 2000


@dataclass(frozen=True)
class Cell:
    """A table cell the HTML styles: ``flag`` (flagged, red) or ``text`` (free text, wrapped)."""

    text: Any
    css: str


@dataclass(frozen=True)
class Para:
    """A muted paragraph, with an optional emphasised tail."""

    text: str
    strong: str | None = None
    kind: ClassVar[str] = "para"


@dataclass(frozen=True)
class Pairs:
    """Label / value rows."""

    rows: list[tuple[str, Any]]
    kind: ClassVar[str] = "pairs"


@dataclass(frozen=True)
class Table:
    """A table; ``widths`` are relative column widths for the PDF (the HTML sizes itself)."""

    headers: list[str]
    rows: list[list[Any]]
    numeric: tuple[int, ...] = ()
    css: str = ""
    widths: tuple[float, ...] | None = None
    kind: ClassVar[str] = "table"


@dataclass(frozen=True)
class Bullets:
    items: list[str]
    kind: ClassVar[str] = "bullets"


@dataclass(frozen=True)
class Subheading:
    text: str
    kind: ClassVar[str] = "subheading"


@dataclass(frozen=True)
class Folded:
    """Detail text (JSON) the HTML folds away under ``summary``."""

    summary: str
    text: str
    kind: ClassVar[str] = "folded"


@dataclass(frozen=True)
class Figure:
    """The timeline (``core.reports.timeline``): inline SVG in HTML, drawn shapes in the PDF."""

    layout: Timeline
    kind: ClassVar[str] = "figure"


Block = Para | Pairs | Table | Bullets | Subheading | Folded | Figure


@dataclass(frozen=True)
class Section:
    title: str
    blocks: list[Block]


@dataclass(frozen=True)
class Document:
    title: str
    subtitle: str
    sections: list[Section]


def report_document(report: CaseReport) -> Document:
    """The report's title, byline and sections, in the order both formats show them."""
    c = report.content
    case = c["case"]
    subtitle = (f"Generated {c['generated_at']} UTC by {c['generated_by']}"
                + (" · personal data masked" if c["masked"] else ""))
    on = (f"{case['entity_kind']} {case['entity_value']}" if case.get("entity_value")
          is not None else f"user {case['user_id']}")
    return Document(f"Case {case['case_id']} · {on}", subtitle, [
        _summary(c), _profile(c["user"]), _timeline(report), _sessions(c), _explanations(c),
        _events(report.events), _notes(c["notes"]), _audit(c["audit"]), _snapshot(c),
    ])


def _summary(c: dict[str, Any]) -> Section:
    case = c["case"]
    flagged = sum(1 for s in c["sessions"] if s["flagged"])
    return Section("Summary and decision", [Pairs([
        ("Status", case["status"]), ("Decision", case["decision"] or "not decided yet"),
        ("Scenario", case["scenario"]), ("Decided by", case["decided_by"]),
        ("Decided at (UTC)", _t(case["decided_at"])), ("Assignee", case["assignee"]),
        ("Title", case["title"]),
        *([("Opened on", f"{case['entity_kind']} {case['entity_value']} (an entity: its "
                         f"sessions of every user; the profile below is its busiest user's)")]
          if case.get("entity_value") is not None else []),
        ("Opened by", case["created_by"]),
        ("Opened at (UTC)", _t(case["created_at"])), ("Last change (UTC)", _t(case["updated_at"])),
        ("Sessions", f"{len(c['sessions'])} ({flagged} flagged by {_policy_name(c)})"),
        ("Scores as of", "the decision (frozen snapshot)" if c["scores_as_of"] == "decision"
         else "now (the case is not decided; nothing is frozen yet)"),
    ])])


def _policy_name(c: dict[str, Any]) -> str:
    """'alert policy v3' (the version frozen with the scores), or what flagged before policies."""
    policy = c.get("policy")
    if policy is None:
        return "at least one detector (the case predates alert policies)"
    return f"alert policy v{policy['version']}" + (" (default)" if policy["version"] == 0 else "")


def _profile(user: dict[str, Any]) -> Section:
    labels = ", ".join(f"{r['source']}: {_label(r)}" for r in user.get("labels", [])) or "none"
    return Section("User profile", [Pairs([
        ("User", user["user_id"]), ("Sessions", user["n_sessions"]), ("Events", user["n_events"]),
        ("First seen (UTC)", _t(user["first_seen"])), ("Last seen (UTC)", _t(user["last_seen"])),
        ("Devices", user["n_devices"]), ("IPs", user["n_ips"]),
        ("Payment methods", user["n_payment_methods"]), ("Countries", user["countries"]),
        ("Purchases", user["n_purchases"]), ("Total amount", _num(user["total_amount"], 2)),
        ("User-level labels", labels),
    ])])


def _timeline(report: CaseReport) -> Section:
    sessions = pd.DataFrame(report.content["sessions"])
    bands = sessions[["session_id", "start_ts", "end_ts"]].dropna() if len(sessions) else (
        pd.DataFrame(columns=["session_id", "start_ts", "end_ts"]))
    layout = build_timeline(report.events, bands)
    model = report.content["event_model"]
    legend = (f"Dot size: per-event anomaly score of {model}" if model else
              "No per-event scores in the store for these sessions")
    hidden = (f" {layout.n_hidden:,} events outside the case were thinned out."
              if layout.n_hidden else "")
    return Section("Timeline", [
        Para("All of the user's events, one row per event type; shaded bands are the case's "
             f"sessions. {legend}.{hidden}", report.content.get("events_note") or None),
        Figure(layout)])


def _sessions(c: dict[str, Any]) -> Section:
    models = c["models"]
    headers = ["session", "start (UTC)", "events", "country", "risk", "flagged",
               "ground truth", "analyst"] + [
        f"{m['detector']} score / threshold (percentile)" for m in models]
    rows = []
    for s in c["sessions"]:
        cells: list[Any] = [s["session_id"], _t(s["start_ts"]), s["n_events"], s["country"],
                            _num(s.get("risk"), 1),
                            Cell("yes", "flag") if s["flagged"] else "no",
                            _label(s["ground_truth"]), _label(s["analyst"])]
        for m in models:
            v = s["scores"].get(m["model_id"])
            if not v or v.get("score") is None:
                cells.append("not scored")
                continue
            text = (f"{_num(v['score'], 4)} / {_num(v['threshold'], 4)} "
                    f"({_num(v['percentile'], 1)})")
            above = v.get("above_threshold", v.get("flagged"))  # snapshot 1 said "flagged"
            cells.append(Cell(f"{text} ⚑", "flag") if above else text)
        rows.append(cells)
    note = ("Scores, thresholds in force and percentiles as frozen at the decision."
            if c["scores_as_of"] == "decision" else "Scores and thresholds in force now.")
    return Section("Sessions, every detector's score and the threshold in force", [
        Para(f"{note} Flagged: the verdict of {_policy_name(c)}; risk 0-100 from its model. "
             "⚑ = at or above that detector's threshold for the session's segment. "
             "Percentile: the share of all sessions the model scores lower."),
        Table(headers, rows, numeric=(2, 4))])


def _explanations(c: dict[str, Any]) -> Section:
    blocks: list[Block] = []
    if not c["explanations"]:
        blocks.append(Para("Explanations were not requested."))
    for session_id, item in c["explanations"].items():
        blocks.append(Subheading(f"Session {session_id}"))
        if not item["available"]:
            blocks.append(Para(f"explanation unavailable: {item['reason']}"))
            continue
        blocks += [Bullets([str(r) for r in item["reasons"]]),
                   Folded("Details", _json(item["detail"]))]
    return Section("Explanations and reasons", blocks)


EVENT_COLUMNS = ("ts", "session_id", "event_type", "item_id", "category", "amount", "quantity",
                 "device_id", "ip", "country", "payment_id", "text", "event_score")
_EVENT_WIDTHS = (30, 22, 20, 16, 18, 14, 10, 22, 22, 12, 20, 55, 14)


def _events(events: pd.DataFrame) -> Section:
    inside = events[events["in_case"]] if len(events) else events
    rows = [[_event_cell(r, col) for col in EVENT_COLUMNS]
            for r in inside.head(MAX_EVENT_ROWS).itertuples()]
    more = (f" Showing the first {MAX_EVENT_ROWS:,} of {len(inside):,}."
            if len(inside) > MAX_EVENT_ROWS else "")
    return Section("Events of the case's sessions", [
        Para(f"{len(inside):,} events.{more} Text is shown exactly as written (escaped)."),
        Table(list(EVENT_COLUMNS), rows, numeric=(5, 6, 12), css="events",
              widths=_EVENT_WIDTHS)])


def _notes(notes: list[dict[str, Any]]) -> Section:
    if not notes:
        return Section("Notes", [Para("No notes.")])
    rows = [[_t(n["created_at"]), n["author"], Cell(n["text"], "text")] for n in notes]
    return Section("Notes", [Table(["when (UTC)", "author", "note"], rows, widths=(40, 35, 200))])


def _audit(audit: list[dict[str, Any]]) -> Section:
    rows = [[a["audit_id"], _t(a["logged_at"]), a["actor"], a["action"], a["entity"],
             Cell(_short(a["detail"]), "text")] for a in audit]
    return Section("Audit trail", [
        Para("Append-only: every action on the case, with who and when."),
        Table(["#", "when (UTC)", "actor", "action", "entity", "detail"], rows, numeric=(0,),
              widths=(10, 38, 28, 22, 40, 137))])


def _snapshot(c: dict[str, Any]) -> Section:
    snap = c["snapshot"]
    if snap is None:
        return Section("Decision snapshot", [Para(
            "The case is not decided: nothing is frozen yet. The models and thresholds in "
            "force now are listed above.")])
    rng = snap["data_time_range"]
    models = Table(["model", "detector", "created (UTC)", "trained until", "sessions scored"],
                   [[m["model_id"], m["detector"], _t(m["created_at"]), _t(m["train_end"]),
                     m["n_scores"]] for m in snap["models"]], numeric=(4,))
    thresholds = Table(
        ["model", "saved thresholds by segment", "default rule"],
        [[m, ", ".join(f"{k}: {_num(v, 4)}" for k, v in t["saved"].items()) or "none saved",
          f"{_num(t['default'], 4)} ({t['default_rule']})"] for m, t in
         snap["thresholds"].items()])
    return Section("Decision snapshot", [
        Para("Frozen when the decision was taken, so this report can be reproduced after "
             "retraining."),
        Pairs([("Frozen at (UTC)", _t(snap["frozen_at"])),
               ("Data from (UTC)", _t(rng["first_event_at"])),
               ("Data until (UTC)", _t(rng["last_event_at"])),
               ("Sessions in the store", rng["n_sessions"]),
               ("Alert policy", _policy_line(snap.get("policy")))]),
        Subheading("Model versions"), models, Subheading("Thresholds in force"), thresholds,
        Folded("Snapshot as JSON", _json(snap))])


def _policy_line(policy: dict[str, Any] | None) -> str:
    if policy is None:
        return "none (decided before alert policies)"
    shown = ", ".join(f"{k}: {_num(v, 4)}" for k, v in policy["thresholds"].items())
    return (f"v{policy['version']} on {policy['model_id']}: {shown or 'the operating point'}"
            f"; elsewhere {_num(policy['default_threshold'], 4)}"
            + (f"; at most {policy['daily_budget']} alerts a day" if policy["daily_budget"]
               else ""))


def _t(value: Any) -> str | None:
    """'2026-09-01 00:32:58' from an ISO timestamp (seconds are enough to read)."""
    return None if value is None else str(value).replace("T", " ")[:19]


def _label(label: dict[str, Any] | None) -> str:
    if not label:
        return "–"
    return f"anomalous ({label['scenario']})" if label["is_anomaly"] else "normal"


def _short(detail: Any) -> str:
    if not detail:
        return ""
    if isinstance(detail, dict):
        detail = {k: v for k, v in detail.items() if k != "previous_snapshot"}
    text = json.dumps(detail, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= 600 else text[:600] + " …"


def _json(value: Any) -> str:
    return json.dumps(value, indent=1, ensure_ascii=False)


def _num(value: Any, digits: int) -> str:
    return "–" if value is None else f"{float(value):,.{digits}f}"


def _event_cell(row: Any, col: str) -> Any:
    if col == "ts":
        return str(row.ts)[:19]
    if col == "text":
        return Cell(_cell(row.text), "text")
    return _cell(getattr(row, col))


def _cell(value: Any) -> Any:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, float):
        return f"{value:,.4f}".rstrip("0").rstrip(".")
    return value
