"""The ``anomalyst`` command: the group, and every command attached to it in one place.

Each command calls ``core.app`` and prints what it returns; errors end as ``cli.errors`` says.
"""

from __future__ import annotations

import logging
import os

import click

from cli import (
    cases,
    dashboard,
    data,
    explain,
    generate,
    models,
    policy,
    replay,
    scale,
    serve,
    users,
)
from cli.errors import AnomalystGroup, user_errors
from cli.options import db_option, json_option, wait_option


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


@click.command()
@click.argument("session_id")
@click.option("--k", "k", type=int, default=5, show_default=True,
              help="How many similar decided sessions to list (1-50).")
@json_option("Print the typology guess and the similar sessions as JSON.")
@db_option
@wait_option
@user_errors
def similar(session_id: str, k: int, as_json: bool, db: str | None, wait_s: float) -> None:
    """SESSION_ID's typology guess and its most similar decided sessions (issue #24)."""
    import json

    from core.app import similar as core_similar
    from core.app.data import open_store

    with open_store(db, read_only=True, wait_s=wait_s) as store:
        index = core_similar.build_similarity_index(store)
        guess = core_similar.typology_of(store, session_id, index=index)
        found = core_similar.similar_cases(store, session_id, k=k, index=index) if (
            index.n_decided) else None
    if found is None:  # the guess still stands: say what is missing, exit 0
        if as_json:
            click.echo(json.dumps({"session_id": session_id, "typology": guess.to_dict(),
                                   "index": core_similar.describe(index), "similar": []},
                                  indent=1, allow_nan=False))
        else:
            click.echo(f"Session {session_id}: {guess.text}\nNo decided sessions yet: decide "
                       "a case (anomalyst case decide) or ingest analyst labels first.")
        return
    rows = [{**r, "decided_at": None if r["decided_at"] is None else str(r["decided_at"]),
             "explain": f"anomalyst explain {r['session_id']}",
             "case": f"anomalyst case show {r['case_id']}" if r["case_id"] else None}
            for r in found.astype(object).where(found.notna(), None).to_dict(orient="records")]
    if as_json:
        click.echo(json.dumps({"session_id": session_id, "typology": guess.to_dict(),
                               "index": core_similar.describe(index), "similar": rows},
                              indent=1, allow_nan=False))
        return
    click.echo(f"Session {session_id}: {guess.text}")
    click.echo(f"Most similar decided sessions (of {index.n_decided:,}):")
    for i, r in enumerate(rows, 1):
        case = f"  case {r['case_id']}" if r["case_id"] else ""
        click.echo(f"  {i}. {r['session_id']}  user {r['user_id']}  similarity "
                   f"{r['similarity']:.3f}  {r['decision']}  {r['typology'] or '-'}{case}")
        click.echo(f"     {r['explain']}" + (f"  ·  {r['case']}" if r["case"] else ""))


for command in (
    data.ingest, data.ingest_labels, data.info, data.migrate, data.currency, generate.generate,
    models.train, models.score, models.scores, models.evaluate, explain.explain,
    cases.case, cases.report, policy.policy, dashboard.demo, dashboard.dashboard, users.users,
    similar, models.models, serve.serve, replay.replay, scale.ingest_scores,
):
    main.add_command(command)


if __name__ == "__main__":
    main()
