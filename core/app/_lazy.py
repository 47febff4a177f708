"""Names a use-case module re-exports but imports only on first use (PEP 562).

``core.cases``, the detectors and the ingest readers load torch or pyarrow; a front end that
imports ``core.app.cases`` for one command must not pay for them at ``anomalyst --help``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(module: str, names: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that finds ``name`` in ``names[name]`` (a module path)."""

    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        return getattr(importlib.import_module(names[name]), name)

    return __getattr__
