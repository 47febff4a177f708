"""Explain: why a session was flagged. One "Why" first, combined across the models that flag
it, then each model's own view (SHAP, per-event contributions, attention) under "Advanced".

Deep link: ``/explain?session=<id>&model=<id>``; other pages switch here with
``state.to_explain``.
"""

from __future__ import annotations

import streamlit as st

from dashboard import (
    charts,
    common,
    figures_explain,
    services,
    services_entity,
    services_explain,
    state,
    widgets,
    widgets_similar,
)
from dashboard import safe_text as safe

st.title("Explain")
models = common.scored_models_or_stop()
key = services.key()
detector_of = services.detectors(*key)

requested = state.asked(state.Q_SESSION) or state.get(state.EXPLAIN_SESSION) or ""
if requested and state.get(state.EXPLAIN_APPLIED) != requested:
    state.put(state.EXPLAIN_PICK, requested)  # a new request overrides the picker
    state.put(state.EXPLAIN_APPLIED, requested)
queue = services_explain.flagged_sessions(*key, common.label_sources())
labels = dict(zip(queue["session_id"], queue["flagged_by"], strict=True))
options = list(dict.fromkeys([*([requested] if requested else []), *queue["session_id"]]))
left, right = st.columns([3, 2])
preset = {} if state.has(state.EXPLAIN_PICK) else {"index": 0 if options else None}
session_id = left.selectbox(
    "Session", options, key=state.EXPLAIN_PICK, accept_new_options=True, **preset,
    placeholder="type or pick a session id",
    format_func=lambda s: f"{s} · flagged by {labels[s]}" if s in labels else s,
    help="Flagged sessions first, highest percentile on top; type any other session id.")
if not session_id:
    st.info("Pick a flagged session above, or open one from the flagged queue or a user.")
    st.stop()
session_id = str(session_id)
state.put(state.EXPLAIN_SESSION, session_id)
state.put(state.EXPLAIN_APPLIED, session_id)
state.show_in_url(state.Q_SESSION, session_id)

found = services.safely(lambda: services_explain.why(*key, session_id), "explain the session")
if found is None:
    st.stop()
why = found.why
ranks = {r.model_id: r for r in found.ranks}
risk = services_explain.session_risk(*key, session_id)
flagging = [r for r in found.ranks if r.is_flagged]

c = st.columns(3)
c[0].metric("Risk (0-100)", "–" if risk.risk is None else f"{risk.risk:.0f}",
            help=("How likely the session is fraud, from the alert policy's model, calibrated "
                  "on labelled sessions." if risk.kind == "probability" else
                  "How unusual the session is: the share of the policy model's training "
                  "sessions it scores above."))
c[1].metric("Models flagging it", f"{len(flagging)} of {len(found.ranks)}",
            help="Models whose score reaches their own threshold for the session's segment.")
c[2].metric("Events", f"{len(next(iter(found.explanations.values())).events):,}"
            if found.explanations else "–")
st.caption(safe.fmt("User {user} · session {session}", user=why.user_id, session=session_id))
b1, b2, _ = st.columns([1, 1, 2])
if b1.button("Open the user", key="explain_user", icon=":material/person_search:"):
    state.to_user(why.user_id, session_id)
widgets.open_case_button("Open case", key="explain_open_case", session_id=session_id, where=b2)

st.subheader("Why")
for line in why.lines():  # plain text: reasons quote event types and values from the data
    st.text(f"• {line}")
if not why.reasons:
    st.caption("No single reason stands out: every contribution is under 3% of the risk.")
st.caption(safe.fmt(
    "Combined across {models}: every model that flags the session counts equally, an "
    "ensemble through its members (each by its part in the ensemble's score), and the 4 "
    "weighing most are kept; one line per topic; {dropped} smaller topics (under 3% each) "
    "left out.",
    models=why.models_text(), dropped=why.n_dropped))
for note in why.notes:
    st.caption(safe.prose(note))
widgets_similar.draw_typology(session_id)
lead = found.explanations.get(why.models[0].model_id) if why.models else None
if lead is not None:
    top_kinds = services_entity.kinds_of_features([r.feature for r in why.reasons if r.feature])
    if top_kinds:  # a reason speaks of an entity (device_other_users_log ...): link them
        touched = services_entity.session_entities(*key, session_id)
        shown_links = touched[touched["kind"].isin(top_kinds)].head(6)
        if not shown_links.empty:
            st.caption("The reasons concern these entities of the session:")
            for kind, item in zip(shown_links["kind"], shown_links["value"], strict=True):
                state.entity_link(str(kind), str(item))
    if not lead.context.empty:
        st.markdown("**This session beside the user's and everyone's typical values**")
        table = services_explain.context_table(lead.context)
        table["feature"] = services_explain.readable_names(list(table["feature"]))
        st.dataframe(table.drop(columns=["meaning"]).rename(columns={"feature": "what"}),
                     hide_index=True, key="explain_context")

st.subheader("Similar past cases")
widgets_similar.draw_similar_cases(session_id)

