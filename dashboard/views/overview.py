"""Overview: volumes, flagged counts at the thresholds in force, score distributions, alerts."""

from __future__ import annotations

import numpy as np
import streamlit as st

from core.thresholds import alerts_per_day, flag_sessions
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
labels = services.labels(*key, common.label_sources())
anomalous = table["session_id"].isin(labels.loc[labels["is_anomaly"], "session_id"]).to_numpy()
defaults = {m: services.operating_point(*key, m)[0] for m in chosen}
flags = {m: flag_sessions(table, m, services.saved_thresholds(m), defaults[m]) for m in chosen}
any_flag = np.logical_or.reduce(list(flags.values()))

cols = st.columns(5)
cols[0].metric("Sessions", f"{info['n_sessions']:,}")
cols[1].metric("Users", f"{info['n_users']:,}")
cols[2].metric("Flagged sessions", f"{int(any_flag.sum()):,}",
               help="Flagged by at least one chosen detector at the thresholds in force.")
cols[3].metric("Flag rate", f"{any_flag.mean():.2%}")
cols[4].metric("Labelled anomalous", f"{int(labels['is_anomaly'].sum()):,}",
               help=safe.fmt("of {n:,} labelled sessions ({sources})", n=len(labels),
                             sources=safe.Markdown(", ".join(common.label_sources()))))
st.caption(safe.fmt("Events {n:,} · from {first} to {last} UTC · store {path}",
                    n=info["n_events"], first=common.when(info["first_event_at"]),
                    last=common.when(info["last_event_at"]), path=info["path"]))

log_y = st.toggle("Log-scale counts", value=True, key="overview_log")
grid = st.columns(2)
for i, model_id in enumerate(chosen):
    scores = table[f"score:{model_id}"].to_numpy(np.float64)
    threshold = services.threshold_in_force(model_id)
    if threshold is None:
        threshold = defaults[model_id]
    fig = figures.score_histogram(scores, anomalous=anomalous, threshold=threshold, log_y=log_y,
                                  title=common.model_label(models)(model_id))
    grid[i % 2].plotly_chart(fig, key=f"hist_{model_id}")

daily = alerts_per_day(table["start_ts"], any_flag)
st.plotly_chart(figures.alerts_over_time(daily, "Alerts per day (any chosen detector)"),
                key="overview_alerts")
