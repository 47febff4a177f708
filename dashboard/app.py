"""Anomalyst dashboard: page config, the global sidebar and the navigation. Nothing else."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboard import auth, icon, state, upload_guard
from dashboard import safe_text as safe

HERE = Path(__file__).parent

st.set_page_config(page_title="Anomalyst", page_icon=icon.shield(), layout="wide")

VIEWS = HERE / "views"
PAGES = {
    "overview": st.Page(VIEWS / "overview.py", title="Overview",
                        icon=":material/monitoring:", default=True),
    "thresholds": st.Page(VIEWS / "thresholds.py", title="Thresholds", icon=":material/tune:",
                          url_path="thresholds"),
    "queue": st.Page(VIEWS / "queue.py", title="Flagged queue", icon=":material/flag:",
                     url_path="queue"),
    "live": st.Page(VIEWS / "live.py", title="Live", icon=":material/sensors:",
                    url_path="live"),
    "user": st.Page(VIEWS / "user.py", title="User", icon=":material/person_search:",
                    url_path="user"),
    "cases": st.Page(VIEWS / "cases.py", title="Cases", icon=":material/folder_open:",
                     url_path="cases"),
    "entity": st.Page(VIEWS / "entity.py", title="Entity", icon=":material/hub:",
                      url_path="entity"),
    "explain": st.Page(VIEWS / "explain.py", title="Explain", icon=":material/lightbulb:",
                       url_path="explain"),
    "models": st.Page(VIEWS / "models.py", title="Models", icon=":material/model_training:",
                      url_path="models"),
    "data": st.Page(VIEWS / "data.py", title="Data", icon=":material/upload_file:",
                    url_path="data"),
}
state.register_pages(PAGES)

upload_guard.install()  # once per process: uploads only from a signed-in admin, capped
principal = auth.gate()  # draws only the login and stops when sign-in is on and nobody is in

with st.sidebar:
    st.markdown("### :material/shield: Anomalyst")
    if principal.authenticated:
        st.caption(safe.fmt("Signed in as {name} ({role})", name=principal.name,
                            role=safe.Markdown(principal.role)))
        if st.button("Sign out", key="sign_out", icon=":material/logout:"):
            auth.sign_out()
    # persist_state="session": a page switch made by a page (st.switch_page, e.g. the queue's
    # "Open case") drops every other widget's value on its first run.
    st.radio("Labels used for precision/recall", ["both", "ground truth", "analysts"],
             key=state.LABEL_CHOICE, persist_state="session",
             help="Ground truth shipped with the data, analysts' case "
             "decisions, or both (an analyst's decision overrides the ground truth).")
    if not principal.authenticated:
        # Bound to the URL (?analyst=): it survives page switches, reloads and the links the
        # app builds (Streamlit keeps a bound parameter on every switch); a cookie would need
        # a component (docs/ARCHITECTURE.md).
        st.text_input("Analyst name", key=state.ANALYST, placeholder="your name",
                      bind="query-params",
                      help="Recorded with every threshold, case action and export. Kept in "
                      "the page's address, so a reload or a shared link keeps it.")

navigation = st.navigation(list(PAGES.values()))
deep_link = auth.pending_deep_link(PAGES)  # what was asked for before signing in
if deep_link is not None:
    st.switch_page(deep_link[0], query_params=deep_link[1])
navigation.run()