with st.expander("Advanced: each model's own view (SHAP, events, attention)"):
    ordered = [m.model_id for m in why.models] + [m for m in ranks if m not in
                                                  {w.model_id for w in why.models}]
    wanted_model = state.asked(state.Q_MODEL) or None
    model_id = st.selectbox(
        "Model", ordered, key="explain_model",
        index=ordered.index(wanted_model) if wanted_model in ordered else 0,
        format_func=lambda m: f"{detector_of.get(m, ranks[m].detector if m in ranks else '?')}"
        f" · {m}" + (f" · percentile {ranks[m].percentile:.1f}" if m in ranks else ""))
    one = found.explanations.get(model_id) or services.safely(
        lambda: services_explain.explanation(*key, session_id, model_id), "explain the session")
    if one is None:
        st.stop()
    m = st.columns(4)
    m[0].metric("Score", f"{one.score:.4g}")
    m[1].metric("Percentile", "–" if one.percentile is None else f"{one.percentile:.1f}")
    m[2].metric("Reaches its threshold",
                "–" if one.is_flagged is None else ("yes" if one.is_flagged else "no"))
    m[3].metric("Threshold", "–" if one.threshold is None else f"{one.threshold:.4g}")
    st.caption(safe.fmt("{detector} model {model} · {how} {at} UTC", detector=one.detector,
                        model=one.model_id,
                        how=safe.Markdown("cached" if one.from_cache else "computed"),
                        at=safe.Markdown(f"{one.computed_at:%Y-%m-%d %H:%M}")))
    for reason in one.reasons:  # this model's own reasons, plain text
        st.text(f"• {reason}")
    for note in one.notes:
        st.caption(safe.prose(note))
    chart = one.waterfall()
    if chart is not None:
        by_member = one.members is not None and not one.members.empty
        names = (list(chart.names) if by_member
                 else services_explain.readable_names(chart.names))
        units = "log-odds of fraud" if chart.units == "log-odds" else "the model's score"
        st.markdown("**How much each member adds to the ensemble's score**" if by_member else
                    "**How much each input pushed the score up or down (SHAP values)**")
        style = st.radio("Chart", ["waterfall", "bars"], horizontal=True, key="explain_chart")
        table = figures_explain.shap_table(tuple(names), chart.values, chart.base, chart.total)
        if style == "waterfall":
            charts.chart(figures_explain.shap_waterfall(
                tuple(names), chart.values, chart.base, chart.total, title=chart.title,
                x_title=units, parts="members" if by_member else "features"), table,
                key="explain_waterfall")
        else:
            bars = services_explain.contribution_frame(names, chart.values)
            charts.chart(figures_explain.shap_bars(bars, title="Contribution per input"), bars,
                         key="explain_bars")
        st.caption(safe.fmt(
            "{title}: starts at {base:.4g} and ends at {total:.4g}, in {units}.",
            title=safe.Markdown(chart.title), base=chart.base, total=chart.total,
            units=safe.Markdown(units)))
        if by_member and one.features is not None:
            st.caption(safe.fmt("Inside it, its strongest feature member ({model}) is explained "
                                "by its own SHAP values: pick that model above.",
                                model=one.features.model_id))

    if one.event_contributions:
        st.markdown("**The session's events, coloured by how much each one matters**")
        method_text = services_explain.method_text()
        methods = [x for x in method_text if x in one.event_contributions]
        method = st.radio("Colour by", methods, horizontal=True, key="explain_method",
                          format_func=lambda x: method_text[x])
        charts.chart(figures_explain.event_strip(
            one.events, one.event_contributions[method], diverging=method == "occlusion",
            title=f"Events, coloured by {method_text[method]}"),
            figures_explain.events_table(one.events, one.event_contributions[method], method),
            key="explain_strip")
        for own in ("reconstruction_error", "surprise", "event_head", "event_score"):
            if own in one.event_contributions:
                charts.chart(figures_explain.event_bars(
                    one.events, one.event_contributions[own], title=method_text[own],
                    axis=own.replace("_", " ")),
                    figures_explain.events_table(one.events, one.event_contributions[own], own),
                    key=f"explain_{own}")
        if one.attention is not None:
            a = one.attention
            st.markdown("**Where the transformer looked (attention)**")
            c1, c2 = st.columns(2)
            layer = c1.selectbox("Layer", ["rollout", *range(1, a.n_layers + 1)],
                                 key="explain_layer", index=a.n_layers,
                                 format_func=lambda x: "all layers combined (rollout)"
                                 if x == "rollout" else f"layer {x}")
            head = c2.selectbox("Head", ["mean", *range(1, a.n_heads + 1)], key="explain_head",
                                disabled=layer == "rollout",
                                format_func=lambda x: "mean of the heads" if x == "mean"
                                else f"head {x}")
            shown_maps = services_explain.attention_view(a, layer, head)
            if shown_maps.rollout is not None:
                charts.chart(figures_explain.event_strip(
                    one.events, shown_maps.rollout,
                    title="Attention from the session summary to each event, all layers"),
                    figures_explain.events_table(one.events, shown_maps.rollout, "rollout"),
                    key="explain_rollout")
            charts.chart(figures_explain.attention_heatmap(shown_maps.matrix, one.events,
                                                           title=shown_maps.title),
                         figures_explain.attention_table(shown_maps.matrix, one.events),
                         key="explain_attention")
    st.markdown(safe.fmt("**The session's events ({n})**", n=len(one.events)))
    shown = one.events.copy()
    for x, values in one.event_contributions.items():
        shown[x] = values
    st.dataframe(shown, hide_index=True, key="explain_events")

    if one.input_kind == "features" and one.members is None:
        st.markdown("**Across many sessions: the inputs that matter most to this model**")
        n = st.slider("Sessions (highest scores first)", 10, 200, 50, 10,
                      key="explain_global_n")
        if st.button("Compute", key="explain_global"):
            frame = services.safely(lambda: services_explain.global_view(
                *key, one.model_id, n), "compute the global view")
            if frame is not None and not frame.empty:
                frame = frame.assign(feature=services_explain.readable_names(
                    list(frame["feature"])))
                charts.chart(figures_explain.shap_bars(
                    frame, "mean_abs_shap", title=f"Mean absolute SHAP over "
                    f"{frame.attrs.get('n_sessions', n)} flagged sessions"), frame,
                    key="explain_gbar")
