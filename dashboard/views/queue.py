"""Work queue: the sessions the alert policy flags, riskiest first, with status, age and SLA."""

from __future__ import annotations

import streamlit as st

from dashboard import common, exports, services, state
from dashboard import safe_text as safe
from dashboard import services_entity as se
from dashboard import services_queue as sq
from dashboard.services_cases import decisions

MAX_ROWS = 2_000  # drawn at once; the filters narrow the rest
SLA_COLOURS = {"ok": "green", "due": "orange", "overdue": "red"}  # a coloured chip per alert
# The filters and sort live in the URL, written by this script through dashboard.state: a change
# made here pushes a browser history entry, so Back/Forward step through views, and a reload
# or a shared link opens the same view. (Widgets bound with bind="query-params" update the URL
# with history.replaceState in the browser: no entry, so Back left the page instead.)
LAST_URL = "q_last_url"  # the view this session last wrote to the URL
PERSIST = {"persist_state": "session"}  # kept across page switches
FLASH = "q_flash"  # (n, decision or '', case ids) of the last action, shown once

st.title("Flagged queue")
common.scored_models_or_stop()
key = services.key()
policy = services.policy(*key)
if policy is None:
    st.info("No alert policy yet: score a model first.")
    st.stop()
queue = services.work_queue(*key)
risk_kind, risk_text = services.risk_kind_text(*key, policy.model_id)
KIND = {"probability": "a calibrated probability", "percentile": "a training percentile"}
st.caption(safe.join([
    safe.fmt("Alert policy v{v}", v=policy.version),
    safe.Markdown(" (default)") if policy.version == 0
    else safe.fmt(" (published by {who})", who=policy.published_by),
    safe.fmt(": {detector} at its thresholds", detector=policy.detector or policy.model_id),
    safe.fmt(", at most {b} alerts a day", b=policy.daily_budget)
    if policy.daily_budget is not None else safe.Markdown(""),
    safe.Markdown(f". Sorted by risk 0-100, {KIND.get(risk_kind, 'not available')}: "),
    safe.Markdown(risk_text), safe.Markdown("."),  # the program's own sentence
]))
if state.has(FLASH):
    done_n, done_as, done_ids = state.pop(FLASH)
    st.success(safe.fmt("Decided {n} sessions as {d} in {c}.", n=done_n, d=done_as, c=done_ids)
               if done_as else safe.fmt("Opened or extended cases {c}.", c=done_ids))
if queue.empty:
    st.info("The alert policy flags no session. An admin can lower its thresholds on the "
            "Thresholds page.")
    st.stop()


def _apply(view: sq.QueueView) -> None:
    """Show ``view`` in the filter widgets (a saved view, Back/Forward, a link)."""
    state.update(sq.widget_values(view))


asked = sq.view_from_query(state.query())
if asked is None:  # reached from the menu: the view this session last had, else the default
    asked = state.get(LAST_URL) or sq.QueueView()
if asked != state.get(LAST_URL):  # first visit, Back/Forward, reload or a shared link
    _apply(asked)
    state.put(LAST_URL, asked)

with st.expander("Filters and sort", expanded=True):
    c1, c2, c3, c4 = st.columns(4)
    statuses = c1.multiselect("Status", sq.STATUSES, key="q_status", **PERSIST,
                              help="Decided and snoozed are hidden unless chosen. Empty: "
                                   "every status.")
    sla = c2.multiselect(
        "SLA", sq.SLA_LEVELS, key="q_sla", **PERSIST,
        help=safe.fmt("Age since the policy's model scored the session: ok under {ok} h, due "
                      "under {due} h, then overdue.", ok=f"{sq.SLA_OK_HOURS:.0f}",
                      due=f"{sq.SLA_DUE_HOURS:.0f}"))
    known = sorted({*queue["country"].dropna().unique(), *state.get("q_country", ())})
    countries = c3.multiselect("Country", known, key="q_country", **PERSIST)
    sort = c4.selectbox("Sort by", list(sq.SORTS), key="q_sort", **PERSIST)
    c5, c6, c7 = st.columns(3)
    min_risk = c5.slider("Risk at least", 0.0, 100.0, step=1.0, key="q_risk", **PERSIST)
    min_agree = c6.number_input("Detectors agreeing at least", 0, 50, key="q_agree",
                                **PERSIST)
    min_amount = c7.number_input("Session amount at least", 0.0, key="q_amount", **PERSIST)
