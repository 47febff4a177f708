"""Anomaly detectors: build from a config, ``fit``, ``score`` (higher = more anomalous), save/load.

>>> from core.detectors import available_detectors, build_detector
>>> [name for name in available_detectors() if name.startswith("transformer")]
['transformer', 'transformer_mlm']
>>> build_detector("isolation_forest", n_estimators=50).input_kind
'features'
"""

from __future__ import annotations

from core.detectors._training import TorchTrainingConfig, TrainingHistory, resolve_device
from core.detectors.autoencoder import AutoencoderConfig, AutoencoderDetector
from core.detectors.base import Detector, FeatureDetector, SequenceDetector, load_detector
from core.detectors.cnn_gru import CnnGruConfig, CnnGruDetector
from core.detectors.config import DetectorConfig
from core.detectors.ecdf_extremes import EcdfExtremesDetector
from core.detectors.ecdf_tails import EcdfTailsConfig, EcdfTailsDetector
from core.detectors.gbdt import GBDTConfig, GBDTDetector
from core.detectors.isolation_forest import IsolationForestConfig, IsolationForestDetector
from core.detectors.mlp import MLPConfig, MLPDetector
from core.detectors.registry import (
    available_detectors,
    build_detector,
    get_detector_class,
    register,
)
from core.detectors.sequence_autoencoder import (
    SequenceAutoencoderConfig,
    SequenceAutoencoderDetector,
)
from core.detectors.sequence_vae import SequenceVAEConfig, SequenceVAEDetector
from core.detectors.transformer import TransformerConfig, TransformerDetector
from core.detectors.transformer_mlm import TransformerMLMConfig, TransformerMLMDetector
from core.detectors.vae import VAEConfig, VAEDetector
from core.detectors.zscore import ZScoreConfig, ZScoreDetector

__all__ = [
    "AutoencoderConfig",
    "AutoencoderDetector",
    "CnnGruConfig",
    "CnnGruDetector",
    "Detector",
    "DetectorConfig",
    "EcdfExtremesDetector",
    "EcdfTailsConfig",
    "EcdfTailsDetector",
    "FeatureDetector",
    "GBDTConfig",
    "GBDTDetector",
    "IsolationForestConfig",
    "IsolationForestDetector",
    "MLPConfig",
    "MLPDetector",
    "SequenceAutoencoderConfig",
    "SequenceAutoencoderDetector",
    "SequenceDetector",
    "SequenceVAEConfig",
    "SequenceVAEDetector",
    "TorchTrainingConfig",
    "TrainingHistory",
    "TransformerConfig",
    "TransformerDetector",
    "TransformerMLMConfig",
    "TransformerMLMDetector",
    "VAEConfig",
    "VAEDetector",
    "ZScoreConfig",
    "ZScoreDetector",
    "available_detectors",
    "build_detector",
    "get_detector_class",
    "load_detector",
    "register",
    "resolve_device",
]
