"""Overview: volumes, flagged counts at the thresholds in force, score distributions, alerts."""

from __future__ import annotations

import streamlit as st

from dashboard import common, figures, services
from dashboard import safe_text as safe

st.title("Overview")
models = common.scored_models_or_stop()
key = services.key()
info = services.summary(*key)
ids = list(models["model_id"])
defaults = list(services.default_model_ids(models))
chosen = st.multiselect("Detectors", ids, default=defaults, key="overview_models",
                        format_func=common.model_label(models))
if not chosen:
    st.info("Pick at least one model above.")
    st.stop()
table = services.score_table(*key, tuple(chosen))
flags = services.flag_summary(*key, chosen, common.label_sources())

cols = st.columns(5)
cols[0].metric("Sessions", f"{info['n_sessions']:,}")
cols[1].metric("Users", f"{info['n_users']:,}")
cols[2].metric("Flagged sessions", f"{flags.n_flagged:,}",
               help="Flagged by at least one chosen detector at the thresholds in force.")
cols[3].metric("Flag rate", f"{flags.flag_rate:.2%}")
cols[4].metric("Labelled anomalous", f"{flags.n_labelled_anomalous:,}",
               help=safe.fmt("of {n:,} labelled sessions ({sources})", n=flags.n_labelled,
                             sources=safe.Markdown(", ".join(common.label_sources()))))
st.caption(safe.fmt("Events {n:,} · from {first} to {last} UTC · store {path}",
                    n=info["n_events"], first=common.when(info["first_event_at"]),
                    last=common.when(info["last_event_at"]), path=info["path"]))

log_y = st.toggle("Log-scale counts", value=True, key="overview_log")
grid = st.columns(2)
for i, model_id in enumerate(chosen):
    fig = figures.score_histogram(table[f"score:{model_id}"].to_numpy("float64"),
                                  anomalous=flags.anomalous,
                                  threshold=flags.thresholds[model_id], log_y=log_y,
                                  title=common.model_label(models)(model_id))
    grid[i % 2].plotly_chart(fig, key=f"hist_{model_id}")

st.plotly_chart(figures.alerts_over_time(flags.daily, "Alerts per day (any chosen detector)"),
                key="overview_alerts")
