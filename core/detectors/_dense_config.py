"""Fields shared by the dense (feature-matrix) autoencoder and VAE configs."""

from __future__ import annotations

import dataclasses

from core.detectors._scaling import SCALINGS
from core.detectors._training import TorchTrainingConfig
from core.detectors.config import check_choice, check_float, check_int
from core.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class DenseConfig(TorchTrainingConfig):
    """Dense encoder-decoder settings (plus the shared training fields).

    Attributes:
        hidden_dims: widths of the encoder layers; the decoder mirrors them.
        latent_dim: bottleneck width (smaller than the number of features).
        dropout: dropout after each hidden layer while training.
        scaling: "robust" (median / IQR), "standard" (mean / std) or "mad" (median / MAD).
        clip: standardised inputs are clipped to [-clip, clip] so wild values keep scores
            finite and do not dominate training.
        score_batch_size: rows per scoring batch.
        trim_fraction: share of each training batch, its highest-loss rows, left out of the
            loss (a trimmed loss: rows that look like anomalies are not learned, for training
            data that holds some); 0 keeps every row. Validation uses every row. None: the
            pipeline decides (``core.pipeline.training``: ``UNLABELLED_TRIM`` where the
            training window is unlabelled, else 0); a detector fitted directly keeps every row.
        unlabelled_epochs: cap on the passes over an *unlabelled* training window, set by the
            pipeline as ``epochs`` unless the caller gives epochs (core.pipeline.regime);
            None: no cap. A detector fitted directly is not capped.
        vetted_clip: the clip on a *vetted* training window, set by the pipeline as ``clip``
            unless the caller gives one (core.pipeline.regime). Such a window holds no
            anomalies for the clip to keep out of training, and a session 50 deviations out
            should score above one at 10: on the sample data the autoencoder's AP went 0.289
            → 0.465 (docs/BENCHMARKS.md). None: ``clip`` everywhere.
    """

    hidden_dims: tuple[int, ...] = (48, 16)
    latent_dim: int = 8
    dropout: float = 0.0
    scaling: str = "robust"
    clip: float = 10.0
    score_batch_size: int = 16_384
    trim_fraction: float | None = None
    unlabelled_epochs: int | None = None
    vetted_clip: float | None = 100.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.hidden_dims, tuple | list) or not self.hidden_dims:
            raise ConfigError(
                f"hidden_dims must be a non-empty tuple of positive integers, got "
                f"{self.hidden_dims!r}. Pass e.g. (48, 16)."
            )
        object.__setattr__(self, "hidden_dims", tuple(self.hidden_dims))
        for width in self.hidden_dims:
            check_int("each of hidden_dims", width, 1)
        check_int("latent_dim", self.latent_dim, 1)
        check_float("dropout", self.dropout, 0.0, 1.0, high_open=True)
        check_choice("scaling", self.scaling, SCALINGS)
        check_float("clip", self.clip, 0.0, 1e6, low_open=True)
        check_int("score_batch_size", self.score_batch_size, 1)
        if self.trim_fraction is not None:
            check_float("trim_fraction", self.trim_fraction, 0.0, 0.5)
        if self.unlabelled_epochs is not None:
            check_int("unlabelled_epochs", self.unlabelled_epochs, 1)
        if self.vetted_clip is not None:
            check_float("vetted_clip", self.vetted_clip, 0.0, 1e6, low_open=True)

    @property
    def trim(self) -> float:
        """The training batches' trimmed share (``trim_fraction``; None counts as 0)."""
        return self.trim_fraction or 0.0
