"""`anomalyst explain SESSION_ID [--model ID] [--json]` through click's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from cli.main import main
from core.store import Store


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_explain_prints_reasons_features_and_events(demo_store_copy: Path) -> None:
    db = str(demo_store_copy)
    with Store.open(demo_store_copy, read_only=True) as store:
        models = store.models.listing()
        ae = models.loc[models["detector"] == "zscore", "model_id"].iloc[-1]
        sae = models.loc[models["detector"] == "sequence_autoencoder", "model_id"].iloc[-1]
        scores = store.scores.of_model(ae)
    session = str(scores.sort_values("score")["session_id"].iloc[-1])

    code, out = run("explain", session, "--db", db, "--model", ae)
    assert code == 0, out
    assert f"Session {session}" in out and "FLAGGED" in out and "Why:\n  - " in out
    assert "Top features by |SHAP|" in out and "additivity error" in out

    code, out = run("explain", session, "--db", db, "--model", sae, "--json")
    assert code == 0, out
    payload = json.loads(out)
    assert payload["model_id"] == sae and payload["features"] is None
    assert payload["reasons"] and set(payload["event_contributions"]) == {
        "occlusion", "reconstruction_error"}
    assert len(payload["events"]) == len(payload["event_contributions"]["occlusion"])

    code, out = run("explain", session, "--db", db, "--model", sae)
    assert code == 0 and "Top events by occlusion" in out and "(cached " in out

    # without --model: the combined Why first, then the model weighing most in it
    code, out = run("explain", session, "--db", db)
    assert code == 0, out
    assert f"Why session {session}" in out and "% of the risk" in out
    assert out.index("% of the risk") < out.index(f"Session {session}")
    code, out = run("explain", session, "--db", db, "--json")
    assert code == 0, out
    why = json.loads(out)["why"]
    shares = [r["share"] for r in why["reasons"]]
    assert shares and shares == sorted(shares, reverse=True)
    assert abs(sum(m["weight"] for m in why["models"]) - 1) < 1e-3


def test_unknown_session_and_model_exit_2_with_a_clear_message(demo_store_copy: Path) -> None:
    code, out = run("explain", "no-such-session", "--db", str(demo_store_copy))
    assert code == 2
    assert "session must be one of the store's sessions, got 'no-such-session'" in out
    assert "Traceback" not in out
    with Store.open(demo_store_copy, read_only=True) as store:
        session = str(store.sessions.meta()["session_id"].iloc[0])
    code, out = run("explain", session, "--db", str(demo_store_copy), "--model", "nope")
    assert code == 2 and "model must be one of the registered models" in out
