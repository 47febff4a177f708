"""The self-contained HTML case report: one file, no script, no external reference.

Every value is escaped with ``html.escape`` where it is written, whoever wrote it (review and
search text, notes, scenario, names, ids). The report creates no links at all, so a
``javascript:`` URL in a review is shown as text. A Content-Security-Policy meta tag forbids
scripts and remote loads as a second line of defence.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd

from core.reports.content import CaseReport
from core.reports.timeline import build_timeline, timeline_svg

MAX_EVENT_ROWS = 2000
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:2rem auto;
max-width:1100px;color:#222;line-height:1.45;padding:0 1rem}
h1{margin-bottom:.2rem}h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;width:100%;font-size:.88rem;margin:.5rem 0}
th,td{border:1px solid #ddd;padding:.25rem .45rem;text-align:left;vertical-align:top}
th{background:#f4f6f8}td.num{text-align:right;font-variant-numeric:tabular-nums}
.muted{color:#666}.flag{color:#b3261e;font-weight:600}.badge{display:inline-block;
padding:.1rem .5rem;border-radius:.7rem;background:#eef;font-size:.85rem}
.kv td:first-child{width:14rem;color:#555}pre{white-space:pre-wrap;word-break:break-word;
background:#f7f7f7;padding:.6rem;font-size:.8rem}svg.timeline{max-width:100%;height:auto}
.text{white-space:pre-wrap;word-break:break-word}
table.events td:nth-child(12){min-width:16rem}table.events td:first-child{white-space:nowrap}
@media print{details{display:block}}
"""


def e(value: Any) -> str:
    """Escape any value for HTML text or attribute context; None as an en dash."""
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    return html.escape(str(value), quote=True)


