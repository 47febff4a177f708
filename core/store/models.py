"""The model registry's rows (``models``); folders and loading are core.pipeline.registry's."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from core.store import Store

_REGISTER = """
    INSERT INTO models (model_id, detector, created_at, config, feature_hash, feature_spec,
                        train_start, train_end, n_train, metrics, path, device,
                        origin_path, digest)
    VALUES ($model_id, $detector, $created_at, $config, $feature_hash, $feature_spec,
            $train_start, $train_end, $n_train, $metrics, $path, $device, $origin_path,
            $digest)
"""
_LISTING = """
    SELECT m.model_id, m.detector, m.created_at, m.n_train, m.train_end, m.device,
           (SELECT count(*) FROM scores s WHERE s.model_id = m.model_id) AS n_scores,
           json_extract(m.metrics, '$.retired') IS NOT NULL AS retired
    FROM models m ORDER BY m.created_at
"""
_LATEST_OF = """
    SELECT model_id FROM models
    WHERE detector = $detector AND json_extract(metrics, '$.retired') IS NULL
    ORDER BY created_at DESC LIMIT 1
"""
# input_kind: 'sequences' or 'features' (an ensemble counts as features), read from the spec
# the model was trained on, so a page need not import the detectors (torch) to know.
# A retired model (metrics.retired, core.app.model_catalog) is left out: the pickers, the
# default policy's model and the ensemble's default members come from here.
_SCORED = """
    SELECT m.model_id, m.detector, m.created_at, m.train_end, c.n_scores,
           CASE json_extract_string(m.feature_spec, '$.kind') WHEN 'sequences'
                THEN 'sequences' ELSE 'features' END AS input_kind
    FROM models m
    JOIN (SELECT model_id, count(*) AS n_scores FROM scores GROUP BY model_id) c
        USING (model_id)
    WHERE json_extract(m.metrics, '$.retired') IS NULL
    ORDER BY m.created_at, m.model_id
"""


class Models:
    """Registered models."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def register(self, *, model_id: str, detector: str | None = None, created_at: Any = None,
                 config: str | None = None, feature_hash: str | None = None,
                 feature_spec: str | None = None, train_start: Any = None,
                 train_end: Any = None, n_train: int | None = None, metrics: str | None = None,
                 path: str | None = None, device: str | None = None,
                 origin_path: str | None = None, digest: str | None = None) -> None:
        """Insert one registry row (JSON fields as text); StoreError when a required field
        is missing."""
        self._store._execute("register_model", _REGISTER, {
            "model_id": model_id, "detector": detector, "created_at": created_at,
            "config": config, "feature_hash": feature_hash, "feature_spec": feature_spec,
            "train_start": train_start, "train_end": train_end, "n_train": n_train,
            "metrics": metrics, "path": path, "device": device, "origin_path": origin_path,
            "digest": digest})

    def by_id(self, model_id: str) -> dict[str, Any] | None:
        """The registry row of ``model_id``, or None."""
        rows = self._store._frame("model_by_id", "SELECT * FROM models WHERE model_id = $model_id",
                                  {"model_id": model_id})
        return None if rows.empty else rows.iloc[0].to_dict()

    def exists(self, model_id: str) -> bool:
        return self._store._scalar(
            "model_exists", "SELECT count(*) FROM models WHERE model_id = $model_id",
            {"model_id": model_id}) > 0

    def latest_of(self, detector: str) -> str | None:
        """The newest model of ``detector`` that is not retired, or None."""
        found = self._store._scalar("latest_model_of", _LATEST_OF, {"detector": detector})
        return None if found is None else str(found)

    def listing(self) -> pd.DataFrame:
        """model_id, detector, created_at, n_train, train_end, device, n_scores, retired;
        oldest first."""
        return self._store._frame("model_list", _LISTING)

    def ids(self) -> list[str]:
        """Every registered model id, oldest first."""
        return [str(m) for m in self.listing()["model_id"]]

    def scored(self) -> pd.DataFrame:
        """model_id, detector, created_at, train_end, n_scores, input_kind ('features' or
        'sequences') of every model with scores and not retired, oldest first."""
        return self._store._frame("scored_models", _SCORED)

    # --- the Models page and `anomalyst models` (issue #25) ---------------------------------
    def catalog(self) -> pd.DataFrame:
        """Every registry row (metrics as JSON text) with its number of scores; oldest first."""
        return self._store._frame("model_catalog", _CATALOG)

    def is_retired(self, model_id: str) -> bool:
        """Whether ``model_id`` is registered and retired."""
        return self._store._scalar(
            "model_is_retired", "SELECT count(*) FROM models WHERE model_id = $model_id "
            "AND json_extract(metrics, '$.retired') IS NOT NULL", {"model_id": model_id}) > 0

    def set_retired(self, model_id: str, retired: dict[str, Any] | None) -> None:
        """Record (or, with None, drop) ``retired`` ({"at", "by"}) in the model's metrics
        JSON; the row and its folder stay."""
        import json

        self._store._execute("model_set_retired", _SET_RETIRED, {
            "model_id": model_id,
            "retired": json.dumps({"retired": retired}) if retired is not None else None})


_CATALOG = """
    SELECT m.model_id, m.detector, m.created_at, m.train_start, m.train_end, m.n_train,
           m.device, m.path, m.origin_path, m.digest, m.feature_hash, m.feature_spec,
           m.config, m.metrics,
           coalesce((SELECT count(*) FROM scores s WHERE s.model_id = m.model_id), 0)
               AS n_scores
    FROM models m ORDER BY m.created_at, m.model_id
"""
# metrics is a JSON object as text; NULL retired drops the key
_SET_RETIRED = """
    UPDATE models SET metrics = CASE
        WHEN $retired IS NULL THEN json_remove(coalesce(metrics, '{}'), '$.retired')::VARCHAR
        ELSE json_merge_patch(coalesce(metrics, '{}'), $retired)::VARCHAR END
    WHERE model_id = $model_id
"""
