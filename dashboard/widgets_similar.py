"""The typology line and the similar past cases of one session (the Explain page draws them).

    widgets_similar.draw_typology(session_id)        # "Looks like card testing (confidence 0.86)"
    widgets_similar.draw_similar_cases(session_id)   # the 5 most similar decided sessions

Both read ``dashboard.services_similar`` (one index per store state, shared). Ids, scenario
names and case ids come from the data: they are drawn with ``st.text``, ``st.dataframe`` or
through ``safe_text``. A picked row opens the Explain page, the user or the case through
``dashboard.state``'s links.
"""

from __future__ import annotations

import streamlit as st

from dashboard import safe_text as safe
from dashboard import services, state
from dashboard import services_similar as ss


def draw_typology(session_id: str) -> None:
    """One line: the typology guess with its confidence, or "no close match" and why."""
    key = services.key()
    guess = services.safely(lambda: ss.typology(*key, str(session_id)), "guess the typology")
    if guess is None:
        return
    st.text(f"Typology: {guess['text']}")  # plain text: the scenario name comes from the data
    if guess.get("scenario") and len(guess.get("votes") or {}) > 1:
        others = [f"{ss.typology_name(name)} {share:.2f}"
                  for name, share in list(guess["votes"].items())[1:4]]
        st.caption(safe.fmt("The vote of its nearest labelled anomalies (of {n:,}); also {o}.",
                            n=guess["n_pool"], o=", ".join(others)))
    elif guess.get("n_pool"):
        st.caption(safe.fmt("Compared with {n:,} labelled anomalies with a scenario.",
                            n=guess["n_pool"]))


def draw_similar_cases(session_id: str, *, k: int = ss.DEFAULT_K,
                       key_prefix: str = "similar") -> None:
    """The ``k`` most similar decided sessions: decision, typology, case; pick a row, then open
    it on the Explain page, its user, or its case. Widget keys start with ``key_prefix``."""
    key = services.key()
    size = services.safely(lambda: ss.index_size(*key), "index the decided sessions")
    if size is None:
        return
    if not size["decided_sessions"]:
        st.caption("No decided sessions yet: similar past cases appear once analysts decide "
                   "cases (or analyst labels are ingested).")
        return
    found = services.safely(lambda: ss.similar_cases(*key, str(session_id), k),
                            "find similar decided sessions")
    if found is None:
        return
    st.caption(safe.fmt("The {k} most similar of {n:,} decided sessions (cosine similarity of "
                        "their scaled session features; 1 is identical).", k=len(found),
                        n=size["decided_sessions"]))
    shown = found.drop(columns=["scenario"]).rename(columns={"case_id": "case"})
    event = st.dataframe(
        shown, hide_index=True, key=f"{key_prefix}_table", on_select="rerun",
        selection_mode="single-row",
        column_config={
            "similarity": st.column_config.ProgressColumn(
                "similarity", min_value=0.0, max_value=1.0, format="%.3f"),
            "decided_at": st.column_config.DatetimeColumn("decided", format="YYYY-MM-DD HH:mm"),
        })
    rows = event.selection.rows if event is not None else []
    picked = found.iloc[rows[0]] if rows and rows[0] < len(found) else None
    c1, c2, c3 = st.columns(3)
    if c1.button("Explain it", key=f"{key_prefix}_explain", disabled=picked is None,
                 icon=":material/lightbulb:", help="Pick a row of the table first."):
        state.to_explain(str(picked["session_id"]))
    if c2.button("Open its user", key=f"{key_prefix}_user", disabled=picked is None,
                 icon=":material/person_search:"):
        state.to_user(str(picked["user_id"]), str(picked["session_id"]))
    has_case = picked is not None and bool(picked["case_id"])
    if c3.button("Show its case", key=f"{key_prefix}_case", disabled=not has_case,
                 icon=":material/folder_open:"):
        state.to_case(str(picked["case_id"]))
