"""Explain: why a session was flagged — SHAP, per-event contributions, attention, reasons.

Deep link: ``/explain?session=<id>&model=<id>``; other pages switch here with
``state.to_explain``.
"""

from __future__ import annotations

import streamlit as st

from dashboard import (
    common,
    figures_explain,
    services,
    services_entity,
    services_explain,
    state,
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

ranked = services.safely(lambda: services_explain.session_models(*key, session_id),
                         "read the session")
if ranked is None:
    st.stop()
choices = [None, *ranked["model_id"]]
pct = dict(zip(ranked["model_id"], ranked["percentile"], strict=True))
wanted_model = state.asked(state.Q_MODEL) or None
model_id = right.selectbox(
    "Model", choices, key="explain_model",
    index=choices.index(wanted_model) if wanted_model in choices else 0,
    format_func=lambda m: "auto: the model ranking it highest" if m is None else
    f"{detector_of.get(m, '?')} · {m} · percentile {pct[m]:.1f}")
why = services.safely(lambda: services_explain.explanation(*key, session_id, model_id),
                      "explain the session")
if why is None:
    st.stop()

c = st.columns(4)
c[0].metric("Score", f"{why.score:.4g}")
c[1].metric("Percentile", "–" if why.percentile is None else f"{why.percentile:.1f}")
c[2].metric("Above this detector's threshold",
            "–" if why.is_flagged is None else ("yes" if why.is_flagged else "no"),
            help="Whether this detector's score reaches its own threshold for the session's "
                 "segment. Whether the session is flagged is the alert policy's call (Flagged "
                 "queue, Thresholds).")
c[3].metric("Threshold", "–" if why.threshold is None else f"{why.threshold:.4g}")
st.caption(safe.fmt("User {user} · {detector} model {model} · {how} {at} UTC", user=why.user_id,
                    detector=why.detector, model=why.model_id,
                    how=safe.Markdown("cached" if why.from_cache else "computed"),
                    at=safe.Markdown(f"{why.computed_at:%Y-%m-%d %H:%M}")))
if st.button("Open the user", key="explain_user", icon=":material/person_search:"):
    state.to_user(why.user_id, session_id)
top_kinds = (services_entity.kinds_of_features(why.features.top(5)["feature"].tolist())
             if why.features is not None else [])
if top_kinds:  # a top feature speaks of an entity (device_other_users_log ...): link the session's
    touched = services_entity.session_entities(*key, session_id)
    shown_links = touched[touched["kind"].isin(top_kinds)].head(6)
    if not shown_links.empty:
        st.caption("Top features concern these entities of the session:")
        for kind, item in zip(shown_links["kind"], shown_links["value"], strict=True):
            state.entity_link(str(kind), str(item))

st.subheader("Why")
for reason in why.reasons:  # plain text: reasons quote event types and values from the data
    st.text(f"• {reason}")
if not why.reasons:
    st.caption("No single contribution stands out.")
for note in why.notes:
    st.caption(safe.prose(note))  # plain when nothing in it can render, else a code span
if why.members is not None and not why.members.empty:
    st.plotly_chart(figures_explain.member_bars(why.members), key="explain_members")

if why.features is not None:
    f = why.features
    st.subheader("Features")
    style = st.radio("Chart", ["waterfall", "bars"], horizontal=True, key="explain_chart")
    if style == "waterfall":
        st.plotly_chart(figures_explain.shap_waterfall(f.names, f.shap, f.base_value, f.score),
                        key="explain_waterfall")
    else:
        st.plotly_chart(figures_explain.shap_bars(f.top(15), title="SHAP per feature"),
                        key="explain_bars")
    st.caption(safe.fmt("Base value {base:.4g} (mean over {n} normal training sessions) + "
                        "contributions = score {score:.4g}; additivity error {err:.1e}.",
                        base=f.base_value, n=f.n_background, score=f.score,
                        err=f.additivity_error))

if why.event_contributions:
    st.subheader("Events")
    method_text = services_explain.method_text()
    methods = [m for m in method_text if m in why.event_contributions]
    method = st.radio("Colour by", methods, horizontal=True, key="explain_method",
                      format_func=lambda m: f"{m} ({method_text[m]})")
    st.plotly_chart(figures_explain.event_strip(
        why.events, why.event_contributions[method], diverging=method == "occlusion",
        title=f"The session's events, coloured by {method}"), key="explain_strip")
    for own in ("reconstruction_error", "surprise", "event_head", "event_score"):
        if own in why.event_contributions:
            st.plotly_chart(figures_explain.event_bars(
                why.events, why.event_contributions[own], title=method_text[own], axis=own),
                key=f"explain_{own}")
    if why.attention is not None:
        a = why.attention
        c1, c2 = st.columns(2)
        layer = c1.selectbox("Layer", ["rollout", *range(1, a.n_layers + 1)], key="explain_layer",
                             index=a.n_layers)
        head = c2.selectbox("Head", ["mean", *range(1, a.n_heads + 1)], key="explain_head",
                            disabled=layer == "rollout")
        shown_maps = services_explain.attention_view(a, layer, head)
        if shown_maps.rollout is not None:
            st.plotly_chart(figures_explain.event_strip(
                why.events, shown_maps.rollout,
                title="Attention rollout from the session token, across all layers"),
                key="explain_rollout")
        st.plotly_chart(figures_explain.attention_heatmap(shown_maps.matrix, why.events,
                                                          title=shown_maps.title),
                        key="explain_attention")
if not why.context.empty:
    st.markdown("**This session beside the user's and everyone's typical values**")
    st.dataframe(services_explain.context_table(why.context), hide_index=True,
                 key="explain_context")
with st.expander(safe.fmt("The session's events ({n})", n=len(why.events))):
    shown = why.events.copy()
    for m, values in why.event_contributions.items():
        shown[m] = values
    st.dataframe(shown, hide_index=True, key="explain_events")

if why.input_kind == "features" and why.members is None:
    with st.expander("Global view: mean |SHAP| over this model's flagged sessions"):
        n = st.slider("Sessions (highest scores first)", 10, 200, 50, 10, key="explain_global_n")
        if st.button("Compute", key="explain_global"):
            frame = services.safely(lambda: services_explain.global_view(
                *key, why.model_id, n), "compute the global view")
            if frame is not None and not frame.empty:
                st.plotly_chart(figures_explain.shap_bars(
                    frame, "mean_abs_shap", title=f"Mean |SHAP| over "
                    f"{frame.attrs.get('n_sessions', n)} flagged sessions"), key="explain_gbar")
