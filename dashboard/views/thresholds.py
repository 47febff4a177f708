"""Thresholds: "what if", against the alert policy in force; an admin publishes a new version.

The policy (which model decides, a threshold per segment, a daily budget) is the one
definition of "flagged" on every page. Here an analyst tries other detectors and thresholds
and sees what they would change; values tuned but not published are kept per (detector,
segment) for the session. Moving the slider costs a few binary searches on arrays prepared
once (``SegmentView``), so it stays instant at millions of sessions; only the daily alert
budget recomputes per session.
"""

from __future__ import annotations

import streamlit as st

from dashboard import charts, common, figures, services, state
from dashboard import safe_text as safe

st.title("Thresholds: what if")
models = common.scored_models_or_stop()
key = services.key()
policy = services.policy(*key)
if policy is None:
    st.info("Nothing is scored yet, so no alert policy is in force.")
    st.stop()

with st.container(border=True):
    st.markdown(safe.fmt("**Alert policy in force: version {v}**{default}", v=policy.version,
                         default=safe.Markdown(" (the default: nobody has published one)"
                                               if policy.is_default else "")))
    who = (safe.Markdown("nobody yet") if policy.is_default else
           safe.fmt("{by} on {at}", by=policy.published_by or "–",
                    at=safe.Markdown(common.when(str(policy.published_at)
                                                 if policy.published_at else None))))
    budget_text = ("no daily budget" if policy.daily_budget is None
                   else f"at most {policy.daily_budget:,} alerts a day")
    st.caption(safe.fmt("Scores with {detector} ({model}); {budget}; published by {who}. "
                        "{note}", detector=safe.prose(policy.detector or "?"),
                        model=policy.model_id, budget=safe.Markdown(budget_text),
                        who=who, note=safe.prose(policy.note)))
    st.dataframe(services.policy_rows(policy), hide_index=True, key="thr_policy_table")
    if st.toggle("Earlier versions", key="thr_history_on"):
        st.dataframe(services.history_rows(*key), hide_index=True, key="thr_history")

ids = list(models["model_id"])
model_id = st.selectbox("Detector to try", ids, key="thr_model",
                        index=ids.index(policy.model_id) if policy.model_id in ids
                        else common.preferred_index(models),
                        format_func=common.model_label(models))
segment = st.selectbox("Segment", services.segments(*key, model_id), key="thr_segment",
                       help="Sessions of new users (first seen < 7 days before), returning "
                            "users, or one country. The most specific threshold wins.")
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
in_policy = model_id == policy.model_id
if in_policy:
    start_value = policy.threshold_for(segment)
    st.caption(safe.fmt("Starting from the policy's threshold for {segment}: {value:.4g}.",
                        segment=segment, value=start_value))
else:
    start = services.start_threshold(*key, model_id, segment)
    start_value = start.value
    st.caption(safe.fmt("This detector is not the policy's. Starting from its own threshold "
                        "{value:.4g} ({source}).", value=start.value,
                        source=safe.prose(start.source)))
here = (model_id, segment)
tuned: dict[tuple[str, str], float] = state.get(state.THR_TUNED) or {}
if state.get(state.THR_AT) != here or not state.has(state.THR_VALUE):
    # another (detector, segment), or back from another page: its own tuned value
    state.put(state.THR_VALUE, span.clamp(tuned.get(here, start_value)))
    state.put(state.THR_AT, here)
if state.has(state.THR_PENDING):  # a suggestion chosen below, applied before the slider
    state.put(state.THR_VALUE, state.pop(state.THR_PENDING))
threshold = st.slider("Threshold (flag sessions scoring at or above)", span.lo,
                      span.hi + span.step, step=span.step, key=state.THR_VALUE, format="%.4f")
if abs(threshold - span.clamp(start_value)) > span.step / 2:
    tuned[here] = threshold
else:
    tuned.pop(here, None)
state.put(state.THR_TUNED, tuned)
budget = int(st.number_input("Alert budget: at most this many alerts a day (0 = no budget)",
                             min_value=0, value=policy.daily_budget or 0, step=10,
                             key="thr_budget"))
# the budget keeps each day's top sessions: a per-session pass, off the slider path
at = services.threshold_metrics(*key, model_id, segment, sources, threshold, budget)
precision, recall, fpr = at.precision, at.recall, at.fpr
tp, fp, fn, tn, n_alerts = at.tp, at.fp, at.fn, at.tn, at.n_alerts

