"""Commands for cases, snoozes and case reports: ``anomalyst case ...`` and ``report``.

Every write names its analyst: ``--analyst``, else ``$ANOMALYST_ANALYST``, else the OS user.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from cli.errors import user_errors
from cli.options import analyst_option, db_option, json_option, wait_option, who
from core.app import cases as app_cases
from core.app.data import open_store


@click.group()
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
    with open_store(db, wait_s=wait_s) as store:
        opened = app_cases.open_case(store, analyst=who(analyst), user_id=user_id,
                                     session_id=session_id, title=title)
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
    with open_store(db, wait_s=wait_s) as store:
        decided = app_cases.decide_cases(store, list(case_ids), decision, analyst=who(analyst),
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
@json_option()
@db_option
@wait_option
@user_errors
def list_cmd(statuses: tuple[str, ...], assignee: str | None, as_json: bool, db: str | None,
             wait_s: float) -> None:
    """List cases, oldest first."""
    with open_store(db, read_only=True, wait_s=wait_s) as store:
        frame = app_cases.cases_with_statuses(store, statuses, assignee)
    if as_json:
        click.echo(json.dumps(app_cases.json_records(frame), indent=2))
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
    with open_store(db, read_only=True, wait_s=wait_s) as store:
        out = app_cases.case_detail(store, case_id)
    click.echo(json.dumps(out, indent=2))


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
    with open_store(db, wait_s=wait_s) as store:
        note_id = app_cases.add_note(store, case_id, text, analyst=who(analyst))
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
    with open_store(db, wait_s=wait_s) as store:
        done = app_cases.assign_case(store, case_id, assignee, analyst=who(analyst))
    click.echo(f"{done.case_id} assigned to {done.assignee} ({done.status})")


@case.command("claim")
@click.argument("case_id", required=False)
@analyst_option
@db_option
@wait_option
@user_errors
def claim_cmd(case_id: str | None, analyst: str | None, db: str | None, wait_s: float) -> None:
    """Claim CASE_ID, or without it the next open case in the queue."""
    with open_store(db, wait_s=wait_s) as store:
        got = app_cases.claim(store, case_id, analyst=who(analyst))
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
    with open_store(db, wait_s=wait_s) as store:
        done = app_cases.reopen_case(store, case_id, analyst=who(analyst), reason=reason)
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
    kind, value = app_cases.snooze_target(user_id=user_id, device=device, ip=ip)
    with open_store(db, wait_s=wait_s) as store:
        suppression_id = app_cases.snooze(store, kind, value, days=days, reason=reason,
                                          analyst=who(analyst), case_id=case_id)
    click.echo(f"suppression {suppression_id}: {kind} {value} snoozed for {days:g} days")


@case.command("lift")
@click.argument("suppression_id", type=int)
@analyst_option
@db_option
@wait_option
@user_errors
def lift_cmd(suppression_id: int, analyst: str | None, db: str | None, wait_s: float) -> None:
    """End a snooze early."""
    with open_store(db, wait_s=wait_s) as store:
        app_cases.lift(store, suppression_id, analyst=who(analyst))
    click.echo(f"suppression {suppression_id} lifted")


@case.command("suppressions")
@db_option
@wait_option
@user_errors
def suppressions_cmd(db: str | None, wait_s: float) -> None:
    """List the active snoozes."""
    with open_store(db, read_only=True, wait_s=wait_s) as store:
        frame = app_cases.active_suppressions(store)
    if frame.empty:
        click.echo("No active suppressions.")
    for row in frame.itertuples():
        click.echo(f"{row.suppression_id:>4}  {row.kind:<6} {row.value:<20} until "
                   f"{row.expires_at:%Y-%m-%d %H:%M} by {row.created_by}: {row.reason}")


@click.command("report")
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
def report(case_id: str, fmt: str, out: str, mask: bool, analyst: str | None,
               db: str | None, wait_s: float) -> None:
    """Export a case report (self-contained HTML, PDF or a JSON bundle)."""
    with open_store(db, wait_s=wait_s) as store:
        path = app_cases.export_report(store, case_id, fmt, Path(out), mask_personal_data=mask,
                                       actor=who(analyst))
    click.echo(f"wrote {path} ({path.stat().st_size:,} bytes)")
