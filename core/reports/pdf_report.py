"""The PDF case report, drawn with fpdf2 (pure Python): the HTML report's sections, with the
timeline drawn from the same layout with fpdf2 primitives.

fpdf2's core fonts cover Latin-1 only and no font is shipped by a dependency, so text is
transliterated (NFKD, a few typographic replacements) and anything left outside Latin-1
becomes "?": a review in Cyrillic loses its letters in the PDF but stays intact in the HTML
and JSON reports.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Sequence
from typing import Any

import pandas as pd
from fpdf import FPDF
from fpdf.fonts import FontFace

from core.reports.content import CaseReport
from core.reports.timeline import build_timeline

MAX_CELL_CHARS = 300
MAX_PDF_EVENTS = 400
_REPLACE = {"•": "*", "–": "-", "—": "-", "‘": "'", "’": "'", "“": '"', "”": '"', "…": "...",
            "→": "->", "⚑": "(!)", "·": "-", "≥": ">=", "≤": "<=", "\u00a0": " "}


def latin1(value: Any, limit: int | None = None) -> str:
    """``value`` as text the core fonts can draw."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        text = "-"
    else:
        text = str(value)
    if limit is not None and len(text) > limit:
        text = text[:limit] + "..."
    for src, dst in _REPLACE.items():
        text = text.replace(src, dst)
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return text.encode("latin-1", "replace").decode("latin-1")


class _Pdf(FPDF):
    def __init__(self, title: str) -> None:
        super().__init__(orientation="L", unit="mm", format="A4")
        self._title = latin1(title)
        self.set_auto_page_break(auto=True, margin=12)
        self.set_title(self._title)
        self.set_creator("Anomalyst")

    def footer(self) -> None:
        self.set_y(-10)
        self.set_font("Helvetica", size=7)
        self.set_text_color(120)
        self.cell(0, 5, f"{self._title} - page {self.page_no()}", align="C")
        self.set_text_color(0)


def render_pdf(report: CaseReport) -> bytes:
    """The report as PDF bytes."""
    c = report.content
    case = c["case"]
    pdf = _Pdf(f"Case {case['case_id']} - user {case['user_id']}")
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 9, latin1(f"Case {case['case_id']} - user {case['user_id']}"),
             new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=8)
    pdf.cell(0, 5, latin1(f"Generated {c['generated_at']} UTC by {c['generated_by']}"
                          + (" - personal data masked" if c["masked"] else "")),
             new_x="LMARGIN", new_y="NEXT")
    flagged = sum(1 for s in c["sessions"] if s["flagged"])
    _heading(pdf, "Summary and decision")
    _pairs(pdf, [("Status", case["status"]), ("Decision", case["decision"] or "not decided yet"),
                 ("Scenario", case["scenario"]), ("Decided by", case["decided_by"]),
                 ("Decided at (UTC)", _t(case["decided_at"])), ("Assignee", case["assignee"]),
                 ("Title", case["title"]), ("Opened by", case["created_by"]),
                 ("Opened at (UTC)", _t(case["created_at"])),
                 ("Sessions", f"{len(c['sessions'])} ({flagged} flagged)"),
                 ("Scores as of", "the decision (frozen snapshot)"
                  if c["scores_as_of"] == "decision" else "now (not decided)")])
    user = c["user"]
    _heading(pdf, "User profile")
    _pairs(pdf, [("User", user["user_id"]), ("Sessions", user["n_sessions"]),
                 ("Events", user["n_events"]), ("First seen (UTC)", _t(user["first_seen"])),
                 ("Last seen (UTC)", _t(user["last_seen"])), ("Devices", user["n_devices"]),
                 ("IPs", user["n_ips"]), ("Payment methods", user["n_payment_methods"]),
                 ("Countries", user["countries"]), ("Total amount", _num(user["total_amount"], 2))])
    _heading(pdf, "Timeline")
    _timeline(pdf, report)
    _heading(pdf, "Sessions, every detector's score and the threshold in force")
    _small(pdf, "score / threshold in force (percentile); (!) = flagged")
    models = c["models"]
    rows = []
    for s in c["sessions"]:
        cells = [s["session_id"], _t(s["start_ts"]), s["n_events"], "yes" if s["flagged"] else "no",
                 _label(s["ground_truth"]), _label(s["analyst"])]
        for m in models:
            v = s["scores"].get(m["model_id"])
            cells.append("not scored" if not v or v.get("score") is None else
                         f"{v['score']:.4f} / {_num(v['threshold'])} ({_num(v['percentile'], 1)})"
                         + (" (!)" if v["flagged"] else ""))
        rows.append(cells)
    _table(pdf, ["session", "start (UTC)", "events", "flagged", "ground truth", "analyst"]
           + [m["detector"] for m in models], rows)
    _heading(pdf, "Explanations and reasons")
    for session_id, item in c["explanations"].items():
        pdf.set_font("Helvetica", "B", 9)
        pdf.cell(0, 5, latin1(f"Session {session_id}"), new_x="LMARGIN", new_y="NEXT")
        if not item["available"]:
            _small(pdf, f"explanation unavailable: {item['reason']}")
        for reason in item.get("reasons", []):
            _small(pdf, f"- {reason}")
    if not c["explanations"]:
        _small(pdf, "Explanations were not requested.")
    _events(pdf, report.events)
    _heading(pdf, "Notes")
    if c["notes"]:
        _table(pdf, ["when (UTC)", "author", "note"],
               [[_t(n["created_at"]), n["author"], n["text"]] for n in c["notes"]], (40, 35, 200))
    else:
        _small(pdf, "No notes.")
    _heading(pdf, "Audit trail")
    _table(pdf, ["#", "when (UTC)", "actor", "action", "entity", "detail"],
           [[a["audit_id"], _t(a["logged_at"]), a["actor"], a["action"], a["entity"],
             _detail(a["detail"])] for a in c["audit"]], (10, 38, 28, 22, 40, 137))
    _snapshot(pdf, c["snapshot"])
    return bytes(pdf.output())


