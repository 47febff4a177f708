"""Per-column centre/scale learned in fit, shared by the feature and sequence detectors."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from core.errors import ModelError
from core.features.spec import CALENDAR_CYCLE_DAYS

SCALINGS = ("robust", "standard", "mad")

# IQR / 1.349 and MAD * 1.4826 estimate the standard deviation of a normal distribution, so the
# three scalings give comparable units.
_IQR_TO_STD = 1.349
_MAD_TO_STD = 1.4826


CONSTANT_SCALE = 0.1
"""Scale of a column that is constant in training, in its own units: a move of one unit
(one more event of a type never seen, one more device) is a deviation of 10, as large as the
clip allows, so a novelty is never drowned by noise columns. Relative to a large constant
value the floor is ``CONSTANT_RELATIVE`` of it instead."""
CONSTANT_RELATIVE = 0.01


UNCOVERED_SCALE = 1e6
"""Scale of a calendar column constant in training: the window never showed the rest of its
cycle, so the column is left out of the score (z ~ 0 whatever the clock says)."""


def uncovered_calendar(values: np.ndarray, names: Sequence[str] | None) -> np.ndarray:
    """bool (columns,): calendar columns (``CALENDAR_CYCLE_DAYS``) constant in ``values``."""
    out = np.zeros(np.asarray(values).shape[1], dtype=bool)
    if names is None or len(values) == 0:
        return out
    for j, name in enumerate(names):
        if name in CALENDAR_CYCLE_DAYS:
            column = np.asarray(values[:, j])
            out[j] = bool(np.all(column == column[0]))
    return out


def fit_scaler(values: np.ndarray, method: str, names: Sequence[str] | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """(centre, scale) float64 per column of ``values`` (rows, columns); scale is always > 0.

    A column whose robust spread is 0 (e.g. a flag that is almost always 0) falls back to its
    standard deviation, so a rare non-zero value stands out instead of dividing by 0. A column
    that is constant in training gets ``scale_floor``: a change of one unit at scoring time
    is then a large deviation (bounded by the detector's clip), not z ~ 1 as a scale of 1
    gave, which let noise columns drown an event type never seen in training.

    With ``names``, a calendar column constant in training is the exception (a weekdays-only
    window: ``is_weekend``; the training pipeline also holds one constant when its window is
    shorter than the column's cycle, ``core.pipeline.calendar``): the clock moves it, not the
    user, and the window never showed the rest of its cycle. It gets ``UNCOVERED_SCALE``, so
    it does not count. Before this, every weekend session of a set trained on weekdays was a
    10-sigma novelty, and the label-free threshold flagged half of its normal test sessions.
    """
    x = np.asarray(values, dtype=np.float64)
    if x.shape[0] == 0:
        zeros = np.zeros(x.shape[1])
        return zeros, np.ones(x.shape[1])
    if method == "standard":
        centre, scale = x.mean(axis=0), x.std(axis=0)
    elif method == "robust":
        q25, centre, q75 = np.percentile(x, [25, 50, 75], axis=0)
        scale = (q75 - q25) / _IQR_TO_STD
    elif method == "mad":
        centre = np.median(x, axis=0)
        scale = np.median(np.abs(x - centre), axis=0) * _MAD_TO_STD
    else:
        raise ModelError(f"scaling must be one of {SCALINGS}, got {method!r}. Pick one of those.")
    fallback = x.std(axis=0)
    floor = scale_floor(centre)
    scale = np.where(scale > 1e-12, scale, np.where(fallback > 1e-12, fallback, floor))
    if names is not None:
        scale = np.where(uncovered_calendar(x, names), UNCOVERED_SCALE, scale)
    return centre, scale


def scale_floor(centre: np.ndarray) -> np.ndarray:
    """The scale of columns constant in training: ``CONSTANT_SCALE`` units, or
    ``CONSTANT_RELATIVE`` of a large constant value."""
    return np.maximum(CONSTANT_SCALE, CONSTANT_RELATIVE * np.abs(centre))


def scaler_to_state(centre: np.ndarray, scale: np.ndarray) -> dict[str, list[float]]:
    """JSON form (Python floats round-trip exactly through json)."""
    return {"centre": [float(v) for v in centre], "scale": [float(v) for v in scale]}


def scaler_from_state(state: dict[str, list[float]], n_columns: int) -> tuple[
        np.ndarray, np.ndarray]:
    centre = np.asarray(state["centre"], dtype=np.float64)
    scale = np.asarray(state["scale"], dtype=np.float64)
    if centre.shape != (n_columns,) or scale.shape != (n_columns,):
        raise ModelError(
            f"scaler statistics in config.json must have {n_columns} values each, got "
            f"{centre.shape[0] if centre.ndim else 0} and {scale.shape[0] if scale.ndim else 0}. "
            "Save the model again or retrain it."
        )
    if not (np.isfinite(centre).all() and np.isfinite(scale).all() and (scale > 0).all()):
        raise ModelError(
            "scaler statistics in config.json must be finite with positive scale, got invalid "
            "values. Save the model again or retrain it."
        )
    return centre, scale
