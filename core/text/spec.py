"""How a model's text features were built: encoder, projection and similarity rule.

Saved inside the :class:`core.features.FeatureSpec` of every model trained with text features,
so scoring rebuilds exactly the same columns (or refuses, when the encoder differs).

    >>> spec = TextSpec("all-MiniLM-L6-v2@0.1.0", n_components=2)
    >>> spec.names
    ('text_emb_0', 'text_emb_1', 'text_max_sim_other_users', 'text_n_texts_log')
    >>> spec.is_fitted
    False
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from core.errors import ConfigError, ModelError

PROJECTION = "pca"
"""The session's mean text embedding is reduced by a PCA of the session mean embeddings, fitted
when the feature spec is learned and saved in it (components as base64 float32). On the sample
data a PCA keeps far more of the variance than a seeded random projection (figures in
docs/BENCHMARKS.md, 'Measurements behind design choices'). Like the event-type vocabulary, it
is learned from the sessions the spec is built on, without labels."""

DEFAULT_COMPONENTS = 8
DEFAULT_MIN_SIM_CHARS = 30
"""Texts shorter than this are left out of ``text_max_sim_other_users``: short texts (search
queries, coupon codes) coincide across accounts by chance (on the sample data a normal search
is 0.93 cosine from another user's on median), which would drown copied reviews (1.0)."""
MAX_FIT_SESSIONS = 100_000
"""The PCA is fitted on at most this many sessions (a seeded sample): plenty for 384 dims."""


def fit_sample(n: int, seed: int = 0) -> np.ndarray:
    """Row indices of the sessions the PCA is fitted on: all ``n``, or a seeded sample of
    MAX_FIT_SESSIONS (callers may pass only these rows to ``TextSpec.fit``)."""
    if n <= MAX_FIT_SESSIONS:
        return np.arange(n)
    return np.random.default_rng(seed).choice(n, MAX_FIT_SESSIONS, replace=False)


def _encode(values: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(values, dtype="<f4").tobytes()).decode("ascii")


def _decode(text: str, shape: tuple[int, ...]) -> np.ndarray:
    try:
        values = np.frombuffer(base64.b64decode(text, validate=True), dtype="<f4")
        return values.reshape(shape).astype(np.float32)
    except (ValueError, TypeError) as exc:
        raise ModelError(
            f"text projection must be base64 float32 of shape {shape}, got an unreadable one "
            f"({exc}). Retrain the model."
        ) from exc


@functools.lru_cache(maxsize=16)
def _decoded(text: str, shape: tuple[int, ...]) -> np.ndarray:
    """``_decode``, once per projection (the live path projects every few events)."""
    values = _decode(text, shape)
    values.flags.writeable = False
    return values


@dataclass(frozen=True)
class TextSpec:
    """Encoder (cache key, model@package version), projection size, the minimum text length
    that counts for cross-user similarity, and (once fitted) the PCA mean and components."""

    encoder: str
    n_components: int = DEFAULT_COMPONENTS
    min_sim_chars: int = DEFAULT_MIN_SIM_CHARS
    projection: str = PROJECTION
    dim: int = 0
    mean: str = ""
    components: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.encoder, str) or not self.encoder:
            raise ConfigError(f"text encoder must be a non-empty name, got {self.encoder!r}.")
        if not 1 <= int(self.n_components) <= 64:
            raise ConfigError(
                f"text n_components must be in 1..64, got {self.n_components}. A few dimensions "
                "keep the feature matrix small."
            )
        if int(self.min_sim_chars) < 0:
            raise ConfigError(f"text min_sim_chars must be >= 0, got {self.min_sim_chars}.")
        if self.projection != PROJECTION:
            raise ModelError(
                f"text projection must be {PROJECTION!r}, got {self.projection!r}. The model "
                "was trained by another Anomalyst version: retrain it."
            )

    @property
    def names(self) -> tuple[str, ...]:
        """Column names, appended after the base and event-type features."""
        emb = tuple(f"text_emb_{i}" for i in range(self.n_components))
        return (*emb, "text_max_sim_other_users", "text_n_texts_log")

    @property
    def is_fitted(self) -> bool:
        return self.dim > 0

    def fit(self, session_means: np.ndarray, seed: int = 0) -> TextSpec:
        """A copy with the PCA of ``session_means`` (n, dim); signs fixed so each component's
        largest loading is positive (the same data always gives the same spec)."""
        x = np.asarray(session_means, dtype=np.float64)
        if len(x) > MAX_FIT_SESSIONS:
            x = x[fit_sample(len(x), seed)]
        dim = x.shape[1]
        mean = x.mean(axis=0) if len(x) else np.zeros(dim)
        components = np.zeros((self.n_components, dim))
        if len(x) > 1:
            # Principal axes from the (dim x dim) covariance: the same axes as an SVD of the
            # (n x dim) data, much faster with many sessions.
            centred = x - mean
            values, vectors = np.linalg.eigh(centred.T @ centred)
            vt = vectors[:, np.argsort(values)[::-1][:min(len(x), dim)]].T
            k = min(self.n_components, len(vt))
            flip = np.sign(vt[:k][np.arange(k), np.abs(vt[:k]).argmax(axis=1)])
            components[:k] = vt[:k] * flip[:, None]
        return replace(self, dim=dim, mean=_encode(mean), components=_encode(components))

    def project(self, session_means: np.ndarray) -> np.ndarray:
        """(n, dim) -> (n, n_components) PCA coordinates."""
        if not self.is_fitted:
            raise ModelError("text projection must be fitted before use, got an unfitted spec. "
                             "Build features without a spec to learn one.")
        mean = _decoded(self.mean, (self.dim,))
        components = _decoded(self.components, (self.n_components, self.dim))
        return (np.asarray(session_means, dtype=np.float32) - mean) @ components.T

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TextSpec:
        try:
            spec = cls(str(data["encoder"]), int(data["n_components"]),
                       int(data["min_sim_chars"]), str(data["projection"]), int(data["dim"]),
                       str(data["mean"]), str(data["components"]))
        except KeyError as exc:
            raise ModelError(
                f"text feature spec must have encoder, n_components, min_sim_chars, projection,"
                f" dim, mean and components, got keys {sorted(data)}. Retrain the model."
            ) from exc
        if not spec.is_fitted:
            raise ModelError("a saved text feature spec must hold its fitted projection, got "
                             "none. Retrain the model.")
        return spec
