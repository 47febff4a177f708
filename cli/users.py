"""CLI commands for dashboard users: add, list, remove (the local user file)."""

from __future__ import annotations

import click

from cli.errors import user_errors
from core.app.access import ROLES, user_file

users_file_option = click.option(
    "--users-file", "users_file", type=click.Path(dir_okay=False), default=None,
    help="User file (default: $ANOMALYST_USERS_FILE or data/users.json).",
)


@click.group()
def users() -> None:
    """Dashboard users and roles (used when ANOMALYST_AUTH=local or oidc)."""


@users.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--oidc", is_flag=True,
              help="No password: NAME is the e-mail an identity provider signs in.")
@click.option("--password", default=None, help="Password (default: prompt, hidden).")
@users_file_option
@user_errors
def add_user(name: str, role: str, oidc: bool, password: str | None,
             users_file: str | None) -> None:
    """Add NAME with ROLE, or change their role and password."""
    if not oidc and password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    user_file(users_file).add(name, role, None if oidc else password)
    click.echo(f"User {name} is now {role}.")


@users.command("list")
@users_file_option
@user_errors
def list_users(users_file: str | None) -> None:
    """Print every user and role."""
    found = user_file(users_file).users()
    if not found:
        click.echo("No users yet. Add one with `anomalyst users add NAME --role admin`.")
    for name, role in found.items():
        click.echo(f"{name}\t{role}")


@users.command("remove")
@click.argument("name")
@users_file_option
@user_errors
def remove_user(name: str, users_file: str | None) -> None:
    """Remove NAME."""
    user_file(users_file).remove(name)
    click.echo(f"User {name} removed.")
