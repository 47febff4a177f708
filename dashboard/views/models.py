"""Models: every registered model, how it trained and how it does on its own window; two side
by side; retire one; train a new one in the background (admins)."""

from __future__ import annotations

import streamlit as st

from dashboard import auth, charts, common, services, services_models
from dashboard import figures_models as figs
from dashboard import safe_text as safe

RUN_REFRESH_S = 2.0
MAX_LEFT_OUT = 50
"""Reasons shown under a model's facts; the rest are counted."""

st.title("Models")
st.caption("What each model is, how it trained, and how it does on its own window: the "
           "labelled sessions after its train end, which it never saw.")

path = services.db_path()
if not services.store_exists():
    st.info(safe.fmt("No store at {path} yet. Build the demo store with `anomalyst demo`.",
                     path=path))
    st.stop()

key = services.key()
show_retired = st.toggle("Show retired models", key="models_show_retired")
listed = services.safely(lambda: services_models.catalog(*key, show_retired), "read the models")
if listed is None:
    st.stop()
sources = common.label_sources()
allowed, why = common.may("train")


def size_text(value: object) -> str:
    if not isinstance(value, int | float) or value != value:
        return "–"
    return f"{value / 1024:,.1f} KB" if value < 1024 ** 2 else f"{value / 1024 ** 2:,.1f} MB"


def model_section(model_id: str, where: st.delta_generator.DeltaGenerator, tag: str) -> None:
    """The card, curves and evaluation of one model, drawn in ``where``."""
    card = services.safely(lambda: services_models.describe(*key, model_id), "read the model")
    found = services.safely(lambda: services_models.evaluation(*key, model_id, sources),
                            "evaluate the model")
    if card is None or found is None:
        return
    with where:
        status = "retired" if card.get("retired") else (
            "used by the alert policy in force" if card.get("in_force") else "")
        st.markdown(safe.fmt("**{detector}** · {model}", detector=card["detector"],
                             model=model_id))
        if status:
            st.caption(safe.fmt("Status: {status}", status=safe.Markdown(status)))
        cols = st.columns(4)
        cols[0].metric("Average precision", common.number(found.get("average_precision",
                                                                    float("nan")), 3))
        cols[1].metric("ROC-AUC", common.number(found.get("roc_auc", float("nan")), 3))
        cols[2].metric("Recall at 1% FPR", common.number(found.get("recall_at_fpr",
                                                                   float("nan")), 3))
        seconds = card.get("train_seconds")
        cols[3].metric("Training time", "–" if seconds is None else f"{seconds:,.1f} s")
        left = list(card.get("left_out") or [])
        facts = {
            "created": common.when(card.get("created")),
            "train window": f"{common.when(card.get('train_start'))} → "
                            f"{common.when(card.get('train_end'))}",
            "sessions trained on": f"{card.get('n_train') or 0:,}",
            "training regime": str(card.get("window_regime") or "not recorded"),
            "sessions scored": f"{card.get('n_scores') or 0:,}",
            "device": str(card.get("device") or "–"),
            "training time": services_models.time_split(card),
            "size on disk": size_text(card.get("size_bytes")),
            "input": str(card.get("spec") or "–"),
            "feature spec hash": str(card.get("feature_hash") or "–"),
            "files digest (SHA-256)": str(card.get("digest") or "–"),
            "history features": str(card.get("history_features") or "off"),
            "left out of the features": (f"{len(left)} (listed below)" if left else "nothing"),
            "risk": str(card.get("risk_kind") or "–"),
            "alert policy": str(card.get("policy") or "not used"),
            "retired": (f"{common.when(card.get('retired_at'))} by {card.get('retired_by')}"
                        if card.get("retired") else "no"),
        }
        st.dataframe({"property": list(facts), "value": list(facts.values())},
                     hide_index=True, key=f"models_facts_{tag}")
        if left:  # reasons are sentences: a table cell would cut them off
            with st.expander(safe.fmt("Left out of the features ({n})", n=len(left))):
                for item in left[:MAX_LEFT_OUT]:
                    st.caption(safe.prose(item))
                if len(left) > MAX_LEFT_OUT:
                    st.caption(safe.fmt("… and {n} more.", n=len(left) - MAX_LEFT_OUT))
        curves = services_models.loss_curves_frame(card.get("curves") or [])
        if curves.empty:  # a tree, a forest, tail counts, the ensemble: no optimiser steps
            st.caption(safe.fmt("Training curves: none. This detector does not train in "
                                "optimiser steps, so it has no loss to plot."))
        else:
            charts.chart(figs.loss_curves(curves), figs.loss_table(curves),
                         key=f"models_loss_{tag}")
        if "note" in found:
            st.info(safe.fmt("No evaluation: {note}.", note=safe.prose(found["note"])))
            return
        st.caption(safe.fmt("Evaluated on {n:,} labelled sessions ({a:,} anomalous), "
                            "{window}.", n=found["n_sessions"], a=found["n_anomalous"],
                            window=safe.prose(found["window"])))
        one = {model_id: found["roc"]}
        charts.chart(figs.roc(one), figs.curve_table(one), key=f"models_roc_{tag}")
        one = {model_id: found["pr"]}
        charts.chart(figs.pr(one), figs.curve_table(one), key=f"models_pr_{tag}")
        one = {model_id: found["calibration"]}
        kind = found.get("risk_kind")
        note = ("Risk is a calibrated probability." if kind == "probability" else
                "Risk is a training percentile, not a probability: read the gap as how far "
                "percentiles are from a probability.")
        charts.chart(figs.calibration(one), figs.curve_table(one), key=f"models_cal_{tag}",
                     caption=note)
        per = found.get("recall_by_scenario") or {}
        if per:
            st.dataframe({"scenario": list(per), "recall at 1% FPR": list(per.values())},
                         hide_index=True, key=f"models_scen_{tag}")


