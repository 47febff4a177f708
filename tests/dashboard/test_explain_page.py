"""AppTest of the Explain page on a copy of the demo store (the page caches explanations in it)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.store import Store

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")


@pytest.fixture(autouse=True)
def fresh_cache():
    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()


def open_explain(db: Path, monkeypatch: pytest.MonkeyPatch, **query: str) -> AppTest:
    monkeypatch.setenv("ANOMALYST_DB", str(db))
    at = AppTest.from_file(APP, default_timeout=60)
    for k, v in query.items():
        at.query_params[k] = v
    at.run()
    at.switch_page("views/explain.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def models_and_top_session(db: Path) -> tuple[dict[str, str], str]:
    with Store.open(db, read_only=True) as store:
        frame = store.models.listing()
        models = dict(zip(frame["detector"], frame["model_id"], strict=True))
        scores = store.scores.of_model(models["autoencoder"])
    return models, str(scores.sort_values("score")["session_id"].iloc[-1])


def test_explain_page_shows_reasons_shap_and_events(demo_store_copy: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    models, session = models_and_top_session(demo_store_copy)
    at = open_explain(demo_store_copy, monkeypatch, session=session,
                      model=models["zscore"])
    assert at.selectbox(key="explain_pick").value == session
    assert at.selectbox(key="explain_model").value == models["zscore"]
    reasons = [t.value for t in at.text if t.value.startswith("• ")]  # plain text, not markdown
    # the combined Why comes first: every line gives its share of the risk and the models
    assert reasons and "% of the risk" in reasons[0] and "typical session" in reasons[0]
    assert not any("count_log[" in r for r in reasons)
    assert any(m.label == "Risk (0-100)" for m in at.metric)
    assert any(m.label == "Score" for m in at.metric) and not at.error  # under Advanced
    assert len(at.get("plotly_chart")) >= 1  # the SHAP waterfall
    at.radio(key="explain_chart").set_value("bars").run()
    assert not at.exception

    at.selectbox(key="explain_model").set_value(models["sequence_autoencoder"]).run()
    assert not at.exception and not at.error
    methods = at.radio(key="explain_method")
    assert methods.value == "occlusion" and len(methods.options) == 2
    methods.set_value("reconstruction_error").run()
    assert not at.exception and len(at.get("plotly_chart")) >= 2  # strip + per-event errors
    with Store.open(demo_store_copy, read_only=True) as store:
        cached = store.explanations.cached(models["zscore"], session)
    assert "summary" in cached  # the page stored what it computed


def test_explain_page_defaults_to_the_top_flagged_session(
        demo_store_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = open_explain(demo_store_copy, monkeypatch)
    picked = at.selectbox(key="explain_pick").value
    assert picked and at.query_params["session"] == picked
    assert any(t.value.startswith("• ") for t in at.text)


@pytest.mark.slow  # trains a tiny transformer (~10 s)
def test_attention_heatmap_layers_heads_and_rollout(demo_store_copy: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from core.pipeline import score_model, train_model

    with Store.open(demo_store_copy) as store:
        trained = train_model(store, "transformer", quiet=True, config={
            "hidden_size": 16, "n_layers": 2, "n_heads": 2, "intermediate_size": 32,
            "epochs": 1, "batch_size": 128, "device": "cpu"})
        score_model(store, trained.model_id)
        scores = store.scores.of_model(trained.model_id)
    session = str(scores.sort_values("score")["session_id"].iloc[-1])
    at = open_explain(demo_store_copy, monkeypatch, session=session, model=trained.model_id)
    methods = at.radio(key="explain_method")
    # occlusion, attention, rollout and the event head; the heatmap opens on the last layer
    assert methods.value == "occlusion" and len(methods.options) == 4
    assert at.selectbox(key="explain_layer").value == 2
    at.selectbox(key="explain_head").set_value(1).run()
    assert not at.exception
    at.selectbox(key="explain_layer").set_value("rollout").run()
    assert not at.exception and at.selectbox(key="explain_head").disabled
    at.radio(key="explain_method").set_value("rollout").run()
    assert not at.exception and not at.error
