"""The label-free threshold experiment over dumped scores (benchmarks.operating_point)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks.operating_point import fence_threshold, from_dump


def test_the_fence_is_median_plus_k_mad_raised_by_the_cap() -> None:
    x = np.arange(101.0)  # median 50, MAD 25.25 (x 1.4826 as a standard deviation)
    assert fence_threshold(x, 1.0, None) == pytest.approx(50 + 25 * 1.4826)
    assert fence_threshold(x, 0.0, 0.05) == pytest.approx(95.0)  # flags at most 5%
    assert fence_threshold(x, -0.99, None) == pytest.approx(99.0)  # the 99% quantile


def _dump(folder: Path, dataset: str, shift: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    reference = rng.normal(size=2000)
    scores = np.concatenate([rng.normal(size=980), rng.normal(shift, 0.5, size=20)])
    labels = np.r_[np.zeros(980, bool), np.ones(20, bool)]
    np.savez(folder / f"{dataset}__zscore__0.npz", reference=np.sort(reference),
             n_reference=2000, scores=scores, labels=labels, threshold=0.0)


def test_from_dump_reports_both_regimes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _dump(tmp_path, "cardio", 8.0, 1)  # far-off anomalies: a high fence finds them all
    _dump(tmp_path, "sample", 8.0, 2)
    from_dump([tmp_path])
    rows = {tuple(line.split("|")[0].split()): line for line in capsys.readouterr().out
            .splitlines() if "|" in line}
    four = rows[("4.0", "5%")].split("|")
    # Each group: its median share of the oracle F1, then the share at 0.8 or more.
    assert four[1].split()[:2] == ["1.00", "1.00"] and four[2].split()[:2] == ["1.00", "1.00"]
    assert len(rows) == 1 + 16 + 3  # the header, the 4 x 4 grid and three quantiles
    assert 0.8 < float(rows[("q99.5", "none")].split("|")[1].split()[0]) < 1.0  # 5 false alarms


def test_from_dump_says_what_to_run_without_files(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="--dump-scores"):
        from_dump([tmp_path])
