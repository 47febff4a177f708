"""Config plumbing shared by every detector: a frozen JSON-able dataclass base and the checks
that produce "<what> must be <rule>, got <value>. <what to do>." messages."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any, Self

from core.errors import ConfigError


def check_int(what: str, value: object, minimum: int, maximum: int | None = None) -> None:
    """ConfigError unless ``value`` is an int in [minimum, maximum]."""
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= minimum
    if ok and maximum is not None:
        ok = value <= maximum  # type: ignore[operator]
    if not ok:
        rule = f"an integer >= {minimum}" if maximum is None else (
            f"an integer in [{minimum}, {maximum}]")
        raise ConfigError(f"{what} must be {rule}, got {value!r}. Pass a value in that range.")


def check_float(
    what: str, value: object, low: float, high: float, *, low_open: bool = False,
    high_open: bool = False,
) -> None:
    """ConfigError unless ``value`` is a finite number within the given bounds."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        v = float(value)  # type: ignore[arg-type]
        ok = (v > low if low_open else v >= low) and (v < high if high_open else v <= high)
    if not ok:
        rule = f"a number in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise ConfigError(f"{what} must be {rule}, got {value!r}. Pass a value in that range.")


def check_choice(what: str, value: object, choices: Sequence[str]) -> None:
    """ConfigError unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ConfigError(
            f"{what} must be one of {', '.join(map(repr, choices))}, got {value!r}. "
            "Pick one of those."
        )


@dataclasses.dataclass(frozen=True)
class DetectorConfig:
    """Base of every detector config: frozen, JSON-serialisable, validated in __post_init__.

    ``history_features``: a feature detector trained with it gets the point-in-time history
    and entity features (core.features.history). None (the default) leaves it to the
    training pipeline, which turns it on where sessions are single events
    (``core.pipeline.history_default``) and saves the choice in the model's config. A detector
    fixes it by redeclaring the field in its config (``history_features: bool = True``).
    """

    history_features: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Self:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ConfigError(
                f"config fields of {cls.__name__} must be among {', '.join(sorted(names))}, "
                f"got {', '.join(unknown)}. Remove or rename them."
            )
        coerced = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        return cls(**coerced)


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value
