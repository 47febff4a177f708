"""The Models page (issue #25, item 4) through AppTest: a viewer reads, an admin compares,
retires (never the policy's model) and sees training runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.access import UserFile
from core.app import policy as app_policy
from core.app.data import open_store

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")


@pytest.fixture(autouse=True)
def fresh_cache():
    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()


def _in_force(db: Path) -> str:
    with open_store(db, read_only=True) as store:
        return app_policy.in_force(store).model_id


def _open(db: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("ANOMALYST_DB", str(db))
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    return at


def _page(at: AppTest) -> AppTest:
    at.switch_page("views/models.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_a_viewer_reads_the_page_but_cannot_retire_or_train(
        demo_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    users = tmp_path / "users.json"
    UserFile(users).add("vic", "viewer", "viewer-password")
    monkeypatch.setenv("ANOMALYST_AUTH", "local")
    monkeypatch.setenv("ANOMALYST_USERS_FILE", str(users))
    at = _open(demo_store, monkeypatch)
    at.text_input(key="login_name").input("vic")
    at.text_input(key="login_password").input("viewer-password")
    at.button[0].click().run()
    at = _page(at)
    assert at.title[0].value == "Models"
    assert at.dataframe and len(at.get("plotly_chart")) >= 4
    assert at.button(key="models_retire").disabled
    assert any("Only an admin can train" in i.value for i in at.info)
    assert not [b for b in at.button if b.key == "models_train_start"]


def test_an_admin_compares_two_models_and_cannot_retire_the_policys(
        demo_store_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = _open(demo_store_copy, monkeypatch)
    at.text_input(key="analyst").input("adam").run()
    at = _page(at)
    in_force = _in_force(demo_store_copy)
    # Compare: two pickers, the side-by-side table, shared and per-model charts.
    a, b = at.selectbox(key="models_a").value, at.selectbox(key="models_b").value
    assert a != b
    tables = [d.value for d in at.dataframe if "property" in d.value.columns]
    table = next(t for t in tables if list(t.columns) == ["property", a, b])
    assert {"average precision", "trained up to"} <= set(table["property"])  # in words
    # The policy's model: retiring it is refused with a clear message, and nothing changes.
    at.selectbox(key="models_pick").select(in_force).run()
    at.button(key="models_retire").click().run()
    assert any("alert policy in force" in e.value for e in at.error)
    with open_store(demo_store_copy, read_only=True) as store:
        assert "retired" not in (store.models.by_id(in_force)["metrics"] or "")
    # Another model retires and leaves the default list; the toggle shows it again.
    with open_store(demo_store_copy, read_only=True) as store:
        other = next(m for m in store.models.ids() if m != in_force)
    at.selectbox(key="models_pick").select(other).run()
    at.button(key="models_retire").click().run()
    assert any("Retired" in s.value for s in at.success)
    at.run()
    assert not any(other in o for o in at.selectbox(key="models_pick").options)
    at.toggle(key="models_show_retired").set_value(True).run()
    assert any(other in o for o in at.selectbox(key="models_pick").options)
    # Training: the admin sees the form and the (empty) list of runs.
    assert not at.button(key="models_train_start").disabled
    assert "zscore" in at.selectbox(key="models_train_detector").options
    assert any("No training runs" in c.value for c in at.caption)


def test_the_page_explains_a_missing_store(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    at = _page(_open(tmp_path / "none.duckdb", monkeypatch))
    assert any("anomalyst demo" in i.value for i in at.info)


def test_an_admin_starts_a_run_and_its_model_appears(
        demo_store_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from core.app import model_catalog

    at = _open(demo_store_copy, monkeypatch)
    at.text_input(key="analyst").input("adam").run()
    at = _page(at)
    at.selectbox(key="models_train_detector").select("zscore").run()
    at.button(key="models_train_start").click().run()
    assert any("Started run" in s.value for s in at.success)
    deadline = time.monotonic() + 240
    runs = model_catalog.training_runs(demo_store_copy)
    while model_catalog.any_running(runs) and time.monotonic() < deadline:
        time.sleep(0.5)
        runs = model_catalog.training_runs(demo_store_copy)
    assert len(runs) == 1 and runs[0]["status"] == "finished", runs[0].get("log_tail")
    assert runs[0]["by"] == "adam"
    at.run()
    assert not at.exception
    shown = [d.value for d in at.dataframe if "status" in d.value.columns][0]
    assert shown["status"].tolist() == ["finished"]
    assert any(runs[0]["model_id"] in o for o in at.selectbox(key="models_pick").options)


def test_what_training_left_out_is_listed_in_full_and_bounded(
        demo_store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.app import model_catalog

    reasons = [f"extra column c{i}: numbers named like an identifier, {i:,} distinct values: "
               "their size means nothing" for i in range(60)]
    reasons[0] = "extra column **bold** [x](http://example.invalid): named like labels"
    monkeypatch.setattr(model_catalog, "left_out", lambda metrics, spec: reasons)
    at = _page(_open(demo_store, monkeypatch))
    facts = next(d.value for d in at.dataframe if list(d.value.columns) == ["property", "value"])
    row = facts.set_index("property")["value"]
    assert row["left out of the features"] == "60 (listed below)"
    captions = [c.value for c in at.caption]
    assert any(c.endswith("their size means nothing") and "c59" not in c for c in captions)
    assert "… and 10 more." in captions
    hostile = next(c for c in captions if "example.invalid" in c)
    assert hostile.startswith("`")  # drawn as a code span: no link, no bold
