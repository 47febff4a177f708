"""`anomalyst replay FILE --to URL`: feed a recorded data set to a running scoring service."""

from __future__ import annotations

import os

import click

from cli.errors import user_errors

TOKEN_ENV = "ANOMALYST_TOKEN"


@click.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--to", "url", default="http://127.0.0.1:8765", show_default=True,
              help="The service's base URL (`anomalyst serve`).")
@click.option("--rate", default="2000/s", show_default=True,
              help="At most this many events a second (e.g. 2000/s, 120/min; '' for no cap).")
@click.option("--speedup", type=float, default=None,
              help="Also keep event time, this many times faster than the clock (60: an hour "
                   "of events in a minute).")
@click.option("--batch", type=int, default=500, show_default=True,
              help="Events per request (1-10,000).")
@user_errors
def replay(file: str, url: str, rate: str, speedup: float | None, batch: int) -> None:
    """Send FILE's events (CSV or Parquet, canonical columns) to the service in event-time
    order. The API token is read from $ANOMALYST_TOKEN (not needed for a service started
    with --insecure-local)."""
    from core.app.serve import HttpPoster, parse_rate, read_events
    from core.app.serve import replay as run_replay

    frame = read_events(file)
    poster = HttpPoster(url, os.environ.get(TOKEN_ENV) or None)
    shown = [0]

    def progress(report) -> None:  # noqa: ANN001
        if report.sent - shown[0] >= 20_000 or report.sent == len(frame):
            shown[0] = report.sent
            click.echo(f"  {report.sent:,} / {len(frame):,} events sent", err=True)

    try:
        report = run_replay(frame, poster, rate=parse_rate(rate), speedup=speedup, batch=batch,
                            progress=progress)
    finally:
        poster.close()
    click.echo(report.summary())
