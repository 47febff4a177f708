"""Reasons for a live answer in microseconds: the session's most unusual features.

The full explanation (``core.explain``: permutation SHAP over the members, ~0.5 s of CPU) is
too slow to give every flagged answer at hundreds of requests a second; the store writer runs
it for some alerts within a time budget, and the Explain page on demand. Until then an answer
names the features furthest from the model's training centre, in its own scale (a robust z),
one per topic, in plain words: "failed payments: 6 (typical 0)".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from core.explain.context import decode, describe, format_value, topic

N_REASONS = 3
MIN_Z = 2.0  # below this no feature stands out enough to be named


def scale_of(models: Sequence[Any]) -> tuple[np.ndarray, np.ndarray] | None:
    """(centre, scale) of the first of ``models`` (loaded models) that learned one."""
    for model in models:
        detector = getattr(model, "detector", model)
        centre, scale = getattr(detector, "centre_", None), getattr(detector, "scale_", None)
        if centre is not None and scale is not None:
            return np.asarray(centre, np.float64), np.asarray(scale, np.float64)
    return None


def quick_reasons(names: Sequence[str], row: np.ndarray, centre: np.ndarray,
                  scale: np.ndarray, k: int = N_REASONS) -> tuple[str, ...]:
    """Sentences for the up to ``k`` features of ``row`` furthest from ``centre``."""
    z = np.abs((np.asarray(row, np.float64) - centre) / np.where(scale > 0, scale, 1.0))
    out: list[str] = []
    seen: set[str] = set()
    for j in np.argsort(-z, kind="stable"):
        if z[j] < MIN_Z or len(out) >= k:
            break
        name = names[j]
        if name.startswith("text_emb_") or topic(name) in seen:
            continue  # an embedding coordinate means nothing to a reader
        seen.add(topic(name))
        kind, meaning = describe(name)
        if kind == "hour":  # a sine or cosine alone is no time of day
            continue
        value, usual = (float(v) for v in decode(kind, np.array([row[j], centre[j]])))
        shown, typical = format_value(kind, value), format_value(kind, usual)
        out.append(f"{shown} {meaning} (typical {typical})" if kind == "share"
                   else f"{meaning}: {shown} (typical {typical})")
    return tuple(out)
