"""User 360: one user's sessions by risk (0-100) and the policy's verdict, the focus session
on the timeline, risk over time with flags and decisions, past cases and decisions of the
user and their linked accounts, the linked accounts coloured by risk and decision, entities
and amounts (with their currency).

Deep link: ``/user?user=<id>&session=<id>`` (the session is the focus; without one, the
user's highest-risk flagged session, else the whole span). Decisions (focus, decisions,
currency, bounds) are ``core.app.user360``'s docstring.
"""

from __future__ import annotations

import streamlit as st

from dashboard import (
    charts,
    common,
    exports,
    figures_user,
    services,
    state,
    widgets,
)
from dashboard import safe_text as safe
from dashboard import services_user as su

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
        "Per-event ranks from", [None, *seq_models], key="user_event_model",
        index=1 if seq_models else 0,
        format_func=lambda m: "none" if m is None else common.model_label(models)(m),
        help="A sequence model's per-event scores, shown as each event's percentile among "
             "this user's events (bigger markers: more unusual for the user).")
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
read = su.user_page(*key, user_id, event_model, page_no - 1)
view, full = read.view, read.full
sessions, events = view.sessions, view.events
if sessions.empty and page_no > 1:  # another user, or fewer sessions: back to the first page
    state.pop(state.USER_SESSIONS_PAGE)
    st.rerun()
if sessions.empty:
    st.warning(safe.fmt("User {user} has no sessions in this store.", user=user_id))
    st.stop()

risk = full.sessions
asked = state.asked(state.Q_SESSION) or None
focus, why, window = su.focus_window(risk, asked)
points, buckets, bucket = su.thin_points(risk, focus=focus)
currency = su.currency_label(full.totals, full.store_currency)

top = risk["risk"].max()
c = st.columns(6)
c[0].metric("Risk (highest)", "–" if top != top else f"{top:.0f}",
            help=safe.join([safe.Markdown("The highest risk (0-100) of the user's sessions. "),
                            common.policy_caption()]))
c[1].metric("Flagged sessions", f"{int(risk['flagged'].sum()):,}",
            help="Flagged by the alert policy in force, the same as the queue.")
c[2].metric("Decided sessions", f"{su.decided_count(risk):,}",
            help="Sessions an analyst decided: a label from a decided case (fraud or not "
                 "fraud), or an inconclusive decided case.")
c[3].metric("Sessions", f"{view.n_sessions:,}")
c[4].metric("Events", f"{view.n_events:,}")
if len(full.totals) == 1:
    c[5].metric("Amount", f"{float(full.totals['amount'].iloc[0]):,.2f}",
                help=safe.fmt("Currency: {cur}.", cur=safe.prose(currency)))
    c[5].caption(safe.prose(currency))
else:
    c[5].metric("Amount", "–" if full.totals.empty else "several currencies")
    if not full.totals.empty:
        c[5].caption(safe.join([safe.fmt("{amount:,.2f} {cur}", amount=float(a),
                                         cur=safe.prose(cu))
                                for cu, a in zip(full.totals["currency"],
                                                 full.totals["amount"], strict=True)], "; "))
st.caption(safe.join([
    safe.fmt("Devices / IPs: {dev}. ", dev=safe.Markdown(
        "–" if view.devices_and_ips is None else "{:,} / {:,}".format(*view.devices_and_ips))),
    safe.fmt("Amounts are in the currency of each event's source (a currency column), else "
             "the store's display currency: {cur}.",
             cur=safe.prose(full.store_currency or su.CURRENCY_NOT_SET)),
]))
if full.sessions_cut:
    st.caption(safe.fmt("Risk is read for the newest {n:,} of the user's {total:,} sessions.",
                        n=len(risk), total=full.n_sessions))
if view.bucket:
    st.caption(safe.fmt(
        "Showing {n:,} events as {rows:,} rows, aggregated by {bucket} and event type: each "
        "row counts its events, sums their amounts and keeps the highest event score (more "
        "than {limit:,} events are not drawn one by one).", n=view.n_events, rows=len(events),
        bucket=safe.Markdown(view.bucket), limit=services.MAX_USER_EVENTS))

