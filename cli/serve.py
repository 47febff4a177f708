"""``anomalyst serve``: the real-time scoring service (issue #26), and its API tokens."""

from __future__ import annotations

import sys

import click

from cli.errors import user_errors
from cli.options import db_option, json_option, parse_minutes

ROLES = ("viewer", "analyst", "admin")
SWITCH_INTERVAL_S = 0.005  # Python's default; see docs/BENCHMARKS.md for 0.001 measured


@click.group(invoke_without_command=True)
@db_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", type=click.IntRange(1, 65535), default=8765, show_default=True)
@click.option("--insecure-local", is_flag=True,
              help="Serve without API tokens; only on a loopback host (127.0.0.1, ::1).")
@click.option("--gap", "gap", default="30m", show_default=True,
              help="Session inactivity gap (30m, 1h, 90s): the same rule as ingest.")
@click.option("--wait-applied", "wait_applied", type=click.FloatRange(0, 60), default=5.0,
              show_default=True,
              help="Seconds a request waits for its events to be stored and scored before "
                   "it is answered 202 (accepted, durable, applied later).")
@click.option("--min-ts", default=None, help="Earliest plausible event time (as ingest).")
@click.option("--max-ts", default=None, help="Latest plausible event time (as ingest).")
@click.pass_context
@user_errors
def serve(ctx: click.Context, db: str | None, host: str, port: int, insecure_local: bool,
          gap: str, wait_applied: float, min_ts: str | None, max_ts: str | None) -> None:
    """Score events as they arrive, over HTTP (POST /v1/events; see /openapi.json).

    One process, one worker: the service is the store's single writer. Each event is
    acknowledged once it is durable in <store dir>/event_log/, then stored, sessionized and
    scored by the alert policy in force. Run no other writer (ingest, score) on the store
    meanwhile; the dashboard can read it. Requests need `Authorization: Bearer <token>`
    (anomalyst serve token add NAME --role analyst).
    """
    if ctx.invoked_subcommand is not None:
        return
    import uvicorn

    from core.app.data import parse_time_window, resolve_db_path
    from core.app.serve import ScoringService, ServiceConfig, TokenFile, check_bind, create_app
    from core.app.serve import tokens_path as token_file_of

    path = resolve_db_path(db)
    tokens = TokenFile(token_file_of(path))
    check_bind(host, insecure_local=insecure_local, n_tokens=len(tokens))
    config = ServiceConfig(gap_minutes=parse_minutes(gap), wait_s=wait_applied,
                           window=parse_time_window(min_ts, max_ts))
    # The answer thread, the event loop and the store writer share one interpreter lock: a
    # thread that wants it waits for the holder's switch interval (5 ms by default), which
    # at hundreds of requests a second shows in the tail latency.
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    with ScoringService.open(path, config) as service:
        app = create_app(service, insecure_local=insecure_local, tokens=tokens)
        click.echo(f"Serving {path} on http://{host}:{port} (single writer; Ctrl-C stops; "
                   "unapplied events stay in the log and are replayed on the next start).",
                   err=True)
        uvicorn.run(app, host=host, port=port, workers=1, log_level="warning")


@serve.group()
def token() -> None:
    """API tokens of the service (<store dir>/api_tokens.json, hashed, owner-only)."""


@token.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True,
              help="viewer: read alerts and metrics; analyst/admin: also post events.")
@db_option
@user_errors
def add_token(name: str, role: str, db: str | None) -> None:
    """Add a token NAME with ROLE and print it (once: only its hash is kept)."""
    from core.app.data import resolve_db_path
    from core.app.serve import TokenFile, tokens_path

    secret = TokenFile(tokens_path(resolve_db_path(db))).add(name, role)
    click.echo(secret)
    click.echo(f"Token {name} ({role}) added. Keep it now: it is not shown again.", err=True)


@token.command("list")
@json_option("Print the tokens (names, roles, dates; never secrets) as JSON.")
@db_option
@user_errors
def list_tokens(as_json: bool, db: str | None) -> None:
    """Tokens by name, with role and creation time."""
    import json

    from core.app.data import resolve_db_path
    from core.app.serve import TokenFile, tokens_path

    rows = TokenFile(tokens_path(resolve_db_path(db))).listing()
    if as_json:
        click.echo(json.dumps(rows, indent=1))
        return
    for row in rows:
        click.echo(f"{row['name']}\t{row['role']}\t{row['created_at']}")
    if not rows:
        click.echo("No tokens. Add one: anomalyst serve token add NAME --role analyst")


@token.command("revoke")
@click.argument("name")
@db_option
@user_errors
def revoke_token(name: str, db: str | None) -> None:
    """Revoke NAME's token; a running service refuses it at once."""
    from core.app.data import resolve_db_path
    from core.app.serve import TokenFile, tokens_path

    TokenFile(tokens_path(resolve_db_path(db))).revoke(name)
    click.echo(f"Token {name} revoked.")
