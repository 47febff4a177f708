"""Case reports: a self-contained HTML page, a PDF of the same, and a JSON bundle.

    >>> # export_case_report(store, "C-00001", "html", Path("case.html"), actor="ana")

Every export is written to the audit log ('export', with the format, masking and the file's
SHA-256), in its own transaction after the file is complete.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

from core.cases.audit import record, require_analyst
from core.errors import ConfigError
from core.files import atomic_file
from core.reports.bundle import bundle_events, load_case_bundle
from core.reports.content import CaseReport, gather_case_report

__all__ = ["FORMATS", "CaseReport", "bundle_events", "export_case_report", "gather_case_report",
           "load_case_bundle", "render_case_report"]

ReportFormat = Literal["html", "pdf", "json"]
FORMATS: dict[str, tuple[str, str]] = {
    "html": (".html", "text/html"),
    "pdf": (".pdf", "application/pdf"),
    "json": (".json", "application/json"),
}


def render_case_report(store: object, case_id: str, fmt: ReportFormat, *, actor: str,
                       mask_personal_data: bool = False, explain: bool = True) -> bytes:
    """The report as bytes, and an 'export' audit row (the dashboard's download button)."""
    from core.store import Store

    if not isinstance(store, Store):
        raise TypeError("store must be a core.store.Store")
    actor = require_analyst(actor)
    if fmt not in FORMATS:
        raise ConfigError(f"report format must be one of {', '.join(FORMATS)}, got {fmt!r}.")
    report = gather_case_report(store, case_id, actor=actor, mask=mask_personal_data,
                                explain=explain)
    data = _render(report, fmt)
    with store.transaction():
        record(store, actor, "export", case_id=case_id, entity=f"report:{fmt}", detail={
            "format": fmt, "masked": mask_personal_data, "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest()})
    return data


def export_case_report(store: object, case_id: str, fmt: ReportFormat, out: Path, *,
                       mask_personal_data: bool = False, actor: str) -> Path:
    """Write the case report to ``out`` (html, pdf or json) and return the path."""
    out = Path(out)
    if out.exists() and out.is_dir():
        raise ConfigError(f"report output must be a file path, got the folder {out}. Add a "
                          f"file name such as {out / ('case' + FORMATS.get(fmt, ('.txt',))[0])}.")
    data = render_case_report(store, case_id, fmt, actor=actor,
                              mask_personal_data=mask_personal_data)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(out) as handle:  # a reader never sees half a report; 0600 like before
        handle.write(data)
    return out


def _render(report: CaseReport, fmt: str) -> bytes:
    if fmt == "html":
        from core.reports.html_report import render_html

        return render_html(report).encode("utf-8")
    if fmt == "pdf":
        from core.reports.pdf_report import render_pdf

        return render_pdf(report)
    from core.reports.bundle import render_json

    return render_json(report).encode("utf-8")
