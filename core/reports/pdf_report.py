"""The PDF case report, drawn with fpdf2 (pure Python) from the same section list as the HTML
(:func:`core.reports.sections.report_document`): one drawing rule per block kind, the timeline
drawn from the same layout with fpdf2 primitives. Tables show at most ``MAX_PDF_ROWS`` rows.

fpdf2's core fonts cover Latin-1 only and no font is shipped by a dependency, so text is
transliterated (NFKD, a few typographic replacements) and anything left outside Latin-1
becomes "?": a review in Cyrillic loses its letters in the PDF but stays intact in the HTML
and JSON reports.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import Any

import pandas as pd
from fpdf import FPDF
from fpdf.fonts import FontFace

from core.reports.content import CaseReport
from core.reports.sections import (
    Block,
    Bullets,
    Cell,
    Figure,
    Folded,
    Pairs,
    Para,
    Subheading,
    Table,
    report_document,
)
from core.reports.timeline import Timeline

MAX_CELL_CHARS = 300
MAX_PDF_ROWS = 400
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
    """The report as PDF bytes: the sections of ``report_document``, in its order."""
    doc = report_document(report)
    pdf = _Pdf(doc.title)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 9, latin1(doc.title), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=8)
    pdf.cell(0, 5, latin1(doc.subtitle), new_x="LMARGIN", new_y="NEXT")
    for section in doc.sections:
        _heading(pdf, section.title)
        for block in section.blocks:
            _block(pdf, block)
    return bytes(pdf.output())


def _block(pdf: FPDF, block: Block) -> None:
    if isinstance(block, Para):
        _small(pdf, block.text + (" " + block.strong if block.strong else ""))
    elif isinstance(block, Pairs):
        _table(pdf, ["", ""], [list(row) for row in block.rows], (50, 150), header=False)
    elif isinstance(block, Table):
        _rows_table(pdf, block)
    elif isinstance(block, Bullets):
        for item in block.items or ["-"]:
            _small(pdf, f"- {item}")
    elif isinstance(block, Subheading):
        pdf.set_font("Helvetica", "B", 9)
        pdf.cell(0, 5, latin1(block.text), new_x="LMARGIN", new_y="NEXT")
    elif isinstance(block, Folded):
        _small(pdf, f"{block.summary}: {block.text}")
    elif isinstance(block, Figure):
        _timeline(pdf, block.layout)


def _rows_table(pdf: FPDF, block: Table) -> None:
    rows = [[v.text if isinstance(v, Cell) else v for v in row] for row in block.rows]
    if len(rows) > MAX_PDF_ROWS:
        _small(pdf, f"The first {MAX_PDF_ROWS} of {len(rows)} rows; the HTML and JSON "
               "reports hold them all.")
        rows = rows[:MAX_PDF_ROWS]
    widths = None
    if block.widths:  # relative; scaled to the page's width
        usable = int(pdf.epw)  # whole mm: a float sum can exceed fpdf's page width by 1e-12
        widths = tuple(w * usable / sum(block.widths) for w in block.widths)
    _table(pdf, block.headers, rows, widths)


def _heading(pdf: FPDF, text: str) -> None:
    pdf.ln(3)
    pdf.set_font("Helvetica", "B", 12)
    pdf.cell(0, 7, latin1(text), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=8)


def _small(pdf: FPDF, text: str) -> None:
    pdf.set_font("Helvetica", size=8)
    pdf.multi_cell(0, 4, latin1(text, 2000), new_x="LMARGIN", new_y="NEXT")


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


def _timeline(pdf: FPDF, layout: Timeline) -> None:
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


def _rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)
