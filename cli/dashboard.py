"""CLI commands that build the demo and start the dashboard."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import click

from cli.demo import build_demo_store
from cli.errors import user_errors
from cli.options import db_option, wait_option
from core.app.data import holds_scores, resolve_db_path


def _echo(step: str) -> None:
    click.echo(click.style(f"== {step}", bold=True) if step[:1].isdigit() else step, err=True)


@click.command()
@db_option
@click.option("--users", type=int, default=5000, show_default=True)
@click.option("--days", type=int, default=30, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--rebuild", is_flag=True, help="Build the demo store again even if it exists.")
@click.option("--no-dashboard", is_flag=True, help="Build the store and stop.")
@click.option("--port", type=int, default=8501, show_default=True)
@click.option("--live", is_flag=True,
              help="Also start the scoring service and replay fresh sample events into it, so "
                   "the Live page moves from the first minute.")
@click.option("--live-port", type=int, default=8765, show_default=True,
              help="The scoring service's port (with --live).")
@wait_option
@user_errors
def demo(db: str | None, users: int, days: int, seed: int, rebuild: bool, no_dashboard: bool,
         port: int, live: bool, live_port: int, wait_s: float) -> None:
    """Build the sample store when there is none (generate, ingest, train, score), then open
    the dashboard on it (with --live: beside the scoring service and a replay into it)."""
    path = resolve_db_path(db)
    if rebuild and path.exists():
        path.unlink()
        Path(str(path) + ".wal").unlink(missing_ok=True)
    if not holds_scores(path):
        if path.exists():
            raise click.ClickException(
                f"{path} exists but holds no scored sessions. Pass --rebuild to replace it "
                "with the demo store, or --db another path."
            )
        build_demo_store(path, users=users, days=days, seed=seed, wait_s=wait_s, step=_echo)
    else:
        _echo(f"using the existing demo store {path} (pass --rebuild to build it again)")
    helpers = _start_live(path, live_port, seed) if live else []
    try:
        if not no_dashboard:
            _run_dashboard(path, port)
        else:
            if helpers:  # --live --no-dashboard: run until the replay ends
                helpers[-1].wait()
    finally:
        for child in reversed(helpers):
            _stop_group(child)


LIVE_RATE = "20/s"
LIVE_SPEEDUP = "120"
"""The live demo replays two days of events in about 25 minutes (at most 20 events a second)."""


def _start_live(path: Path, port: int, seed: int) -> list[subprocess.Popen]:
    """The scoring service on ``path`` (no tokens: loopback only) and a replay of fresh
    sample events into it, each in its own process group; returns both."""
    import time
    import urllib.request

    from cli.demo import write_live_events

    events = write_live_events(path, seed=seed + 1)
    url = f"http://127.0.0.1:{port}"
    anomalyst = [sys.executable, "-m", "cli"]
    kwargs = {"start_new_session": True, "cwd": Path(__file__).resolve().parent.parent,
              "preexec_fn": _die_with_parent if sys.platform == "linux" else None}
    service = subprocess.Popen([*anomalyst, "serve", "--db", str(path), "--port", str(port),
                                "--insecure-local"], **kwargs)
    _echo(f"scoring service on {url} (no tokens: loopback only)")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if service.poll() is not None:
            raise click.ClickException(f"the scoring service stopped (exit {service.returncode})"
                                       "; see its messages above.")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2):
                break
        except OSError:
            time.sleep(0.5)
    else:
        _stop_group(service)
        raise click.ClickException(f"the scoring service did not answer on {url} in 120 s.")
    replay = subprocess.Popen([*anomalyst, "replay", str(events), "--to", url, "--rate",
                               LIVE_RATE, "--speedup", LIVE_SPEEDUP, "--batch", "50"], **kwargs)
    _echo(f"replaying {events.name} into it ({LIVE_RATE}, event time x{LIVE_SPEEDUP})")
    return [service, replay]


@click.command()
@db_option
@click.option("--port", type=int, default=8501, show_default=True)
def dashboard(db: str | None, port: int) -> None:
    """Open the dashboard on a store."""
    _run_dashboard(resolve_db_path(db), port)


def _streamlit_command(app: Path, port: int) -> list[str]:
    return [sys.executable, "-m", "streamlit", "run", str(app), "--server.port", str(port),
            "--server.address", "127.0.0.1", "--server.headless", "true",
            "--browser.gatherUsageStats", "false"]


def _run_dashboard(path: Path, port: int) -> None:
    app = Path(__file__).resolve().parent.parent / "dashboard" / "app.py"
    env = {**os.environ, "ANOMALYST_DB": str(path.resolve())}
    _echo(f"dashboard on http://127.0.0.1:{port} (Ctrl+C to stop)")
    raise SystemExit(run_supervised(_streamlit_command(app, port), env=env,
                                    cwd=app.parent.parent))


_FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
STOP_GRACE_S = 10.0


def run_supervised(cmd: list[str], *, env: dict[str, str], cwd: Path) -> int:
    """Run ``cmd`` as the leader of its own process group and never leave it behind: SIGTERM,
    SIGINT and SIGHUP to this process go to the whole group, and the group is stopped when
    this process leaves for any other reason (SIGKILL included, through the parent-death
    signal on Linux). Returns the child's exit status."""
    child = subprocess.Popen(cmd, env=env, cwd=cwd, start_new_session=True,
                             preexec_fn=_die_with_parent if sys.platform == "linux" else None)
    previous = {sig: signal.getsignal(sig) for sig in _FORWARDED}

    def forward(signum: int, _frame: object) -> None:
        _signal_group(child, signum)

    for sig in _FORWARDED:
        signal.signal(sig, forward)
    try:
        status = child.wait()
        return 128 - status if status < 0 else status  # killed by a signal: the shell's code
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _stop_group(child)


def _signal_group(child: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(child.pid, signum)
    except ProcessLookupError:
        pass


def _stop_group(child: subprocess.Popen) -> None:
    """SIGTERM the child's group, then SIGKILL what is left after the grace period."""
    _signal_group(child, signal.SIGTERM)
    try:
        child.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        pass
    _signal_group(child, signal.SIGKILL)  # the leader's own children too, if any linger
    child.wait()


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when the parent dies (Linux prctl)."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
