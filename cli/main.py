"""The ``anomalyst`` command: the group, and every command attached to it in one place.

Each command calls ``core.app`` and prints what it returns; errors end as ``cli.errors`` says.
"""

from __future__ import annotations

import logging
import os

import click

from cli import cases, dashboard, data, explain, generate, models, policy, users
from cli.errors import AnomalystGroup


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


for command in (
    data.ingest, data.ingest_labels, data.info, data.migrate, generate.generate,
    models.train, models.score, models.scores, models.evaluate, explain.explain,
    cases.case, cases.report, policy.policy, dashboard.demo, dashboard.dashboard, users.users,
):
    main.add_command(command)


if __name__ == "__main__":
    main()
