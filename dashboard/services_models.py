"""The Models page's door to ``core.app.model_catalog``: cached reads, retiring, training runs.

Reads are keyed on the store's stamp like every other read (``dashboard.services``), so a
model trained from the page, the CLI or another process appears on the next rerun. Retiring
and starting a training run are admin actions (``train``), checked here on the server.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from core.app import model_catalog
from dashboard import services

__all__ = ["a_run_ended", "any_running", "catalog", "compare", "describe", "detectors",
           "evaluation", "loss_curves", "loss_curves_frame", "retire", "start_training",
           "time_split", "training_runs"]

loss_curves = model_catalog.loss_curves
any_running = model_catalog.any_running
time_split = model_catalog.time_split


def loss_curves_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """The card's curve records (step, series, value) as a frame."""
    return pd.DataFrame(records, columns=["step", "series", "value"])


@st.cache_data(show_spinner=False, max_entries=8)
def catalog(stamp: str, path: str, include_retired: bool = False) -> pd.DataFrame:
    """One row per model (``core.app.model_catalog.catalog``)."""
    return services.with_store(lambda s: model_catalog.catalog(
        s, include_retired=include_retired))


@st.cache_data(show_spinner=False, max_entries=32)
def describe(stamp: str, path: str, model_id: str) -> dict[str, Any]:
    """The model's card, its loss curves as records under ``curves``."""
    return services.with_store(lambda s: model_catalog.describe(s, model_id))


@st.cache_data(show_spinner="Evaluating…", max_entries=32)
def evaluation(stamp: str, path: str, model_id: str, sources: tuple[str, ...]
               ) -> dict[str, Any]:
    """Metrics and curves on the model's own window (``core.app.model_catalog.evaluation``)."""
    return services.with_store(lambda s: model_catalog.evaluation(s, model_id, sources))


@st.cache_data(show_spinner="Comparing…", max_entries=16)
def compare(stamp: str, path: str, a: str, b: str, sources: tuple[str, ...]) -> pd.DataFrame:
    """Property per row, a column per model, every cell as text (one column, one type)."""
    frame = model_catalog.compare_in_words(
        services.with_store(lambda s: model_catalog.compare(s, a, b, sources)))

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return "–" if value != value else f"{value:.4g}"
        return "–" if value is None or value == "" else str(value)

    return frame.map(cell).reset_index()


def detectors(listed: pd.DataFrame) -> list[str]:
    return model_catalog.trainable_detectors(listed)


def retire(model_id: str, by: str, *, undo: bool = False) -> str:
    """Retire (or bring back) ``model_id``: admin only, refused for the policy's model."""
    try:
        return services.with_store(
            lambda s: model_catalog.retire(s, model_id, by=by, undo=undo), write=True,
            action="train")
    finally:
        services.forget_reads()


def start_training(detector: str, by: str, epochs: int | None = None) -> str:
    """Start a detached training run on the dashboard's store; its run id. Admin only."""
    from dashboard import auth

    auth.require("train")
    return model_catalog.start_training(services.db_path(), detector, by=by, epochs=epochs)


RUNNING_KEY = "models_running_runs"
"""This browser session's runs seen running on its last look (``a_run_ended``)."""


def a_run_ended(runs: list[dict[str, Any]]) -> bool:
    """Whether a run seen running on this session's last look has ended since."""
    running = {r.get("run_id") for r in runs if r.get("status") in ("starting", "running")}
    before = set(st.session_state.get(RUNNING_KEY, ()))
    st.session_state[RUNNING_KEY] = running
    return bool(before - running)


def training_runs() -> list[dict[str, Any]]:
    """The runs beside the store, newest first (read each time: they change while running)."""
    return model_catalog.training_runs(services.db_path())
