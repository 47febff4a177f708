"""The gbdt comparison's summaries: calibration error and mean ± std over seeds."""

from __future__ import annotations

import numpy as np

from benchmarks.gbdt_compare import METHODS, expected_calibration_error, summarise


def test_expected_calibration_error_is_zero_when_rates_match_and_grows_otherwise() -> None:
    y = np.array([0, 0, 0, 1] * 25, dtype=float)
    assert expected_calibration_error(np.full(100, 0.25), y, bins=1) == 0.0
    assert expected_calibration_error(np.full(100, 0.75), y, bins=1) == 0.5


def test_summarise_gives_mean_and_std_per_method_and_scenario() -> None:
    rows = [{"method": m, "seed": s, "roc_auc": 0.8 + 0.1 * s, "ap": 0.5,
             "recall_at_1pct_fpr": 0.4, "ece": 0.01, "fit_s": 1.0, "rounds": 10,
             "recall_by_scenario": {"card_testing": 1.0}}
            for m in METHODS for s in (0, 1)]
    overall, by_scenario = summarise(rows)
    assert [r["method"] for r in overall] == list(METHODS)
    assert overall[0]["roc_auc"] == "0.850 ± 0.050"
    assert by_scenario[0]["card_testing"] == "1.000 ± 0.000"
