"""Thresholds: a live operating point per detector and segment, saved for every page."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from core.thresholds import (
    apply_daily_budget,
    cheapest_threshold,
    default_threshold,
    threshold_for_capacity,
)
from dashboard import common, figures, services

st.title("Thresholds")
models = common.scored_models_or_stop()
key = services.key()
ids = list(models["model_id"])
model_id = st.selectbox("Detector", ids, key="thr_model", index=common.preferred_index(models),
                        format_func=common.model_label(models))
table = services.score_table(*key, (model_id,))
countries = sorted(table["country"].dropna().unique().tolist())
segments = ["all", "tenure:new", "tenure:returning"] + [f"country:{c}" for c in countries]
segment = st.selectbox("Segment", segments, key="thr_segment",
                       help="Sessions of new users (first seen < 7 days before), returning "
                            "users, or one country. The most specific saved threshold wins.")
if segment == "all":
    part = np.ones(len(table), bool)
else:
    kind, value = segment.split(":", 1)
    part = (table[kind] == value).to_numpy()
scores = table.loc[part, f"score:{model_id}"].to_numpy(np.float64)
start_ts = table.loc[part, "start_ts"]
sources = common.label_sources()
labelled = services.labelled_scores(*key, model_id, sources)
labelled = labelled[labelled["session_id"].isin(table.loc[part, "session_id"])]
known = labelled[labelled["is_anomaly"].notna()]
n_pos = int(known["is_anomaly"].astype(bool).sum())
st.caption(f"Labels from **{', '.join(sources)}**: {len(known):,} labelled sessions in this "
           f"segment, {n_pos:,} anomalous. Sessions without a label are not counted in "
           "precision and recall.")
if len(scores) == 0:
    st.info("No sessions in this segment.")
    st.stop()

lo, hi = float(np.min(scores)), float(np.max(scores))
saved = services.saved_thresholds(model_id)
start = saved.get(segment, saved.get("all", default_threshold(scores)))
step = max((hi - lo) / 1000, 1e-9)
if "thr_pending" in st.session_state:  # a suggestion chosen below, applied before the slider
    st.session_state["thr_value"] = st.session_state.pop("thr_pending")
threshold = st.slider("Threshold (flag sessions scoring at or above)", lo, hi + step,
                      value=float(min(max(start, lo), hi + step)), step=step, key="thr_value",
                      format="%.4f")
budget = st.number_input("Alert budget: at most this many alerts a day (0 = no budget)",
                         min_value=0, value=0, step=10, key="thr_budget")

ttable = services.threshold_table(*key, model_id, sources) if len(known) else None
if segment != "all" and len(known):
    from core.evaluate import ThresholdTable

    y = known["is_anomaly"].astype(bool).to_numpy()
    ttable = ThresholdTable.from_scores(known["score"].to_numpy(np.float64), y) if (
        y.any() and not y.all()) else None
flagged = scores >= threshold
if budget:
    flagged = apply_daily_budget(scores, flagged, start_ts, int(budget))
n_days = max(pd.to_datetime(start_ts).dt.normalize().nunique(), 1)

cols = st.columns(6)
if ttable is not None and not budget:
    op = ttable.at(threshold)
    tp, fp, fn, tn = op.tp, op.fp, op.fn, op.tn
elif len(known):
    kflag = known["session_id"].isin(table.loc[part, "session_id"][flagged]).to_numpy()
    y = known["is_anomaly"].astype(bool).to_numpy()
    tp, fp = int((kflag & y).sum()), int((kflag & ~y).sum())
    fn, tn = int((~kflag & y).sum()), int((~kflag & ~y).sum())
else:
    tp = fp = fn = tn = 0
precision = tp / (tp + fp) if tp + fp else float("nan")
recall = tp / (tp + fn) if tp + fn else float("nan")
f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else float("nan")
fpr = fp / (fp + tn) if fp + tn else float("nan")
cols[0].metric("Precision", common.number(precision, 3))
cols[1].metric("Recall", common.number(recall, 3))
cols[2].metric("F1", common.number(f1, 3))
cols[3].metric("False-positive rate", common.number(fpr, 4))
cols[4].metric("Alerts", f"{int(flagged.sum()):,}")
cols[5].metric("Alerts a day", f"{flagged.sum() / n_days:,.1f}")

left, right = st.columns(2)
left.plotly_chart(figures.confusion_matrix(tp, fp, fn, tn), key="thr_cm")
if ttable is not None:
    curve = ttable.curve()
    right.plotly_chart(figures.pr_curve(curve.recall, curve.precision, (recall, precision)),
                       key="thr_pr")
    left.plotly_chart(figures.roc_curve(curve.fpr, curve.recall, (fpr, recall)), key="thr_roc")
if len(known) and n_pos:
    pos = known[known["is_anomaly"].astype(bool)]
    caught = pos["session_id"].isin(table.loc[part, "session_id"][flagged])
    per = pos.assign(caught=caught).groupby("scenario")["caught"].agg(["mean", "size"])
    per = per.rename(columns={"mean": "recall", "size": "n"}).reset_index()
    right.plotly_chart(figures.scenario_recall(per), key="thr_scen")
else:
    right.info("No labelled anomalies here: precision and recall need labels.")

st.subheader("Find a threshold")
cost_col, cap_col = st.columns(2)
with cost_col.container(border=True):
    st.markdown("**By cost**")
    miss = st.number_input("Cost of a missed fraud", min_value=0.0, value=200.0, key="thr_miss")
    review = st.number_input("Cost of reviewing one alert", min_value=0.0, value=5.0,
                             key="thr_review")
    if len(known) and n_pos:
        choice = cheapest_threshold(known["score"].to_numpy(np.float64),
                                    known["is_anomaly"].astype(bool).to_numpy(),
                                    cost_miss=miss, cost_review=review)
        st.write(f"Cheapest: **{choice.threshold:.4f}** — {choice.n_alerts:,} alerts, "
                 f"{choice.n_missed:,} missed, cost {choice.cost:,.0f} on labelled sessions.")
        if st.button("Use this threshold", key="thr_use_cost"):
            st.session_state["thr_pending"] = float(min(max(choice.threshold, lo), hi + step))
            st.rerun()
    else:
        st.caption("Needs labelled anomalies.")
with cap_col.container(border=True):
    st.markdown("**By capacity**")
    per_day = st.number_input("The team reviews this many sessions a day", min_value=1,
                              value=200, step=10, key="thr_capacity")
    cap = threshold_for_capacity(scores, start_ts, float(per_day))
    st.write(f"Threshold **{cap:.4f}** keeps alerts at or under {per_day:,} a day on average "
             f"({int((scores >= cap).sum()):,} alerts over {n_days} days).")
    if st.button("Use this threshold", key="thr_use_cap"):
        st.session_state["thr_pending"] = float(min(max(cap, lo), hi + step))
        st.rerun()

st.divider()
current = saved.get(segment)
st.write(f"Saved threshold for **{segment}**: "
         f"{'none (default: top 1% of sessions)' if current is None else f'{current:.4f}'}")
if st.button(f"Save {threshold:.4f} for {segment}", type="primary", key="thr_save"):
    saved_ok = services.safely(
        lambda: services.save_threshold(model_id, segment, threshold, common.analyst()),
        "save the threshold",
    )
    if saved_ok:
        st.success(f"Saved. Every page now flags {segment} sessions at {threshold:.4f}.")
