"""CLI commands for cases, snoozes and case reports: ``anomalyst case ...`` and ``report``.

Every write names its analyst: ``--analyst``, else ``$ANOMALYST_ANALYST``, else the OS user.
"""

from __future__ import annotations

import getpass
import json
import os
from pathlib import Path

import click

from core.cli import db_option, main, user_errors, wait_option
from core.store import Store


def default_analyst() -> str:
    """``$ANOMALYST_ANALYST``, else the OS user name, else empty (then writes are refused)."""
    name = os.environ.get("ANOMALYST_ANALYST", "").strip()
    if name:
        return name
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return ""


analyst_option = click.option(
    "--analyst", default=None,
    help="Who acts (default: $ANOMALYST_ANALYST, else the OS user name).",
)


def _who(analyst: str | None) -> str:
    return analyst if analyst is not None else default_analyst()


@main.group()
def case() -> None:
    """Open, work and decide cases; snooze users, devices and IPs."""


@case.command("open")
@click.option("--user", "user_id", default=None, help="Open a case for this user.")
@click.option("--session", "session_id", default=None, help="Open a case for this session.")
@click.option("--title", default=None, help="A short title.")
@analyst_option
@db_option
@wait_option
@user_errors
def open_cmd(user_id: str | None, session_id: str | None, title: str | None,
             analyst: str | None, db: str | None, wait_s: float) -> None:
    """Open a case (or add to the user's active one) and print its id."""
    from core.cases import open_case

    with Store.open(db, wait_s=wait_s) as store:
        opened = open_case(store, analyst=_who(analyst), user_id=user_id, session_id=session_id,
                           title=title)
    click.echo(opened.case_id)


@case.command("decide")
@click.argument("case_ids", nargs=-1, required=True)
@click.option("--decision", required=True,
              type=click.Choice(["fraud_confirmed", "false_positive", "inconclusive"]))
@click.option("--scenario", default=None, help="What kind of abuse (fraud_confirmed).")
@click.option("--note", default=None, help="A note stored with the decision.")
@analyst_option
@db_option
@wait_option
@user_errors
def decide_cmd(case_ids: tuple[str, ...], decision: str, scenario: str | None,
               note: str | None, analyst: str | None, db: str | None, wait_s: float) -> None:
    """Decide one or more cases (all or nothing); decisions become analyst labels."""
    from core.cases import decide_cases

    with Store.open(db, wait_s=wait_s) as store:
        decided = decide_cases(store, list(case_ids), decision, analyst=_who(analyst),
                               scenario=scenario, note=note)
    for item in decided:
        click.echo(f"{item.case_id} closed: {item.decision}"
                   + (f" ({item.scenario})" if item.scenario else "")
                   + f", {len(item.session_ids)} sessions labelled"
                   + (" (no label: inconclusive)" if decision == "inconclusive" else ""))


@case.command("list")
@click.option("--status", "statuses", multiple=True,
              type=click.Choice(["open", "investigating", "closed"]),
              help="Only these statuses (repeatable; default all).")
