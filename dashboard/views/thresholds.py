"""Thresholds: a live operating point per detector and segment, saved for every page.

Moving the slider costs a few binary searches on arrays prepared once (``SegmentView``), so
it stays instant at millions of sessions; only the daily alert budget recomputes per session.
"""

from __future__ import annotations

import streamlit as st

from dashboard import auth, common, figures, services, state
from dashboard import safe_text as safe

st.title("Thresholds")
models = common.scored_models_or_stop()
key = services.key()
model_id = st.selectbox("Detector", list(models["model_id"]), key="thr_model",
                        index=common.preferred_index(models),
                        format_func=common.model_label(models))
segment = st.selectbox("Segment", services.segments(*key, model_id), key="thr_segment",
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

span = services.slider_range(view)
start = services.start_threshold(*key, model_id, segment)
if not start.saved:
    st.caption(safe.fmt("Starting from the model's default threshold {value:.4g}: {source}.",
                        value=start.default, source=safe.prose(start.source)))
else:
    st.caption(safe.fmt("Starting from the saved threshold {value:.4g} (the model's default "
                        "would be {default:.4g}: {source}).", value=start.value,
                        default=start.default, source=safe.prose(start.source)))
if state.has(state.THR_PENDING):  # a suggestion chosen below, applied before the slider
    state.put(state.THR_VALUE, state.pop(state.THR_PENDING))
threshold = st.slider("Threshold (flag sessions scoring at or above)", span.lo,
                      span.hi + span.step, value=span.clamp(start.value), step=span.step,
                      key=state.THR_VALUE, format="%.4f")
budget = int(st.number_input("Alert budget: at most this many alerts a day (0 = no budget)",
                             min_value=0, value=0, step=10, key="thr_budget"))
# the budget keeps each day's top sessions: a per-session pass, off the slider path
at = services.threshold_metrics(*key, model_id, segment, sources, threshold, budget)
precision, recall, fpr = at.precision, at.recall, at.fpr
tp, fp, fn, tn, n_alerts = at.tp, at.fp, at.fn, at.tn, at.n_alerts

cols = st.columns(6)
cols[0].metric("Precision", common.number(precision, 3))
cols[1].metric("Recall", common.number(recall, 3))
cols[2].metric("F1", common.number(at.f1, 3))
cols[3].metric("False-positive rate", common.number(fpr, 4))
cols[4].metric("Alerts", f"{n_alerts:,}")
cols[5].metric("Alerts a day", f"{at.per_day:,.1f}")

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
            state.put(state.THR_PENDING, span.clamp(choice.threshold))
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
        state.put(state.THR_PENDING, span.clamp(cap))
        st.rerun()

st.divider()
current = services.saved_thresholds(model_id).get(segment)
st.write(safe.fmt("Saved threshold for {segment}: {current}", segment=segment,
                  current=safe.Markdown(f"none (the model's default, {start.default:.4g}, "
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
        state.put(state.THR_SAVED_FLASH, (segment, threshold))
        st.rerun()
flash = state.pop(state.THR_SAVED_FLASH)
if flash is not None:
    st.success(safe.fmt("Saved. Every page now flags {segment} sessions at {t:.4f}.",
                        segment=flash[0], t=flash[1]))
