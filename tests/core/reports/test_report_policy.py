"""A report's "flagged" is the alert policy's verdict, frozen with the version at decision."""

from __future__ import annotations

from pathlib import Path

from core import cases
from core.cases.scoring import ScoreContext
from core.policy import publish_policy
from core.reports import gather_case_report
from core.reports.sections import report_document
from core.store import Store


def test_reports_follow_the_policy_and_freeze_its_version(demo_store_copy: Path) -> None:
    with Store.open(demo_store_copy) as store:
        context = ScoreContext.build(store)
        flagged = context.flagged(context.table.index)
        owners = store.sessions.meta().set_index("session_id")["user_id"]
        first, second = flagged[0], next(s for s in flagged if owners[s] != owners[flagged[0]])
        decided = cases.open_case(store, analyst="ana", session_id=first)
        cases.decide_case(store, decided.case_id, "fraud_confirmed", analyst="ana",
                          scenario="card_testing")
        still_open = cases.open_case(store, analyst="ana", session_id=second)
        model_id = context.policy.model_id
        # a new version that flags nothing: the decided case keeps its frozen verdict
        publish_policy(store, analyst="ana", model_id=model_id, thresholds={"all": 1e12})
        frozen = gather_case_report(store, decided.case_id, actor="ana", explain=False)
        now = gather_case_report(store, still_open.case_id, actor="ana", explain=False)
    assert frozen.content["policy"]["version"] == 0
    assert [s["flagged"] for s in frozen.content["sessions"]] == [True]
    assert now.content["policy"]["version"] == 1
    assert [s["flagged"] for s in now.content["sessions"]] == [False]
    summary = report_document(frozen).sections[0]
    text = " ".join(str(v) for block in summary.blocks for v in getattr(block, "rows", []))
    assert "1 flagged by alert policy v0 (default)" in text
