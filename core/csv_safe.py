"""CSV cells a spreadsheet will not run: OWASP's rule for CSV (formula) injection.

A text cell that starts with ``=``, ``+``, ``-`` or ``@`` (also after leading spaces), or with
a tab or carriage return, gets a leading single quote, so Excel, LibreOffice and Sheets show it
as text instead of evaluating ``=HYPERLINK(...)`` or ``=cmd|' /C calc'!A0``. Numbers stay
numbers: numeric columns are untouched, and so is text that is just a number (``-12.5``).
A cell that already starts with a quote gets one too, so the rule is reversible
(``restore_cell``) and a reader of our own files gets back exactly what was written.

Every CSV the product writes goes through ``write_csv``/``csv_text`` (or, for files DuckDB
streams, ``sql_neutralise``): the scores export, the JSON report's ``events_csv`` and the
rejected-rows files. The rule lives in the writer, so any column added later is covered.

    >>> neutralise_cell("=1+1"), neutralise_cell(" @SUM(A1)"), neutralise_cell("-12.5")
    ("'=1+1", "' @SUM(A1)", '-12.5')
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pandas as pd

from core.files import private_file

_TRIGGER = re.compile(r"^(?:[ ]*[=+\-@]|[\t\r]|')")
_NUMBER = re.compile(r"^\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\s*$")
# The same rule in DuckDB's regex dialect (RE2), for files DuckDB writes itself.
_SQL_TRIGGER = r"^([ ]*[=+\-@]|[\t\r]|')"
_SQL_NUMBER = r"\s*[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?\s*"


def neutralise_cell(value: Any) -> Any:
    """``value`` with a leading quote when a spreadsheet would treat it as a formula."""
    if isinstance(value, str) and _TRIGGER.match(value) and not _NUMBER.match(value):
        return "'" + value
    return value


def restore_cell(value: Any) -> Any:
    """The inverse of ``neutralise_cell`` for cells read back from our own CSV."""
    if isinstance(value, str) and value.startswith("'"):
        return value[1:]
    return value


def neutralise_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` with every text cell and column name neutralised."""
    out = frame.copy()
    for column in out.columns:
        if not (pd.api.types.is_numeric_dtype(out[column]) or
                pd.api.types.is_datetime64_any_dtype(out[column]) or
                pd.api.types.is_bool_dtype(out[column])):
            out[column] = out[column].map(neutralise_cell, na_action="ignore")
    out.columns = [neutralise_cell(str(c)) for c in out.columns]
    return out


def csv_text(frame: pd.DataFrame, **to_csv: Any) -> str:
    """``frame`` as neutralised CSV text (``index=False`` unless told otherwise)."""
    to_csv.setdefault("index", False)
    return neutralise_frame(frame).to_csv(**to_csv)


def write_csv(frame: pd.DataFrame, target: str | os.PathLike[str], **to_csv: Any) -> Path:
    """Write ``frame`` as neutralised CSV to ``target``, readable by its owner only."""
    path = Path(target)
    to_csv.setdefault("index", False)
    with private_file(path) as handle:
        neutralise_frame(frame).to_csv(handle, **to_csv)
    return path


def sql_neutralise(expr: str) -> str:
    """A DuckDB expression applying ``neutralise_cell`` to the VARCHAR value of ``expr``."""
    text = f"CAST({expr} AS VARCHAR)"
    return (
        f"CASE WHEN regexp_matches({text}, '{_SQL_TRIGGER.replace(chr(39), chr(39) * 2)}') "
        f"AND NOT regexp_full_match({text}, '{_SQL_NUMBER}') THEN '''' || {text} "
        f"ELSE {text} END"
    )
