"""Thresholds: a live operating point per detector and segment, saved for every page.

Moving the slider costs a few binary searches on arrays prepared once (``SegmentView``), so
it stays instant at millions of sessions; only the daily alert budget recomputes per session.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from core.thresholds import apply_daily_budget, segment_mask
from dashboard import auth, common, figures, services
from dashboard import safe_text as safe

st.title("Thresholds")
models = common.scored_models_or_stop()
key = services.key()
model_id = st.selectbox("Detector", list(models["model_id"]), key="thr_model",
                        index=common.preferred_index(models),
                        format_func=common.model_label(models))
table = services.score_table(*key, (model_id,))
segments = ["all", "tenure:new", "tenure:returning"] + [
    f"country:{c}" for c in services.countries(*key, model_id)]
segment = st.selectbox("Segment", segments, key="thr_segment",
                       help="Sessions of new users (first seen < 7 days before), returning "
                            "users, or one country. The most specific saved threshold wins.")
sources = common.label_sources()
view = services.segment_view(*key, model_id, segment, sources)
n_pos = int(view.labels.sum())
st.caption(safe.fmt("Labels from {sources}: {n:,} labelled sessions in this segment, {pos:,} "
                    "anomalous. Unlabelled sessions count as alerts but not in precision and "
                    "recall.", sources=safe.Markdown("**" + ", ".join(sources) + "**"),
                    n=len(view.labels), pos=n_pos))
if len(view.sorted_scores) == 0:
    st.info("No scored sessions in this segment.")
    st.stop()

lo, hi = float(view.sorted_scores[0]), float(view.sorted_scores[-1])
step = max((hi - lo) / 1000, 1e-9)
saved = services.saved_thresholds(model_id)
start = saved.get(segment, saved.get("all"))
default_value, default_source = services.operating_point(*key, model_id)
if start is None:
    start = default_value
    st.caption(safe.fmt("Starting from the model's default threshold {value:.4g}: {source}.",
                        value=default_value, source=safe.prose(default_source)))
else:
    st.caption(safe.fmt("Starting from the saved threshold {value:.4g} (the model's default "
                        "would be {default:.4g}: {source}).", value=start,
                        default=default_value, source=safe.prose(default_source)))
if "thr_pending" in st.session_state:  # a suggestion chosen below, applied before the slider
    st.session_state["thr_value"] = st.session_state.pop("thr_pending")
threshold = st.slider("Threshold (flag sessions scoring at or above)", lo, hi + step,
                      value=float(min(max(start, lo), hi + step)), step=step, key="thr_value",
                      format="%.4f")
budget = int(st.number_input("Alert budget: at most this many alerts a day (0 = no budget)",
                             min_value=0, value=0, step=10, key="thr_budget"))

if budget:  # the budget keeps each day's top sessions: a per-session pass, off the slider path
    part = table[segment_mask(table, segment)]
    scores = part[f"score:{model_id}"].to_numpy(np.float64)
    flagged = apply_daily_budget(scores, scores >= threshold, part["start_ts"], budget)
    n_alerts = int(flagged.sum())
    labelled = services.labelled_scores(*key, model_id, sources)
    labelled = labelled[labelled["is_anomaly"].notna()]
    hit = labelled["session_id"].isin(part["session_id"][flagged]).to_numpy()
    y = labelled["is_anomaly"].astype(bool).to_numpy()
    tp, fp, fn, tn = (int((hit & y).sum()), int((hit & ~y).sum()), int((~hit & y).sum()),
                      int((~hit & ~y).sum()))
elif view.table is not None:
    op = view.table.at(threshold)
    tp, fp, fn, tn, n_alerts = op.tp, op.fp, op.fn, op.tn, view.n_alerts(threshold)
else:  # one class only (say, a single analyst decision): count the few labelled sessions
    hit, y = view.labelled_scores >= threshold, view.labels
    tp, fp, fn, tn = (int((hit & y).sum()), int((hit & ~y).sum()), int((~hit & y).sum()),
                      int((~hit & ~y).sum()))
    n_alerts = view.n_alerts(threshold)
precision = tp / (tp + fp) if tp + fp else float("nan")
recall = tp / (tp + fn) if tp + fn else float("nan")
f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else float("nan")
fpr = fp / (fp + tn) if fp + tn else float("nan")

cols = st.columns(6)
cols[0].metric("Precision", common.number(precision, 3))
cols[1].metric("Recall", common.number(recall, 3))
cols[2].metric("F1", common.number(f1, 3))
cols[3].metric("False-positive rate", common.number(fpr, 4))
cols[4].metric("Alerts", f"{n_alerts:,}")
cols[5].metric("Alerts a day", f"{n_alerts / view.n_days:,.1f}")

left, right = st.columns(2)
left.plotly_chart(figures.confusion_matrix(tp, fp, fn, tn), key="thr_cm")
if view.table is not None:
    curve = view.table.curve()
    right.plotly_chart(figures.pr_curve(curve.recall, curve.precision, (recall, precision)),
                       key="thr_pr")
    left.plotly_chart(figures.roc_curve(curve.fpr, curve.recall, (fpr, recall)), key="thr_roc")
if n_pos and not budget:
    right.plotly_chart(figures.scenario_recall(view.scenario_recall(threshold)), key="thr_scen")
elif not n_pos:
    right.info("No labelled anomalies in this segment: precision and recall need labels.")

st.subheader("Find a threshold")
cost_col, cap_col = st.columns(2)
with cost_col.container(border=True):
    st.markdown("**By cost**")
    miss = st.number_input("Cost of a missed fraud", min_value=0.0, value=200.0, key="thr_miss")
    review = st.number_input("Cost of reviewing one alert", min_value=0.0, value=5.0,
                             key="thr_review")
    choice = services.cheapest(*key, model_id, segment, sources, miss, review)
    if choice is None:
        st.caption("Needs labelled anomalies.")
    else:
        st.write(safe.fmt("Cheapest: **{t:.4f}** — {n:,} alerts, {missed:,} missed, cost "
                          "{cost:,.0f} on labelled sessions.", t=choice.threshold,
                          n=choice.n_alerts, missed=choice.n_missed, cost=choice.cost))
        if st.button("Use this threshold", key="thr_use_cost"):
            st.session_state["thr_pending"] = float(min(max(choice.threshold, lo), hi + step))
            st.rerun()
with cap_col.container(border=True):
    st.markdown("**By capacity**")
    per_day = st.number_input("The team reviews this many sessions a day", min_value=1,
                              value=200, step=10, key="thr_capacity")
    cap = services.capacity_threshold(*key, model_id, segment, float(per_day))
    st.write(safe.fmt("Threshold **{cap:.4f}** keeps alerts at or under {per_day:,} a day on "
                      "average ({n:,} alerts over {days} days).", cap=cap, per_day=per_day,
                      n=view.n_alerts(cap), days=view.n_days))
    if st.button("Use this threshold", key="thr_use_cap"):
        st.session_state["thr_pending"] = float(min(max(cap, lo), hi + step))
        st.rerun()

st.divider()
current = saved.get(segment)
st.write(safe.fmt("Saved threshold for {segment}: {current}", segment=segment,
                  current=safe.Markdown(f"none (the model's default, {default_value:.4g}, "
                                        "applies)" if current is None else f"{current:.4f}")))
may_save = auth.allowed("threshold")
if not may_save:
    st.caption(":material/lock: Only an admin can save thresholds; you can still explore them.")
if st.button(safe.fmt("Save {t:.4f} for {segment}", t=threshold, segment=segment),
             type="primary", key="thr_save",
             disabled=not may_save):
    saved_ok = services.safely(
        lambda: services.save_threshold(model_id, segment, threshold, common.analyst()),
        "save the threshold",
    )
    if saved_ok:  # rerun, so the captions above show the new saved threshold
        st.session_state["thr_saved_flash"] = (segment, threshold)
        st.rerun()
flash = st.session_state.pop("thr_saved_flash", None)
if flash is not None:
    st.success(safe.fmt("Saved. Every page now flags {segment} sessions at {t:.4f}.",
                        segment=flash[0], t=flash[1]))