def _heading(pdf: FPDF, text: str) -> None:
    pdf.ln(3)
    pdf.set_font("Helvetica", "B", 12)
    pdf.cell(0, 7, latin1(text), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=8)


def _small(pdf: FPDF, text: str) -> None:
    pdf.set_font("Helvetica", size=8)
    pdf.multi_cell(0, 4, latin1(text, 2000), new_x="LMARGIN", new_y="NEXT")


def _pairs(pdf: FPDF, pairs: Sequence[tuple[str, Any]]) -> None:
    _table(pdf, ["", ""], [[k, v] for k, v in pairs], (50, 150), header=False)


def _table(pdf: FPDF, headers: Sequence[str], rows: Sequence[Sequence[Any]],
           widths: Sequence[float] | None = None, *, header: bool = True) -> None:
    if not rows:
        _small(pdf, "None.")
        return
    pdf.set_font("Helvetica", size=7)
    bold = FontFace(emphasis="BOLD", fill_color=(235, 238, 242))
    with pdf.table(col_widths=tuple(widths) if widths else None, text_align="LEFT",
                   line_height=3.6, first_row_as_headings=header, headings_style=bold,
                   width=sum(widths) if widths else None, align="LEFT") as table:
        if header:
            row = table.row()
            for h in headers:
                row.cell(latin1(h))
        for values in rows:
            row = table.row()
            for value in values:
                row.cell(latin1(value, MAX_CELL_CHARS))
    pdf.set_font("Helvetica", size=8)


