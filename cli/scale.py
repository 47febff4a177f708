"""Scoring event files beyond the store (``score --events``) and ``ingest-scores``."""

from __future__ import annotations

import click

from cli.errors import user_errors
from cli.options import db_option, wait_option
from core.app import scale as app_scale
from core.app.data import open_store, parse_mapping


def score_event_files(*, model_id: str | None, detector: str | None, only_new: bool,
                      events: tuple[str, ...], out: str | None, engine: str,
                      address: str | None, partitions: int | None, maps: tuple[str, ...],
                      db: str | None, wait_s: float) -> None:
    """``score --events``: read the model from the store, score the files, print a line."""
    request = app_scale.file_score_request(events, out, engine=engine, partitions=partitions,
                                           address=address, mapping=parse_mapping(maps),
                                           only_new=only_new)
    with open_store(db, read_only=True, wait_s=wait_s) as store:
        bundle = app_scale.model_bundle(store, model_id, detector)
        unit = store.ingests.unit() or "session"
    click.echo(f"Scoring with {bundle.model_id} on engine {engine}...", err=True)
    result = app_scale.score_files(bundle, request, unit=unit)
    startup = (f" (Ray start {result.startup_seconds:.1f} s)" if result.engine == "ray"
               else "")
    click.echo(f"{result.model_id}: scored {result.n_sessions:,} sessions in "
               f"{result.n_partitions} partition(s), {result.n_context_rows:,} context rows, "
               f"in {result.seconds:.1f} s{startup}; wrote {result.out}")


@click.command("ingest-scores")
@click.argument("folder", type=click.Path())
@db_option
@wait_option
@user_errors
def ingest_scores(folder: str, db: str | None, wait_s: float) -> None:
    """Bring the Parquet scores under FOLDER (from `score --events`) into the store: each
    model's rows replace its scores of those sessions, in one transaction."""
    with open_store(db, wait_s=wait_s) as store:
        result = app_scale.ingest_scores(store, folder)
    click.echo(f"Stored {result.n_scores:,} scores of {', '.join(result.models)}.")
    if result.n_unknown_sessions:
        click.echo(f"Left out {result.n_unknown_sessions:,} scores of sessions this store does "
                   f"not hold (e.g. {', '.join(result.unknown_examples)}): ingest their events "
                   "first, then run this again.", err=True)
