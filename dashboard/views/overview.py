"""Overview: volumes, the alert policy's flags and risk, alerts a day; detectors compared;
typologies of the decisions and (on demand) of the queue's top sessions.

"Flagged" is the alert policy's verdict, the same as on the queue, the User and Cases pages
and in reports. Risk (0-100) comes first; each detector's own view is a count, not a score
on its own scale.
"""

from __future__ import annotations

import streamlit as st

from dashboard import charts, common, figures, services, services_similar
from dashboard import safe_text as safe

st.title("Overview")
models = common.scored_models_or_stop()
key = services.key()
info = services.summary(*key)
policy = services.policy(*key)
sources = common.label_sources()
st.caption(safe.join([common.policy_caption()]))
flags = services.policy_summary(*key, sources)
risk = services.risk_table(*key)

cols = st.columns(5)
cols[0].metric("Sessions", f"{info['n_sessions']:,}")
cols[1].metric("Users", f"{info['n_users']:,}")
cols[2].metric("Flagged sessions", f"{flags.n_flagged:,}",
               help=safe.fmt("Flagged by the alert policy in force (version {v}): the same "
                             "sessions the queue holds.", v=policy.version if policy else 0))
cols[3].metric("Flag rate", f"{flags.flag_rate:.2%}")
cols[4].metric("Labelled anomalous", f"{flags.n_labelled_anomalous:,}",
               help=safe.fmt("of {n:,} labelled sessions ({sources})", n=flags.n_labelled,
                             sources=safe.Markdown(", ".join(sources))))
st.caption(safe.fmt("Events {n:,} · from {first} to {last} UTC · store {path}{unit}",
                    n=info["n_events"], first=common.when(info["first_event_at"]),
                    last=common.when(info["last_event_at"]), path=info["path"],
                    unit=safe.Markdown(" · scored by event: each session is one event"
                                       if info.get("unit") == "event" else "")))

log_y = st.toggle("Log-scale counts", value=True, key="overview_log")
left, right = st.columns(2)
values = risk["risk"].to_numpy("float64")
if (values == values).any():  # NaN != NaN: no risk without a training reference
    charts.chart(figures.score_histogram(values, anomalous=flags.anomalous, log_y=log_y,
                                         title="Risk (0-100), labelled anomalies over it",
                                         x_title="risk (0-100)"),
                 figures.histogram_table(values, anomalous=flags.anomalous),
                 key="overview_risk", where=left)
else:
    left.info("No risk yet: the policy's model has no training reference. Retrain it.")
charts.chart(figures.alerts_over_time(flags.daily, "Alerts per day (the policy)"),
             flags.daily, key="overview_alerts", where=right)

# a toggle, not an expander: an expander's body runs even when closed (a store read a model)
if st.toggle("Compare detectors (each at its own threshold)", key="overview_compare_on"):
    ids = list(models["model_id"])
    chosen = st.multiselect("Detectors", ids, default=list(services.default_model_ids(models)),
                            key="overview_models", format_func=common.model_label(models))
    if chosen:
        compared = services.compare_detectors(*key, chosen, sources, common.model_label(models))
        st.dataframe(compared, hide_index=True, key="overview_compare",
                     column_config={"flag rate %": st.column_config.NumberColumn(format="%.2f")})

st.subheader("Typologies")
decided = services.safely(lambda: services_similar.decision_breakdown(*key),
                          "read the decisions")
if decided is not None:
    if decided.empty:
        st.caption("No decisions yet: the breakdown of decided sessions and cases by typology "
                   "appears once analysts decide cases.")
    else:
        st.caption("What analysts decided, by typology (the case's scenario; a false "
                   "positive counts as normal) and decision: sessions and cases.")
        st.dataframe(decided, hide_index=True, key="overview_decided_typology")
# a toggle: the guess reads every labelled anomaly's features on first use (seconds at 1M)
if st.toggle(safe.fmt("Typology of the queue (its top {n:,} open sessions)",
                      n=services_similar.MAX_QUEUE), key="overview_typology_on"):
    breakdown = services.safely(lambda: services_similar.queue_typology(*key),
                                "guess the queue's typologies")
    if breakdown is not None and breakdown.empty:
        st.caption("The queue holds no open session.")
    elif breakdown is not None:
        size = services_similar.index_size(*key)
        st.caption(safe.fmt(
            "Each session's guess is the vote of its nearest labelled anomalies ({n:,} with a "
            "scenario); 'no close match' when they are far (beyond the distance {cut}) or "
            "disagree.", n=size["labelled_anomalies"],
            cut=safe.Markdown("–") if size["distance_cut"] is None
            else f"{size['distance_cut']:.3f}"))
        st.dataframe(breakdown, hide_index=True, key="overview_queue_typology",
                     column_config={"share": st.column_config.NumberColumn(format="%.3f")})
