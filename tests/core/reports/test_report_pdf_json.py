"""The PDF renders and reads back; the JSON bundle round-trips; explanations degrade clearly."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest
from _report_helpers import PII_RAW, Planted
from pypdf import PdfReader

from core import cases
from core.errors import ConfigError
from core.reports import bundle_events, export_case_report, gather_case_report, load_case_bundle
from core.reports.bundle import render_json
from core.store import Store


def pdf_text(path: Path) -> tuple[int, str]:
    reader = PdfReader(str(path))
    return len(reader.pages), "\n".join(page.extract_text() for page in reader.pages)


def test_pdf_renders_with_the_key_text(planted: Planted, tmp_path: Path) -> None:
    with Store.open(planted.db) as store:
        out = export_case_report(store, planted.decided, "pdf", tmp_path / "c.pdf", actor="cleo")
        case = cases.get_case(store, planted.decided)
    assert out.read_bytes()[:5] == b"%PDF-"
    pages, text = pdf_text(out)
    assert pages > 0
    for needle in (f"Case {case.case_id}", case.user_id, "Summary and decision",
                   "fraud_confirmed", "User profile", "Timeline", "Audit trail",
                   "Decision snapshot", "Notes", "Explanations and reasons",
                   case.snapshot["models"][0]["detector"], "explanation unavailable"):
        assert needle in text, needle
    assert "<script>alert(1)</script>" in text  # shown as text in the PDF too
    assert "Privet" not in text and "cafe" in text  # transliterated, never a crash


def test_masked_pdf_hides_personal_data(planted: Planted, tmp_path: Path) -> None:
    with Store.open(planted.db) as store:
        out = export_case_report(store, planted.decided, "pdf", tmp_path / "m.pdf",
                                 actor="cleo", mask_personal_data=True)
    _, text = pdf_text(out)
    for raw in [*PII_RAW, *planted.device_ids, *planted.ips]:
        assert raw not in text, raw


def test_json_bundle_round_trips(planted: Planted, tmp_path: Path) -> None:
    with Store.open(planted.db) as store:
        out = export_case_report(store, planted.decided, "json", tmp_path / "c.json",
                                 actor="cleo")
        report = gather_case_report(store, planted.decided, actor="cleo")
        case = cases.get_case(store, planted.decided)
        events = store.users.events(case.user_id)
    bundle = load_case_bundle(out)
    assert json.loads(out.read_text(encoding="utf-8")) == bundle
    again = tmp_path / "again.json"
    again.write_text(json.dumps(bundle, ensure_ascii=False, indent=1, sort_keys=True),
                     encoding="utf-8")
    assert again.read_bytes() == out.read_bytes()
    assert bundle["case"]["case_id"] == case.case_id and bundle["snapshot"] == case.snapshot
    assert {k for k in bundle} >= {"case", "user", "sessions", "models", "thresholds",
                                   "explanations", "notes", "audit", "events_csv"}
    assert [s["session_id"] for s in bundle["sessions"]] == list(case.session_ids)
    fresh = json.loads(render_json(report))
    for key in ("case", "user", "sessions", "snapshot", "notes", "explanations"):
        assert fresh[key] == bundle[key], key
    frame = bundle_events(bundle)
    assert frame["event_id"].tolist() == events["event_id"].tolist()
    assert (frame["ts"] == pd.to_datetime(events["ts"])).all()
    pd.testing.assert_series_equal(frame["amount"], events["amount"].astype("float64"),
                                   check_names=False)
    assert frame["text"].fillna("").tolist() == events["text"].fillna("").tolist()
    assert frame["in_case"].sum() == events["session_id"].isin(case.session_ids).sum()
    assert "<script>alert(1)</script>" in bundle["events_csv"]  # data, kept verbatim


def test_load_refuses_other_files(tmp_path: Path) -> None:
    bad = tmp_path / "x.json"
    bad.write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ConfigError, match="format"):
        load_case_bundle(bad)
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="readable JSON"):
        load_case_bundle(bad)


def test_missing_explain_module_is_reported_per_session(planted: Planted,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "core.explain", None)  # import fails as if absent
    with Store.open(planted.db) as store:
        report = gather_case_report(store, planted.open, actor="cleo")
    assert report.content["explanations"]
    for item in report.content["explanations"].values():
        assert not item["available"]
        assert item["reason"].startswith("the explain module is missing")


def test_export_checks_its_arguments(planted: Planted, tmp_path: Path) -> None:
    with Store.open(planted.db) as store:
        with pytest.raises(ConfigError, match="format must be one of"):
            export_case_report(store, planted.open, "docx", tmp_path / "x", actor="a")  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match="analyst name must be set"):
            export_case_report(store, planted.open, "html", tmp_path / "x.html", actor=" ")
        with pytest.raises(ConfigError, match="must be a file path"):
            export_case_report(store, planted.open, "html", tmp_path, actor="a")
        with pytest.raises(ConfigError, match="existing case"):
            export_case_report(store, "C-404", "html", tmp_path / "y.html", actor="a")
    assert not (tmp_path / "x.html").exists() and not list(tmp_path.glob(".*.tmp"))


def test_json_bundle_events_csv_is_formula_safe(planted: Planted, tmp_path: Path) -> None:
    """A formula in an event reaches ``events_csv`` quoted, and reads back unchanged."""
    import shutil

    from core.reports.bundle import bundle_dict

    db = tmp_path / "store.duckdb"
    shutil.copy(planted.db, db)
    formula = "=HYPERLINK(\"http://evil.example/x\",\"open\")"
    with Store.open(db) as store:
        user = cases.get_case(store, planted.decided).user_id
        first = store.users.events(user)["event_id"][0]
        store.con.execute("UPDATE events SET text = ?, item_id = '@SUM(A1)' WHERE event_id = ?",
                          [formula, first])
        bundle = bundle_dict(gather_case_report(store, planted.decided, actor="cleo"))
    lines = bundle["events_csv"].splitlines()
    assert not any(cell.startswith(("=", "@")) for line in lines for cell in line.split(","))
    assert "'=HYPERLINK" in bundle["events_csv"] and "'@SUM(A1)" in bundle["events_csv"]
    frame = bundle_events(bundle).set_index("event_id")
    assert frame.loc[first, "text"] == formula and frame.loc[first, "item_id"] == "@SUM(A1)"
