"""Entity: one device, IP, item, payment id, country or merchant: its volume and risk over
time, the users touching it with their latest decision, their decided cases; a case can be
opened on it.

Deep link: ``/entity?kind=device_id&value=<id>``; other pages link here with
``state.entity_link`` or switch with ``state.to_entity``.
"""

from __future__ import annotations

import streamlit as st

from dashboard import charts, common, exports, figures_entity, services, state
from dashboard import safe_text as safe
from dashboard import services_entity as se

st.title("Entity")
common.scored_models_or_stop()
key = services.key()
kinds = list(se.kinds(*key))
asked_kind, asked_value = state.asked(state.Q_KIND), state.asked(state.Q_VALUE)
if asked_kind and asked_kind not in kinds:
    st.warning(safe.fmt("{kind} is not an entity kind of this store. Entity kinds: {kinds}.",
                        kind=asked_kind, kinds=", ".join(kinds)))
    st.stop()

with st.container(border=True):
    k_col, v_col = st.columns([1, 3])
    kind = k_col.selectbox("Kind", kinds, key="entity_kind",
                           index=kinds.index(asked_kind) if asked_kind in kinds else 0,
                           format_func=lambda k: f"{se.KIND_NAMES.get(k, k)} ({k})")
    value = v_col.text_input("Value", value=asked_value, key="entity_value", max_chars=2_000,
                             placeholder="a device id, IP, item id, payment id ...")
value = value.strip()
if not value:
    st.info("Pick a kind and type a value, or open an entity from a user, the flagged queue "
            "or an explanation.")
    st.stop()
state.show_in_url(state.Q_KIND, kind)
state.show_in_url(state.Q_VALUE, value)

view = services.safely(lambda: se.entity_view(*key, kind, value), "read the entity")
if view is None:
    st.stop()
if not view.found:
    st.warning(safe.fmt("No event has {kind} {value}. Check the value (it must match "
                        "exactly), or pick another kind.", kind=kind, value=value))
    st.stop()

s = view.summary
c = st.columns(4)
c[0].metric("Sessions", f"{s.n_sessions:,}")
c[1].metric("Users", f"{s.n_users:,}")
c[2].metric("Events", f"{s.n_events:,}")
c[3].metric("Amount", f"{s.amount:,.2f}")
st.caption(safe.fmt("First seen {first} · last seen {last} (UTC)",
                    first="–" if s.first_seen is None else f"{s.first_seen:%Y-%m-%d %H:%M}",
                    last="–" if s.last_seen is None else f"{s.last_seen:%Y-%m-%d %H:%M}"))

ok, why = common.may("case")
if st.button("Open a case on this entity", key="entity_open_case", disabled=not ok,
             icon=":material/folder_open:",
             help=safe.join([why]) if why else safe.fmt(
                 "The case covers the latest {n} sessions touching it and names the user with "
                 "the most sessions on it; an open case on it gets the new sessions.",
                 n=se.MAX_CASE_SESSIONS)):
    opened = services.safely(lambda: se.open_case(common.analyst_name(), kind, value),
                             "open a case")
    if opened is not None:
        state.to_case(opened.case_id)

left, right = st.columns(2)
charts.chart(figures_entity.volume_over_time(view.volume),
             view.volume.rename(columns={"users": "distinct users", "new_users": "new accounts"}),
             key="entity_volume", where=left)
charts.chart(figures_entity.risk_over_time(view.risk),
             view.risk.rename(columns={"n_scored": "sessions scored", "max_score": "highest score",
                                       "mean_score": "mean score", "max_risk": "highest risk"}),
             key="entity_risk", where=right)
st.caption(safe.join([
    safe.Markdown("Risk: the daily highest over the sessions touching it. "),
    common.policy_caption() if view.risk_model else safe.Markdown("No model is scored yet."),
    safe.fmt(" Only the latest {n:,} days are drawn.", n=len(view.volume))
    if view.days_cut else safe.Markdown(""),
]))

st.subheader("Users touching it")
st.caption(safe.join([
    safe.fmt("{n:,} users; most sessions on this entity first", n=s.n_users),
    safe.fmt(", the first {shown:,} shown.", shown=len(view.users)) if view.users_cut
    else safe.Markdown("."),
    safe.Markdown(" The latest decision is that of the user's latest closed case."),
]))
st.dataframe(view.users, hide_index=True, key="entity_users")
exports.export_button(view.users, "entity_users", "entity_users")
users = view.users["user_id"].astype(str).tolist()
u1, u2 = st.columns([3, 1], vertical_alignment="bottom")
pick = u1.selectbox("Open a user", users, key="entity_user_pick")
if u2.button("Open user", key="entity_open_user", icon=":material/person_search:",
             disabled=not users):
    state.to_user(str(pick))

st.subheader("Decided cases")
if view.cases.empty:
    st.caption("No closed case holds a session or a user touching this entity.")
else:
    st.caption(safe.join([
        safe.Markdown("Closed cases of the users or sessions touching it, or opened on it, "
                      "newest decision first"),
        safe.fmt(" (the latest {n:,}).", n=view.max_cases) if view.cases_cut
        else safe.Markdown("."),
    ]))
    st.dataframe(view.cases, hide_index=True, key="entity_cases")
    cases = view.cases["case_id"].astype(str).tolist()
    k1, k2 = st.columns([3, 1], vertical_alignment="bottom")
    shown_case = k1.selectbox("Show a case", cases, key="entity_case_pick")
    if k2.button("Show case", key="entity_show_case", icon=":material/folder_open:"):
        state.to_case(str(shown_case))
