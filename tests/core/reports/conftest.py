"""One decided and one open case on a private store, with hostile and personal text planted."""

from __future__ import annotations

import shutil
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
from _report_helpers import PII_TEXT, XSS, Planted, fake_explain, fake_explain_why

from core import cases
from core.store import Store


@pytest.fixture(scope="module")
def explain_module() -> Iterator[None]:
    """A stand-in for core.explain (built elsewhere): explains even session ids, refuses odd."""
    module = types.ModuleType("core.explain")
    module.explain_session = fake_explain  # type: ignore[attr-defined]
    module.explain_why = fake_explain_why  # type: ignore[attr-defined]
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sys.modules, "core.explain", module)
        yield


@pytest.fixture(scope="module")
def planted(demo_store: Path, tmp_path_factory: pytest.TempPathFactory,
            explain_module: None) -> Planted:
    db = tmp_path_factory.mktemp("reports") / "store.duckdb"
    shutil.copy(demo_store, db)
    with Store.open(db) as store:
        meta = store.sessions.meta()
        users = meta["user_id"].drop_duplicates().tolist()
        # one session fake_explain explains and one it refuses (by the id's last digit),
        # whichever sessions the models flag
        odd = meta["session_id"].str.contains(r"[13579]$")
        both = meta.groupby("user_id").filter(
            lambda g: odd[g.index].any() and (~odd[g.index]).any())
        user = str(both["user_id"].iloc[0])
        pair = [str(both[(both["user_id"] == user) & ~odd[both.index]]["session_id"].iloc[0]),
                str(both[(both["user_id"] == user) & odd[both.index]]["session_id"].iloc[0])]
        users = [user, *[u for u in users if u != user]]
        decided = cases.open_case(store, analyst="ana", user_id=user, session_ids=pair,
                                  title=XSS[4])
        first = decided.session_ids[0]
        events = store.users.events(users[0])
        in_case = events[events["session_id"] == first]["event_id"].tolist()
        store.con.execute("UPDATE events SET text = ? WHERE event_id = ?",
                          [" ".join(XSS) + " Привет ✓ café", in_case[0]])
        store.con.execute("UPDATE events SET text = ? WHERE event_id = ?", [PII_TEXT, in_case[1]])
        cases.add_note(store, decided.case_id, "\n".join(XSS), analyst="bob")
        device = events["device_id"].dropna().iloc[0]
        cases.add_note(store, decided.case_id, f"see {PII_TEXT}; device {device}", analyst="bob")
        cases.decide_case(store, decided.case_id, "fraud_confirmed", analyst="bob",
                          scenario=XSS[0], note=XSS[3])
        opened = cases.open_case(store, analyst="ana", user_id=users[1])
    return Planted(db, decided.case_id, opened.case_id,
                   tuple(events["device_id"].dropna().unique()),
                   tuple(events["ip"].dropna().unique()))
