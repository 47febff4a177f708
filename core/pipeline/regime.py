"""A training window's regime: vetted (its sessions labelled) or unlabelled.

Labels change what a training window can be trusted with. Where (almost) every session
carries a label, the window is *vetted*: once labelled anomalies are left out it is normal
behaviour, a quantile of its scores is a false-positive rate (core.pipeline.operating_point),
and every row is worth learning. Where it is unlabelled it may hold anomalies (fraud is in the
traffic until someone labels it): the default threshold is a fence above the bulk of the
scores, and the dense reconstruction models train with a trimmed loss, leaving each batch's
worst-reconstructed rows out, so that they do not learn the anomalies they should flag.

    >>> import numpy as np
    >>> is_vetted(np.array([True] * 19 + [False]))
    True
    >>> trim_for(vetted=False), trim_for(vetted=True)
    (0.1, 0.0)
"""

from __future__ import annotations

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
