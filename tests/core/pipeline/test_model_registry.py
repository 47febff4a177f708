"""The model registry: rows, the latest model per detector, the default train end."""

from __future__ import annotations

import datetime as dt

import pytest

from core.errors import ModelError
from core.pipeline.registry import default_train_end, latest_models, model_row
from core.store import Store

T0 = dt.datetime(2026, 1, 1)


def _register(store: Store, model_id: str, detector: str, minutes: int) -> None:
    store.models.register(model_id=model_id, detector=detector,
                          created_at=T0 + dt.timedelta(minutes=minutes), config="{}",
                          n_train=1, metrics="{}", path=f"models/{model_id}", device="cpu")


def test_latest_model_per_detector_with_ensembles_last() -> None:
    with Store.open(":memory:") as store:
        _register(store, "ens-1", "ensemble", 0)
        _register(store, "ae-1", "autoencoder", 1)
        _register(store, "ae-2", "autoencoder", 2)
        _register(store, "zs-1", "zscore", 3)
        assert latest_models(store) == ["ae-2", "zs-1", "ens-1"]
        assert store.models.latest_of("autoencoder") == "ae-2"
        assert store.models.latest_of("iforest") is None


def test_model_row_names_the_known_models() -> None:
    with Store.open(":memory:") as store:
        _register(store, "ae-1", "autoencoder", 0)
        assert model_row(store, "ae-1")["detector"] == "autoencoder"
        with pytest.raises(ModelError, match="ae-1"):
            model_row(store, "nope")


def test_an_empty_store_has_no_default_train_end() -> None:
    with Store.open(":memory:") as store:
        assert default_train_end(store) is None
