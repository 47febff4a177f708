"""Flagged queue: sessions and users above threshold, every detector side by side."""

from __future__ import annotations

import numpy as np
import streamlit as st

from dashboard import common, exports, services
from dashboard import safe_text as safe

st.title("Flagged queue")
models = common.scored_models_or_stop()
key = services.key()
model_ids = list(services.default_model_ids(models))
detector_of = dict(zip(models["model_id"], models["detector"], strict=True))
table = services.flagged_table(*key, tuple(model_ids), common.label_sources())
flags = table[[f"flag:{m}" for m in model_ids]].set_axis(model_ids, axis=1)
kinds = services.input_kinds(models)
seq = [m for m in model_ids if kinds[m] == "sequences"]
feat = [m for m in model_ids if kinds[m] == "features"]
n_sessions = services.summary(*key)["n_sessions"]
if table.empty:
    st.info("No session is flagged at the thresholds in force. Lower a threshold on the "
            "Thresholds page.")
    st.stop()

with st.expander("Filters", expanded=True):
    c1, c2, c3 = st.columns(3)
    first, last = table["start_ts"].min().date(), table["start_ts"].max().date()
    dates = c1.date_input("Date range", (first, last), min_value=first, max_value=last,
                          key="q_dates")
    by = c2.multiselect("Flagged by", model_ids, format_func=lambda m: detector_of[m],
                        key="q_by", help="Empty: any detector.")
    agreement = c3.selectbox("Agreement", ["any", "flagged only by sequence models",
                                           "flagged only by feature models",
                                           "flagged by exactly one detector",
                                           "flagged by every detector"], key="q_agree")
    c4, c5, c6 = st.columns(3)
    label_filter = c4.selectbox("Label", ["any", "labelled anomalous", "labelled normal",
                                          "unlabelled"] + sorted(
        table.loc[table["is_anomaly"] == True, "scenario"].dropna().unique().tolist()),  # noqa: E712
        key="q_label")
    country = c5.multiselect("Country", sorted(table["country"].dropna().unique()),
                             key="q_country")
    types = c6.multiselect("Has event type", services.event_type_names(*key), key="q_types")
    min_amount = st.number_input("Session amount at least", min_value=0.0, value=0.0,
                                 key="q_amount")

keep = np.ones(len(table), bool)
if by:
    keep &= flags[by].any(axis=1).to_numpy()
if agreement == "flagged only by sequence models" and seq:
    keep &= flags[seq].any(axis=1).to_numpy() & ~flags[feat].any(axis=1).to_numpy()
elif agreement == "flagged only by feature models" and feat:
    keep &= flags[feat].any(axis=1).to_numpy() & ~flags[seq].any(axis=1).to_numpy()
elif agreement == "flagged by exactly one detector":
    keep &= table["n_flagging"].to_numpy() == 1
elif agreement == "flagged by every detector":
    keep &= table["n_flagging"].to_numpy() == len(model_ids)
if isinstance(dates, tuple) and len(dates) == 2:
    day = table["start_ts"].dt.date
    keep &= ((day >= dates[0]) & (day <= dates[1])).to_numpy()
if label_filter == "labelled anomalous":
    keep &= (table["is_anomaly"] == True).to_numpy()  # noqa: E712  (NA-safe)
elif label_filter == "labelled normal":
    keep &= (table["is_anomaly"] == False).to_numpy()  # noqa: E712
elif label_filter == "unlabelled":
    keep &= table["is_anomaly"].isna().to_numpy()
elif label_filter != "any":
    keep &= (table["scenario"] == label_filter).to_numpy()
if country:
    keep &= table["country"].isin(country).to_numpy()
if types:
    keep &= table["session_id"].isin(services.sessions_with_event_types(*key, tuple(types))
                                     ).to_numpy()
if min_amount:
    keep &= (table["amount"] >= min_amount).to_numpy()

shown = table[keep]
pct_cols = {f"pct:{m}": f"{detector_of[m]} %ile" for m in model_ids}
view = st.radio("Show", ["sessions", "users"], horizontal=True, key="q_view")
if view == "sessions":
    out = shown[["session_id", "user_id", "start_ts", "country", "amount", "flagged_by",
                 *pct_cols, "scenario"]].rename(columns=pct_cols)
    out = out.assign(top=np.nanmax(out[list(pct_cols.values())].to_numpy(), axis=1))
    out = out.sort_values("top", ascending=False).drop(columns="top")
else:
    out = shown.groupby("user_id").agg(
        flagged_sessions=("session_id", "size"), last_seen=("start_ts", "max"),
        amount=("amount", "sum"), **{v: (k, "max") for k, v in pct_cols.items()},
    ).reset_index().sort_values("flagged_sessions", ascending=False)
st.caption(safe.fmt("{n:,} flagged sessions of {total:,} · {users:,} users. Percentiles: the "
                    "share of all sessions each detector scores lower. Select a row to open "
                    "the user.", n=len(shown), total=n_sessions,
                    users=shown["user_id"].nunique()))
config = {v: st.column_config.ProgressColumn(v, min_value=0, max_value=100, format="%.1f")
          for v in pct_cols.values()}
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
named = common.analyst() != "anonymous"
if c2.button("Open case", key="q_open_case", icon=":material/folder_open:",
             disabled=target is None or not named,
             help=None if named else "Set your name in the sidebar first: cases record who acts."):
    from dashboard import services_cases

    name = "" if common.analyst() == "anonymous" else common.analyst()
    if not name:
        st.warning("Set your name in the sidebar")
    else:
        opened = services.safely(lambda: services_cases.open_case(
            name, **{target_col: str(target)}), "open a case")
        if opened is not None:
            st.switch_page(common.page("cases"), query_params={"case": opened.case_id})
if view == "sessions":
    e1, e2 = st.columns([3, 1], vertical_alignment="bottom")
    to_explain = e1.selectbox("Explain a flagged session", out["session_id"].head(5000).tolist(),
                              index=None, key="q_explain_target")
    if e2.button("Explain", key="q_explain", icon=":material/lightbulb:",
                 disabled=to_explain is None):
        st.session_state["explain_session"] = str(to_explain)
        st.switch_page(common.page("explain"), query_params={"session": str(to_explain)})
rows = event.selection.rows if event is not None else []
if rows:
    picked = out.head(5000).iloc[rows[0]]
    params = {"user": str(picked["user_id"])}
    if "session_id" in picked:
        params["session"] = str(picked["session_id"])
    st.switch_page(common.page("user"), query_params=params)
