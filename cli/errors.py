"""How a command ends on an error.

User errors (``AnomalystError``) print one paragraph and exit with status 2. A DuckDB or Arrow
error that no layer below mapped (a damaged store or input file, a full disk) prints one line
and exits with status 1 (the traceback only with ``-v``); anything else keeps its traceback.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from core.app import AnomalystError

F = TypeVar("F", bound=Callable[..., Any])


def user_errors(func: F) -> F:
    """Turn an AnomalystError into a clean message and exit status 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except AnomalystError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(2)

    return wrapper  # type: ignore[return-value]


def _is_engine_error(exc: BaseException) -> bool:
    """A DuckDB or Arrow exception (pyarrow is checked only when something imported it)."""
    import duckdb

    if isinstance(exc, duckdb.Error):
        return True
    arrow = sys.modules.get("pyarrow")
    return arrow is not None and isinstance(exc, arrow.ArrowException)


class AnomalystGroup(click.Group):
    """The top-level group: every command's errors end in one clear line, no traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AnomalystError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(2)
        except Exception as exc:
            if not _is_engine_error(exc):
                raise
            logging.getLogger(__name__).info("engine error", exc_info=True)
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            click.echo(
                f"Error: the data engine failed: {first}. Writes are single transactions, so "
                "nothing was half-written. If a file is named, check that it is complete; "
                "rerun with -v for details.", err=True,
            )
            sys.exit(1)