if asked:
    st.caption(safe.fmt("Opened for session {focus}.", focus=asked))
    if focus != asked:
        st.warning(safe.fmt("Session {asked} is not one of this user's sessions read here: "
                            "the timeline shows the focus below instead.", asked=asked))
if focus:
    row = risk[risk["session_id"].astype(str) == focus].iloc[0]
    with st.container(border=True):
        st.markdown(safe.fmt(
            "**Focus session** {focus} ({why}) · risk **{risk}** · {flag} · decision "
            "{decision}", focus=focus,
            why=safe.Markdown("asked in the link" if why == "asked"
                              else "the highest-risk flagged session"),
            risk=safe.Markdown("–" if row["risk"] != row["risk"] else f"{row['risk']:.0f}"),
            flag=safe.Markdown("**flagged**" if row["flagged"] else "not flagged"),
            decision=row["decision"] or safe.Markdown("none")))
        st.caption(safe.fmt("Starts {start} UTC; events: {n:,}. The timeline below is zoomed to "
                            "it: the buttons above the chart (1h, 1d, 1w, 1m, all) and the "
                            "slider under it change the span.",
                            start=f"{row['start_ts']:%Y-%m-%d %H:%M:%S}",
                            n=int(row["n_events"])))
else:
    st.caption("No flagged session: the timeline shows the user's whole span.")

widgets_col, explain_col = st.columns([1, 1], vertical_alignment="bottom")
widgets.open_case_button(
    safe.fmt("Open case for session {focus}", focus=asked) if asked else
    "Open case for this user",
    key="user_open_case", user_id=None if asked else user_id, session_id=asked,
    where=widgets_col)
ids = risk["session_id"].astype(str).tolist()[::-1]
e1, e2 = explain_col.columns([3, 1], vertical_alignment="bottom")
to_explain = e1.selectbox("Explain a session of this user", ids, key="user_explain_pick",
                          index=ids.index(focus) if focus in ids else 0)
if e2.button("Explain", key="user_explain", icon=":material/lightbulb:"):
    state.to_explain(str(to_explain))

event_pct = su.event_percentiles(events.get("event_score"))
drawn = points[["session_id", "start_ts", "end_ts", "risk", "flagged", "decision"]].rename(
    columns={"start_ts": "start (UTC)", "end_ts": "end (UTC)"})
charts.chart(figures_user.timeline(events, points, focus=focus, window=window,
                                   buckets=buckets, bucket=bucket, event_size=event_pct),
             su.with_focus_first(drawn, focus), key="user_timeline",
             caption=safe.join([
                 safe.Markdown("Rows: event types; the top row is the sessions, coloured by "
                               "risk (blue low, red high), flagged ones as diamonds. "),
                 safe.Markdown("The focus session is the orange band. ") if focus
                 else safe.Markdown(""),
                 safe.fmt("More than {cap:,} sessions: the focus, decided and flagged ones "
                          "are drawn one by one ({n:,}), every session as the highest risk "
                          "per {b} (squares). ", cap=su.MAX_POINTS, n=len(points),
                          b=safe.Markdown(bucket)) if bucket
                 else safe.Markdown(""),
                 safe.Markdown("Marker size: the event's percentile among the user's events "
                               "by the chosen sequence model.") if event_pct is not None
                 else safe.Markdown("")]))
charts.chart(figures_user.risk_over_time(points, focus=focus, buckets=buckets, bucket=bucket),
             su.with_focus_first(drawn, focus), key="user_risk_time",
             caption=safe.join([safe.Markdown(
                 "Each session's risk (0-100) at its start: flagged sessions as red diamonds, "
                 "decided sessions ringed (red: fraud, green: not fraud, grey: "
                 "inconclusive), the focus as an orange star. "), common.policy_caption()]))

st.subheader("Sessions")
if view.n_sessions > services.SESSIONS_PER_PAGE:
    pages = view.n_pages(services.SESSIONS_PER_PAGE)
    st.number_input(safe.fmt("Page (newest first; {per:,} sessions a page, {pages:,} pages)",
                             per=services.SESSIONS_PER_PAGE, pages=pages),
                    min_value=1, max_value=pages, step=1, key=state.USER_SESSIONS_PAGE)
    st.caption(safe.fmt("Showing {n:,} of {total:,} sessions.", n=len(sessions),
                        total=view.n_sessions))
