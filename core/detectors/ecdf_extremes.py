"""The single most improbable feature (``ecdf_extremes``): Tippett's minimum p-value over the
same empirical tails as ``ecdf_tails``.

``ecdf_tails`` adds every feature's tail surprise (Fisher's way): a session that is off in many
features at once stands out, and one that is extreme in a single feature among ~100 is diluted
by the others' noise. This detector asks the other question: how improbable is the session's
*most* improbable feature? Its score is the largest per-feature surprise, -log of the smaller
empirical tail probability (beyond the training range it keeps rising with the distance, as in
``ecdf_tails``), plus a thousandth of the mean surprise so that sessions whose largest surprise
ties are ordered by the rest.

It is the detector for anomalies that live in one column: a purchase seconds after sign-up, a
count that was constant in training and moved, one amount far above the customer's history.
On tables whose anomalies move many columns at once it is the weaker of the two, and a normal
session with one odd column outranks them (docs/FEATURES.md, "``ecdf_extremes``"). The two are
complementary ensemble members: the ensemble's tail-surprise combination lets one member that
is sure outweigh members that see nothing.

Fitting, state and explanations are ``ecdf_tails``' own (the same knots and scales); only the
aggregation differs.

>>> import numpy as np
>>> from core.datasets import FeatureMatrix
>>> rng = np.random.default_rng(0)
>>> names = tuple(f"f{j}" for j in range(20))
>>> train = FeatureMatrix(np.arange(2000).astype(object),
...                       rng.normal(size=(2000, 20)).astype(np.float32), names)
>>> one_far = np.zeros((1, 20), np.float32); one_far[0, 3] = 6.0
>>> all_mild = np.full((1, 20), 1.5, np.float32)
>>> new = FeatureMatrix(np.array(["one_far", "all_mild"], dtype=object),
...                     np.concatenate([one_far, all_mild]), names)
>>> extremes = EcdfExtremesDetector().fit(train).score(new)
>>> bool(extremes[0] > extremes[1])  # one feature far out beats every feature a little off
True
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch

from core.datasets import FeatureMatrix
from core.detectors._lanes import CPU_BLOCK_ROWS, run_blocks
from core.detectors.ecdf_tails import EcdfTailsConfig, EcdfTailsDetector
from core.detectors.registry import register

TIE_BREAK = 1e-3
"""Weight of the mean surprise added to the largest: orders sessions whose largest surprise
ties (a discrete feature's tail) without letting the many features outvote the one."""


@register("ecdf_extremes")
class EcdfExtremesDetector(EcdfTailsDetector):
    """The largest per-feature empirical tail surprise (see the module docstring)."""

    config_class = EcdfTailsConfig
    weighed_without_labels: ClassVar[bool] = False
    """Without labels nothing tells a single-column extreme that is fraud from a normal
    oddity; an ensemble without labels leaves it out (docs/FEATURES.md)."""

    def score(self, data: FeatureMatrix) -> np.ndarray:
        """float64 (n,) max over features of max(-log left tail, -log right tail), plus
        ``TIE_BREAK`` times their mean."""
        values = self._values_for_score(data)
        out = np.empty(len(values))

        def score_block(start: int, stop: int) -> None:
            left, right = self._tails(values[start:stop].astype(np.float64))
            surprise = np.maximum(left, right, out=left)
            out[start:stop] = surprise.max(axis=1) + TIE_BREAK * surprise.mean(axis=1)

        run_blocks(len(values), CPU_BLOCK_ROWS, torch.device("cpu"), score_block)
        return out
