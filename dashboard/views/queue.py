"""Flagged queue: sessions and users above threshold, every detector side by side."""

from __future__ import annotations

import streamlit as st

from dashboard import common, exports, services, state, widgets
from dashboard import safe_text as safe

st.title("Flagged queue")
models = common.scored_models_or_stop()
key = services.key()
model_ids = list(services.default_model_ids(models))
detector_of = services.detectors(*key)
table = services.flagged_table(*key, tuple(model_ids), common.label_sources())
n_sessions = services.summary(*key)["n_sessions"]
if table.empty:
    st.info("No session is flagged at the thresholds in force. Lower a threshold on the "
            "Thresholds page.")
    st.stop()

with st.expander("Filters", expanded=True):
    c1, c2, c3 = st.columns(3)
    first, last = services.date_span(table)
    dates = c1.date_input("Date range", (first, last), min_value=first, max_value=last,
                          key="q_dates")
    by = c2.multiselect("Flagged by", model_ids, format_func=lambda m: detector_of[m],
                        key="q_by", help="Empty: any detector.")
    agreement = c3.selectbox("Agreement", list(services.AGREEMENTS), key="q_agree")
    c4, c5, c6 = st.columns(3)
    label_filter = c4.selectbox("Label", services.label_choices(table), key="q_label")
    country = c5.multiselect("Country", services.countries_of(table),
                             key="q_country")
    types = c6.multiselect("Has event type", services.event_type_names(*key), key="q_types")
    min_amount = st.number_input("Session amount at least", min_value=0.0, value=0.0,
                                 key="q_amount")

chosen = services.QueueFilter(
    dates=tuple(dates) if isinstance(dates, tuple) and len(dates) == 2 else None,
    by=by, agreement=agreement, label=label_filter, countries=country, min_amount=min_amount)
shown = services.filter_queue(*key, table, model_ids, chosen, types)
view = st.radio("Show", ["sessions", "users"], horizontal=True, key="q_view")
out, pct_names = services.queue_rows(*key, shown, model_ids, view)
st.caption(safe.fmt("{n:,} flagged sessions of {total:,} · {users:,} users. Percentiles: the "
                    "share of all sessions each detector scores lower. Select a row to open "
                    "the user.", n=len(shown), total=n_sessions,
                    users=shown["user_id"].nunique()))
config = {v: st.column_config.ProgressColumn(v, min_value=0, max_value=100, format="%.1f")
          for v in pct_names}
config["flagged_by"] = st.column_config.TextColumn(  # narrow: the percentiles stay in view
    "flagged_by", width="medium")
event = st.dataframe(out.head(5000), key="q_table", on_select="rerun",
                     selection_mode="single-row", hide_index=True, column_config=config)
exports.export_button(out.head(5000), f"flagged_{view}", "q")
target_col = "session_id" if view == "sessions" else "user_id"
c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
target = c1.selectbox("Open a case for a flagged session" if view == "sessions"
                      else "Open a case for a flagged user",
                      out[target_col].head(5000).tolist(), index=None, key="q_case_target")
widgets.open_case_button("Open case", key="q_open_case", where=c2, disabled=target is None,
                         **{target_col: None if target is None else str(target)})
if view == "sessions":
    e1, e2 = st.columns([3, 1], vertical_alignment="bottom")
    to_explain = e1.selectbox("Explain a flagged session", out["session_id"].head(5000).tolist(),
                              index=None, key="q_explain_target")
    if e2.button("Explain", key="q_explain", icon=":material/lightbulb:",
                 disabled=to_explain is None):
        state.to_explain(str(to_explain))
rows = event.selection.rows if event is not None else []
if rows:
    picked = out.head(5000).iloc[rows[0]]
    state.to_user(str(picked["user_id"]),
                  str(picked["session_id"]) if "session_id" in picked else None)