view = sq.QueueView(tuple(statuses), tuple(sla), tuple(countries), float(min_risk),
                    int(min_agree), float(min_amount), sort)
if view != asked or sq.view_from_query(state.query()) is None:  # the URL follows
    state.replace_query(sq.query_of(view), sq.FILTER_KEYS)
    state.put(LAST_URL, view)

analyst = common.analyst_name()
with st.expander("Saved views"):
    if not analyst:
        st.caption("Saved views belong to an analyst: set your name to save them (an "
                   "anonymous user cannot).")
    else:
        mine = sq.saved_views(*key, analyst)
        v1, v2, v3 = st.columns([3, 1, 1], vertical_alignment="bottom")
        pick = v1.selectbox("Your views", list(mine), index=None, key="q_view_pick")
        v2.button("Apply", key="q_view_apply", disabled=pick is None, on_click=_apply,
                  args=(mine.get(pick, view),))
        if v3.button("Delete", key="q_view_delete", disabled=pick is None):
            services.safely(lambda: sq.delete_view(analyst, str(pick)), "delete the view")
            st.rerun()
        n1, n2 = st.columns([4, 1], vertical_alignment="bottom")
        name = n1.text_input("Save these filters as", key="q_view_name", max_chars=80)
        if n2.button("Save view", key="q_view_save", disabled=not name.strip()):
            services.safely(lambda: sq.save_view(analyst, name, view), "save the view")
            st.rerun()

shown = sq.filtered(queue, view)
names = services.detectors(*key)
pct = {c: f"{names.get(c[4:], c[4:])} %ile" for c in shown.columns if c.startswith("pct:")}
truth = sq.has_ground_truth(*key)
out = shown.head(MAX_ROWS).assign(
    agree=lambda f: [f"{a}/{n}" for a, n in zip(f["n_agree"], f["n_detectors"], strict=True)])
columns = ["risk", "status", "age", "sla", "agree", "session_id", *pct, "amount", "country",
           "user_id", "start_ts", "agreeing", "case_id"]
if truth:
    out = out.assign(truth_label=out["truth_is_anomaly"].map(
        {True: "anomalous", False: "normal"}).fillna(""))
    columns += ["truth_label", "truth_scenario"]
out = out[columns].rename(columns={**pct, "truth_label": "truth: label",
                                   "truth_scenario": "truth: scenario"})
st.caption(safe.join([
    safe.fmt("{n:,} of {total:,} flagged sessions shown ({hidden:,} hidden by the filters)",
             n=len(out), total=len(queue), hidden=len(queue) - len(shown)),
    safe.Markdown(f"; the first {MAX_ROWS:,}" if len(shown) > MAX_ROWS else ""),
    safe.Markdown(". Percentiles: the share of all sessions each detector scores lower."),
    safe.Markdown(" Columns named 'truth:' are the data set's ground truth, not a prediction."
                  if truth else ""),
]))
config = {
    "risk": st.column_config.ProgressColumn("risk", min_value=0, max_value=100, format="%.0f",
                                            help=risk_text),
    "age": st.column_config.TextColumn("age", help="Since the policy's model scored it."),
    "sla": st.column_config.MultiselectColumn(  # a chip: coloured without a Styler (0.5 s)
        "SLA", options=list(SLA_COLOURS), color=list(SLA_COLOURS.values()), width="small",
        help=f"ok under {sq.SLA_OK_HOURS:.0f} h, due under {sq.SLA_DUE_HOURS:.0f} h, "
             "then overdue."),
    "agree": st.column_config.TextColumn(
        "agree", width="small", help="Detectors that flag it at their own thresholds, of "
                                     "those scored; which ones: the 'agreeing' column."),
    "agreeing": st.column_config.TextColumn("agreeing", width="small"),
    **{v: st.column_config.ProgressColumn(v, min_value=0, max_value=100, format="%.0f",
                                          width="small") for v in pct.values()},
    "amount": st.column_config.NumberColumn("amount", format="%.2f"),
}
drawn = out.assign(sla=[[v] if v else [] for v in out["sla"]])
event = st.dataframe(drawn, key="q_table", on_select="rerun", selection_mode="multi-row",
                     hide_index=True, column_config=config)