per_detector = st.toggle("Each detector's percentile too", key="user_detector_pct",
                         help="Each detector's raw score as its percentile among that "
                              "detector's scored sessions (reads every detector's scores once).")
extra = [su.detector_percentiles(*key, sessions)] if per_detector else []
# the asked focus is listed even when it is on another page
table = su.with_focus_first(su.page_rows(sessions, risk, extra,
                                         focus if why == "asked" else None), focus)
st.caption(safe.fmt("Risk (0-100), the policy's verdict and the analysts' decision; the focus "
                    "session first. {policy}", policy=common.policy_caption()))
st.dataframe(table.style.apply(
    lambda r: ["background-color: rgba(255, 166, 0, 0.25)" if r["focus"] else ""] * len(r),
    axis=1), hide_index=True, key="user_sessions",
    column_config={"risk": st.column_config.ProgressColumn(
        "risk", min_value=0, max_value=100, format="%.0f")})
exports.export_button(table, "user_sessions", "user_sessions")

st.subheader("Past cases and decisions")
if full.cases.empty:
    st.caption("No case names this user or a linked account, or holds one of their sessions.")
else:
    st.caption(safe.join([
        safe.Markdown("Cases of this user and of the linked accounts (naming them or holding "
                      "one of their sessions), the latest change first"),
        safe.fmt(" (the latest {n:,}).", n=len(full.cases)) if full.cases_cut
        else safe.Markdown("."),
    ]))
    st.dataframe(full.cases, hide_index=True, key="user_cases")
    case_ids = full.cases["case_id"].astype(str).tolist()
    k1, k2 = st.columns([3, 1], vertical_alignment="bottom")
    shown_case = k1.selectbox("Open a case", case_ids, key="user_case_pick")
    if k2.button("Show case", key="user_show_case", icon=":material/folder_open:"):
        state.to_case(str(shown_case))

st.subheader("Entities")
mine = read.entities
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
               "and coupon abusers show up here. Highest risk (0-100) over their sessions; "
               "decision: their latest decided case, else their analyst labels.")
    people = su.linked_rows(linked, full.linked)
    shown = people[["user_id", "max_risk", "decision", "decided_case", "n_shared", "shared",
                    "n_sessions"]]
    lc, rc = st.columns([3, 2])
    lc.dataframe(shown, hide_index=True, key="user_linked",
                 column_config={"max_risk": st.column_config.ProgressColumn(
                     "highest risk", min_value=0, max_value=100, format="%.0f")})
    graph_users = su.graph_users(full.linked, people, user_id, su.MAX_LINKED_GRAPH)
    charts.chart(figures_user.linked_graph(graph_users, user_id=user_id),
                 people.head(su.MAX_LINKED_GRAPH)[["user_id", "max_risk", "decision",
                                                   "n_shared"]],
                 key="user_graph", where=rc,
                 caption=safe.fmt(
                     "Fill: the account's highest risk (blue low, red high, grey unscored). "
                     "Ring: red decided fraud, green decided not fraud, grey "
                     "inconclusive, thin no decision. The {n:,} most linked accounts are "
                     "drawn.", n=min(len(people), su.MAX_LINKED_GRAPH)))

left, right = st.columns(2)
charts.chart(figures_user.entities_over_time(events), mine, key="user_entities", where=left)
charts.chart(figures_user.amounts_over_time(full.amounts, per=full.amounts_per),
             full.amounts, key="user_amounts", where=right,
             caption=safe.fmt("Amounts summed per {per}, newest {n:,}; currency: {cur}.",
                              per=safe.Markdown(full.amounts_per), n=len(full.amounts),
                              cur=safe.prose(currency)))
with st.expander("Events"):
    shown_events = events.drop(columns=["event_score"], errors="ignore")
    if event_pct is not None:
        shown_events = shown_events.assign(**{"event %ile (user)": event_pct})
    st.dataframe(shown_events, hide_index=True, key="user_events")
