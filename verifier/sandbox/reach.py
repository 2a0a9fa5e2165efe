"""What the sandbox account must reach, checked before its server is started.

The local sandbox's server, initdb and psql run as `verify.run_as` (by default `pgbv-sandbox`), not as
the agent. Programs in a directory only root can enter (root's home, a venv there), or a sandbox
directory under one, cannot be run or entered by that account: the server then fails somewhere deep
in a start with `[Errno 13] Permission denied`. Each answer here comes from a child running as the
account (`test -x`), so it is what the sandbox would meet, access control lists included; when the
answer is no, the first directory on the way that the account cannot enter is named.
"""

from __future__ import annotations

import grp
import os
import pwd
import tempfile
from dataclasses import dataclass
from pathlib import Path

from verifier import process
from verifier.config import VerifyConfig
from verifier.errors import SandboxError
from verifier.postgres.binaries import Installation, installations
from verifier.sandbox.isolation import Fact

SANDBOX_PROGRAMS = ("initdb", "postgres", "psql")  # what runs as the account (pg_restore runs as the agent)


@dataclass(frozen=True)
class Unreachable:
    """A path the sandbox account needs and cannot reach, with the setting that names it."""

    setting: str  # "postgres.bin_dir", "verify.temp_dir", "TMPDIR"
    path: Path
    blocked_at: Path  # the first directory on the way the account cannot enter (or `path` itself)
    fix: str

    def message(self, account: str) -> str:
        """Returns the one line that names the directory and the fix."""
        verb = "enter" if self.blocked_at.is_dir() else "run"
        where = f"it cannot {verb} {self.blocked_at} ({_owner_and_mode(self.blocked_at)})"
        return (
            f"the sandbox account {account} cannot reach {self.setting} {self.path}: {where}; {self.fix}, "
            f"or let it pass: setfacl -m u:{account}:x {self.blocked_at}"
        )


def require_reach(installation: Installation, temp_dir: Path | None, user: process.User | None) -> None:
    """Checks that `user` can run the sandbox's programs of `installation` and enter the sandbox's
    directories (`temp_dir`, and the temporary directory initdb runs in). Nothing to check when the
    sandbox runs as the agent itself (`user` None).

    Returns None. Raises SandboxError (exit 3) with one line naming the first path out of reach.
    """
    if user is None:
        return
    found = unreachable_paths(installation, temp_dir, user)
    if found:
        raise SandboxError(found[0].message(user.name))


def unreachable_paths(installation: Installation, temp_dir: Path | None, user: process.User) -> list[Unreachable]:
    """Returns every path the sandbox needs that `user` cannot reach (empty when all are reachable)."""
    programs = unreachable_programs(installation, user)
    return ([programs] if programs else []) + unreachable_directories(temp_dir, user)


def reach_facts(verify: VerifyConfig, bin_dir: Path | None) -> list[Fact]:
    """Returns `verifier doctor`'s lines on the sandbox account's reach: the programs of each installation
    the local sandbox could run (the configured `bin_dir` alone when set) and its directories. Nothing
    when the sandbox is not local or runs as the agent itself. Never raises."""
    if verify.sandbox != "local" or os.geteuid() != 0:
        return []
    try:
        entry = pwd.getpwnam(verify.run_as)
    except KeyError:
        return []  # the account line says it is missing
    user = process.User(verify.run_as, entry.pw_uid, entry.pw_gid)
    found = [installation for installation in installations(bin_dir) if installation.has(SANDBOX_PROGRAMS)]
    if bin_dir is not None:
        found = [installation for installation in found if installation.bin_dir == bin_dir.resolve()]
    facts = []
    for installation in found:
        blocked = unreachable_programs(installation, user)
        where = f"{installation.bin_dir} (PostgreSQL {installation.version})"
        if blocked is None:
            facts.append(Fact("programs reach", f"{where}: reachable by the sandbox"))
        else:
            facts.append(Fact("programs reach", f"{where}: {blocked.message(user.name)}", blocking=True))
    blocked_directories = {found.setting: found for found in unreachable_directories(verify.temp_dir, user)}
    for setting, directory in _directories(verify.temp_dir):
        if setting in blocked_directories:
            message = blocked_directories[setting].message(user.name)
            facts.append(Fact("sandbox directory", f"{directory}: {message}", blocking=True))
        elif directory.is_dir():
            facts.append(Fact("sandbox directory", f"{directory} ({setting}): reachable by the sandbox"))
    return facts


def unreachable_programs(installation: Installation, user: process.User) -> Unreachable | None:
    """Returns what keeps `user` from running the sandbox's programs of `installation`, or None."""
    programs = [installation.bin_dir / name for name in SANDBOX_PROGRAMS]
    if _passes(user, [argument for program in programs for argument in ("-x", str(program))]):
        return None
    blocked = next((program for program in programs if not _passes(user, ["-x", str(program)])), programs[0])
    return Unreachable(
        "postgres.bin_dir",
        installation.bin_dir,
        _first_closed(user, blocked),
        "put the PostgreSQL programs where every account can enter (e.g. under /opt or /usr/local) and "
        "point postgres.bin_dir there",
    )


def unreachable_directories(temp_dir: Path | None, user: process.User) -> list[Unreachable]:
    """Returns the sandbox's directories (`temp_dir`, and the temporary directory initdb runs in) that
    `user` cannot enter."""
    found = []
    for setting, directory in _directories(temp_dir):
        if directory.is_dir() and not _passes(user, ["-x", str(directory)]):
            fix = (
                "point verify.temp_dir at a directory every account can enter (e.g. /var/tmp)"
                if setting == "verify.temp_dir"
                else "run the agent with TMPDIR set to a directory every account can enter (e.g. /tmp)"
            )
            found.append(Unreachable(setting, directory, _first_closed(user, directory), fix))
    return found


def _directories(temp_dir: Path | None) -> list[tuple[str, Path]]:
    """Returns (setting, directory) of the directories the sandbox account must enter."""
    directories = [("verify.temp_dir", temp_dir)] if temp_dir is not None else []
    return [*directories, ("TMPDIR", Path(tempfile.gettempdir()))]  # initdb of the sandbox template runs there


def _passes(user: process.User, expression: list[str]) -> bool:
    """Returns whether `test EXPRESSION` (each term joined by -a) succeeds as `user`."""
    joined: list[str] = []
    for index in range(0, len(expression), 2):
        joined += (["-a"] if joined else []) + expression[index : index + 2]
    completed = process.run(["test", *joined], user=user, sandboxed=True, cwd=Path("/"), timeout=30)
    return completed.returncode == 0


def _first_closed(user: process.User, path: Path) -> Path:
    """Returns the first directory from / down to `path` that `user` cannot enter, else `path`."""
    absolute = path if path.is_absolute() else Path.cwd() / path
    for ancestor in reversed(absolute.parents):
        if not _passes(user, ["-x", str(ancestor)]):
            return ancestor
    return path


def _owner_and_mode(path: Path) -> str:
    try:
        status = path.stat()
    except OSError as error:
        return error.strerror or "cannot be read"
    try:
        owner = pwd.getpwuid(status.st_uid).pw_name
    except KeyError:
        owner = str(status.st_uid)
    try:
        group = grp.getgrgid(status.st_gid).gr_name
    except KeyError:
        group = str(status.st_gid)
    return f"mode {status.st_mode & 0o7777:04o}, owner {owner}:{group}"
