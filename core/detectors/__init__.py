"""Anomaly detectors: build from a config, ``fit``, ``score`` (higher = more anomalous), save/load.

>>> from core.detectors import available_detectors, build_detector
>>> available_detectors()
('autoencoder', 'isolation_forest', 'sequence_autoencoder', 'zscore')
>>> build_detector("isolation_forest", n_estimators=50).input_kind
'features'
"""

from __future__ import annotations

from core.detectors._training import TorchTrainingConfig, TrainingHistory, resolve_device
from core.detectors.autoencoder import AutoencoderConfig, AutoencoderDetector
from core.detectors.base import Detector, FeatureDetector, SequenceDetector, load_detector
from core.detectors.config import DetectorConfig
from core.detectors.isolation_forest import IsolationForestConfig, IsolationForestDetector
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
from core.detectors.zscore import ZScoreConfig, ZScoreDetector

__all__ = [
    "AutoencoderConfig",
    "AutoencoderDetector",
    "Detector",
    "DetectorConfig",
    "FeatureDetector",
    "IsolationForestConfig",
    "IsolationForestDetector",
    "SequenceAutoencoderConfig",
    "SequenceAutoencoderDetector",
    "SequenceDetector",
    "TorchTrainingConfig",
    "TrainingHistory",
    "ZScoreConfig",
    "ZScoreDetector",
    "available_detectors",
    "build_detector",
    "get_detector_class",
    "load_detector",
    "register",
    "resolve_device",
]
