"""CLI commands that build the demo and start the dashboard."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click

from core.cli import db_option, main, user_errors, wait_option
from core.demo import build_demo_store
from core.store import Store, resolve_db_path


def _echo(step: str) -> None:
    click.echo(click.style(f"== {step}", bold=True) if step[:1].isdigit() else step, err=True)


def _store_is_ready(db: Path) -> bool:
    if not db.exists():
        return False
    try:
        with Store.open(db, read_only=True, wait_s=5) as store:
            return bool(store.scalar("count_sessions")) and not store.frame("scored_models").empty
    except Exception:  # noqa: BLE001  (an unreadable store is rebuilt by `demo --rebuild`)
        return False


@main.command()
@db_option
@click.option("--users", type=int, default=5000, show_default=True)
@click.option("--days", type=int, default=30, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--rebuild", is_flag=True, help="Build the demo store again even if it exists.")
@click.option("--no-dashboard", is_flag=True, help="Build the store and stop.")
@click.option("--port", type=int, default=8501, show_default=True)
@wait_option
@user_errors
def demo(db: str | None, users: int, days: int, seed: int, rebuild: bool, no_dashboard: bool,
         port: int, wait_s: float) -> None:
    """Build the sample store when there is none (generate, ingest, train, score), then open
    the dashboard on it."""
    path = resolve_db_path(db)
    if rebuild and path.exists():
        path.unlink()
        Path(str(path) + ".wal").unlink(missing_ok=True)
    if not _store_is_ready(path):
        if path.exists():
            raise click.ClickException(
                f"{path} exists but holds no scored sessions. Pass --rebuild to replace it "
                "with the demo store, or --db another path."
            )
        build_demo_store(path, users=users, days=days, seed=seed, wait_s=wait_s, step=_echo)
    else:
        _echo(f"using the existing demo store {path} (pass --rebuild to build it again)")
    if not no_dashboard:
        _run_dashboard(path, port)


@main.command()
@db_option
@click.option("--port", type=int, default=8501, show_default=True)
def dashboard(db: str | None, port: int) -> None:
    """Open the dashboard on a store."""
    _run_dashboard(resolve_db_path(db), port)


def _run_dashboard(path: Path, port: int) -> None:
    app = Path(__file__).resolve().parent.parent / "dashboard" / "app.py"
    env = {**os.environ, "ANOMALYST_DB": str(path.resolve())}
    _echo(f"dashboard on http://127.0.0.1:{port} (Ctrl+C to stop)")
    cmd = [sys.executable, "-m", "streamlit", "run", str(app), "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.headless", "true",
           "--browser.gatherUsageStats", "false"]
    raise SystemExit(subprocess.call(cmd, env=env, cwd=app.parent.parent))
