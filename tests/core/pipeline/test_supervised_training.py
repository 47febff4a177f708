"""Supervised training through the store: labels in, calibrated scores and event scores out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from cli.main import main
from core.errors import ConfigError
from core.ingest.labels import ingest_labels
from core.pipeline import default_train_end, score_model, train_model
from core.pipeline.inputs import build_input
from core.pipeline.supervised import anomalous_sessions, training_event_labels
from core.store import Store

TINY_TRANSFORMER = {"hidden_size": 16, "n_layers": 1, "n_heads": 2, "intermediate_size": 32,
                    "batch_size": 64}


def _metrics(store: Store, model_id: str) -> dict:
    return json.loads(store.con.execute("SELECT metrics FROM models WHERE model_id = ?",
                                        [model_id]).fetchall()[0][0])


def test_transformer_trains_on_labels_then_scores(demo_store_copy: Path) -> None:
    with Store.open(demo_store_copy) as store:
        result = train_model(store, "transformer", epochs=1, config=TINY_TRANSFORMER,
                             quiet=True, device="cpu")
        assert result.n_anomalous > 0 and result.n_excluded_anomalous == 0
        metrics = _metrics(store, result.model_id)
        assert metrics["n_anomalous_train"] == result.n_anomalous
        assert "validation_ap" in metrics and "event_validation_ap" in metrics
        scored = score_model(store, result.model_id)
        assert scored.n_sessions == store.summary.count_sessions()
        assert scored.n_events > 0
        scores = store.con.execute("SELECT score FROM scores WHERE model_id = ?",
                                   [result.model_id]).fetchnumpy()["score"]
        events = store.con.execute("SELECT score FROM event_scores WHERE model_id = ?",
                                   [result.model_id]).fetchnumpy()["score"]
    for values in (scores, events):
        assert np.isfinite(values).all() and (values >= 0).all() and (values <= 1).all()


def test_supervised_training_includes_labelled_anomalies(demo_store_copy: Path) -> None:
    with Store.open(demo_store_copy) as store:
        supervised = train_model(store, "mlp", epochs=1, quiet=True, device="cpu",
                                 config={"hidden_dims": (8,)})
        unsupervised = train_model(store, "zscore", quiet=True)
        assert supervised.n_train == unsupervised.n_train + unsupervised.n_excluded_anomalous
        assert supervised.n_anomalous == unsupervised.n_excluded_anomalous > 0


def test_no_labels_says_what_to_do_through_the_cli(demo_store_copy: Path) -> None:
    with Store.open(demo_store_copy) as store:
        store.con.execute("DELETE FROM labels")
        store.con.execute("DELETE FROM session_label_rollup")  # raw SQL bypasses the writers
    result = CliRunner().invoke(main, ["train", "--detector", "transformer", "--db",
                                       str(demo_store_copy), "--quiet"])
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "`transformer` must be trained on labelled sessions, got none in the store" in text
    assert "anomalyst ingest-labels" in text and "transformer_mlm" in text


def test_labels_that_are_all_normal_say_so_and_name_the_unsupervised_detectors(
        demo_store_copy: Path) -> None:
    from core.detectors._refusals import unsupervised_detectors

    with Store.open(demo_store_copy) as store:
        store.con.execute("UPDATE labels SET is_anomaly = false")
        store.con.execute("UPDATE session_label_rollup SET is_anomaly = false")  # raw SQL
        n_labelled = anomalous_sessions(store).n_labelled
        assert n_labelled > 0
        with pytest.raises(ConfigError) as caught:
            train_model(store, "cnn_gru", quiet=True, device="cpu")
    text = str(caught.value)
    assert (f"`cnn_gru` must be trained on some sessions labelled anomalous, got labels on "
            f"{n_labelled:,} sessions and every one normal") in text
    assert unsupervised_detectors() in text and "mlp" not in text.split(":")[-1]


def test_no_anomaly_before_the_train_end_is_a_config_error(demo_store_copy: Path) -> None:
    with Store.open(demo_store_copy) as store:
        sessions = store.con.execute("SELECT session_id, start_ts FROM sessions").df()
        anomalous = sessions["session_id"].isin(anomalous_sessions(store))
        first_anomaly = sessions.loc[anomalous, "start_ts"].min()
        assert (sessions["start_ts"] < first_anomaly).sum() >= 10
        with pytest.raises(ConfigError, match="labelled anomalous sessions, got none before"):
            train_model(store, "mlp", train_end=first_anomaly, quiet=True)


def test_event_labels_follow_the_analyst(demo_store_copy: Path) -> None:
    with Store.open(demo_store_copy) as store:
        built = build_input(store, "sequences")
        ids = built.meta["session_id"].to_numpy()
        anomalous = anomalous_sessions(store)
        y = pd.Series(ids).isin(anomalous).to_numpy(float)
        before = training_event_labels(store, built.data, y)
        mask = built.data.mask
        # Normal sessions: every event is 0; ground-truth anomalies: events labelled 0/1.
        assert (before[(y == 0)[:, None] & mask] == 0).all()
        anomalous_rows = np.flatnonzero(y == 1)
        assert np.nanmax(before[anomalous_rows]) == 1
        # An analyst clears one anomalous session and flags one normal session.
        cleared, flagged = ids[anomalous_rows[0]], ids[np.flatnonzero(y == 0)[0]]
        ingest_labels(store, pd.DataFrame({"session_id": [cleared, flagged],
                                           "is_anomaly": [False, True]}),
                      label_source="analyst")
        anomalous = anomalous_sessions(store)
        assert cleared not in anomalous and flagged in anomalous
        y2 = pd.Series(ids).isin(anomalous).to_numpy(float)
        after = training_event_labels(store, built.data, y2)
    row_cleared, row_flagged = anomalous_rows[0], np.flatnonzero(y == 0)[0]
    assert (after[row_cleared][mask[row_cleared]] == 0).all()
    assert np.isnan(after[row_flagged][mask[row_flagged]]).all()  # unknown which events
    assert np.isnan(after[~mask]).all()


def test_transformer_starts_from_a_pretrained_mlm(demo_store_copy: Path) -> None:
    with Store.open(demo_store_copy) as store:
        mlm = train_model(store, "transformer_mlm", epochs=1, config=TINY_TRANSFORMER,
                          quiet=True, device="cpu")
        assert mlm.n_anomalous == 0 and mlm.n_excluded_anomalous > 0
        folder = mlm.path / "detector"
        tuned = train_model(store, "transformer", epochs=1, quiet=True, device="cpu",
                            config={**TINY_TRANSFORMER, "init_from": str(folder)})
        assert score_model(store, tuned.model_id).n_sessions > 0
        assert default_train_end(store) == tuned.train_end
