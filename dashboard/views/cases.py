"""Cases: the queue with claim and "next case", bulk decisions, one case in detail (decision,
notes, sessions, audit trail, report export), snoozes, and what the decisions taught.

Deep link: ``/cases?case=<case id>``.
"""

from __future__ import annotations

import streamlit as st

from dashboard import common, exports, services, state, widgets
from dashboard import safe_text as safe
from dashboard import services_cases as sc

st.title("Cases")
common.scored_models_or_stop()
key = services.key()
name = common.analyst_name()
# one rule for every button (role, and a name when sign-in is off), as on every other page
blocked = {a: common.may(a)[1] for a in ("case", "snooze", "export")}
may = {a: reason is None for a, reason in blocked.items()}


def gate(action: str) -> dict[str, object]:
    """A button's ``disabled`` and ``help`` for ``action``."""
    return {"disabled": not may[action], "help": blocked[action]}


if blocked["case"]:
    st.info(safe.fmt("{why}", why=blocked["case"]))

policy_text = common.policy_caption()
act = services.safely  # a write whose user-caused failure becomes an st.error


with st.expander("Open a case", expanded=False):
    c1, c2, c3 = st.columns([2, 2, 1])
    open_user = c1.text_input("User id", key="cs_open_user")
    open_session = c2.text_input("or session id", key="cs_open_session")
    widgets.open_case_button("Open case", key="cs_open", where=c3, icon=None, then="stay",
                             disabled=not may["case"], user_id=open_user.strip() or None,
                             session_id=open_session.strip() or None)

everything = sc.case_table(*key, ("open", "investigating", "closed"))
active = everything[everything["status"] != "closed"]
m = st.columns(4)
counts = everything["status"].value_counts()
m[0].metric("Open", int(counts.get("open", 0)))
m[1].metric("Investigating", int(counts.get("investigating", 0)))
m[2].metric("Closed", int(counts.get("closed", 0)))
if m[3].button("Next case", key="cs_next", type="primary", disabled=not may["case"],
               help=safe.join([blocked["case"] or "Claim the oldest open, unassigned case."])):
    got = act(lambda: sc.next_case(name), "claim the next case")
    if got is None:
        st.info("No open case is waiting.")
    elif got:
        state.put(state.CASE, got.case_id)
        st.rerun()

st.subheader("Queue")
if active.empty:
    st.caption("No open case. Open one above, from the Flagged queue or from a user.")
else:
    queue = active.drop(columns=["decision", "scenario", "decided_by", "decided_at"])
    st.dataframe(queue, hide_index=True, key="cs_queue")
    exports.export_button(queue, "case_queue", "cs_queue")
    with st.expander("Bulk decision"):
        picked = st.multiselect("Cases", active["case_id"].tolist(), key="cs_bulk_ids")
        b1, b2 = st.columns(2)
        bulk_decision = b1.selectbox("Decision", sc.decisions(), key="cs_bulk_decision")
        bulk_scenario = b2.text_input("Scenario (for fraud)", key="cs_bulk_scenario")
        if st.button("Decide selected", key="cs_bulk", disabled=not (may["case"] and picked)):
            done = act(lambda: sc.decide(picked, bulk_decision, name, bulk_scenario, None),
                       "decide the cases")
            if done:  # read the cases again: this run read them before the write
                st.toast(safe.fmt("Decided {n} cases: {decision}.", n=len(done),
                                  decision=bulk_decision))
                st.rerun()

ids = everything["case_id"].tolist()
wanted = state.asked(state.Q_CASE)
if wanted in ids and not state.has(state.CASE):
    state.put(state.CASE, wanted)
if state.get(state.CASE) not in ids:
    state.pop(state.CASE)
