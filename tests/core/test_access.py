"""Roles, the user file and its CLI."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import main
from core.access import AuthSettings, Principal, UserFile, can, require
from core.errors import AccessDeniedError, ConfigError


@pytest.mark.parametrize(("role", "allowed"), [
    ("viewer", {"view"}),
    ("analyst", {"view", "case", "snooze", "label", "export"}),
    ("admin", {"view", "case", "snooze", "label", "export", "threshold", "policy", "train",
               "ingest", "users"}),
])
def test_each_role_allows_exactly_its_actions(role: str, allowed: set[str]) -> None:
    principal = Principal("p", role, authenticated=True)  # type: ignore[arg-type]
    from core.access import ACTIONS

    assert {a for a in ACTIONS if can(principal, a)} == allowed


def test_require_names_the_role_needed() -> None:
    with pytest.raises(AccessDeniedError, match="export must be done by an analyst"):
        require(Principal("v", "viewer", True), "export")


def test_password_round_trip_and_wrong_password(tmp_path: Path) -> None:
    users = UserFile(tmp_path / "users.json")
    users.add("ana", "analyst", "correct horse")
    assert users.verify("ana", "correct horse") == Principal("ana", "analyst", True)
    assert users.verify("ana", "wrong horse!") is None
    assert users.verify("nobody", "correct horse") is None


def test_user_file_holds_no_plain_password_and_is_private(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    UserFile(path).add("ana", "admin", "s3cret-passphrase")
    text = path.read_text()
    assert "s3cret-passphrase" not in text
    entry = json.loads(text)["users"]["ana"]
    assert entry["kdf"] == "scrypt" and len(bytes.fromhex(entry["salt"])) == 16
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_same_password_gets_different_salts(tmp_path: Path) -> None:
    users = UserFile(tmp_path / "users.json")
    users.add("a", "viewer", "same password")
    users.add("b", "viewer", "same password")
    stored = json.loads(users.path.read_text())["users"]
    assert stored["a"]["hash"] != stored["b"]["hash"]


def test_short_password_and_bad_role_are_refused(tmp_path: Path) -> None:
    users = UserFile(tmp_path / "users.json")
    with pytest.raises(ConfigError, match="at least 8"):
        users.add("a", "viewer", "short")
    with pytest.raises(ConfigError, match="role must be one of"):
        users.add("a", "root", "long enough pw")
    assert not users.path.exists()


def test_damaged_user_file_says_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="recreate the users"):
        UserFile(path).verify("a", "whatever1")


def test_oidc_entries_map_email_to_role(tmp_path: Path) -> None:
    users = UserFile(tmp_path / "users.json")
    users.add("ana@example.org", "analyst", None)
    assert users.role_of("ana@example.org") == "analyst"
    assert users.role_of("stranger@example.org") == "viewer"
    assert users.verify("ana@example.org", "anything at all") is None


def test_auth_mode_comes_from_one_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANOMALYST_AUTH", raising=False)
    assert not AuthSettings.from_env().enabled
    monkeypatch.setenv("ANOMALYST_AUTH", "local")
    assert AuthSettings.from_env().mode == "local"
    monkeypatch.setenv("ANOMALYST_AUTH", "ldap")
    with pytest.raises(ConfigError, match="ANOMALYST_AUTH must be one of"):
        AuthSettings.from_env()


def test_users_cli_add_list_remove(tmp_path: Path) -> None:
    path = str(tmp_path / "users.json")
    runner = CliRunner()
    added = runner.invoke(main, ["users", "add", "ana", "--role", "admin", "--users-file", path],
                          input="long password\nlong password\n")
    assert added.exit_code == 0, added.output
    listed = runner.invoke(main, ["users", "list", "--users-file", path])
    assert "ana\tadmin" in listed.output
    short = runner.invoke(main, ["users", "add", "bo", "--role", "viewer", "--password", "x",
                                 "--users-file", path])
    assert short.exit_code == 2 and "at least 8" in short.output
    removed = runner.invoke(main, ["users", "remove", "ana", "--users-file", path])
    assert removed.exit_code == 0
    assert "No users yet" in runner.invoke(main, ["users", "list", "--users-file", path]).output


def test_concurrent_adds_lose_no_user(tmp_path: Path) -> None:
    """12 processes add a user each at once; every one is stored (a file lock serialises the
    read-modify-write). Each child widens the race window after reading, so without the lock
    they would overwrite each other's additions."""
    import subprocess
    import sys

    path = tmp_path / "users.json"
    go = tmp_path / "go"
    child = (
        "import sys, time, pathlib\n"
        "from core.access import UserFile\n"
        "read = UserFile._read\n"
        "def slow_read(self):\n"
        "    users = read(self)\n"
        "    time.sleep(0.2)  # widen the read-modify-write window\n"
        "    return users\n"
        "UserFile._read = slow_read\n"
        "go = pathlib.Path(sys.argv[2])\n"
        "deadline = time.monotonic() + 60\n"
        "while not go.exists() and time.monotonic() < deadline:\n"
        "    time.sleep(0.01)\n"
        "UserFile(sys.argv[1]).add(sys.argv[3], 'viewer', 'long password')\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", child, str(path), str(go), f"user{i}"])
             for i in range(12)]
    go.touch()
    codes = [p.wait(timeout=120) for p in procs]
    assert codes == [0] * 12
    assert sorted(UserFile(path).users()) == sorted(f"user{i}" for i in range(12))
