"""JSON for the service's hot path: orjson when it is installed (several times faster on
event records and answers), the standard library otherwise, with the same results."""

from __future__ import annotations

import json
import re
from typing import Any

try:
    import orjson as _orjson
except ImportError:  # pragma: no cover - orjson is a declared dependency
    _orjson = None

_LONG_TEXT = re.compile(r"\d{20}")
_LONG_BYTES = re.compile(rb"\d{20}")


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON (numpy scalars as numbers; NaN as null with orjson). Falls back
    to the standard library for what orjson refuses (an integer beyond 64 bits, a type it
    does not know)."""
    if _orjson is not None:
        try:
            return _orjson.dumps(value, option=_orjson.OPT_SERIALIZE_NUMPY)
        except TypeError:
            pass
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def loads(data: bytes | str) -> Any:
    """Parse JSON; raises ``ValueError`` on anything that is not (NaN and Infinity are
    refused by both parsers). A text with 20 or more digits in a row goes to the standard
    library: orjson reads an integer beyond 64 bits as a float, which would change an id."""
    long_digits = _LONG_TEXT if isinstance(data, str) else _LONG_BYTES
    if _orjson is not None and long_digits.search(data) is None:
        return _orjson.loads(data)
    return json.loads(data, parse_constant=_refuse_constant)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
