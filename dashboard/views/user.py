"""User: timeline with per-event scores, sessions, devices and places, linked accounts.

Deep link: ``/user?user=<id>&session=<id>``.
"""

from __future__ import annotations

import streamlit as st

from dashboard import common, exports, figures, services, services_entity, state, widgets
from dashboard import safe_text as safe

st.title("User")
models = common.scored_models_or_stop()
key = services.key()
user_id = state.asked(state.Q_USER)
seq_models = services.models_of_kind(models, "sequences")
with st.container(border=True):
    find_col, model_col = st.columns([3, 2])
    search = find_col.text_input("Find a user", value=user_id, key="user_search",
                                 placeholder="user id or part of it")
    event_model = model_col.selectbox(
        "Per-event scores from", [None, *seq_models], key="user_event_model",
        index=1 if seq_models else 0,
        format_func=lambda m: "none" if m is None else common.model_label(models)(m))
    if search and search != user_id:
        matches = services.find_users(search)
        if not matches:
            st.warning(safe.fmt("No user id contains {search}.", search=search))
        elif search in matches:
            user_id = search
        else:
            user_id = st.selectbox("Matching users", matches, key="user_pick")
if not user_id:
    st.info("Pick a user above, or open one from the flagged queue.")
    st.stop()
state.show_in_url(state.Q_USER, user_id)

page_no = int(state.get(state.USER_SESSIONS_PAGE, 1))
view = services.user_view(*key, user_id, event_model, page_no - 1)
sessions, events = view.sessions, view.events
if sessions.empty and page_no > 1:  # another user, or fewer sessions: back to the first page
    state.pop(state.USER_SESSIONS_PAGE)
    st.rerun()
if sessions.empty:
    st.warning(safe.fmt("User {user} has no sessions in this store.", user=user_id))
    st.stop()
focus = state.asked(state.Q_SESSION) or None

ranked = services.risk_first(*key, sessions)
top = ranked["risk"].max()
c = st.columns(5)
c[0].metric("Risk (highest, this page)", "–" if top != top else f"{top:.0f}",
            help=safe.join([common.policy_caption()]))
c[1].metric("Flagged sessions", f"{int(ranked['flagged'].sum()):,}",
            help="Flagged by the alert policy in force, the same as the queue.")
c[2].metric("Sessions", f"{view.n_sessions:,}")
c[3].metric("Events", f"{view.n_events:,}")
c[4].metric("Devices / IPs", "–" if view.devices_and_ips is None else
            "{} / {}".format(*view.devices_and_ips),
            help="Not counted when events are aggregated (see below)." if view.bucket else None)
if view.bucket:
    st.caption(safe.fmt(
        "Showing {n:,} events as {rows:,} rows, aggregated by {bucket} and event type: each "
        "row counts its events, sums their amounts and keeps the highest event score (more "
        "than {limit:,} events are not drawn one by one).", n=view.n_events, rows=len(events),
        bucket=safe.Markdown(view.bucket), limit=services.MAX_USER_EVENTS))
if focus:
    st.caption(safe.fmt("Opened for session {focus}.", focus=focus))
widgets.open_case_button(
    safe.fmt("Open case for session {focus}", focus=focus) if focus else "Open case for this user",
    key="user_open_case", user_id=None if focus else user_id, session_id=focus)
ids = sessions["session_id"].tolist()[::-1]
e1, e2 = st.columns([3, 1], vertical_alignment="bottom")
to_explain = e1.selectbox("Explain a session of this user", ids, key="user_explain_pick",
                          index=ids.index(focus) if focus in ids else 0)
if e2.button("Explain", key="user_explain", icon=":material/lightbulb:"):
    state.to_explain(str(to_explain))

st.plotly_chart(figures.user_timeline(events, sessions), key="user_timeline")
st.subheader("Sessions")
if view.n_sessions > services.SESSIONS_PER_PAGE:
    pages = view.n_pages(services.SESSIONS_PER_PAGE)
    st.number_input(safe.fmt("Page (newest first; {per:,} sessions a page, {pages:,} pages)",
                             per=services.SESSIONS_PER_PAGE, pages=pages),
                    min_value=1, max_value=pages, step=1, key=state.USER_SESSIONS_PAGE)
    st.caption(safe.fmt("Showing {n:,} of {total:,} sessions.", n=len(sessions),
                        total=view.n_sessions))
st.caption(safe.fmt("Risk (0-100) and the policy's verdict first; each detector's score as "
                    "its percentile. {policy} Amount {amount:,.2f}.",
                    policy=common.policy_caption(), amount=view.amount))
shown_sessions = ranked
st.dataframe(shown_sessions, hide_index=True, key="user_sessions",
             column_config={"risk": st.column_config.ProgressColumn(
                 "risk", min_value=0, max_value=100, format="%.0f")})
exports.export_button(shown_sessions, "user_sessions", "user_sessions")
left, right = st.columns(2)
left.plotly_chart(figures.entities_over_time(events), key="user_entities")
right.plotly_chart(figures.amounts_over_time(events), key="user_amounts")

st.subheader("Entities")
mine = services_entity.user_entities(*key, user_id)
if mine.empty:
    st.caption("No device, IP, item, payment id, country or merchant in this user's events.")
else:
    st.caption("The user's devices, IPs, items, payment ids, countries and merchants, the most "
               "used first (at most 20 of each): each opens its Entity page.")
    groups = list(dict.fromkeys(mine["kind"]))
    for col, group in zip(st.columns(len(groups)), groups, strict=True):
        col.caption(safe.fmt("{kind}", kind=group))
        for item in mine.loc[mine["kind"] == group, "value"]:
            state.entity_link(group, str(item), where=col, with_kind=False)

st.subheader("Linked accounts")
linked = view.linked
if linked.empty:
    st.caption("No other user shares a device, IP or payment method with this one.")
else:
    st.caption("Other users sharing a device, IP or payment method: rings of fake reviewers "
               "and coupon abusers show up here.")
    lc, rc = st.columns([3, 2])
    lc.dataframe(linked, hide_index=True, key="user_linked")
    rc.plotly_chart(figures.linked_graph(user_id, linked.head(30)), key="user_graph")
with st.expander("Events"):
    st.dataframe(events, hide_index=True, key="user_events")
