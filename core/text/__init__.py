"""Review and search text: sentence embeddings, their cache in the store, session features."""

from __future__ import annotations

from core.text.embeddings import (
    TextEncoder,
    encoder_name,
    load_encoder,
    text_features_available,
    text_features_notice,
)
from core.text.spec import TextSpec

__all__ = [
    "TextEncoder",
    "TextSpec",
    "encoder_name",
    "load_encoder",
    "text_features_available",
    "text_features_notice",
]
