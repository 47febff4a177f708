"""Commands for the store's data: ingest, ingest-labels, info, migrate."""

from __future__ import annotations

import json
from typing import Any

import click

from cli.errors import user_errors
from cli.options import db_option, json_option, parse_minutes, wait_option
from core.app import data


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path())
@db_option
@click.option("--map", "maps", multiple=True, metavar="CANONICAL=SOURCE",
              help="Map a source column onto a canonical one (repeatable).")
@click.option("--map-file", type=click.Path(exists=True, dir_okay=False),
              help="JSON object of canonical -> source column names.")
@click.option("--session-gap", default="30m", show_default=True,
              help="Inactivity gap that starts a new session when session_id is absent.")
@click.option("--unit", type=click.Choice(["session", "event"]), default="session",
              show_default=True,
              help="What is scored: sessions, or each event on its own (payment data: one "
                   "event is one payment; a file with no user column is then accepted, each "
                   "row its own user). A store keeps the unit of its first ingest.")
@click.option("--skip-bad-rows", is_flag=True,
              help="Load good rows; write rejected ones with reasons to FILE.rejected.csv.")
@click.option("--rejected-dir", type=click.Path(file_okay=False), default=None,
              help="Folder for rejected-row files (default: next to each input).")
@click.option("--drop-extra", is_flag=True, help="Drop unknown columns instead of keeping them.")
@click.option("--ts-unit", type=click.Choice(["auto", "s", "ms", "us", "ns", "min", "h", "d"]),
              default="auto", show_default=True,
              help="Unit of a numeric time column (a simulation's step in hours: h); auto "
                   "reads it off the magnitude (seconds, then ms, µs, ns).")
@click.option("--labels", "labels_column", default=None, metavar="COLUMN",
              help="A column holding each row's label (Class, isFraud): stored as ground "
                   "truth for the rows' events, and never used as a feature.")
@click.option("--sequence", "sequence_column", default=None, metavar="COLUMN",
              help="Each row is one session whose events are listed in order in COLUMN "
                   "(log traces: \"[E5,E22,E11]\" or \"E5 E22 E11\"); event times are made "
                   "up from that order.")
@click.option("--encoding", default="utf-8", show_default=True, help="CSV text encoding.")
@click.option("--min-ts", default=None, metavar="DATE",
              help="Earliest plausible event time (default: $ANOMALYST_MIN_TS or 1970-01-01).")
@click.option("--max-ts", default=None, metavar="DATE|now",
              help="Latest plausible event time, exclusive (default: $ANOMALYST_MAX_TS or "
                   "2100-01-01; 'now' is the current time plus one day).")
@json_option("Print the report as JSON.")
@wait_option
@user_errors
def ingest(files: tuple[str, ...], db: str | None, maps: tuple[str, ...], map_file: str | None,
           session_gap: str, unit: str, skip_bad_rows: bool, rejected_dir: str | None,
           drop_extra: bool, ts_unit: str, labels_column: str | None,
           sequence_column: str | None, encoding: str, min_ts: str | None,
           max_ts: str | None, as_json: bool, wait_s: float) -> None:
    """Ingest event FILES (CSV or Parquet) into the store, all or nothing."""
    mapping = data.parse_mapping(maps, map_file)
    window = data.parse_time_window(min_ts, max_ts)
    with data.open_store(db, wait_s=wait_s) as store:
        report = data.ingest_event_files(
            store, files, mapping=mapping, session_gap_minutes=parse_minutes(session_gap),
            skip_bad_rows=skip_bad_rows, rejected_dir=rejected_dir, keep_extra=not drop_extra,
            encoding=encoding, time_window=window, unit=unit, labels_column=labels_column,
            ts_unit=None if ts_unit == "auto" else ts_unit, sequence_column=sequence_column,
        )
    click.echo(json.dumps(report.to_dict(), indent=2) if as_json else report.summary())


@click.command("ingest-labels")
@click.argument("file", type=click.Path())
@db_option
@click.option("--level", type=click.Choice(["event", "session", "user"]), default=None,
              help="Level of the labels when the file has several id columns.")
@click.option("--encoding", default="utf-8", show_default=True, help="CSV text encoding.")
@click.option("--all-anomalous", is_flag=True,
              help="The file has no label column: every id it lists is anomalous.")
@wait_option
@user_errors
def ingest_labels(file: str, db: str | None, level: str | None, encoding: str,
                  all_anomalous: bool, wait_s: float) -> None:
    """Store ground-truth labels (per event, session or user) from FILE."""
    with data.open_store(db, wait_s=wait_s) as store:
        report = data.ingest_label_file(store, file, level=level, encoding=encoding,
                                        all_anomalous=all_anomalous)
    click.echo(report.summary())


@click.command()
@db_option
@json_option()
@wait_option
@user_errors
def info(db: str | None, as_json: bool, wait_s: float) -> None:
    """Print what the store holds."""
    with data.open_store(db, read_only=True, wait_s=wait_s) as store:
        summary = data.store_info(store)
    if as_json:
        click.echo(json.dumps(summary, indent=2, default=str))
        return
    click.echo(format_info(summary))


def format_info(summary: dict[str, Any]) -> str:
    """The human-readable ``info`` page."""
    lines = [
        f"Store {summary['path']} (schema v{summary['schema_version']})",
        f"  events   {summary['n_events']:>12,}",
        f"  sessions {summary['n_sessions']:>12,}"
        + ("  (scored by event: one event each)" if summary.get("unit") == "event" else ""),
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


@click.command()
@db_option
@wait_option
@user_errors
def migrate(db: str | None, wait_s: float) -> None:
    """Bring an older store up to the current schema version (keeps all data)."""
    with data.open_store(db, wait_s=wait_s) as store:
        click.echo(f"Store {store.path} is at schema version {store.version}.")


@click.command()
@click.argument("code", required=False)
@click.option("--clear", is_flag=True, help="Forget the display currency.")
@db_option
@wait_option
@user_errors
def currency(code: str | None, clear: bool, db: str | None, wait_s: float) -> None:
    """Show or set CODE (ISO 4217, e.g. EUR): the currency of amounts whose events carry none."""
    from core.app import user360

    with data.open_store(db, wait_s=wait_s) as store:
        found = (user360.set_display_currency(store, None) if clear else
                 user360.set_display_currency(store, code) if code else
                 user360.display_currency(store))
    click.echo(f"Display currency: {found or user360.CURRENCY_NOT_SET}")