# the policy in force on the same segment, for the deltas ("what if" against "now")
now = services.threshold_metrics(*key, policy.model_id, segment, sources,
                                 policy.threshold_for(segment), policy.daily_budget or 0) \
    if segment in services.segments(*key, policy.model_id) else None


def delta(value: float, before: float | None, digits: int) -> str | None:
    """The change against the policy in force; None where either side is undefined."""
    if before is None or value != value or before != before or value == before:
        return None
    return f"{value - before:+.{digits}f} vs policy"


cols = st.columns(6)
cols[0].metric("Precision", common.number(precision, 3),
               delta(precision, now and now.precision, 3))
cols[1].metric("Recall", common.number(recall, 3), delta(recall, now and now.recall, 3))
cols[2].metric("F1", common.number(at.f1, 3), delta(at.f1, now and now.f1, 3))
cols[3].metric("False-positive rate", common.number(fpr, 4),
               delta(fpr, now and now.fpr, 4), delta_color="inverse")
cols[4].metric("Alerts", f"{n_alerts:,}", delta(n_alerts, now and now.n_alerts, 0),
               delta_color="off")
cols[5].metric("Alerts a day", f"{at.per_day:,.1f}",
               delta(at.per_day, now and now.per_day, 1), delta_color="off")
if now is not None:
    st.caption(safe.fmt("Policy v{v} on {segment} now: precision {p}, recall {r}, {n:,} "
                        "alerts.", v=policy.version, segment=segment,
                        p=safe.Markdown(common.number(now.precision, 3)),
                        r=safe.Markdown(common.number(now.recall, 3)),
                        n=now.n_alerts))

left, right = st.columns(2)
charts.chart(figures.confusion_matrix(tp, fp, fn, tn), figures.confusion_table(tp, fp, fn, tn),
             key="thr_cm", where=left)
if view.table is not None:
    curve = view.table.curve()
    points = figures.curve_table(curve.thresholds, curve.precision, curve.recall, curve.fpr)
    charts.chart(figures.pr_curve(curve.recall, curve.precision, (recall, precision)),
                 points[["threshold", "precision", "recall"]], key="thr_pr", where=right)
    charts.chart(figures.roc_curve(curve.fpr, curve.recall, (fpr, recall)),
                 points[["threshold", "false positive rate", "recall"]], key="thr_roc",
                 where=left)
if n_pos and not budget:
    per_scenario = view.scenario_recall(threshold)
    charts.chart(figures.scenario_recall(per_scenario),
                 per_scenario.rename(columns={"n": "labelled sessions"}), key="thr_scen",
                 where=right)
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
st.subheader("Publish a new version")
draft = dict(policy.thresholds) if in_policy else {}
draft.update({seg: value for (m, seg), value in tuned.items() if m == model_id})
changes = services.draft_rows(policy, draft, same_model=in_policy)
if changes.empty:
    st.caption("Move the slider to draft a threshold; tuned values are kept per detector and "
               "segment until you publish or close the tab.")
else:
    st.dataframe(changes, hide_index=True, key="thr_draft")
note = st.text_input("Why (kept with the version)", key="thr_note", max_chars=2_000)
ok, why = common.may("policy")
if not ok:
    st.caption(safe.fmt(":material/lock: {why} You can still explore.", why=why))
label = safe.fmt("Publish version {v}: {detector}, {n} segment thresholds",
                 v=services.next_policy_version(policy),
                 detector=safe.prose(services.detectors(*key).get(model_id, "?")), n=len(draft))
if budget:
    label = safe.join([label, safe.fmt(", at most {b:,} alerts a day", b=budget)])
if st.button(safe.join([label]),
             type="primary", key="thr_publish", disabled=not ok or not draft,
             help=safe.join([why]) if why else None):
    published = services.safely(lambda: services.publish_policy(
        model_id, draft, budget or None, note, common.analyst()), "publish the policy")
    if published is not None:
        state.put(state.THR_SAVED_FLASH, published.version)
        state.put(state.THR_TUNED, {})
        state.pop(state.THR_AT)
        st.rerun()
flash = state.pop(state.THR_SAVED_FLASH)
if flash is not None:
    st.success(safe.fmt("Published version {v}. Every page now flags by it.", v=flash))
