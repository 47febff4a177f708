"""Score drift: recent sessions' training percentiles against the training distribution.

A model's risk reference holds the quantiles of its training scores, so a training session's
percentile is uniform on [0, 100] by construction: drift is how far the recent sessions'
percentiles are from uniform. The measure is the population stability index over ten equal
bins, PSI = sum_i (p_i - q_i) ln(p_i / q_i) with q_i = 0.1 (bins empty on either side get half
a count, so it stays finite). The usual reading: under 0.1 stable, 0.1-0.25 a moderate
shift, above 0.25 a large one; the alarm fires above ``ALARM_PSI`` once ``MIN_SESSIONS``
recent sessions are in.

>>> import numpy as np
>>> round(score_drift(np.linspace(0, 100, 1000)).psi, 3)
0.0
>>> score_drift(np.full(500, 99.0)).alarm
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BINS = 10
ALARM_PSI = 0.25
MIN_SESSIONS = 50


@dataclass(frozen=True)
class Drift:
    """The recent percentiles' histogram against uniform, and the verdict."""

    n: int
    recent_share: tuple[float, ...]  # per decile of the training percentile
    psi: float
    alarm: bool

    @property
    def verdict(self) -> str:
        if self.n < MIN_SESSIONS:
            return f"too few recent sessions to judge ({self.n} of {MIN_SESSIONS})"
        if self.psi > ALARM_PSI:
            return f"drift: the recent scores moved away from training (PSI {self.psi:.2f})"
        if self.psi > 0.1:
            return f"a moderate shift (PSI {self.psi:.2f})"
        return f"stable (PSI {self.psi:.2f})"


def score_drift(percentiles: np.ndarray) -> Drift:
    """Drift of recent sessions given their training percentiles (0-100; NaN ignored)."""
    values = np.asarray(percentiles, dtype=np.float64)
    values = values[np.isfinite(values)]
    n = len(values)
    counts = np.histogram(np.clip(values, 0, 100), bins=BINS, range=(0, 100))[0].astype(float)
    if n == 0:
        return Drift(0, tuple([0.0] * BINS), 0.0, False)
    recent = np.maximum(counts, 0.5) / max(n, 1)
    expected = 1.0 / BINS
    psi = float(np.sum((recent - expected) * np.log(recent / expected)))
    return Drift(n, tuple(float(c / n) for c in counts), psi, n >= MIN_SESSIONS and psi > ALARM_PSI)
