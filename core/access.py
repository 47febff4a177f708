"""Who may do what: roles, the action each needs, and a local user file with salted hashes.

Three roles, each including the one before: ``viewer`` reads, ``analyst`` also works cases,
labels and exports, ``admin`` also trains, ingests, sets thresholds and manages users.
Authentication is off by default (the local demo: one person, full rights) and turned on with
one setting, ``ANOMALYST_AUTH=local`` (the user file below) or ``ANOMALYST_AUTH=oidc``
(Streamlit's built-in OpenID Connect login; the user file then maps e-mail -> role).

The user file is JSON, written atomically with owner-only permissions; passwords are stored as
scrypt hashes with a per-user random salt and compared in constant time.

>>> principal = Principal("ana", "analyst", authenticated=True)
>>> can(principal, "export"), can(principal, "train")
(True, False)
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from core.errors import AccessDeniedError, ConfigError
from core.files import atomic_file

Role = Literal["viewer", "analyst", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "analyst", "admin")

ACTIONS: dict[str, Role] = {
    "view": "viewer",
    "case": "analyst",       # open, claim, assign, note, decide, reopen
    "snooze": "analyst",
    "label": "analyst",
    "export": "analyst",
    "threshold": "admin",
    "policy": "admin",       # publish a version of the alert policy
    "train": "admin",
    "ingest": "admin",
    "users": "admin",
}

AUTH_MODES = ("off", "local", "oidc")
DEFAULT_USERS_FILE = Path("data") / "users.json"

# scrypt cost: n=2**14, r=8 per check — slow enough to make guessing expensive, fast enough
# for a login form (its time and memory: docs/BENCHMARKS.md, 'Measurements behind design
# choices').
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
_MIN_PASSWORD = 8


@dataclass(frozen=True)
class Principal:
    """The person behind a request: a name, a role, and whether a login proved it."""

    name: str
    role: Role
    authenticated: bool


@dataclass(frozen=True)
class AuthSettings:
    """How the dashboard authenticates, read from the environment."""

    mode: str = "off"
    users_file: Path = DEFAULT_USERS_FILE

    @classmethod
    def from_env(cls) -> AuthSettings:
        mode = os.environ.get("ANOMALYST_AUTH", "off").strip().lower() or "off"
        if mode not in AUTH_MODES:
            raise ConfigError(
                f"ANOMALYST_AUTH must be one of {', '.join(AUTH_MODES)}, got {mode!r}. "
                "Set it to off (local demo), local (user file) or oidc (identity provider)."
            )
        users = Path(os.environ.get("ANOMALYST_USERS_FILE") or DEFAULT_USERS_FILE)
        return cls(mode, users)

    @property
    def enabled(self) -> bool:
        return self.mode != "off"


def rank(role: str) -> int:
    if role not in ROLES:
        raise ConfigError(f"role must be one of {', '.join(ROLES)}, got {role!r}.")
    return ROLES.index(role)  # type: ignore[arg-type]


def can(principal: Principal, action: str) -> bool:
    """Whether ``principal``'s role allows ``action`` (one of ``ACTIONS``)."""
    if action not in ACTIONS:
        raise ConfigError(f"action must be one of {', '.join(ACTIONS)}, got {action!r}.")
    return rank(principal.role) >= rank(ACTIONS[action])


def require(principal: Principal, action: str) -> None:
    """AccessDeniedError unless ``principal`` may do ``action``."""
    if not can(principal, action):
        raise AccessDeniedError(
            f"{action} must be done by a{'n' if ACTIONS[action][0] in 'aeiou' else ''} "
            f"{ACTIONS[action]} or above, got {principal.name!r} with role {principal.role}. "
            "Ask an admin for that role."
        )


# ------------------------------------------------------------------------------ user file
def _hash(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, dklen=32, maxmem=64 << 20,
                          **_SCRYPT)


class UserFile:
    """The local user file: name -> role, salt and scrypt hash (or no password, for OIDC)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def _read(self) -> dict[str, dict[str, Any]]:
        if not self.path.exists():
            return {}
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
            users = document["users"]
            if not isinstance(users, dict):
                raise TypeError("users is not an object")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(
                f"user file {self.path} must be JSON written by `anomalyst users add`, got an "
                f"unreadable file ({exc}). Restore it from a backup or recreate the users."
            ) from exc
        return users

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold an exclusive lock on a sidecar file for a read-modify-write of the user file,
        so concurrent ``users add`` runs each see the others' writes (none is lost)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = self.path.parent / f".{self.path.name}.lock"
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _write(self, users: dict[str, dict[str, Any]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(self.path, "w") as handle:  # 0600: it holds password hashes
            json.dump({"version": 1, "users": users}, handle, indent=1, sort_keys=True)

    def users(self) -> dict[str, Role]:
        """name -> role, without secrets."""
        return {name: entry["role"] for name, entry in sorted(self._read().items())}

    def add(self, name: str, role: str, password: str | None) -> None:
        """Add or replace ``name``. ``password`` None makes an OIDC-only entry (name = e-mail)."""
        name = name.strip()
        if not name:
            raise ConfigError("user name must be non-empty, got ''. Pass a name or an e-mail.")
        rank(role)
        entry: dict[str, Any] = {"role": role}
        if password is not None:
            if len(password) < _MIN_PASSWORD:
                raise ConfigError(
                    f"password must have at least {_MIN_PASSWORD} characters, got "
                    f"{len(password)}. Choose a longer one."
                )
            salt = secrets.token_bytes(16)
            entry.update(salt=salt.hex(), hash=_hash(password, salt).hex(), kdf="scrypt",
                         **_SCRYPT)
        with self._locked():  # the slow hash above stays outside the lock
            users = self._read()
            users[name] = entry
            self._write(users)

    def remove(self, name: str) -> None:
        with self._locked():
            users = self._read()
            if name not in users:
                raise ConfigError(
                    f"user must be one of {', '.join(users) or 'none'}, got {name!r}."
                )
            del users[name]
            self._write(users)

    def verify(self, name: str, password: str) -> Principal | None:
        """The principal when ``password`` is right for ``name``; None otherwise."""
        entry = self._read().get(name.strip())
        if entry is None or "hash" not in entry:
            # Spend the same time as a real check so a wrong name is not told apart by timing.
            _hash(password, b"\0" * 16)
            return None
        expected = bytes.fromhex(entry["hash"])
        if not hmac.compare_digest(_hash(password, bytes.fromhex(entry["salt"])), expected):
            return None
        return Principal(name.strip(), entry["role"], authenticated=True)

    def role_of(self, name: str, default: Role = "viewer") -> Role:
        """The role recorded for ``name`` (an OIDC e-mail), or ``default``."""
        entry = self._read().get(name.strip())
        return entry["role"] if entry else default
