"""Far-off stored timestamps (issue #20, item 1, the dashboard's part): ingest now refuses
them, but a store written before may hold events dated 0001, 9999 or 294247. Overview, the
Flagged queue, Thresholds and the User page render such a store without an exception."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.store import Store

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
FAR = ("0001-01-01 00:00:00", "9999-12-31 23:00:00", "294247-01-01 00:00:00")


@pytest.fixture()
def far_store(demo_store_copy: Path) -> tuple[Path, list[str]]:
    """The demo store with its three top-scored sessions moved to far-off times by raw SQL,
    as an old store (written before the ingest window) could hold them."""
    with Store.open(demo_store_copy) as store:
        con = store.con
        top = con.execute("SELECT session_id, any_value(user_id) FROM scores JOIN sessions "
                          "USING (session_id) GROUP BY session_id ORDER BY max(score) DESC "
                          "LIMIT 3").fetchall()  # flagged by at least one model
        for (session_id, _), when in zip(top, FAR, strict=True):
            con.execute(f"UPDATE events SET ts = TIMESTAMP '{when}' WHERE session_id = ?",
                        [session_id])
            con.execute(f"UPDATE sessions SET start_ts = TIMESTAMP '{when}', "
                        f"end_ts = TIMESTAMP '{when}' WHERE session_id = ?", [session_id])
    return demo_store_copy, [u for _, u in top]


@pytest.mark.parametrize("page", ["overview", "queue", "thresholds", "user"])
def test_pages_survive_far_off_stored_timestamps(page: str, far_store: tuple[Path, list[str]],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import streamlit as st

    db, users = far_store
    monkeypatch.setenv("ANOMALYST_DB", str(db))
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(APP, default_timeout=90)
    if page == "user":
        at.query_params["user"] = users[2]  # the user with an event in year 294247
    at.run()
    if page != "overview":
        at.switch_page(f"views/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    if page == "queue":
        assert at.dataframe  # the table is drawn, far sessions and all
        # every status and the oldest first: the far-off sessions' ages are drawn too
        at.multiselect(key="q_status").set_value(["new", "in case", "decided", "snoozed"])
        at.selectbox(key="q_sort").set_value("oldest").run()
        assert not at.exception, [e.value for e in at.exception]
        assert at.dataframe
