"""The detector protocol: config in, ``fit`` -> ``score`` (higher = more anomalous), save/load.

A detector is built from a frozen config dataclass; ``__init__`` stores it and nothing else.
``fit`` learns attributes that end in ``_`` and returns the detector; ``score`` returns a float64
``anomaly_score`` per session. ``save(folder)`` writes ``config.json`` (kind, config, learned
metadata, a checksum of the weights, format version) and ``model.safetensors`` (arrays only,
never pickle) into a temporary folder that is renamed into place, so a crash never leaves half
a model behind. ``load_detector(folder)`` reads ``config.json``, picks the class by ``kind`` and
rebuilds it from that file and the weights alone.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Generic, Literal, NoReturn, Self, TypeVar

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from core.datasets import EventSequences, FeatureMatrix
from core.detectors.config import DetectorConfig
from core.errors import ConfigError, ModelError, NotFittedError
from core.files import atomic_dir

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"

InputKind = Literal["features", "sequences"]


ConfigT = TypeVar("ConfigT", bound=DetectorConfig)


# ------------------------------------------------------------------------------- the protocol
class Detector(Generic[ConfigT]):
    """Base class. Subclasses set ``config_class`` and ``input_kind`` and implement
    ``fit``, ``score``, ``_get_state`` and ``_set_state``; ``@register`` sets ``kind``."""

    kind: ClassVar[str] = ""
    input_kind: ClassVar[InputKind]
    requires_labels: ClassVar[bool] = False
    """True when ``fit`` needs labels (``fit(data, y)``): a supervised detector, trained on
    every labelled session of the training window; False: it learns from normal sessions."""
    outputs_probability: ClassVar[bool] = False
    """True when ``score`` is a probability in (0, 1): explanations then attribute in
    log-odds (``core.explain.logit``), where a saturated 0.9998 still moves."""
    event_score_meaning: ClassVar[str | None] = None
    """What ``score_events`` means, as explanations name the method: "reconstruction_error",
    "surprise", "event_head", or "event_score" for per-event scores with no specific meaning;
    None when the detector has no per-event scores."""
    has_attention: ClassVar[bool] = False
    """True when the detector exposes ``attentions(data)`` (attention maps and rollout)."""
    combines_members: ClassVar[bool] = False
    """True for a detector whose scores combine other models' scores (the ensemble); its
    explanation is its members'."""
    explain_preference: ClassVar[int] = 0
    """Tie-break when several models rank a session equally high: the higher, the sooner its
    model is shown (also which model a page opens on)."""
    weighed_without_labels: ClassVar[bool] = True
    """False for a specialist that an ensemble without labels leaves out (weight 0, said in
    its note): only labels can tell how much its view should count (``ecdf_extremes``)."""
    novelty_held_out: ClassVar[bool] = True
    """True: the training matrix counts what only one training session holds as novel for
    that session (``core.features.novelty.NoveltyHoldout``), so the model learns how common
    novelty is among normal sessions; False: counted in-sample (always 0 in training). The
    ``vae`` says False: its decoder learns a variance per feature, and a novelty column that
    training shows moving gets a wide one, where a single unseen transition stops counting."""
    tiny_config: ClassVar[dict[str, Any]] = {}
    """Config overrides for a tiny, fast model (the tests' contract check builds one with
    ``build_detector(kind, **tiny_config)``), so a new detector needs no test edits."""
    config_class: ClassVar[type[DetectorConfig]]

    def __init__(self, config: ConfigT | None = None) -> None:
        if config is None:
            config = self.config_class()  # type: ignore[assignment]
        if not isinstance(config, self.config_class):
            raise ConfigError(
                f"config of {type(self).__name__} must be a {self.config_class.__name__}, "
                f"got {type(config).__name__}. Build it with {self.config_class.__name__}(...) "
                "or build_detector(name, **fields)."
            )
        self.config: ConfigT = config  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})"

    # -- to implement -----------------------------------------------------------------------
    def fit(self, data: Any, y: np.ndarray | None = None) -> Self:
        raise NotImplementedError

    def score(self, data: Any) -> np.ndarray:
        """float64 (n,) anomaly scores, higher = more anomalous."""
        raise NotImplementedError

    @property
    def is_fitted(self) -> bool:
        raise NotImplementedError

    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(JSON-able learned metadata, named arrays for model.safetensors)."""
        raise NotImplementedError

    def _set_state(self, state: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        raise NotImplementedError

    # -- shared -----------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(
                f"{type(self).__name__} must be fitted before scoring, got an unfitted one. "
                "Call fit(data) or load_detector(folder) first."
            )

    def _check_input(self, data: object) -> None:
        expected = FeatureMatrix if self.input_kind == "features" else EventSequences
        if not isinstance(data, expected):
            raise ModelError(
                f"input of {type(self).__name__} must be a {expected.__name__}, got "
                f"{type(data).__name__}. Build it with core.features."
            )
        if len(data) == 0:
            raise ModelError(
                f"input of {type(self).__name__} must have at least one session, got 0. "
                "Check the filters that selected the sessions."
            )

    def save(self, folder: str | os.PathLike[str]) -> Path:
        """Write the fitted detector to ``folder`` atomically (replacing what was there)."""
        self._check_fitted()
        target = Path(folder)
        if target.exists() and not target.is_dir():
            raise ModelError(
                f"model folder must be a folder, got the file {target}. Pick another path."
            )
        state, arrays = self._get_state()
        with atomic_dir(target) as tmp:
            weights = tmp / WEIGHTS_FILE
            contiguous = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
            save_file(contiguous, str(weights), metadata={"kind": self.kind})
            document = {
                "format_version": FORMAT_VERSION,
                "kind": self.kind,
                "input_kind": self.input_kind,
                "config": self.config.to_dict(),
                "state": state,
                "weights_sha256": _sha256(weights),
            }
            (tmp / CONFIG_FILE).write_text(json.dumps(document, indent=2), encoding="utf-8")
        logger.info("saved %s detector to %s", self.kind, target)
        return target

    @classmethod
    def load(cls, folder: str | os.PathLike[str]) -> Self:
        """Load a detector saved by ``save``; ModelError if it is another kind or damaged."""
        detector = load_detector(folder)
        if not isinstance(detector, cls):
            raise ModelError(
                f"model in {folder} must be a {cls.kind or cls.__name__} detector, got "
                f"{detector.kind!r}. Use load_detector(folder) to load any kind."
            )
        return detector


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_detector(folder: str | os.PathLike[str]) -> Detector[Any]:
    """Rebuild the detector saved in ``folder`` from its config.json and model.safetensors."""
    from core.detectors.registry import available_detectors, get_detector_class

    path = Path(folder)
    config_path, weights_path = path / CONFIG_FILE, path / WEIGHTS_FILE
    for needed in (config_path, weights_path):
        if not needed.is_file():
            raise ModelError(
                f"model folder must contain {needed.name}, got none in {path}. "
                "Point to a folder written by detector.save(), or retrain."
            )
    try:
        document = json.loads(config_path.read_text(encoding="utf-8"))
        version, kind = document["format_version"], document["kind"]
        config_values, state = document["config"], document["state"]
        checksum = document["weights_sha256"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise ModelError(
            f"{config_path} must be a detector config written by save(), got an unreadable "
            f"or incomplete file ({exc}). Retrain and save the model again."
        ) from exc
    if version != FORMAT_VERSION:
        raise ModelError(
            f"model format version must be {FORMAT_VERSION}, got {version!r} in {config_path}. "
            "Retrain the model with this version of Anomalyst."
        )
    if kind not in available_detectors():
        raise ModelError(
            f"model kind must be one of {', '.join(available_detectors())}, got {kind!r} in "
            f"{config_path}. Retrain the model with this version of Anomalyst."
        )
    if _sha256(weights_path) != checksum:
        raise ModelError(
            f"{weights_path} must match the checksum recorded in config.json, got a different "
            "file (truncated or modified). Save the model again or retrain it."
        )
    try:
        arrays = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(
            f"{weights_path} must be a readable safetensors file, got an error: {exc}. "
            "Save the model again or retrain it."
        ) from exc
    cls = get_detector_class(kind)
    try:
        config = cls.config_class.from_dict(config_values)
    except (ConfigError, TypeError) as exc:
        raise ModelError(
            f"config in {config_path} must be a valid {cls.config_class.__name__}, got: {exc} "
            "Retrain the model with this version of Anomalyst."
        ) from exc
    detector = cls(config)
    try:
        detector._set_state(state, arrays)
    except ModelError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise ModelError(
            f"model in {path} must match its config.json, got a mismatch: {exc}. "
            "Save the model again or retrain it."
        ) from exc
    return detector


def require_arrays(arrays: dict[str, np.ndarray], shapes: dict[str, tuple[int, ...]]) -> None:
    """ModelError unless each named array exists with the given shape (-1 = any length)."""
    for name, shape in shapes.items():
        if name not in arrays:
            raise ModelError(
                f"model.safetensors must contain {name!r}, got only "
                f"{', '.join(sorted(arrays)) or 'nothing'}. Save the model again or retrain it."
            )
        got = arrays[name].shape
        fits = len(got) == len(shape) and all(
            s in (-1, g) for s, g in zip(shape, got, strict=False))
        if not fits:
            raise ModelError(
                f"array {name!r} in model.safetensors must have shape {shape}, got {got}. "
                "Save the model again or retrain it."
            )


# ------------------------------------------------------------------------ two input families
class FeatureDetector(Detector[ConfigT]):
    """A detector over a session FeatureMatrix; learns ``feature_names_``."""

    input_kind: ClassVar[InputKind] = "features"
    feature_names_: tuple[str, ...]

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "feature_names_")

    def _values_for_fit(self, data: FeatureMatrix, min_rows: int = 2) -> np.ndarray:
        self._check_input(data)
        if len(data) < min_rows:
            raise ModelError(
                f"training data must have at least {min_rows} sessions, got {len(data)}. "
                "Widen the training window."
            )
        if len(set(data.names)) != len(data.names):
            raise ModelError(
                f"feature names must be unique, got duplicates in {list(data.names)}. "
                "Rebuild the features."
            )
        return _finite_float32(data)

    def _values_for_score(self, data: FeatureMatrix, *, check_finite: bool = True) -> np.ndarray:
        """float32 (n, f) columns in ``feature_names_`` order; ModelError if names differ or
        (unless the caller checks each block itself: ``raise_not_finite``) a value is not
        finite."""
        self._check_fitted()
        self._check_input(data)
        names = tuple(data.names)
        if names != self.feature_names_:
            expected, got = set(self.feature_names_), set(names)
            if expected != got or len(names) != len(self.feature_names_):
                missing = sorted(expected - got)
                extra = sorted(got - expected)
                raise ModelError(
                    f"features must be the {len(self.feature_names_)} the model was trained "
                    f"on, got missing {missing or 'none'} and extra {extra or 'none'}. Retrain "
                    "the model, or rebuild the features with the same feature version."
                )
            # Same names in another order: reorder rather than fail.
            order = [names.index(n) for n in self.feature_names_]
            data = FeatureMatrix(data.session_ids, data.values[:, order], self.feature_names_)
        return _finite_float32(data, check_finite)


def _finite_float32(data: FeatureMatrix, check: bool = True) -> np.ndarray:
    values = np.ascontiguousarray(data.values, dtype=np.float32)
    if check and not np.isfinite(values).all():
        raise_not_finite(values, data.names)
    return values


def raise_not_finite(values: np.ndarray, names: Sequence[str]) -> NoReturn:
    """ModelError naming the (first five) columns of ``values`` with NaN or infinity."""
    bad = np.flatnonzero(~np.isfinite(values).all(axis=0))
    raise ModelError(
        f"feature values must be finite, got NaN or infinity in {[names[i] for i in bad[:5]]}. "
        "Impute missing values when building the features."
    )


class SequenceDetector(Detector[ConfigT]):
    """A detector over EventSequences; learns ``vocab_``, ``n_tokens_`` and ``channel_names_``.

    ``score_events`` returns a float64 (n, L) per-event score, NaN where padded (so padding is
    never mistaken for a normal event).
    """

    input_kind: ClassVar[InputKind] = "sequences"
    vocab_: dict[str, int]
    n_tokens_: int
    channel_names_: tuple[str, ...]

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "vocab_")

    def score_events(self, data: EventSequences) -> np.ndarray:
        raise NotImplementedError

    def _learn_vocab(self, data: EventSequences) -> tuple[dict[str, int], int]:
        vocab = {str(k): int(v) for k, v in data.vocab.items()}
        top = max([EventSequences.UNKNOWN, *vocab.values()])
        if data.tokens.size:
            top = max(top, int(data.tokens.max()))
        return vocab, top + 1

    def _tokens_for_score(self, data: EventSequences) -> np.ndarray:
        """int64 (n, L) tokens in the fitted vocabulary: types unseen at fit time -> UNKNOWN."""
        self._check_fitted()
        self._check_input(data)
        if tuple(data.channel_names) != self.channel_names_:
            raise ModelError(
                f"numeric channels must be {list(self.channel_names_)}, got "
                f"{list(data.channel_names)}. Retrain the model, or rebuild the sequences "
                "with the same feature version."
            )
        return map_tokens(data, self.vocab_, self.n_tokens_)


def map_tokens(data: EventSequences, vocab: dict[str, int], n_tokens: int) -> np.ndarray:
    """int64 (n, L) tokens of ``data`` re-expressed in ``vocab``: event types ``vocab`` lacks,
    ids outside ``data.vocab`` and ids >= ``n_tokens`` become UNKNOWN; padding becomes PAD."""
    tokens = np.asarray(data.tokens, dtype=np.int64)
    top = max([EventSequences.UNKNOWN, *data.vocab.values()])
    if tokens.size:
        top = max(top, int(tokens.max()))
    lut = np.full(top + 1, EventSequences.UNKNOWN, dtype=np.int64)
    lut[EventSequences.PAD] = EventSequences.PAD
    for name, token in data.vocab.items():
        lut[token] = vocab.get(name, EventSequences.UNKNOWN)
    lut[lut >= n_tokens] = EventSequences.UNKNOWN
    out = lut[np.clip(tokens, 0, None)]
    out[~np.asarray(data.mask, dtype=bool)] = EventSequences.PAD
    return out
