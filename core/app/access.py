"""Access: the local user file and roles (the dashboard's sign-in, ``anomalyst users``)."""

from __future__ import annotations

from core.access import (
    ACTIONS,
    AUTH_MODES,
    ROLES,
    AuthSettings,
    Principal,
    UserFile,
    can,
    rank,
    require,
)

__all__ = ["ACTIONS", "AUTH_MODES", "ROLES", "AuthSettings", "Principal", "UserFile", "can",
           "rank", "require", "user_file"]


def user_file(path: str | None = None) -> UserFile:
    """The user file at ``path``, else ``$ANOMALYST_USERS_FILE``, else data/users.json."""
    return UserFile(path or AuthSettings.from_env().users_file)
