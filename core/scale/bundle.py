"""A registered model carried as bytes: what a worker needs to score without the store."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import ModelError

_LOADED: dict[tuple[str, str], Any] = {}
"""Models already unpacked in this process, by (model id, feature hash): a worker unpacks a
bundle once however many partitions it scores."""


@dataclass(frozen=True)
class ModelBundle:
    """A model's folder (relative path -> bytes) and the registry facts scoring checks."""

    model_id: str
    detector_name: str
    feature_hash: str | None
    files: dict[str, bytes] = field(repr=False)

    @classmethod
    def from_store(cls, store: Any, model_id: str) -> ModelBundle:
        """The registered model ``model_id`` (ModelError for an ensemble: it combines other
        models' scores, so score its members and combine them in the store)."""
        from core.detectors.registry import combines_members
        from core.pipeline.registry import model_folder, model_row

        row = model_row(store, model_id)
        if combines_members(str(row["detector"])):
            raise ModelError(
                f"model must be a detector, got the ensemble {model_id}: it combines other "
                "models' scores. Score its members from the files, bring them in with "
                "`anomalyst ingest-scores`, then `anomalyst score --model "
                f"{model_id}` in the store.")
        folder = model_folder(row, store)
        files = {str(p.relative_to(folder)): p.read_bytes()
                 for p in sorted(folder.rglob("*")) if p.is_file()}
        feature_hash = row.get("feature_hash")
        return cls(model_id, str(row["detector"]),
                   None if feature_hash is None else str(feature_hash), files)

    def load(self) -> Any:
        """The model as ``core.pipeline.registry.LoadedModel``, unpacked once per process."""
        key = (self.model_id, str(self.feature_hash))
        if key not in _LOADED:
            _LOADED[key] = self._unpack()
        return _LOADED[key]

    def _unpack(self) -> Any:
        from core.detectors import load_detector
        from core.pipeline.inputs import load_input_spec
        from core.pipeline.registry import LoadedModel, input_kind_of

        # Kept for the life of the process: a detector may read its folder lazily.
        folder = Path(tempfile.mkdtemp(prefix=f"anomalyst-{self.model_id[:40]}-"))
        for name, data in self.files.items():
            target = (folder / name).resolve()
            if folder.resolve() not in target.parents:
                raise ModelError(f"model bundle must hold paths inside its folder, got {name!r}.")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        spec = load_input_spec(folder)
        model = LoadedModel(self.model_id, self.detector_name, load_detector(folder / "detector"),
                            spec, input_kind_of(self.detector_name, spec), None,
                            self.feature_hash)
        model.require_same_features()
        return model