if ids:
    st.subheader("Case")
    case_id = st.selectbox("Case", ids[::-1], key=state.CASE)
    state.show_in_url(state.Q_CASE, case_id)
    item = sc.case(*key, case_id)
    st.markdown(safe.fmt("{case} · user {user} · status {status} · assignee {assignee} · "
                         "decision {decision}", case=item.case_id, user=item.user_id,
                         status=item.status, assignee=item.assignee or "–",
                         decision=item.decision or "–")
                + (safe.fmt(" ({scenario})", scenario=item.scenario) if item.scenario else ""))
    if item.entity_kind:
        st.caption(safe.fmt("Opened on the entity {kind} {value}: its latest sessions, of "
                            "every user; user {user} has the most of them.",
                            kind=item.entity_kind, value=item.entity_value or "",
                            user=item.user_id))
        state.entity_link(item.entity_kind, item.entity_value or "")
    if st.button("Show the user", key="cs_user"):
        state.to_user(item.user_id)
    as_of, scores = sc.session_scores(*key, case_id)
    st.caption(safe.fmt("Risk (0-100) and the verdict of the alert policy, then each "
                        "detector's percentile: {when} {kind}",
                        when="frozen at the decision." if as_of == "decision" else "as of now.",
                        kind=policy_text))
    st.dataframe(scores, hide_index=True, key="cs_sessions")
    exports.export_button(scores, f"case_{case_id}_sessions", "cs_sessions")
    if item.status != "closed":
        a1, a2 = st.columns([1, 2])
        if a1.button("Claim", key="cs_claim", **gate("case")) and act(
                lambda: sc.claim(case_id, name), "claim the case"):
            st.rerun()
        assignee = a2.text_input("Assign to", key="cs_assignee")
        if a2.button("Assign", key="cs_assign", disabled=not (may["case"] and assignee)) and act(
                lambda: sc.assign(case_id, assignee, name), "assign the case"):
            st.rerun()
        d1, d2 = st.columns(2)
        decision = d1.radio("Decision", sc.decisions(), key="cs_decision", horizontal=True)
        scenario = d2.text_input("Scenario", key="cs_scenario",
                                 placeholder="e.g. card_testing (for fraud_confirmed)")
        decide_note = st.text_area("Note with the decision", key="cs_decide_note", height=68)
        if st.button("Decide", key="cs_decide", type="primary", **gate("case")) and act(
                lambda: sc.decide([case_id], decision, name, scenario, decide_note),
                "decide the case"):
            st.rerun()
    else:
        reason = st.text_input("Reason to reopen", key="cs_reopen_reason")
        if st.button("Reopen", key="cs_reopen", **gate("case")) and act(
                lambda: sc.reopen(case_id, name, reason), "reopen the case"):
            st.rerun()

    st.markdown("**Notes**")
    case_notes = sc.notes(*key, case_id)
    if case_notes.empty:
        st.caption("No notes yet.")
    for note in case_notes.itertuples():
        st.text(f"{note.created_at:%Y-%m-%d %H:%M} · {note.author}: {note.text}")
    if state.pop(state.CASE_NOTE_ADDED, False):  # empty the box once the note is in
        state.put(state.CASE_NOTE, "")
    new_note = st.text_area("Add a note", key=state.CASE_NOTE, height=68)
    if st.button("Add note", key="cs_add_note", **gate("case")) and act(
            lambda: sc.add_note(case_id, new_note, name), "add the note"):
        state.put(state.CASE_NOTE_ADDED, True)
        st.rerun()

    st.markdown("**Audit trail** (append-only)")
    st.dataframe(sc.audit(*key, case_id), hide_index=True, key="cs_audit")

    st.markdown("**Export a report**")
    e1, e2, e3 = st.columns(3)
    fmt = e1.radio("Format", ["html", "pdf", "json"], key="cs_fmt", horizontal=True)
    mask = e2.checkbox("Mask personal data", key="cs_mask",
                       help="IPs, device ids, e-mail addresses and phone numbers.")
    if e3.button("Prepare report", key="cs_prepare", **gate("export")):
        with st.spinner("Building the report (explanations take a few seconds)…"):
            data = act(lambda: sc.report(case_id, fmt, mask, name), "build the report")
        if data is not None:
            state.put(state.CASE_REPORT, (case_id, fmt, mask, data))
            st.rerun()  # so the audit trail above shows the export
    ready = state.get(state.CASE_REPORT)
    if ready and ready[0] == case_id:
        mime = {"html": "text/html", "pdf": "application/pdf", "json": "application/json"}
        st.download_button(safe.fmt("Download {fmt}", fmt=safe.Markdown(ready[1].upper()))
                           + (" (masked)" if ready[2] else ""),
                           ready[3], file_name=f"{case_id}.{ready[1]}", mime=mime[ready[1]],
                           key="cs_download", on_click="ignore", icon=":material/download:")

st.subheader("Snoozed users, devices and IPs")
active_snoozes = sc.suppressions(*key)
if active_snoozes.empty:
    st.caption("Nothing is snoozed: every flagged session shows in the queue.")
else:
    st.dataframe(active_snoozes, hide_index=True, key="cs_snoozes")
    l1, l2 = st.columns([2, 1])
    lift_id = l1.selectbox("Suppression", active_snoozes["suppression_id"].tolist(),
                           key="cs_lift_id")
    if l2.button("Lift", key="cs_lift", **gate("snooze")) and act(
            lambda: sc.lift(int(lift_id), name), "lift the suppression"):
        st.rerun()
with st.expander("Snooze a user, device or IP"):
    s1, s2, s3 = st.columns([1, 2, 1])
    kind = s1.selectbox("What", sc.suppression_kinds(), key="cs_snooze_kind")
    value = s2.text_input("Value", key="cs_snooze_value")
    days = s3.number_input("Days", min_value=1, max_value=365, value=7, key="cs_snooze_days")
    why = st.text_input("Reason", key="cs_snooze_reason")
    if st.button("Snooze", key="cs_snooze", **gate("snooze")) and act(
            lambda: sc.snooze(kind, value, float(days), why, name), "snooze"):
        st.rerun()

st.subheader("What the decisions taught")
taught = services.safely(lambda: services.policy_learning(*key), "measure what they taught")
if taught:
    gt, both = taught.precision_ground_truth, taught.precision_with_analysts
    moved = (None if gt != gt or both != both or abs(both - gt) < 5e-4
             else f"{both - gt:+.3f} vs ground truth only")
    cols = st.columns(3)
    cols[0].metric("Analyst labels", f"{taught.n_analyst_labels:,}",
                   help="Session labels written by case decisions.")
    cols[1].metric("Labelled sessions", f"{taught.n_labelled_with_analysts:,}",
                   delta=f"+{taught.n_added:,} from analysts" if taught.n_added else None)
    cols[2].metric("Precision at the policy's thresholds", common.number(both, 3),
                   delta=moved)
    st.caption(safe.fmt(
        "{policy} Precision of the policy's flags with ground truth only: {gt} on {n_gt:,} "
        "labelled alerts; with analysts: {both} on {n_both:,}. Retrain a classifier "
        "(`anomalyst train --detector transformer`) to learn from the new labels.",
        policy=policy_text, gt=safe.Markdown(common.number(gt, 3)),
        n_gt=taught.n_alerts_ground_truth, both=safe.Markdown(common.number(both, 3)),
        n_both=taught.n_alerts_with_analysts))
