"""The self-contained HTML case report: one file, no script, no external reference.

Rendered from ``templates/case_report.html.j2`` over the sections of
:func:`core.reports.sections.report_document` (the PDF draws the same list). Autoescape is on
and every ``{{ value }}`` passes through :func:`_escaped`, whoever wrote it (review and search
text, notes, scenario, names, ids). The report creates no links at all, so a ``javascript:``
URL in a review is shown as text. A Content-Security-Policy meta tag forbids scripts and
remote loads as a second line of defence.
"""

from __future__ import annotations

import html
from functools import cache
from typing import Any

import jinja2
from markupsafe import Markup

from core.reports.content import CaseReport
from core.reports.sections import Cell, report_document
from core.reports.timeline import Timeline, timeline_svg

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


def render_html(report: CaseReport) -> str:
    """The whole report as one HTML document."""
    return _template().render(doc=report_document(report), csp=Markup(CSP),
                              style=Markup(STYLE))


def _escaped(value: Any) -> Any:
    """Every output value: None/NaN as an en dash, the rest with ``& < > "`` escaped
    (``&quot;``, the entity form earlier reports used). ``'`` is left as text, so a heading
    reads "detector's": the template double-quotes every attribute it fills. Markup built by
    the template or the timeline passes through."""
    if isinstance(value, Markup):
        return value
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    return Markup(html.escape(str(value), quote=False).replace('"', "&quot;"))


def _svg(layout: Timeline) -> Markup:
    return Markup(timeline_svg(layout))  # noqa: S704 - timeline_svg escapes every label


@cache
def _template() -> jinja2.Template:
    env = jinja2.Environment(loader=jinja2.PackageLoader("core.reports", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             finalize=_escaped)
    env.tests["celled"] = lambda value: isinstance(value, Cell)
    env.globals["svg"] = _svg
    return env.get_template("case_report.html.j2")
