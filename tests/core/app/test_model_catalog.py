"""The model catalog (issue #25, item 4): listing, a model's card and evaluation, comparing,
retiring, and a training run started in the background."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pandas as pd
import pytest

from core.app import ConfigError, ModelError, model_catalog
from core.app import policy as app_policy
from core.app.data import open_store


def _ids(db: Path) -> tuple[str, str]:
    """(the model the policy in force uses, another model)."""
    with open_store(db, read_only=True) as store:
        in_force = app_policy.in_force(store).model_id
        other = next(m for m in store.models.ids() if m != in_force)
    return in_force, other


def test_catalog_lists_every_model_with_its_facts(demo_store: Path) -> None:
    with open_store(demo_store, read_only=True) as store:
        frame = model_catalog.catalog(store)
        in_force = app_policy.in_force(store).model_id
    assert set(frame["detector"]) == {"zscore", "autoencoder", "sequence_autoencoder"}
    assert (frame["n_scores"] > 0).all() and (frame["size_bytes"] > 0).all()
    assert frame["train_seconds"].notna().all() and (frame["device"] == "cpu").all()
    split = frame["input_seconds"] + frame["fit_seconds"]
    assert (frame[["input_seconds", "fit_seconds"]] >= 0).all().all()
    assert (split <= frame["train_seconds"] + 1e-3).all()
    assert model_catalog.time_split(frame.iloc[0].to_dict()).endswith(" s fitting")
    assert frame["train_end"].notna().all() and frame["feature_hash"].notna().all()
    assert frame.loc[frame["in_force"], "model_id"].tolist() == [in_force]
    assert frame.loc[frame["in_force"], "policy"].iloc[0].startswith("in force (v0)")
    assert not frame["retired"].any()
    assert frame.loc[frame["detector"] == "sequence_autoencoder", "spec"].iloc[0] == "sequences"


def test_a_card_holds_the_stored_loss_curves_and_is_json(demo_store: Path) -> None:
    with open_store(demo_store, read_only=True) as store:
        model_id = store.models.latest_of("autoencoder")
        card = model_catalog.describe(store, model_id)
        assert isinstance(card["left_out"], list)
        with pytest.raises(ModelError, match="registered models"):
            model_catalog.describe(store, "nope")
    json.dumps(card, allow_nan=False)
    series = {c["series"] for c in card["curves"]}
    assert {"train", "validation"} <= series
    assert card["history"]["n_steps"] > 0 and card["config"]["latent_dim"] == 6
    assert card["window_regime"].split(" (")[0] in ("vetted", "unlabelled")


def test_loss_curves_read_components_and_boosting_rounds() -> None:
    vae = {"train_loss": [3.0, 2.0], "val_loss": [3.5, 2.5], "steps": [10, 20],
           "components": {"recon": [2.0, 1.5], "kl": [1.0, 0.5]},
           "val_components": {"recon": [2.2, 1.8], "kl": [1.3, 0.7]}}
    frame = model_catalog.loss_curves(vae)
    assert set(frame["series"]) == {"train", "validation", "recon (train)",
                                    "recon (validation)", "kl (train)", "kl (validation)"}
    assert frame.loc[frame["series"] == "kl (validation)", "step"].tolist() == [10, 20]
    nested = model_catalog.loss_curves({"components": {"kl": {"train": [1.0], "val": [2.0]}}})
    assert set(nested["series"]) == {"kl (train)", "kl (validation)"}
    gbdt = model_catalog.loss_curves({"metric": "logloss", "val_metric": [0.2, 0.1]})
    assert gbdt["series"].unique().tolist() == ["validation logloss"]
    assert model_catalog.loss_curves(None).empty


def test_evaluation_is_on_the_models_own_window(demo_store: Path) -> None:
    with open_store(demo_store, read_only=True) as store:
        model_id = store.models.latest_of("zscore")
        found = model_catalog.evaluation(store, model_id)
        everything = model_catalog.evaluation(store, model_id, ("analyst",))
        evaluated = [r for r in app_models_evaluate(store) if r["model_id"] == model_id][0]
    assert found["n_sessions"] == evaluated["n_sessions"]
    assert found["average_precision"] == pytest.approx(evaluated["average_precision"])
    assert set(found["roc"].columns) == {"fpr", "tpr"} and len(found["roc"]) > 2
    assert found["pr"]["precision"].between(0, 1).all()
    assert found["calibration"]["count"].sum() == found["n_sessions"]
    assert found["recall_by_scenario"]
    assert "note" in everything  # no analyst labels in the demo
    # the window as an analyst reads it: to the second, in UTC (not a raw Timestamp)
    assert re.fullmatch(r"sessions from \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", found["window"])


def app_models_evaluate(store):  # noqa: ANN001, ANN201
    from core.app import models as app_models

    return app_models.evaluate(store)


def test_compare_puts_two_models_side_by_side(demo_store: Path) -> None:
    with open_store(demo_store, read_only=True) as store:
        a, b = store.models.ids()[:2]
        frame = model_catalog.compare(store, a, b)
    assert list(frame.columns) == [a, b]
    assert {"detector", "average_precision", "roc_auc", "train_end"} <= set(frame.index)
    assert any(str(i).startswith("recall: ") for i in frame.index)


def test_retire_hides_a_model_and_refuses_the_policys(demo_store_copy: Path) -> None:
    in_force, other = _ids(demo_store_copy)
    with open_store(demo_store_copy) as store:
        with pytest.raises(ConfigError, match="alert policy in force"):
            model_catalog.retire(store, in_force, by="ana")
        assert "Retired" in model_catalog.retire(store, other, by="ana")
        assert "already" in model_catalog.retire(store, other, by="ana")
        shown = model_catalog.catalog(store, include_retired=False)
        everything = model_catalog.catalog(store)
        row = everything[everything["model_id"] == other].iloc[0]
        assert other not in set(shown["model_id"]) and row["retired"]
        assert other not in set(store.models.scored()["model_id"])  # the pages' pickers
        assert row["retired_by"] == "ana" and store.models.exists(other)
        assert store.scores.count(other) > 0
        assert "back" in model_catalog.retire(store, other, by="ana", undo=True)
        assert other in set(model_catalog.catalog(store, include_retired=False)["model_id"])
        metrics = json.loads(store.models.by_id(other)["metrics"])
    assert "retired" not in metrics and "score_reference" in metrics


def test_a_retired_model_is_not_scored_by_default_nor_published(demo_store_copy: Path) -> None:
    from core.app import models as app_models
    from core.policy import publish_policy

    in_force, other = _ids(demo_store_copy)
    with open_store(demo_store_copy) as store:
        detector = str(store.models.by_id(other)["detector"])
        assert store.models.latest_of(detector) == other
        model_catalog.retire(store, other, by="ana")
        assert store.models.latest_of(detector) is None  # the demo has one model a detector
        assert other not in app_models.latest_models(store)
        assert in_force in app_models.latest_models(store)
        with pytest.raises(ConfigError, match="retired.*--undo"):
            publish_policy(store, analyst="ana", model_id=other, thresholds={"all": 1.0})
        model_catalog.retire(store, other, by="ana", undo=True)
        assert other in app_models.latest_models(store)


def test_start_training_rejects_a_bad_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="detector"):
        model_catalog.start_training(tmp_path / "x.duckdb", "rm -rf /")


def wait_for_run(db: Path, run_id: str, timeout_s: float = 240.0) -> dict:
    """Poll the run's file until it ends (bounded)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        runs = {r["run_id"]: r for r in model_catalog.training_runs(db)}
        run = runs.get(run_id)
        if run is not None and run["status"] in ("finished", "failed", "lost"):
            return run
        time.sleep(0.5)
    raise AssertionError(f"run {run_id} did not end in {timeout_s} s")


