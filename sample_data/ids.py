"""Fast string columns: fixed-width ids built from digit bytes, IPs, dictionary columns."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SCRAMBLE = 2_654_435_761
"""Knuth's multiplicative hash: odd, so ``i * SCRAMBLE mod 2**32`` is a bijection and scrambled
ids stay unique while not revealing creation order."""


_DIGITS = np.array([list(f"{i:04d}".encode()) for i in range(10_000)], dtype=np.uint8)
_DIGITS4 = _DIGITS.view("V4").ravel()  # one 4-byte item per number 0..9999


def id_bytes(prefix: str, numbers: np.ndarray, width: int) -> np.ndarray:
    """(n, len(prefix) + width) bytes of ``prefix`` + zero-padded decimal ``numbers``,
    computed four digits at a time from a lookup table."""
    numbers = np.asarray(numbers, dtype=np.int64)
    head = prefix.encode()
    n, p = len(numbers), len(head)
    buf = np.empty((n, p + width), dtype=np.uint8)
    buf[:, :p] = np.frombuffer(head, dtype=np.uint8)
    rest, col = numbers, p + width
    while col > p:
        k = min(4, col - p)
        rest, low = np.divmod(rest, 10**k)
        buf[:, col - k : col] = _DIGITS4[low].view(np.uint8).reshape(n, 4)[:, 4 - k :]
        col -= k
    return buf


def string_array(rows: np.ndarray, missing: np.ndarray | None = None) -> pa.Array:
    """A large_string array of the fixed-width byte rows ``rows`` (n, w), null where
    ``missing``."""
    n, w = rows.shape
    offsets = np.arange(0, (n + 1) * w, w, dtype=np.int64)
    validity = None
    if missing is not None and missing.any():
        validity = pa.py_buffer(np.packbits(~missing, bitorder="little"))
    data = pa.py_buffer(np.ascontiguousarray(rows))
    return pa.Array.from_buffers(pa.large_string(), n, [validity, pa.py_buffer(offsets), data])


def fixed_ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """``prefix`` + zero-padded decimal ``numbers`` (all < 10**width) as a large_string array,
    built from bytes in numpy, without a Python string per row.

    >>> fixed_ids("e", np.array([7, 42]), 4).to_pylist()
    ['e0007', 'e0042']
    """
    return string_array(id_bytes(prefix, numbers, width))


def gather_ids(table: np.ndarray, codes: np.ndarray) -> pa.Array:
    """Rows of the fixed-width id table ``table`` (from ``id_bytes``) at ``codes``, null where
    ``codes`` < 0: one memory gather per row instead of digit arithmetic."""
    codes = np.asarray(codes)
    missing = codes < 0
    w = table.shape[1]
    items = np.ascontiguousarray(table).view(f"V{w}").ravel()
    rows = items[np.where(missing, 0, codes)].view(np.uint8).reshape(len(codes), w)
    return string_array(rows, missing)


def scramble(numbers: np.ndarray) -> np.ndarray:
    """Random-looking but unique 10-digit numbers for indices below 2**32."""
    mixed = np.asarray(numbers).astype(np.uint64) * np.uint64(SCRAMBLE) + np.uint64(12_345)
    return (mixed % (np.uint64(1) << np.uint64(32))).astype(np.int64)


def ip_strings(values: np.ndarray) -> pa.Array:
    """Dotted-quad strings of uint32 IPv4 addresses."""
    values = np.asarray(values, dtype=np.uint32)
    octets = [pa.array(((values >> np.uint32(s)) & np.uint32(255)).astype(np.int64)).cast(
        pa.string()) for s in (24, 16, 8, 0)]
    return pc.binary_join_element_wise(*octets, ".").cast(pa.large_string())


def decode(dictionary: pa.Array, codes: np.ndarray) -> pa.Array:
    """``dictionary[codes]`` as large_string, null where ``codes`` < 0.

    Decoding a dictionary array is far faster than ``take`` on strings, and large_string is
    what pandas' string dtype stores, so the DataFrame wraps it without a copy.
    """
    codes = np.asarray(codes)
    missing = codes < 0
    index = pa.array(np.where(missing, 0, codes).astype(np.int32),
                     mask=missing if missing.any() else None)
    values = dictionary.cast(pa.large_string())
    return pa.DictionaryArray.from_arrays(index, values).dictionary_decode()


def categorical(values: pa.Array, codes: np.ndarray) -> pa.DictionaryArray:
    """``values[codes]`` as a dictionary array (pandas: a Categorical over all of ``values``),
    null where ``codes`` < 0.

    For enumerations (event types, countries, user agents): 1-2 bytes a row instead of the
    string, and no string bytes to write: far less memory and time than decoded strings
    (docs/BENCHMARKS.md, 'Measurements behind design choices').

    >>> categorical(pa.array(["a", "bb"]), np.array([1, -1, 0])).to_pylist()
    ['bb', None, 'a']
    """
    codes = np.asarray(codes)
    missing = codes < 0
    index_type = np.int8 if len(values) <= 127 else np.int16 if len(values) <= 32_767 else np.int32
    index = pa.array(np.where(missing, 0, codes).astype(index_type),
                     mask=missing if missing.any() else None)
    return pa.DictionaryArray.from_arrays(index, values.cast(pa.string()))
