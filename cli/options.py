"""Options and argument parsing shared by the commands."""

from __future__ import annotations

import getpass
import os
import re
from collections.abc import Callable
from typing import Any

import click

from core.app.data import DEFAULT_WAIT_S

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")

db_option = click.option(
    "--db", "db", type=click.Path(dir_okay=False), default=None,
    help="Store file (default: $ANOMALYST_DB or data/anomalyst.duckdb).",
)
wait_option = click.option(
    "--wait", "wait_s", type=float, default=DEFAULT_WAIT_S, show_default=True,
    help="Seconds to wait while another process holds the store.",
)
analyst_option = click.option(
    "--analyst", default=None,
    help="Who acts (default: $ANOMALYST_ANALYST, else the OS user name).",
)


def json_option(help: str = "Print JSON.") -> Callable[[Any], Any]:
    """``--json`` (as ``as_json``)."""
    return click.option("--json", "as_json", is_flag=True, help=help)


def parse_minutes(text: str) -> float:
    """'30m', '1h', '90s', '2d' or a bare number of minutes -> minutes."""
    match = _DURATION.match(text)
    if not match:
        raise click.BadParameter(f"must look like 30m, 1h or 90s, got {text!r}")
    value, unit = float(match.group(1)), match.group(2) or "m"
    return value * {"s": 1 / 60, "m": 1, "h": 60, "d": 1440}[unit]


def default_analyst() -> str:
    """``$ANOMALYST_ANALYST``, else the OS user name, else empty (then writes are refused)."""
    name = os.environ.get("ANOMALYST_ANALYST", "").strip()
    if name:
        return name
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return ""


def who(analyst: str | None) -> str:
    """The ``--analyst`` given, else ``default_analyst()``."""
    return analyst if analyst is not None else default_analyst()
