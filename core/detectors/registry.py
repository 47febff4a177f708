"""Name -> detector class, so the CLI, the dashboard and saved models can name a detector.

>>> from core.detectors import available_detectors
>>> "zscore" in available_detectors()
True
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from core.errors import ConfigError

if TYPE_CHECKING:
    from core.detectors.base import Detector

D = TypeVar("D", bound="type[Detector[Any]]")

_REGISTRY: dict[str, type[Detector[Any]]] = {}


def register(name: str) -> Callable[[D], D]:
    """Class decorator: register a detector under ``name`` and set its ``kind`` to it."""

    def decorate(cls: D) -> D:
        known = _REGISTRY.get(name)
        # A reloaded module (e.g. by Streamlit) re-registers the same class: allowed.
        same = known is not None and (known.__module__, known.__qualname__) == (
            cls.__module__, cls.__qualname__)
        if known is not None and not same:
            raise ConfigError(
                f"detector name must be unique, got {name!r} for both "
                f"{known.__name__} and {cls.__name__}. Pick another name."
            )
        cls.kind = name
        _REGISTRY[name] = cls
        return cls

    return decorate


def available_detectors() -> tuple[str, ...]:
    """Names of every registered detector, sorted."""
    return tuple(sorted(_REGISTRY))


def supervised_detectors(input_kind: str | None = None) -> tuple[str, ...]:
    """Registered detectors that learn from labels (``requires_labels``), of ``input_kind``
    ("features" or "sequences") when given, sorted."""
    return tuple(name for name in available_detectors()
                 if _REGISTRY[name].requires_labels
                 and (input_kind is None or _REGISTRY[name].input_kind == input_kind))


def unsupervised_detectors(input_kind: str | None = None,
                           exclude: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Registered detectors that learn without labels, of ``input_kind`` when given, sorted,
    ``exclude`` left out."""
    return tuple(name for name in available_detectors()
                 if not _REGISTRY[name].requires_labels and name not in exclude
                 and (input_kind is None or _REGISTRY[name].input_kind == input_kind))


def _traits(name: str) -> Any:
    """The class holding the capabilities of the models stored as ``name``: a registered
    detector, or the ensemble's combiner (not a Detector: its input is other models' scores);
    None for an unknown name."""
    from core.detectors.ensemble import EnsembleCombiner

    if name == EnsembleCombiner.kind:
        return EnsembleCombiner
    return _REGISTRY.get(name)


def ensemble_detectors() -> tuple[str, ...]:
    """Names under which models that combine other models' scores are stored
    (``combines_members``): the ensemble."""
    from core.detectors.ensemble import EnsembleCombiner

    names = [name for name in available_detectors() if _REGISTRY[name].combines_members]
    return (*names, EnsembleCombiner.kind)


def combines_members(name: str) -> bool:
    """True when models stored as ``name`` combine other models' scores (the ensemble)."""
    traits = _traits(name)
    return bool(traits is not None and traits.combines_members)


def weighed_without_labels(name: str) -> bool:
    """False when models stored as ``name`` join an ensemble without labels at weight 0
    (``weighed_without_labels``); True for an unknown name."""
    traits = _traits(name)
    return bool(getattr(traits, "weighed_without_labels", True))


def explain_preference(name: str) -> int:
    """Tie-break rank of models stored as ``name`` (``explain_preference``; 0 if unknown)."""
    traits = _traits(name)
    return int(traits.explain_preference) if traits is not None else 0


def preferred_detectors() -> tuple[str, ...]:
    """Names with a positive ``explain_preference``, most preferred first (ties by name)."""
    names = [*available_detectors(), *ensemble_detectors()]
    ranked = {name: explain_preference(name) for name in names}
    return tuple(sorted((n for n, p in ranked.items() if p > 0), key=lambda n: (-ranked[n], n)))


def get_detector_class(name: str) -> type[Detector[Any]]:
    """The detector class registered as ``name``; ConfigError listing the choices otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(
            f"detector must be one of {', '.join(available_detectors())}, got {name!r}. "
            "Pick one of those names."
        ) from None


def build_detector(name: str, **config_overrides: Any) -> Detector[Any]:
    """An unfitted detector ``name`` whose config is the default one with ``config_overrides``.

    >>> build_detector("zscore", top_k=2).config.top_k
    2
    """
    cls = get_detector_class(name)
    valid = {f.name for f in dataclasses.fields(cls.config_class)}
    unknown = sorted(set(config_overrides) - valid)
    if unknown:
        raise ConfigError(
            f"config fields of {name!r} must be among {', '.join(sorted(valid))}, "
            f"got {', '.join(unknown)}. Remove or rename them."
        )
    return cls(cls.config_class(**config_overrides))
