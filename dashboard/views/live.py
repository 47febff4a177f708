"""Live: the alerts the scoring service raises as behaviour arrives, the pace of the stream,
and whether recent risks still look like training (a drift alarm)."""

from __future__ import annotations

import streamlit as st

from dashboard import charts, common, services, services_live, state
from dashboard import figures_live as figs
from dashboard import safe_text as safe
from dashboard import services_queue as sq

REFRESH_S = 2.0

st.title("Live")
st.caption("Alerts raised by `anomalyst serve` as events arrive. The page refreshes itself "
           "every 2 s; pause it to act on an alert.")

common.scored_models_or_stop()  # no store or no scored model: what to run, then stop

paused = st.toggle("Pause the feed", key="live_paused",
                   help="Stops the refresh so the rows stay put while you pick one.")
analyst = common.analyst()


def draw_pulse() -> None:
    key = services.key()
    beat = services.safely(lambda: services_live.pulse(*key), "read the stream's pace")
    if beat is not None:
        c1, c2, c3 = st.columns(3)
        c1.metric("Events per second (last minute)", f"{beat.events_per_s:,.1f}")
        c2.metric("Alerts per minute (last 10 min)", f"{beat.alerts_per_min:,.2f}")
        c3.metric("Live alerts in the store", f"{beat.alerts_total:,}")
    view = services.safely(lambda: services_live.drift(*key, services_live.minute()),
                           "compare recent risks with training")
    if view is None:
        return
    if view.model_id is None:
        st.info("No alert policy in force, so nothing is scored live. Publish one on "
                "Thresholds.")
        return
    verdict = safe.fmt("Drift of {model} over the last hour: {verdict}.", model=view.model_id,
                       verdict=view.drift.verdict)
    if view.after is not None:
        verdict = safe.join([verdict, safe.fmt(
            " Sessions scored in the last hour that started after its training window "
            "(ends {end:%Y-%m-%d %H:%M} UTC), against its training sessions.",
            end=view.after)])
    (st.error if view.drift.alarm else st.caption)(verdict)
    charts.chart(figs.risk_drift(view.recent_risk, view.training_risk, window_label="last hour"),
                 figs.drift_table(view.recent_risk, view.training_risk), key="live_drift")


def draw_feed() -> None:
    if paused and state.has(state.LIVE_FEED):
        frame = state.get(state.LIVE_FEED)
    else:
        frame = services.safely(lambda: services_live.feed(*services.key()), "read the alerts")
        if frame is None:
            return
        state.put(state.LIVE_FEED, frame)
    draw_pulse()
    st.subheader(safe.fmt("Newest alerts ({n})", n=len(frame)))
    if frame.empty:
        st.info("No live alerts yet. Start the service (`anomalyst serve`) and send events, "
                "or replay a file: `anomalyst replay FILE --to URL`.")
        return
    shown = services_live.with_links(frame)[[
        "raised_at", "risk", "user_id", "session_id", "explain", "user", "reasons", "model_id",
        "alert_id"]]
    config = {
        "risk": st.column_config.ProgressColumn("risk", min_value=0, max_value=100,
                                                format="%.0f", width="small"),
        "explain": st.column_config.LinkColumn("Explain", display_text="Explain"),
        "user": st.column_config.LinkColumn("User", display_text="User page"),
        "reasons": st.column_config.TextColumn("top reasons", width="large"),
    }
    event = st.dataframe(shown, key="live_table", hide_index=True, column_config=config,
                         on_select="rerun", selection_mode="single-row")
    rows = event.selection.rows if event is not None else []
    if rows and not paused:
        st.caption("Pause the feed to act on the selected alert: new alerts move the rows.")
        return
    if not rows:
        return
    picked = frame.iloc[rows][["session_id", "user_id"]]
    ok, why = common.may("case")
    if st.button("Open a case on this user", key="live_open_case", disabled=not ok,
                 icon=":material/folder_open:", help=safe.join([why]) if why else None):
        opened = services.safely(lambda: sq.open_cases(picked, analyst), "open a case")
        if opened:
            state.to_case(opened[0])


st.fragment(run_every=None if paused else REFRESH_S)(draw_feed)()
