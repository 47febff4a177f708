"""Calendar columns a training window is too short to show in full.

``hour_sin``, ``hour_cos`` and ``is_night`` repeat every day, ``is_weekend`` every week
(``core.features.spec.CALENDAR_CYCLE_DAYS``). A window shorter than a column's cycle shows
part of it only: a window from Monday to Saturday morning holds a few Saturday sessions, and
a detector would learn that weekends are rare, flagging every weekend session after it. The
training pipeline therefore holds such a column at its median in the training rows; the
detectors leave a calendar column constant in training out of the score
(``core.detectors._scaling.uncovered_calendar``), so it does not count when scoring either.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.datasets import FeatureMatrix
from core.features.spec import CALENDAR_CYCLE_DAYS


def hold_short_cycles(data: FeatureMatrix, starts: pd.Series | np.ndarray
                      ) -> tuple[FeatureMatrix, list[str]]:
    """``data`` with every calendar column whose cycle is longer than the span of
    ``starts`` (the training sessions' start times) held at its median; the names held."""
    times = pd.to_datetime(pd.Series(np.asarray(starts)))
    if data.values.shape[0] == 0 or times.isna().all():
        return data, []
    span_days = (times.max() - times.min()) / pd.Timedelta(days=1)
    held = [j for j, name in enumerate(data.names)
            if name in CALENDAR_CYCLE_DAYS and span_days < CALENDAR_CYCLE_DAYS[name]]
    if not held:
        return data, []
    values = np.array(data.values, copy=True)
    for j in held:
        values[:, j] = np.median(values[:, j])
    return FeatureMatrix(data.session_ids, values, data.names), [data.names[j] for j in held]
