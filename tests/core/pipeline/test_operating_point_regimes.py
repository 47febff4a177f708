"""Which label-free default a model takes: a quantile over a vetted (labelled) training window,
the fence over an unlabelled one (core.pipeline.operating_point)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.ingest import ingest_events
from core.ingest.labels import ingest_labels
from core.operating_point import threshold_by_rule
from core.pipeline import train_model
from core.pipeline.operating_point import operating_point
from core.store import Store


def _events(n_users: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_users):
        for j in range(int(rng.integers(3, 12))):
            rows.append((f"u{i}", 1_700_000_000 + i * 3600 + j * 30,
                         ("view", "cart", "buy")[int(rng.integers(0, 3))]))
    return pd.DataFrame(rows, columns=["user_id", "ts", "event_type"])


@pytest.fixture(scope="module")
def unlabelled_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("regimes") / "store.duckdb"
    with Store.open(path) as store:
        ingest_events(store, _events())
    return path


def _train(path: Path) -> tuple[str, float, float, str]:
    with Store.open(path) as store:
        result = train_model(store, "zscore", quiet=True, models_dir=path.parent / "models")
        point = operating_point(store, result.model_id)
    assert point.reference is not None
    return point.rule, point.threshold, threshold_by_rule(point.reference.pooled,
                                                          point.rule), point.source


def test_an_unlabelled_training_window_takes_the_fence(unlabelled_store: Path) -> None:
    rule, threshold, expected, source = _train(unlabelled_store)
    assert rule == "mad4" and "median + 4 MAD" in source
    assert threshold >= expected


def test_a_labelled_training_window_flags_half_a_percent_of_normal_sessions(
    unlabelled_store: Path, tmp_path: Path,
) -> None:
    import shutil

    path = tmp_path / "labelled.duckdb"
    shutil.copy(unlabelled_store, path)
    with Store.open(path) as store:
        ids = store.sessions.meta()["session_id"]
        ingest_labels(store, pd.DataFrame({"session_id": ids, "is_anomaly": False}))
    rule, threshold, expected, source = _train(path)
    assert rule == "q995" and threshold == pytest.approx(expected)
    assert "labelled normal" in source and "99.5th percentile" in source


def _trained_metrics(path: Path, detector: str, config: dict | None = None) -> dict:
    import json

    from core.pipeline.registry import model_row

    with Store.open(path) as store:
        result = train_model(store, detector, quiet=True, models_dir=path.parent / "models",
                             config={"max_steps": 20, **(config or {})})
        metrics = json.loads(model_row(store, result.model_id)["metrics"])
    trimmed = [n for n in result.notes if "worst-reconstructed rows" in n]
    assert len(trimmed) == ("trim_fraction" in metrics["training_window"])  # said, when done
    return metrics


def test_an_unlabelled_window_trains_the_autoencoder_with_a_trimmed_loss(
    unlabelled_store: Path, tmp_path: Path,
) -> None:
    import shutil

    from core.pipeline.regime import UNLABELLED_TRIM

    path = tmp_path / "store.duckdb"
    shutil.copy(unlabelled_store, path)
    window = _trained_metrics(path, "autoencoder")["training_window"]
    assert window == {"vetted": False, "labelled_share": 0.0, "trim_fraction": UNLABELLED_TRIM}
    given = _trained_metrics(path, "autoencoder", {"trim_fraction": 0.0})["training_window"]
    assert "trim_fraction" not in given  # a fraction the user gave is kept
    with Store.open(path) as store:
        ids = store.sessions.meta()["session_id"]
        ingest_labels(store, pd.DataFrame({"session_id": ids, "is_anomaly": False}))
    vetted = _trained_metrics(path, "vae")["training_window"]
    assert vetted == {"vetted": True, "labelled_share": 1.0, "clip": 100.0}


def test_a_vetted_window_widens_the_clip_of_the_dense_models(
    unlabelled_store: Path, tmp_path: Path,
) -> None:
    import json
    import shutil

    from core.pipeline.registry import model_row

    path = tmp_path / "store.duckdb"
    shutil.copy(unlabelled_store, path)

    def clip(config: dict | None = None) -> float:
        with Store.open(path) as store:
            result = train_model(store, "autoencoder", quiet=True,
                                 models_dir=path.parent / "models",
                                 config={"max_steps": 20, **(config or {})})
            return float(json.loads(model_row(store, result.model_id)["config"])["clip"])

    assert clip() == 10.0  # unlabelled: the clip keeps what may be anomalies in bounds
    with Store.open(path) as store:
        ids = store.sessions.meta()["session_id"]
        ingest_labels(store, pd.DataFrame({"session_id": ids, "is_anomaly": False}))
    assert clip() == 100.0  # vetted: how far out a session lies counts
    assert clip({"clip": 5.0}) == 5.0  # a clip the user gives wins


def test_an_unlabelled_window_caps_the_passes_of_a_detector_that_names_a_cap(
    unlabelled_store: Path, tmp_path: Path,
) -> None:
    import shutil

    from core.detectors import get_detector_class

    path = tmp_path / "store.duckdb"
    shutil.copy(unlabelled_store, path)
    capped = [name for name in ("vae", "autoencoder")
              if getattr(get_detector_class(name).config_class(), "unlabelled_epochs", None)]
    assert capped == ["vae"]  # the autoencoder did not gain from a cap (docs/FEATURES.md)
    cap = get_detector_class("vae").config_class().unlabelled_epochs
    window = _trained_metrics(path, "vae")["training_window"]
    assert window["epochs_cap"] == cap and window["trim_fraction"] > 0
    assert "epochs_cap" not in _trained_metrics(path, "autoencoder")["training_window"]
    assert "epochs_cap" not in _trained_metrics(path, "vae", {"epochs": 3})["training_window"]


def test_a_labelled_window_with_anomalies_late_in_it_takes_best_f1_there(
    unlabelled_store: Path, tmp_path: Path,
) -> None:
    """A label-free model over a labelled window whose last tenth holds 40 labelled anomalies
    (sessions far longer than the rest): it never trains on them, yet they set its cut, and
    the reference of training scores still holds normal sessions only."""
    import shutil

    path = tmp_path / "late.duckdb"
    shutil.copy(unlabelled_store, path)
    rng = np.random.default_rng(1)
    burst = pd.DataFrame([(f"bot{i}", 1_700_000_000 + 395 * 3600 + i * 60 + j,
                           ("view", "cart")[j % 2])
                          for i in range(40) for j in range(int(rng.integers(40, 60)))],
                         columns=["user_id", "ts", "event_type"])
    with Store.open(path) as store:
        ingest_events(store, burst)
        meta = store.sessions.meta()
        ingest_labels(store, pd.DataFrame({
            "session_id": meta["session_id"],
            "is_anomaly": meta["user_id"].astype(str).str.startswith("bot")}))
        result = train_model(store, "zscore", quiet=True, models_dir=path.parent / "models",
                             train_end=pd.Timestamp(1_700_000_000 + 400 * 3600, unit="s"))
        point = operating_point(store, result.model_id)
    assert point.rule == "best_f1_validation" and "without labels" in point.source
    assert point.reference is not None
    # the cut sits at the bots' lowest score, above every normal training session's
    assert point.threshold > float(np.max(point.reference.pooled))
