"""What a hostile dump could reach from the sandbox: the facts `verifier doctor` prints.

The local sandbox's server (and psql) run as `verify.run_as`; code inside a dump runs as that
account. These facts say who that is, which groups it has, and whether it can read the repository
(backups, the roles file with password hashes), production's data directory (when production runs
on this host) or any secret file the config names. Every readability answer comes from a child
running as the account, with the groups the sandbox gets (none but its own), so it is what the
sandbox would see.
"""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from verifier import process
from verifier.config import SourceConfig, VerifyConfig
from verifier.errors import SandboxError
from verifier.postgres.connection import ConnectionParams, server_data_directory
from verifier.sandbox.account import PRIVILEGED_ACCOUNTS, account_groups, check_run_as

DEBIAN_DATA_ROOT = Path("/var/lib/postgresql")
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


@dataclass(frozen=True)
class Fact:
    """One line of the doctor's answer; `exposed` marks what the sandbox should not have, `blocking` what
    keeps the sandbox from running at all."""

    name: str
    value: str
    exposed: bool = False
    blocking: bool = False


def sandbox_facts(
    verify: VerifyConfig, repository: Path, source: SourceConfig | None, secret_files: list[Path]
) -> list[Fact]:
    """Returns the facts about the local sandbox's account and what it can read. Never raises."""
    facts = [Fact("sandbox", verify.sandbox)]
    try:
        check_run_as(verify.run_as, allow_privileged=verify.allow_privileged_run_as)
    except SandboxError as error:
        return [*facts, Fact("sandbox account", str(error), exposed=True)]
    if os.geteuid() != 0:
        own = pwd.getpwuid(os.geteuid()).pw_name
        return [*facts, Fact("sandbox account", f"{own} (the agent's own user: it can read what the agent reads)")]
    entry = pwd.getpwnam(verify.run_as)
    user = process.User(verify.run_as, entry.pw_uid, entry.pw_gid)
    privileged = verify.run_as in PRIVILEGED_ACCOUNTS or entry.pw_uid == 0
    facts.append(
        Fact(
            "sandbox account",
            f"{verify.run_as} (uid {entry.pw_uid}, shell {entry.pw_shell})"
            + (", privileged: allowed by verify.allow_privileged_run_as" if privileged else ""),
            exposed=privileged,
        )
    )
    facts.append(Fact("sandbox groups", ", ".join(account_groups(verify.run_as))))
    facts.append(_readable(user, "repository", repository))
    facts.extend(_production_data_facts(user, source))
    facts.extend(_readable(user, "secret file", path) for path in secret_files)
    return facts


def secret_files_named(config_path: Path) -> list[Path]:
    """Returns the `file:` paths a config names (password files). Returns [] when it cannot be read."""
    try:
        data = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return []
    found: list[Path] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, str) and value.startswith("file:"):
            found.append(Path(value.removeprefix("file:")))

    walk(data)
    return found


def _readable(user: process.User, label: str, path: Path) -> Fact:
    if not path.exists():
        return Fact(label, f"{path}: does not exist")
    test = ["test", "-r", str(path), "-a", "-x", str(path)] if path.is_dir() else ["test", "-r", str(path)]
    completed = process.run(test, user=user, sandboxed=True, cwd=Path("/"), timeout=30)
    readable = completed.returncode == 0
    return Fact(label, f"{path}: {'READABLE by the sandbox' if readable else 'not readable'}", exposed=readable)


def _production_data_facts(user: process.User, source: SourceConfig | None) -> list[Fact]:
    """Returns the lines on production's data directory when production runs on this host: the one the
    server names; when it does not say (source.user may not read data_directory), "unknown" and the
    clusters found in Debian's layout, each marked as a guess."""
    if source is None or source.docker is not None:
        return []
    if source.host and not source.host.startswith("/") and source.host not in LOCAL_HOSTS:
        return []
    label = "production data directory"
    asked = _asked_data_directory(source)
    if asked is not None:
        return [_readable(user, label, Path(asked))]
    unknown = Fact(label, "unknown: the server did not say (source.user may not read data_directory)")
    guesses = sorted(directory.parent for directory in DEBIAN_DATA_ROOT.glob("*/*/PG_VERSION") if directory.is_file())
    facts = [unknown]
    for guess in guesses:
        found = _readable(user, label, guess)
        facts.append(Fact(label, f"a guess, a cluster in Debian's layout: {found.value}", exposed=found.exposed))
    return facts


def _asked_data_directory(source: SourceConfig) -> str | None:
    """Returns the data directory the source server names, or None when it does not."""
    params = ConnectionParams(
        dbname=source.dbname or "postgres",
        host=source.host,
        port=source.port,
        user=source.user,
        password=source.password.get_secret_value() if source.password else None,
        connect_timeout=5,
    )
    return server_data_directory(params)