@click.option("--assignee", default=None, help="Only cases assigned to this analyst.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@db_option
@wait_option
@user_errors
def list_cmd(statuses: tuple[str, ...], assignee: str | None, as_json: bool, db: str | None,
             wait_s: float) -> None:
    """List cases, oldest first."""
    from core.cases import STATUSES, list_cases
    from core.reports.content import jsonable

    with Store.open(db, read_only=True, wait_s=wait_s) as store:
        frame = list_cases(store, statuses or STATUSES, assignee)
    if as_json:
        click.echo(json.dumps(jsonable(frame.to_dict(orient="records")), indent=2))
        return
    if frame.empty:
        click.echo("No cases.")
        return
    for row in frame.itertuples():
        click.echo(f"{row.case_id}  {row.status:<13} {row.user_id:<16} "
                   f"{(row.assignee or '-'):<14} {(row.decision or '-'):<16} "
                   f"sessions {row.n_sessions:>3}  notes {row.n_notes:>3}")


@case.command("show")
@click.argument("case_id")
@db_option
@wait_option
@user_errors
def show_cmd(case_id: str, db: str | None, wait_s: float) -> None:
    """Print a case with its notes and audit trail as JSON."""
    from core.cases import audit_trail, case_notes, get_case
    from core.reports.content import jsonable

    with Store.open(db, read_only=True, wait_s=wait_s) as store:
        found = get_case(store, case_id)
        out = {**found.to_dict(),
               "notes": case_notes(store, case_id).to_dict(orient="records"),
               "audit": audit_trail(store, case_id).to_dict(orient="records")}
    click.echo(json.dumps(jsonable(out), indent=2))


@case.command("note")
@click.argument("case_id")
@click.argument("text")
@analyst_option
@db_option
@wait_option
@user_errors
def note_cmd(case_id: str, text: str, analyst: str | None, db: str | None,
             wait_s: float) -> None:
    """Add a note to a case."""
    from core.cases import add_note

    with Store.open(db, wait_s=wait_s) as store:
        note_id = add_note(store, case_id, text, analyst=_who(analyst))
    click.echo(f"note {note_id} added to {case_id}")


@case.command("assign")
@click.argument("case_id")
@click.argument("assignee")
@analyst_option
@db_option
@wait_option
@user_errors
def assign_cmd(case_id: str, assignee: str, analyst: str | None, db: str | None,
               wait_s: float) -> None:
    """Assign a case to ASSIGNEE (it becomes investigating)."""
    from core.cases import assign_case

    with Store.open(db, wait_s=wait_s) as store:
        done = assign_case(store, case_id, assignee, analyst=_who(analyst))
    click.echo(f"{done.case_id} assigned to {done.assignee} ({done.status})")


@case.command("claim")
@click.argument("case_id", required=False)
@analyst_option
@db_option
@wait_option
@user_errors
def claim_cmd(case_id: str | None, analyst: str | None, db: str | None, wait_s: float) -> None:
    """Claim CASE_ID, or without it the next open case in the queue."""
    from core.cases import claim_case, next_case

    with Store.open(db, wait_s=wait_s) as store:
        got = (claim_case(store, case_id, analyst=_who(analyst)) if case_id
               else next_case(store, analyst=_who(analyst)))
    click.echo("No open case is waiting." if got is None else
               f"{got.case_id} claimed by {got.assignee} (user {got.user_id})")


@case.command("reopen")
@click.argument("case_id")
@click.option("--reason", default=None, help="Why the decision is withdrawn.")
@analyst_option
@db_option
@wait_option
@user_errors
def reopen_cmd(case_id: str, reason: str | None, analyst: str | None, db: str | None,
               wait_s: float) -> None:
    """Reopen a closed case; its analyst labels are withdrawn."""
    from core.cases import reopen_case

    with Store.open(db, wait_s=wait_s) as store:
        done = reopen_case(store, case_id, analyst=_who(analyst), reason=reason)
    click.echo(f"{done.case_id} reopened ({done.status})")


@case.command("snooze")
@click.option("--user", "user_id", default=None, help="Suppress this user.")
@click.option("--device", default=None, help="Suppress this device id.")
@click.option("--ip", default=None, help="Suppress this IP address.")
@click.option("--days", type=float, required=True, help="For how many days.")
@click.option("--reason", required=True, help="Why (shown to every analyst).")
@click.option("--case", "case_id", default=None, help="The case this snooze belongs to.")
@analyst_option
@db_option
@wait_option
@user_errors
def snooze_cmd(user_id: str | None, device: str | None, ip: str | None, days: float,
               reason: str, case_id: str | None, analyst: str | None, db: str | None,
               wait_s: float) -> None:
    """Hide a user, device or IP from the flagged queue until the snooze expires."""
    from core.cases import snooze
    from core.errors import ConfigError

    chosen = [(k, v) for k, v in (("user", user_id), ("device", device), ("ip", ip)) if v]
    if len(chosen) != 1:
        raise ConfigError(f"snooze must name exactly one of --user, --device, --ip, got "
                          f"{len(chosen)}. Name one.")
    kind, value = chosen[0]
    with Store.open(db, wait_s=wait_s) as store:
        suppression_id = snooze(store, kind, value, days=days, reason=reason,
                                analyst=_who(analyst), case_id=case_id)
    click.echo(f"suppression {suppression_id}: {kind} {value} snoozed for {days:g} days")


@case.command("lift")
@click.argument("suppression_id", type=int)
@analyst_option
@db_option
@wait_option
@user_errors
def lift_cmd(suppression_id: int, analyst: str | None, db: str | None, wait_s: float) -> None:
    """End a snooze early."""
    from core.cases import lift

    with Store.open(db, wait_s=wait_s) as store:
        lift(store, suppression_id, analyst=_who(analyst))
    click.echo(f"suppression {suppression_id} lifted")


@case.command("suppressions")
@db_option
@wait_option
@user_errors
def suppressions_cmd(db: str | None, wait_s: float) -> None:
    """List the active snoozes."""
    from core.cases import active_suppressions

    with Store.open(db, read_only=True, wait_s=wait_s) as store:
        frame = active_suppressions(store)
    if frame.empty:
        click.echo("No active suppressions.")
    for row in frame.itertuples():
        click.echo(f"{row.suppression_id:>4}  {row.kind:<6} {row.value:<20} until "
                   f"{row.expires_at:%Y-%m-%d %H:%M} by {row.created_by}: {row.reason}")


@main.command("report")
@click.argument("case_id")
@click.option("--format", "fmt", type=click.Choice(["html", "pdf", "json"]), default="html",
              show_default=True)
@click.option("--out", "out", type=click.Path(dir_okay=False), required=True,
              help="File to write.")
@click.option("--mask", is_flag=True, help="Mask IPs, device ids, e-mails and phone numbers.")
@analyst_option
@db_option
@wait_option
@user_errors
def report_cmd(case_id: str, fmt: str, out: str, mask: bool, analyst: str | None,
               db: str | None, wait_s: float) -> None:
    """Export a case report (self-contained HTML, PDF or a JSON bundle)."""
    from core.reports import export_case_report

    with Store.open(db, wait_s=wait_s) as store:
        path = export_case_report(store, case_id, fmt, Path(out),  # type: ignore[arg-type]
                                  mask_personal_data=mask, actor=_who(analyst))
    click.echo(f"wrote {path} ({path.stat().st_size:,} bytes)")
