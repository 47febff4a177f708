"""Score drift (core.drift): recent training percentiles against uniform."""

from __future__ import annotations

import numpy as np

from core.drift import ALARM_PSI, MIN_SESSIONS, score_drift


def test_training_like_percentiles_are_stable() -> None:
    found = score_drift(np.random.default_rng(0).uniform(0, 100, 5000))
    assert found.psi < 0.01 and not found.alarm and "stable" in found.verdict
    assert abs(sum(found.recent_share) - 1) < 1e-9


def test_a_shift_to_high_risk_raises_the_alarm() -> None:
    rng = np.random.default_rng(1)
    found = score_drift(np.concatenate([rng.uniform(80, 100, 400), rng.uniform(0, 100, 100)]))
    assert found.psi > ALARM_PSI and found.alarm and "drift" in found.verdict


def test_few_sessions_never_alarm_and_nan_is_ignored() -> None:
    found = score_drift(np.array([99.0] * (MIN_SESSIONS - 1) + [np.nan]))
    assert found.n == MIN_SESSIONS - 1 and not found.alarm and "too few" in found.verdict
    assert score_drift(np.empty(0)).psi == 0.0