def _timeline(pdf: FPDF, report: CaseReport) -> None:
    sessions = pd.DataFrame(report.content["sessions"])
    bands = sessions[["session_id", "start_ts", "end_ts"]].dropna() if len(sessions) else (
        pd.DataFrame(columns=["session_id", "start_ts", "end_ts"]))
    layout = build_timeline(report.events, bands)
    if not layout.rows:
        _small(pdf, "No events.")
        return
    left, width, row_h = pdf.l_margin + 38, pdf.w - pdf.l_margin - pdf.r_margin - 40, 5.0
    height = row_h * len(layout.rows)
    if pdf.get_y() + height + 12 > pdf.h - pdf.b_margin:
        pdf.add_page()
    top = pdf.get_y() + 1
    pdf.set_fill_color(250, 215, 213)
    for band in layout.bands:
        pdf.rect(left + band.x0 * width, top, max((band.x1 - band.x0) * width, 0.6), height,
                 style="F")
    pdf.set_font("Helvetica", size=7)
    pdf.set_draw_color(225)
    for i, name in enumerate(layout.rows):
        y = top + row_h * i + row_h / 2
        pdf.line(left, y, left + width, y)
        pdf.set_xy(pdf.l_margin, y - 2)
        pdf.cell(36, 4, latin1(name, 30), align="R")
    pdf.set_draw_color(60)
    for point in layout.points:
        r = 0.5 + 1.6 * point.size
        pdf.set_fill_color(*_rgb(point.color))
        pdf.ellipse(left + point.x * width - r, top + row_h * point.row + row_h / 2 - r,
                    2 * r, 2 * r, style="F")
    pdf.set_draw_color(0)
    for x, label in layout.ticks:
        pdf.set_xy(left + x * width - 20, top + height + 1)
        pdf.cell(40, 4, latin1(label), align="C")
    pdf.set_y(top + height + 6)
    _small(pdf, "Shaded: the case's sessions. Dot size: per-event anomaly score"
           + (f" of {report.content['event_model']}." if report.content["event_model"] else
              " (none stored).")
           + (f" {layout.n_hidden} events outside the case thinned out." if layout.n_hidden
              else "")
           + (" " + report.content["events_note"] if report.content.get("events_note")
              else ""))


def _events(pdf: FPDF, events: pd.DataFrame) -> None:
    inside = events[events["in_case"]] if len(events) else events
    _heading(pdf, "Events of the case's sessions")
    more = f" (first {MAX_PDF_EVENTS} of {len(inside)})" if len(inside) > MAX_PDF_EVENTS else ""
    _small(pdf, f"{len(inside)} events{more}; the HTML and JSON reports hold them all.")
    cols = ["ts", "session_id", "event_type", "amount", "device_id", "ip", "country", "text",
            "event_score"]
    rows = [[str(r.ts)[:19] if col == "ts" else _fmt(getattr(r, col)) for col in cols]
            for r in inside.head(MAX_PDF_EVENTS).itertuples()]
    _table(pdf, cols, rows, (36, 22, 28, 16, 28, 28, 14, 85, 16))


def _snapshot(pdf: FPDF, snap: dict[str, Any] | None) -> None:
    _heading(pdf, "Decision snapshot")
    if snap is None:
        _small(pdf, "The case is not decided: nothing is frozen yet.")
        return
    rng = snap["data_time_range"]
    _pairs(pdf, [("Frozen at (UTC)", _t(snap["frozen_at"])),
                 ("Data from (UTC)", _t(rng["first_event_at"])),
                 ("Data until (UTC)", _t(rng["last_event_at"])),
                 ("Sessions in the store", rng["n_sessions"])])
    _table(pdf, ["model", "detector", "created (UTC)", "trained until", "saved thresholds",
                 "default threshold"],
           [[m["model_id"], m["detector"], _t(m["created_at"]), _t(m["train_end"]),
             ", ".join(f"{k}: {_num(v)}" for k, v in
                       snap["thresholds"][m["model_id"]]["saved"].items()) or "none",
             _num(snap["thresholds"][m["model_id"]]["default"])] for m in snap["models"]])


def _t(value: Any) -> str | None:
    return None if value is None else str(value).replace("T", " ")[:19]


def _label(label: dict[str, Any] | None) -> str:
    if not label:
        return "-"
    return f"anomalous ({label['scenario']})" if label["is_anomaly"] else "normal"


def _detail(detail: Any) -> str:
    if isinstance(detail, dict):
        detail = {k: v for k, v in detail.items() if k != "previous_snapshot"}
    return json.dumps(detail, ensure_ascii=False, sort_keys=True) if detail else ""


def _num(value: Any, digits: int = 4) -> str:
    return "-" if value is None else f"{float(value):.{digits}f}"


def _fmt(value: Any) -> Any:
    if isinstance(value, float) and not pd.isna(value):
        return f"{value:.4f}".rstrip("0").rstrip(".")
    return value


def _rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)
