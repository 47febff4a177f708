"""API tokens of the scoring service: ``<store dir>/api_tokens.json`` (0600).

A token is ``secrets.token_urlsafe(32)`` (256 random bits), shown once when added. The file
keeps its SHA-256 only: a fast unsalted hash is enough for a 256-bit random secret (no
dictionary or brute force reaches it; a slow KDF protects guessable passwords, which these are
not), and it lets each request be checked with one dictionary lookup. The file is re-read
when it changes (mtime and size), so a revoked token is refused at once, without a restart.

    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     tokens = TokenFile(pathlib.Path(folder) / "api_tokens.json")
    ...     secret = tokens.add("ci", "analyst")
    ...     who = tokens.verify(secret)
    ...     tokens.revoke("ci")
    ...     (who.name, who.role, tokens.verify(secret))
    ('ci', 'analyst', None)
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import os
import re
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from core.access import Principal, rank
from core.errors import ConfigError
from core.files import atomic_file

TOKENS_NAME = "api_tokens.json"
_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def tokens_path(store_path: str | os.PathLike[str]) -> Path:
    """The token file of the store at ``store_path``."""
    return Path(store_path).parent / TOKENS_NAME


class TokenFile:
    """name -> role, created_at and sha256 of the token; thread-safe reads."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._by_digest: dict[str, tuple[str, str]] = {}

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise ConfigError(f"token file {self.path} must be JSON written by `anomalyst "
                              f"serve token add`, got an unreadable file ({exc}). Restore it "
                              "or delete it and add the tokens again.") from exc
        tokens = document.get("tokens") if isinstance(document, dict) else None
        if not isinstance(tokens, dict):
            raise ConfigError(f"token file {self.path} must hold a 'tokens' object, got "
                              f"{type(tokens).__name__}. Restore it or add the tokens again.")
        return tokens

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.parent / f".{self.path.name}.lock", os.O_RDWR | os.O_CREAT,
                     0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _write(self, tokens: dict[str, dict[str, Any]]) -> None:
        with atomic_file(self.path, "w") as handle:  # 0600
            json.dump({"version": 1, "tokens": tokens}, handle, indent=1, sort_keys=True)

    def add(self, name: str, role: str) -> str:
        """Add a token for ``name`` with ``role``; returns the token (shown once)."""
        if not _NAME.match(name):
            raise ConfigError(f"token name must be 1-64 letters, digits or ._@-, got "
                              f"{name[:80]!r}. Choose a short name such as ci-ingest.")
        rank(role)
        token = secrets.token_urlsafe(32)
        created = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
        with self._locked():
            tokens = self._read()
            if name in tokens:
                raise ConfigError(f"token name must be new, got {name!r}, which exists. "
                                  f"Revoke it first (anomalyst serve token revoke {name}).")
            tokens[name] = {"role": role, "sha256": digest(token), "created_at": created}
            self._write(tokens)
        return token

    def revoke(self, name: str) -> None:
        with self._locked():
            tokens = self._read()
            if name not in tokens:
                raise ConfigError(f"token must be one of {', '.join(sorted(tokens)) or 'none'}, "
                                  f"got {name!r}.")
            del tokens[name]
            self._write(tokens)

    def listing(self) -> list[dict[str, str]]:
        """name, role, created_at of every token (no secrets), by name."""
        return [{"name": n, "role": t["role"], "created_at": t.get("created_at", "")}
                for n, t in sorted(self._read().items())]

    def __len__(self) -> int:
        return len(self._current())

    def _current(self) -> dict[str, tuple[str, str]]:
        """digest -> (name, role), re-read when the file changed."""
        try:
            st = self.path.stat()
            stamp: tuple[int, int, int] | None = (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            stamp = None
        with self._lock:
            if stamp != self._stamp:
                self._by_digest = {t["sha256"]: (n, t["role"])
                                   for n, t in self._read().items()} if stamp else {}
                self._stamp = stamp
            return self._by_digest

    def verify(self, token: str) -> Principal | None:
        """The principal of a valid token; None otherwise."""
        found = self._current().get(digest(token))
        if found is None:
            return None
        return Principal(found[0], found[1], authenticated=True)  # type: ignore[arg-type]