exports.export_button(out, "work_queue", "q")

rows = event.selection.rows if event is not None else []
picked = out.iloc[rows][["session_id", "user_id"]] if rows else out.iloc[:0][["session_id",
                                                                             "user_id"]]
n = len(picked)
st.subheader(safe.fmt("Selected: {n} session", n=n) if n == 1
             else safe.fmt("Selected: {n} sessions", n=n))
ok, why = common.may("case")  # the role rule of every case action (and, sign-in off, a name)
if why:
    st.caption(safe.join([why]))
a1, a2, a3 = st.columns(3)
if a1.button("Open user", key="q_open_user", disabled=n != 1, icon=":material/person:"):
    state.to_user(str(picked["user_id"].iloc[0]), str(picked["session_id"].iloc[0]))
if a2.button("Explain", key="q_explain", disabled=n != 1, icon=":material/lightbulb:"):
    state.to_explain(str(picked["session_id"].iloc[0]))
if n == 1:  # the selected session's devices, IPs, items ... each opens its Entity page
    touched = se.session_entities(*key, str(picked["session_id"].iloc[0]))
    pairs = list(zip(touched["kind"], touched["value"].astype(str), strict=True))
    n1, n2 = st.columns([3, 1], vertical_alignment="bottom")
    target = n1.selectbox("Entity of the selected session", pairs, key="q_entity_pick",
                          format_func=lambda kv: f"{kv[0]}: {kv[1]}")
    if n2.button("Open entity", key="q_open_entity", icon=":material/hub:",
                 disabled=target is None):
        state.to_entity(*target)
users = picked["user_id"].nunique()
if a3.button(safe.fmt("Open a case ({u} user)", u=users) if users == 1
             else safe.fmt("Open cases ({u} users)", u=users),
             key="q_open_cases", disabled=not n or not ok, icon=":material/folder_open:",
             help=safe.join([why]) if why else None):
    opened = services.safely(lambda: sq.open_cases(picked, analyst), "open cases")
    if opened and len(opened) == 1:
        state.to_case(opened[0])
    elif opened:
        state.put(FLASH, (len(opened), "", ", ".join(opened)))
        st.rerun()



def _decide(rows, decision: str, note: str, who: str) -> None:
    """Decide ``rows``, then clear the selection, the note and the tick (a callback: widget
    values can be reset only before their widgets run)."""
    done = services.safely(lambda: sq.bulk_decide(rows, decision, note, who),
                           "decide the sessions")
    if done:
        state.update({"q_bulk_note": "", "q_bulk_confirm": False,
                      "q_table": {"selection": {"rows": [], "columns": [], "cells": []}},
                      FLASH: (len(rows), decision, ", ".join(done))})


with st.container(border=True):
    st.markdown("**Decide the selected sessions**")
    d1, d2 = st.columns([1, 3])
    decision = d1.selectbox("Decision", decisions(), key="q_bulk_decision")
    note = d2.text_input("Note (required: why this decision)", key="q_bulk_note",
                         max_chars=2000)
    confirmed = st.checkbox(safe.fmt("I reviewed these {n} sessions", n=n),
                            key="q_bulk_confirm", disabled=not n)
    ready = bool(n and ok and note.strip() and confirmed)
    st.button(safe.fmt("Decide {n} session", n=n) if n == 1
              else safe.fmt("Decide {n} sessions", n=n),
              key="q_bulk_decide", disabled=not ready, type="primary", on_click=_decide,
              args=(picked, decision, note, analyst),
              help=None if ready else "Select sessions, write a note and tick the "
                                      "confirmation first.")