tab_one, tab_two, tab_train = st.tabs(["Models", "Compare two", "Train"])

with tab_one:
    if listed.empty:
        st.info(safe.fmt("No models yet. Train one here (Train tab) or with {cmd}.",
                         cmd=f"anomalyst train --detector autoencoder --db {path}"))
    else:
        shown = listed[["model_id", "detector", "created", "train_end", "n_scores", "device",
                        "train_seconds", "policy", "retired"]]
        st.dataframe(shown, hide_index=True, key="models_table", column_config={
            "model_id": st.column_config.TextColumn("model"),
            "created": st.column_config.DatetimeColumn("created", format="YYYY-MM-DD HH:mm"),
            "train_end": st.column_config.DatetimeColumn("trained up to",
                                                         format="YYYY-MM-DD HH:mm"),
            "n_scores": st.column_config.NumberColumn("sessions scored", format="localized"),
            "train_seconds": st.column_config.NumberColumn("training time",
                                                           format="%.1f s"),
        })
        ids = list(listed["model_id"])
        label = common.model_label(listed)
        chosen = st.selectbox("Model", ids, index=len(ids) - 1, format_func=label,
                              key="models_pick")
        model_section(chosen, st.container(), "one")
        row = listed[listed["model_id"] == chosen].iloc[0]
        undo = bool(row["retired"])
        if st.button("Bring back" if undo else "Retire this model", key="models_retire",
                     disabled=not allowed, help=safe.join([why]) if why else (
                         "Hidden from the pickers; kept with its scores and files. The model "
                         "the alert policy in force uses cannot be retired.")):
            try:
                done = services_models.retire(chosen, common.analyst(), undo=undo)
            except services.AnomalystError as exc:
                st.error(safe.message(exc))
            else:
                st.success(safe.prose(done))

with tab_two:
    if len(listed) < 2:
        st.info("Two models are needed to compare.")
    else:
        ids = list(listed["model_id"])
        label = common.model_label(listed)
        pick_a, pick_b = st.columns(2)
        a = pick_a.selectbox("First model", ids, index=len(ids) - 2, format_func=label,
                             key="models_a")
        b = pick_b.selectbox("Second model", ids, index=len(ids) - 1, format_func=label,
                             key="models_b")
        if a == b:
            st.info("Pick two different models.")
        else:
            table = services.safely(lambda: services_models.compare(*key, a, b, sources),
                                    "compare the models")
            if table is not None:
                st.dataframe(table, hide_index=True, key="models_compare_table")
            both = {m: services.safely(lambda m=m: services_models.evaluation(
                *key, m, sources), "evaluate the model") for m in (a, b)}
            if all(v is not None for v in both.values()):
                frames = {m: v["roc"] for m, v in both.items()}
                charts.chart(figs.roc(frames), figs.curve_table(frames), key="models_cmp_roc")
                frames = {m: v["pr"] for m, v in both.items()}
                charts.chart(figs.pr(frames), figs.curve_table(frames), key="models_cmp_pr")
                frames = {m: v["calibration"] for m, v in both.items()}
                charts.chart(figs.calibration(frames), figs.curve_table(frames),
                             key="models_cmp_cal")
            left, right = st.columns(2)
            model_section(a, left, "a")
            model_section(b, right, "b")

with tab_train:
    if not auth.allowed("train"):
        st.info(":material/lock: Only an admin can train models. Ask one, or run "
                "`anomalyst train` on the server.")
    else:
        detectors = services_models.detectors(listed)
        detector = st.selectbox("Detector", detectors, key="models_train_detector")
        epochs = st.number_input("Epochs (torch detectors; 0: the detector's own)", min_value=0,
                                 max_value=1000, value=0, step=1, key="models_train_epochs")
        if st.button("Start training", key="models_train_start", disabled=not allowed,
                     help=safe.join([why]) if why else "Runs in the background on the "
                     "server; closing the page does not stop it.",
                     icon=":material/model_training:"):
            try:
                run_id = services_models.start_training(
                    detector, common.analyst(), int(epochs) or None)
            except services.AnomalystError as exc:
                st.error(safe.message(exc))
            else:
                st.success(safe.fmt("Started run {run}.", run=run_id))

    runs = services_models.training_runs()
    running = services_models.any_running(runs)

    @st.fragment(run_every=RUN_REFRESH_S if running else None)
    def show_runs() -> None:
        found = services_models.training_runs()
        if services_models.a_run_ended(found):  # its model joins the lists above
            st.rerun(scope="app")
        if not found:
            st.caption("No training runs started from this page yet.")
            return
        table = [{"run": r.get("run_id"), "detector": r.get("detector"),
                  "status": r.get("status"), "started": common.when(r.get("started")),
                  "finished": common.when(r.get("finished")), "exit code": r.get("exit_code"),
                  "loss so far": r.get("loss"), "validation loss so far": r.get("val_loss"),
                  "model": r.get("model_id"), "by": r.get("by")} for r in found]
        st.dataframe(table, hide_index=True, key="models_runs")
        latest = found[0]
        with st.expander("Log of the latest run", expanded=latest.get("status") != "finished"):
            st.code(str(latest.get("log_tail") or "(empty so far)"), language=None)

    show_runs()