def render_html(report: CaseReport) -> str:
    """The whole report as one HTML document."""
    c = report.content
    case = c["case"]
    title = f"Case {case['case_id']} · user {case['user_id']}"
    body = [
        f"<h1>{e(title)}</h1>",
        f"<p class='muted'>Generated {e(c['generated_at'])} UTC by {e(c['generated_by'])}"
        + (" · personal data masked" if c["masked"] else "") + "</p>",
        _summary(c), _profile(c["user"]), _timeline(report), _sessions(c), _explanations(c),
        _events(report.events), _notes(c["notes"]), _audit(c["audit"]), _snapshot(c),
    ]
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta http-equiv='Content-Security-Policy' content=\"{CSP}\">"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{e(title)}</title><style>{STYLE}</style></head><body>"
            + "\n".join(body) + "</body></html>")


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]],
          numeric: Sequence[int] = (), css: str = "") -> str:
    """An escaped HTML table; cells given as ``("html", markup)`` are trusted markup."""
    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    out = [f"<table class='{e(css)}'><thead><tr>{head}</tr></thead><tbody>"]
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            cls = " class='num'" if i in numeric else ""
            if isinstance(cell, tuple) and cell and cell[0] == "html":
                cells.append(f"<td{cls}>{cell[1]}</td>")
            else:
                cells.append(f"<td{cls}>{e(cell)}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _kv(pairs: Iterable[tuple[str, Any]]) -> str:
    rows = "".join(f"<tr><td>{e(k)}</td><td>{e(v)}</td></tr>" for k, v in pairs)
    return f"<table class='kv'><tbody>{rows}</tbody></table>"


def _summary(c: dict[str, Any]) -> str:
    case = c["case"]
    flagged = sum(1 for s in c["sessions"] if s["flagged"])
    return "<h2>Summary and decision</h2>" + _kv([
        ("Status", case["status"]), ("Decision", case["decision"] or "not decided yet"),
        ("Scenario", case["scenario"]), ("Decided by", case["decided_by"]),
        ("Decided at (UTC)", _t(case["decided_at"])), ("Assignee", case["assignee"]),
        ("Title", case["title"]), ("Opened by", case["created_by"]),
        ("Opened at (UTC)", _t(case["created_at"])), ("Last change (UTC)", _t(case["updated_at"])),
        ("Sessions", f"{len(c['sessions'])} ({flagged} flagged by at least one detector)"),
        ("Scores as of", "the decision (frozen snapshot)" if c["scores_as_of"] == "decision"
         else "now (the case is not decided; nothing is frozen yet)"),
    ])


def _profile(user: dict[str, Any]) -> str:
    labels = ", ".join(f"{r['source']}: {_label(r)}" for r in user.get("labels", [])) or "none"
    return "<h2>User profile</h2>" + _kv([
        ("User", user["user_id"]), ("Sessions", user["n_sessions"]), ("Events", user["n_events"]),
        ("First seen (UTC)", _t(user["first_seen"])), ("Last seen (UTC)", _t(user["last_seen"])),
        ("Devices", user["n_devices"]), ("IPs", user["n_ips"]),
        ("Payment methods", user["n_payment_methods"]), ("Countries", user["countries"]),
        ("Purchases", user["n_purchases"]), ("Total amount", _num(user["total_amount"], 2)),
        ("User-level labels", labels),
    ])


def _timeline(report: CaseReport) -> str:
    sessions = pd.DataFrame(report.content["sessions"])
    bands = sessions[["session_id", "start_ts", "end_ts"]].dropna() if len(sessions) else (
        pd.DataFrame(columns=["session_id", "start_ts", "end_ts"]))
    layout = build_timeline(report.events, bands)
    model = report.content["event_model"]
    legend = ("Dot size: per-event anomaly score of " + e(model)) if model else (
        "No per-event scores in the store for these sessions.")
    hidden = (f" {layout.n_hidden:,} events outside the case were thinned out."
              if layout.n_hidden else "")
    capped = f" <strong>{e(report.content['events_note'])}</strong>" if report.content.get(
        "events_note") else ""
    return ("<h2>Timeline</h2><p class='muted'>All of the user's events, one row per event "
            f"type; shaded bands are the case's sessions. {legend}.{hidden} Hover a dot for "
            f"details.{capped}</p>" + timeline_svg(layout))


def _sessions(c: dict[str, Any]) -> str:
    models = c["models"]
    headers = ["session", "start (UTC)", "events", "country", "flagged", "ground truth",
               "analyst"] + [f"{m['detector']} score / threshold (percentile)" for m in models]
    rows = []
    for s in c["sessions"]:
        cells: list[Any] = [s["session_id"], _t(s["start_ts"]), s["n_events"], s["country"],
                            ("html", "<span class='flag'>yes</span>") if s["flagged"] else "no",
                            _label(s["ground_truth"]), _label(s["analyst"])]
        for m in models:
            v = s["scores"].get(m["model_id"])
            if not v or v.get("score") is None:
                cells.append("not scored")
                continue
            text = (f"{_num(v['score'], 4)} / {_num(v['threshold'], 4)} "
                    f"({_num(v['percentile'], 1)})")
            cells.append(("html", f"<span class='flag'>{e(text)} ⚑</span>") if v["flagged"]
                         else text)
        rows.append(cells)
    note = ("Scores, thresholds in force and percentiles as frozen at the decision."
            if c["scores_as_of"] == "decision" else "Scores and thresholds in force now.")
    return (f"<h2>Sessions, every detector's score and the threshold in force</h2>"
            f"<p class='muted'>{note} ⚑ = at or above the threshold in force for the session's "
            "segment. Percentile: the share of all sessions the model scores lower.</p>"
            + table(headers, rows, numeric=[2]))


def _explanations(c: dict[str, Any]) -> str:
    out = ["<h2>Explanations and reasons</h2>"]
    if not c["explanations"]:
        return out[0] + "<p class='muted'>Explanations were not requested.</p>"
    for session_id, item in c["explanations"].items():
        out.append(f"<h3>Session {e(session_id)}</h3>")
        if not item["available"]:
            out.append(f"<p class='muted'>explanation unavailable: {e(item['reason'])}</p>")
            continue
        reasons = "".join(f"<li>{e(r)}</li>" for r in item["reasons"]) or "<li>–</li>"
        out.append(f"<ul>{reasons}</ul><details><summary>Details</summary><pre>"
                   f"{e(json.dumps(item['detail'], indent=1, ensure_ascii=False))}</pre>"
                   "</details>")
    return "".join(out)


def _events(events: pd.DataFrame) -> str:
    inside = events[events["in_case"]] if len(events) else events
    shown = inside.head(MAX_EVENT_ROWS)
    cols = ["ts", "session_id", "event_type", "item_id", "category", "amount", "quantity",
            "device_id", "ip", "country", "payment_id", "text", "event_score"]
    rows = [[_event_cell(r, col) for col in cols] for r in shown.itertuples()]
    more = (f" Showing the first {MAX_EVENT_ROWS:,} of {len(inside):,}."
            if len(inside) > MAX_EVENT_ROWS else "")
    return (f"<h2>Events of the case's sessions</h2><p class='muted'>{len(inside):,} events."
            f"{more} Text is shown exactly as written (escaped).</p>"
            + table(cols, rows, numeric=[5, 6, 12], css="events"))


def _notes(notes: list[dict[str, Any]]) -> str:
    if not notes:
        return "<h2>Notes</h2><p class='muted'>No notes.</p>"
    rows = [[_t(n["created_at"]), n["author"],
             ("html", f"<span class='text'>{e(n['text'])}</span>")] for n in notes]
    return "<h2>Notes</h2>" + table(["when (UTC)", "author", "note"], rows)


def _audit(audit: list[dict[str, Any]]) -> str:
    rows = [[a["audit_id"], _t(a["logged_at"]), a["actor"], a["action"], a["entity"],
             ("html", f"<span class='text'>{e(_short(a['detail']))}</span>")] for a in audit]
    return ("<h2>Audit trail</h2><p class='muted'>Append-only: every action on the case, with "
            "who and when.</p>" + table(["#", "when (UTC)", "actor", "action", "entity",
                                         "detail"], rows, numeric=[0]))


def _snapshot(c: dict[str, Any]) -> str:
    snap = c["snapshot"]
    if snap is None:
        return ("<h2>Decision snapshot</h2><p class='muted'>The case is not decided: nothing "
                "is frozen yet. The models and thresholds in force now are listed above.</p>")
    rng = snap["data_time_range"]
    models = table(["model", "detector", "created (UTC)", "trained until", "sessions scored"],
                   [[m["model_id"], m["detector"], _t(m["created_at"]), _t(m["train_end"]),
                     m["n_scores"]] for m in snap["models"]], numeric=[4])
    thresholds = table(
        ["model", "saved thresholds by segment", "default rule"],
        [[m, ", ".join(f"{k}: {_num(v, 4)}" for k, v in t["saved"].items()) or "none saved",
          f"{_num(t['default'], 4)} ({t['default_rule']})"] for m, t in
         snap["thresholds"].items()])
    return ("<h2>Decision snapshot</h2><p class='muted'>Frozen when the decision was taken, so "
            "this report can be reproduced after retraining.</p>"
            + _kv([("Frozen at (UTC)", _t(snap["frozen_at"])),
                   ("Data from (UTC)", _t(rng["first_event_at"])),
                   ("Data until (UTC)", _t(rng["last_event_at"])),
                   ("Sessions in the store", rng["n_sessions"])])
            + "<h3>Model versions</h3>" + models + "<h3>Thresholds in force</h3>" + thresholds
            + "<details><summary>Snapshot as JSON</summary><pre>"
            + e(json.dumps(snap, indent=1, ensure_ascii=False)) + "</pre></details>")


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


def _num(value: Any, digits: int) -> str:
    return "–" if value is None else f"{float(value):,.{digits}f}"


def _event_cell(row: Any, col: str) -> Any:
    if col == "ts":
        return str(row.ts)[:19]
    if col == "text":
        return ("html", f"<span class='text'>{e(_cell(row.text))}</span>")
    return _cell(getattr(row, col))


def _cell(value: Any) -> Any:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, float):
        return f"{value:,.4f}".rstrip("0").rstrip(".")
    return value
