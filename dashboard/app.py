"""Anomalyst dashboard: page config, the global sidebar and the navigation. Nothing else."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

HERE = Path(__file__).parent

st.set_page_config(page_title="Anomalyst", page_icon="🛡️", layout="wide")

PAGES = {
    "overview": st.Page(str(HERE / "pages" / "overview.py"), title="Overview", icon="📊",
                        default=True, url_path="overview"),
    "thresholds": st.Page(str(HERE / "pages" / "thresholds.py"), title="Thresholds", icon="🎚️",
                          url_path="thresholds"),
    "queue": st.Page(str(HERE / "pages" / "queue.py"), title="Flagged queue", icon="🚩",
                     url_path="queue"),
    "user": st.Page(str(HERE / "pages" / "user.py"), title="User", icon="👤", url_path="user"),
}
st.session_state["_pages"] = PAGES

with st.sidebar:
    st.markdown("### 🛡️ Anomalyst")
    st.radio("Labels used for precision/recall", ["both", "ground truth", "analysts"],
             key="label_choice", help="Ground truth shipped with the data, analysts' case "
             "decisions, or both (an analyst's decision overrides the ground truth).")
    st.text_input("Analyst name", key="analyst", placeholder="your name",
                  help="Recorded with every threshold you save.")

st.navigation(list(PAGES.values())).run()
