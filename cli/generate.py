"""``anomalyst generate``: labelled sample data, ingested into a store with --db."""

from __future__ import annotations

from pathlib import Path

import click

from cli.errors import user_errors
from cli.options import db_option, wait_option
from core.app import data as app_data


@click.command()
@click.option("--users", type=int, default=5000, show_default=True, help="Number of users.")
@click.option("--days", type=int, default=30, show_default=True, help="Days of activity.")
@click.option("--seed", type=int, default=7, show_default=True, help="Random seed.")
@click.option("--anomaly-rate", type=float, default=0.02, show_default=True,
              help="Share of sessions that are anomalous.")
@click.option("--out", type=click.Path(file_okay=False), default="data/sample", show_default=True,
              help="Folder for events.parquet and labels.parquet.")
@db_option
@wait_option
@user_errors
def generate(users: int, days: int, seed: int, anomaly_rate: float, out: str, db: str | None,
             wait_s: float) -> None:
    """Generate labelled sample e-commerce events (and ingest them with --db)."""
    import sample_data

    config = sample_data.GeneratorConfig(
        users=users, days=days, seed=seed, anomaly_rate=anomaly_rate
    )
    data = sample_data.generate(config)
    paths = sample_data.write(data, Path(out))
    click.echo(
        f"Generated {len(data.events):,} events and {len(data.labels):,} labels for "
        f"{users:,} users over {days} days."
    )
    for name, path in paths.items():
        click.echo(f"  {name}: {path}")
    if db is not None:
        with app_data.open_store(db, wait_s=wait_s) as store:
            click.echo(app_data.ingest_event_files(store, [paths["events"]]).summary())
            click.echo(app_data.ingest_label_file(store, paths["labels"]).summary())
