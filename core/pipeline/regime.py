"""A training window's regime: vetted (its sessions labelled) or unlabelled.

Labels change what a training window can be trusted with. Where (almost) every session
carries a label, the window is *vetted*: once labelled anomalies are left out it is normal
behaviour, a quantile of its scores is a false-positive rate (core.pipeline.operating_point),
and every row is worth learning. Where it is unlabelled it may hold anomalies (fraud is in the
traffic until someone labels it): the default threshold is a fence above the bulk of the
scores, and the dense reconstruction models train with a trimmed loss, leaving each batch's
worst-reconstructed rows out, so that they do not learn the anomalies they should flag; a
detector whose config names ``unlabelled_epochs`` (the VAE) also makes at most that many passes
over such a window, since each pass is another chance to learn them. On a vetted window the
dense models clip their standardised inputs at ``vetted_clip`` (100) instead of ``clip`` (10):
there is nothing to keep out of training, and how far out a session lies is the signal.

    >>> import numpy as np
    >>> is_vetted(np.array([True] * 19 + [False]))
    True
    >>> trim_for(vetted=False), trim_for(vetted=True)
    (0.1, 0.0)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

VETTED_SHARE = 0.95
"""A training window counts as vetted when at least this share of its sessions carries a
label (ground truth or an analyst's decision)."""
UNLABELLED_TRIM = 0.1
"""Share of each training batch left out of the loss of the dense autoencoder and VAE on an
unlabelled window (``DenseConfig.trim_fraction``; docs/FEATURES.md, "Training windows that
may hold anomalies")."""


def is_vetted(labelled: np.ndarray) -> bool:
    """Whether the training sessions (a bool per session: carries a label) are vetted."""
    labelled = np.asarray(labelled, bool)
    return bool(len(labelled)) and float(labelled.mean()) >= VETTED_SHARE


def trim_for(*, vetted: bool) -> float:
    """The trimmed share of each training batch for a window of this regime."""
    return 0.0 if vetted else UNLABELLED_TRIM


def regime_overrides(config: Any, *, vetted: bool, given: Mapping[str, Any]) -> dict[str, Any]:
    """The config fields a window's regime sets on a detector, where ``given`` (the fields the
    caller passed) does not name them: the trimmed share where the config leaves it to the
    pipeline (``trim_fraction`` None), on an unlabelled window a cap on the passes over it
    where the config names one (``unlabelled_epochs``; an ``epochs`` cap already smaller
    wins), and on a vetted window the clip the config names for it (``vetted_clip``).

        >>> from types import SimpleNamespace as Config
        >>> regime_overrides(Config(trim_fraction=None, unlabelled_epochs=100, epochs=None,
        ...                         vetted_clip=100.0), vetted=False, given={})
        {'trim_fraction': 0.1, 'epochs': 100}
        >>> regime_overrides(Config(trim_fraction=None, unlabelled_epochs=100, epochs=None,
        ...                         vetted_clip=100.0), vetted=True, given={})
        {'trim_fraction': 0.0, 'clip': 100.0}
        >>> regime_overrides(Config(trim_fraction=None, vetted_clip=100.0), vetted=True,
        ...                  given={"clip": 5.0})
        {'trim_fraction': 0.0}
        >>> regime_overrides(Config(trim_fraction=0.0, unlabelled_epochs=100, epochs=None),
        ...                  vetted=False, given={"epochs": 5})
        {}
    """
    out: dict[str, Any] = {}
    if "trim_fraction" not in given and getattr(config, "trim_fraction", 0.0) is None:
        out["trim_fraction"] = trim_for(vetted=vetted)
    cap = getattr(config, "unlabelled_epochs", None)
    if not vetted and cap and "epochs" not in given:
        current = getattr(config, "epochs", None)
        out["epochs"] = cap if current is None else min(cap, current)
    wide = getattr(config, "vetted_clip", None)
    if vetted and wide and "clip" not in given:
        out["clip"] = wide
    return out
