"""The HTML report: contents, escaping of hostile text, nothing external, masking."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from _report_helpers import PII_RAW, XSS, Planted

from core import cases
from core.reports import export_case_report
from core.store import Store


class Tags(HTMLParser):
    """Every start tag with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


def parse(text: str) -> Tags:
    parser = Tags()
    parser.feed(text)
    return parser


@pytest.fixture(scope="module")
def report(planted: Planted, tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("html") / "case.html"
    with Store.open(planted.db) as store:
        export_case_report(store, planted.decided, "html", out, actor="cleo")
    return out.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def masked(planted: Planted, tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("html") / "masked.html"
    with Store.open(planted.db) as store:
        export_case_report(store, planted.decided, "html", out, actor="cleo",
                           mask_personal_data=True)
    return out.read_text(encoding="utf-8")


def test_report_has_every_section_and_the_facts(report: str, planted: Planted) -> None:
    for heading in ("Summary and decision", "User profile", "Timeline",
                    "Sessions, every detector's score and the threshold in force",
                    "Explanations and reasons", "Events of the case's sessions", "Notes",
                    "Audit trail", "Decision snapshot", "Model versions", "Thresholds in force"):
        assert f">{heading}<" in report, heading
    with Store.open(planted.db, read_only=True) as store:
        case = cases.get_case(store, planted.decided)
        trail = cases.audit_trail(store, planted.decided)
    assert f"Case {case.case_id} · user {case.user_id}" in report
    assert "fraud_confirmed" in report and "Generated" in report and "cleo" in report
    snap = case.snapshot
    for model in snap["models"]:
        assert model["model_id"] in report
        assert f"{snap['thresholds'][model['model_id']]['default']:,.4f}" in report
    for session in snap["sessions"]:
        assert session["session_id"] in report
        for value in session["scores"].values():
            assert f"{value['score']:,.4f}" in report
            assert f"({value['percentile']:,.1f})" in report
    assert snap["data_time_range"]["first_event_at"].replace("T", " ")[:19] in report
    for action in set(trail["action"]) - {"export"}:  # its own export is logged after it
        assert f"<td>{action}</td>" in report
    assert "<svg class='timeline'" in report and report.count("<circle") > 5
    assert "odd burst of payments in" in report  # reasons from the explain module
    assert "explanation unavailable: model must support explanations" in report


def test_hostile_text_is_shown_as_text_never_markup(report: str) -> None:
    for payload in XSS:
        escaped = html.escape(payload, quote=True)
        assert escaped in report, payload
        if escaped != payload:  # a markdown-style javascript: link has nothing to escape
            assert payload not in report, payload
    tags = parse(report)
    names = {tag for tag, _ in tags.tags}
    assert names.isdisjoint({"script", "img", "a", "iframe", "object", "embed"})
    assert {tag for tag, _ in tags.tags if tag == "svg"} <= {"svg"}
    svgs = [attrs for tag, attrs in tags.tags if tag == "svg"]
    assert all(dict(a).get("class") == "timeline" for a in svgs)
    for _, attrs in tags.tags:
        for name, value in attrs:
            assert not name.startswith("on"), (name, value)
            assert "javascript:" not in (value or "").lower()
    assert "Привет ✓ café" in report  # Unicode survives intact in HTML


def test_nothing_external_is_referenced(report: str) -> None:
    assert re.search(r"(?i)\b(?:https?|ftp)://", report) is None
    loading = {"src", "href", "action", "srcset", "xlink:href", "data", "poster", "background"}
    assert [(t, a) for t, attrs in parse(report).tags for a, _ in attrs if a in loading] == []
    assert [t for t, _ in parse(report).tags if t in ("link", "script", "iframe", "base")] == []
    assert "@import" not in report and "url(" not in report
    assert "default-src 'none'" in report  # CSP: no scripts, no remote loads


def test_masking_hides_personal_data_in_text_and_columns(masked: str, report: str,
                                                         planted: Planted) -> None:
    for raw in PII_RAW:
        assert raw in report
        assert raw not in masked, raw
    assert "•••@example.com" in masked and "198.51.100.•••" in masked
    assert "personal data masked" in masked
    for device in planted.device_ids:
        assert device in report
        assert device not in masked, device
    for ip in planted.ips:
        assert ip not in masked
        assert ip.rsplit(".", 1)[0] + ".•••" in masked
    assert re.search(r"device-[0-9a-f]{10}", masked)
    for payload in XSS[:3] + XSS[4:]:  # masking does not undo escaping
        assert payload not in masked


def test_open_case_report_uses_scores_as_of_now(planted: Planted, tmp_path: Path) -> None:
    with Store.open(planted.db) as store:
        out = export_case_report(store, planted.open, "html", tmp_path / "o.html", actor="cleo")
        assert cases.audit_trail(store, planted.open)["action"].tolist()[-1] == "export"
    text = out.read_text(encoding="utf-8")
    assert "not decided yet" in text and "nothing is frozen yet" in text
    assert "Scores and thresholds in force now." in text