def test_a_background_run_trains_and_stores_its_curve(demo_store_copy: Path) -> None:
    with open_store(demo_store_copy, read_only=True) as store:
        before = set(store.models.ids())
    run_id = model_catalog.start_training(demo_store_copy, "autoencoder", by="adam", epochs=2)
    run_file = demo_store_copy.parent / "training_runs" / f"{run_id}.json"
    assert run_file.exists()
    run = wait_for_run(demo_store_copy, run_id)
    assert run["status"] == "finished", run.get("log_tail")
    assert run["exit_code"] == 0 and run["finished"] and run["by"] == "adam"
    assert run["loss"] > 0 and run["val_loss"] > 0  # read off the progress bar in its log
    log = run_file.with_suffix(".log")
    assert log.stat().st_mode & 0o077 == 0 and run_file.stat().st_mode & 0o077 == 0
    with open_store(demo_store_copy, read_only=True) as store:
        new = set(store.models.ids()) - before
        assert new == {run["model_id"]}
        card = model_catalog.describe(store, run["model_id"])
    curves = pd.DataFrame(card["curves"])
    assert {"train", "validation"} <= set(curves["series"])
    assert not model_catalog.any_running(model_catalog.training_runs(demo_store_copy))


def test_progress_reads_the_latest_loss_from_the_log() -> None:
    tail = ("autoencoder:  10%| 30/300 [00:01<00:10, loss=0.8123, val=0.91]\r"
            "autoencoder:  20%| 60/300 [00:02<00:09, loss=0.5, val=0.6]")
    assert model_catalog.progress(tail) == {"loss": 0.5, "val_loss": 0.6}
    assert model_catalog.progress("gbdt: 5/200 [loss=0.2]") == {"loss": 0.2}
    assert model_catalog.progress("") == {}


def test_left_out_names_held_calendar_columns_and_ignored_extras() -> None:
    metrics = {"calendar_held": ["is_weekend"]}
    spec = {"features": {"extras": {"ignored": [["order_ref", "text with 900 distinct values"]]}}}
    assert model_catalog.left_out(metrics, spec) == [
        "is_weekend (the training window is shorter than its cycle)",
        "extra column order_ref: text with 900 distinct values"]
    assert model_catalog.left_out({}, {}) == []


def test_an_ensemble_card_says_how_it_combines_not_a_training_window(
    demo_store_copy: Path,
) -> None:
    """An ensemble has no training window, features or fit of its own: its card says how it
    weighs its members and how long choosing the weights took, not "not recorded"."""
    from core.pipeline import train_model

    with open_store(demo_store_copy) as store:
        trained = train_model(store, "ensemble", models_dir=demo_store_copy.parent / "models")
        card = model_catalog.describe(store, trained.model_id)
    words = model_catalog.WEIGHT_SOURCES
    assert any(card["window_regime"].startswith(w) for w in words.values())
    assert card["history_features"] == "as its members read them"
    assert model_catalog.time_split(card).endswith(" s choosing its members' weights")


def test_the_models_page_offers_every_registered_detector() -> None:
    """``DETECTORS`` is spelled out (listing the registry would load torch on the page), so a
    new detector must be added there too: this fails when one is missing."""
    from core.detectors import available_detectors

    assert set(model_catalog.DETECTORS) == {*available_detectors(), "ensemble"}
