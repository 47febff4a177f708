"""Train → score → evaluate through the store, on the shared tiny demo store."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from cli.main import main
from core.errors import ConfigError, ModelError
from core.evaluate import evaluate_scores
from core.ingest import ingest_events
from core.lookups import score_table
from core.pipeline import evaluate_models, labelled_scores, score_model, train_model
from core.pipeline.operating_point import operating_point
from core.policy import policy_in_force
from core.schema import LABEL_SOURCES
from core.store import Store


def models(path: Path) -> pd.DataFrame:
    with Store.open(path, read_only=True) as store:
        return store.models.listing()


def test_demo_store_has_every_model_scored(demo_store: Path) -> None:
    frame = models(demo_store)
    assert set(frame["detector"]) == {"zscore", "autoencoder", "sequence_autoencoder"}
    with Store.open(demo_store, read_only=True) as store:
        n_sessions = store.summary.count_sessions()
        assert (frame["n_scores"] == n_sessions).all()
        seq = frame.loc[frame["detector"] == "sequence_autoencoder", "model_id"].iloc[0]
        n_event_scores = store.con.execute(
            "SELECT count(*) FROM event_scores WHERE model_id = ?", [seq]).fetchall()[0][0]
        expected = store.con.execute(
            "SELECT sum(least(n_events, 64)) FROM sessions").fetchall()[0][0]
    # Every event has a score, except in sessions longer than 64, which keep their last 64.
    assert n_event_scores == expected


def test_rescoring_is_idempotent(demo_store_copy: Path) -> None:
    with Store.open(demo_store_copy) as store:
        model_id = store.models.listing()["model_id"].iloc[0]
        before = store.con.execute(
            "SELECT session_id, score FROM scores WHERE model_id = ? ORDER BY 1", [model_id]).df()
        score_model(store, model_id)
        after = store.con.execute(
            "SELECT session_id, score FROM scores WHERE model_id = ? ORDER BY 1", [model_id]).df()
        assert store.summary.count_sessions() == len(after)
        assert score_model(store, model_id, only_new=True).n_sessions == 0
    pd.testing.assert_frame_equal(before, after)


def test_only_new_scores_new_sessions(demo_store_copy: Path) -> None:
    with Store.open(demo_store_copy) as store:
        model_id = store.models.listing()["model_id"].iloc[0]
        ingest_events(store, pd.DataFrame({"user_id": ["newcomer"] * 2,
                                           "ts": ["2027-01-01 10:00", "2027-01-01 10:01"],
                                           "event_type": ["login", "view"]}))
        result = score_model(store, model_id, only_new=True)
        assert result.n_sessions == 1


def test_evaluation_matches_core_evaluate(demo_store: Path) -> None:
    with Store.open(demo_store, read_only=True) as store:
        results = evaluate_models(store)
        model = results[0]
        frame = labelled_scores(store, model["model_id"])
        train_end = store.models.by_id(model["model_id"])["train_end"]
    frame = frame[frame["is_anomaly"].notna() & (frame["start_ts"] >= train_end)]
    expected = evaluate_scores(frame["score"].to_numpy(), frame["is_anomaly"].astype(bool))
    assert model["n_sessions"] == len(frame)
    assert model["roc_auc"] == pytest.approx(expected["roc_auc"])
    assert model["average_precision"] == pytest.approx(expected["average_precision"])
    present = set(frame.loc[frame["is_anomaly"].astype(bool), "scenario"].astype(str))
    assert present and set(model["recall_by_scenario"]) >= present


def test_training_leaves_out_anomalous_and_later_sessions(demo_store_copy: Path) -> None:
    with Store.open(demo_store_copy) as store:
        first, last = store.summary.time_range()
        middle = first + (last - first) / 2
        result = train_model(store, "zscore", train_end=middle)
        n_before = store.con.execute(
            "SELECT count(*) FROM sessions WHERE start_ts < ?", [middle]).fetchall()[0][0]
        assert result.n_excluded_anomalous > 0
        assert result.n_train == n_before - result.n_excluded_anomalous
        row = store.models.by_id(result.model_id)
        assert json.loads(row["feature_spec"])["kind"] == "features"


def test_model_trained_on_other_features_is_refused(demo_store_copy: Path) -> None:
    with Store.open(demo_store_copy) as store:
        model_id = store.models.listing()["model_id"].iloc[0]
        path = Path(store.models.by_id(model_id)["origin_path"])
    copy = demo_store_copy.parent / "model_copy"
    shutil.copytree(path, copy)
    spec = json.loads((copy / "inputs.json").read_text())
    spec["hash"] = "0" * 16
    (copy / "inputs.json").write_text(json.dumps(spec))
    con = duckdb.connect(str(demo_store_copy))
    # A row as registered before checksums (which would refuse the edited folder first).
    con.execute("UPDATE models SET path = ?, origin_path = ?, digest = NULL WHERE model_id = ?",
                [str(copy), str(copy), model_id])
    con.close()
    with Store.open(demo_store_copy) as store, pytest.raises(ModelError, match="features it was"):
        score_model(store, model_id)


def test_unknown_model_and_empty_store(tmp_path: Path) -> None:
    with Store.open(tmp_path / "e.duckdb") as store:
        with pytest.raises(ConfigError, match="Ingest events first"):
            train_model(store, "zscore")
        with pytest.raises(ModelError, match="registered models"):
            score_model(store, "nope")
        with pytest.raises(ConfigError, match="detector must be one of"):
            train_model(store, "not-a-detector")


def test_cli_train_score_evaluate_export(demo_store_copy: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    db = str(demo_store_copy)
    trained = runner.invoke(main, ["train", "--detector", "zscore", "--db", db, "--quiet"])
    assert trained.exit_code == 0, trained.output
    model_id = trained.output.strip().splitlines()[-1]
    assert model_id.startswith("zscore-")
    scored = runner.invoke(main, ["score", "--model", model_id, "--db", db])
    assert scored.exit_code == 0 and "scored" in scored.output
    evaluated = runner.invoke(main, ["evaluate", "--db", db, "--json"])
    assert evaluated.exit_code == 0
    assert model_id in {r["model_id"] for r in json.loads(evaluated.output)}
    table = runner.invoke(main, ["evaluate", "--db", db])
    assert "ROC-AUC" in table.output and "recall@1%FPR by scenario" in table.output
    assert f"alert policy v0 on {model_id}: flags" in table.output
    results = {r["model_id"]: r for r in json.loads(evaluated.output)}
    assert [m for m, r in results.items() if "policy" in r] == [model_id]
    with Store.open(demo_store_copy, read_only=True) as store:
        policy = policy_in_force(store)
        frame = labelled_scores(store, model_id, LABEL_SOURCES)
        window = frame[frame["is_anomaly"].notna() & (frame["start_ts"] >= pd.Timestamp(
            results[model_id]["window"].removeprefix("sessions from ")))]
        scored = score_table(store, [model_id]).set_index("session_id", drop=False)
        verdict = policy.flags(scored.loc[window["session_id"]])
    truth = window["is_anomaly"].astype(bool).to_numpy()
    expected = (verdict & truth).sum() / verdict.sum()
    assert results[model_id]["policy"]["precision"] == pytest.approx(expected)
    out = tmp_path / "scores.parquet"
    exported = runner.invoke(main, ["scores", "--out", str(out), "--db", db])
    assert exported.exit_code == 0
    frame = pd.read_parquet(out)
    assert list(frame.columns) == ["model_id", "session_id", "user_id", "score", "threshold",
                                   "above_threshold", "percentile_vs_training", "risk",
                                   "flagged", "policy_version"]
    assert np.isfinite(frame["score"]).all()
    mine = frame[frame["model_id"] == model_id]
    with Store.open(demo_store_copy, read_only=True) as store:
        point = operating_point(store, model_id)
        policy = policy_in_force(store)
        verdict = policy.flags(score_table(store, [policy.model_id]).set_index(
            "session_id", drop=False).loc[mine["session_id"]])
    assert point.rule == "q995" and (mine["threshold"] == point.threshold).all()
    assert (mine["above_threshold"] == (mine["score"] >= point.threshold)).all()
    assert mine["percentile_vs_training"].between(0, 100).all()
    # "flagged" is the policy's verdict on the session, whichever model's row it sits on
    assert policy.model_id == model_id  # the newest scored model: the default policy's
    assert (mine["flagged"].to_numpy() == verdict).all() and (mine["policy_version"] == 0).all()
    assert mine["risk"].between(0, 100).all()
    per_session = frame.groupby("session_id")["flagged"].nunique()
    assert (per_session == 1).all()


def test_cli_train_sessions_file(demo_store_copy: Path, tmp_path: Path) -> None:
    with Store.open(demo_store_copy, read_only=True) as store:
        ids = store.sessions.meta()["session_id"].head(50).tolist()
    listing = tmp_path / "train.txt"
    listing.write_text("\n".join(ids))
    result = CliRunner().invoke(main, ["train", "--detector", "zscore", "--train-sessions",
                                       str(listing), "--db", str(demo_store_copy)])
    assert result.exit_code == 0, result.output
    assert "given sessions" in result.output


def test_quiet_training_hides_the_text_embedding_progress(
    demo_store_copy: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import core.pipeline.inputs as inputs

    seen: list[object] = []

    def capture(*args: object, **kwargs: object) -> None:
        seen.append(kwargs.get("progress"))
        raise LookupError("stop after the feature build was asked for")

    monkeypatch.setattr(inputs, "build_session_features", capture)
    with Store.open(demo_store_copy) as store:
        for quiet in (True, False):
            with pytest.raises(LookupError):
                train_model(store, "zscore", quiet=quiet)
    assert seen == [False, None]
