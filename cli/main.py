"""The ``anomalyst`` command line. Thin: every command calls a ``core`` function.

User errors (``AnomalystError``) print one paragraph and exit with status 2. A DuckDB or Arrow
error that no layer below mapped (a damaged store or input file, a full disk) prints one line
and exits with status 1 (the traceback only with ``-v``); anything else keeps its traceback.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from core.errors import AnomalystError
from core.store import Store
from core.store.connection import DEFAULT_WAIT_S

F = TypeVar("F", bound=Callable[..., Any])
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")


def parse_minutes(text: str) -> float:
    """'30m', '1h', '90s', '2d' or a bare number of minutes -> minutes."""
    match = _DURATION.match(text)
    if not match:
        raise click.BadParameter(f"must look like 30m, 1h or 90s, got {text!r}")
    value, unit = float(match.group(1)), match.group(2) or "m"
    return value * {"s": 1 / 60, "m": 1, "h": 60, "d": 1440}[unit]


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


db_option = click.option(
    "--db", "db", type=click.Path(dir_okay=False), default=None,
    help="Store file (default: $ANOMALYST_DB or data/anomalyst.duckdb).",
)
wait_option = click.option(
    "--wait", "wait_s", type=float, default=DEFAULT_WAIT_S, show_default=True,
    help="Seconds to wait while another process holds the store.",
)


@click.group(cls=AnomalystGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log progress details.")
@click.version_option(package_name="anomalyst")
def main(verbose: bool) -> None:
    """Anomalyst: find, explain and act on anomalous user behaviour."""
    # Everything a command writes (the store's WAL, exports, models, a dashboard it starts) is
    # its owner's alone; the previous umask comes back when the command ends.
    previous = os.umask(0o077)
    os.umask(previous | 0o077)
    click.get_current_context().call_on_close(lambda: os.umask(previous))
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path())
@db_option
@click.option("--map", "maps", multiple=True, metavar="CANONICAL=SOURCE",
              help="Map a source column onto a canonical one (repeatable).")
@click.option("--map-file", type=click.Path(exists=True, dir_okay=False),
              help="JSON object of canonical -> source column names.")
@click.option("--session-gap", default="30m", show_default=True,
              help="Inactivity gap that starts a new session when session_id is absent.")
@click.option("--skip-bad-rows", is_flag=True,
              help="Load good rows; write rejected ones with reasons to FILE.rejected.csv.")
@click.option("--rejected-dir", type=click.Path(file_okay=False), default=None,
              help="Folder for rejected-row files (default: next to each input).")
@click.option("--drop-extra", is_flag=True, help="Drop unknown columns instead of keeping them.")
@click.option("--encoding", default="utf-8", show_default=True, help="CSV text encoding.")
@click.option("--min-ts", default=None, metavar="DATE",
              help="Earliest plausible event time (default: $ANOMALYST_MIN_TS or 1970-01-01).")
@click.option("--max-ts", default=None, metavar="DATE|now",
              help="Latest plausible event time, exclusive (default: $ANOMALYST_MAX_TS or "
                   "2100-01-01; 'now' is the current time plus one day).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@wait_option
@user_errors
def ingest(files: tuple[str, ...], db: str | None, maps: tuple[str, ...], map_file: str | None,
           session_gap: str, skip_bad_rows: bool, rejected_dir: str | None, drop_extra: bool,
           encoding: str, min_ts: str | None, max_ts: str | None, as_json: bool,
           wait_s: float) -> None:
    """Ingest event FILES (CSV or Parquet) into the store, all or nothing."""
    from core.ingest import ColumnMapping, ingest_events
    from core.ingest.time_window import TimeWindow

    mapping = ColumnMapping.parse(maps, map_file)
    window = TimeWindow.parse(min_ts, max_ts)
    with Store.open(db, wait_s=wait_s) as store:
        report = ingest_events(
            store, list(files), mapping=mapping, session_gap_minutes=parse_minutes(session_gap),
            skip_bad_rows=skip_bad_rows, rejected_dir=rejected_dir, keep_extra=not drop_extra,
            encoding=encoding, time_window=window,
        )
    click.echo(json.dumps(report.to_dict(), indent=2) if as_json else report.summary())


@main.command("ingest-labels")
@click.argument("file", type=click.Path())
@db_option
@click.option("--level", type=click.Choice(["event", "session", "user"]), default=None,
              help="Level of the labels when the file has several id columns.")
@click.option("--encoding", default="utf-8", show_default=True, help="CSV text encoding.")
@click.option("--all-anomalous", is_flag=True,
              help="The file has no label column: every id it lists is anomalous.")
@wait_option
@user_errors
def ingest_labels_cmd(file: str, db: str | None, level: str | None, encoding: str,
                      all_anomalous: bool, wait_s: float) -> None:
    """Store ground-truth labels (per event, session or user) from FILE."""
    from core.ingest.labels import ingest_labels

    with Store.open(db, wait_s=wait_s) as store:
        report = ingest_labels(store, file, level=level, encoding=encoding,
                               all_anomalous=all_anomalous)
    click.echo(report.summary())


@main.command()
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@wait_option
@user_errors
def info(db: str | None, as_json: bool, wait_s: float) -> None:
    """Print what the store holds."""
    with Store.open(db, read_only=True, wait_s=wait_s) as store:
        summary = store.info()
    if as_json:
        click.echo(json.dumps(summary, indent=2, default=str))
        return
    click.echo(format_info(summary))


def format_info(summary: dict[str, Any]) -> str:
    """The human-readable ``info`` page."""
    lines = [
        f"Store {summary['path']} (schema v{summary['schema_version']})",
        f"  events   {summary['n_events']:>12,}",
        f"  sessions {summary['n_sessions']:>12,}",
        f"  users    {summary['n_users']:>12,}",
        f"  from {summary['first_event_at'] or '-'} to {summary['last_event_at'] or '-'}",
    ]
    types = summary["event_types"]
    if types:
        shown = ", ".join(f"{k} {v:,}" for k, v in list(types.items())[:12])
        more = f" (+{len(types) - 12} more)" if len(types) > 12 else ""
        lines.append(f"  event types ({len(types)}): {shown}{more}")
    if summary["labels"]:
        lines.append("  labels:")
        for row in summary["labels"]:
            lines.append(
                f"    {row['source']:<13} {row['level']:<8} {row['scenario']:<22} "
                f"anomalous {row['n_anomalous']:>8,}  normal {row['n_normal']:>9,}"
            )
    else:
        lines.append("  labels: none")
    if summary["models"]:
        lines.append("  models:")
        for row in summary["models"]:
            lines.append(
                f"    {row['model_id']:<28} {row['detector']:<22} scores {row['n_scores']:>9,}"
            )
    else:
        lines.append("  models: none (train one with `anomalyst train --detector autoencoder`)")
    return "\n".join(lines)


@main.command()
@db_option
@wait_option
@user_errors
def migrate(db: str | None, wait_s: float) -> None:
    """Bring an older store up to the current schema version (keeps all data)."""
    with Store.open(db, wait_s=wait_s) as store:
        click.echo(f"Store {store.path} is at schema version {store.version}.")


def _register_optional_commands() -> None:
    """Commands that live beside their feature (sample data, training, dashboard)."""
    from core import (  # noqa: F401  (register on import)
        cli_cases,
        cli_commands,
        cli_dashboard,
        cli_explain,
        cli_models,
        cli_users,
    )


_register_optional_commands()


if __name__ == "__main__":
    # Run as `python -m core.cli`, this file is `__main__`; the command modules registered
    # themselves on `core.cli.main`, so call that one, not this module's copy.
    from core.cli import main as registered_main

    registered_main()
