"""The operating-system account the local sandbox runs as: dedicated, unprivileged, owning nothing.

Code inside a dump runs during the restore (`COPY … TO PROGRAM` in a function a materialized view
or an index calls), as whoever runs the sandbox's server. That must not be `postgres` (on a Debian
host the owner of production's data directory, superuser of production through peer
authentication) nor root: the sandbox runs as its own system account, created by `install.sh` and
`verifier doctor --fix` through `create_account`, with no login shell and no home.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil

from verifier import process
from verifier.config import DEFAULT_ACCOUNT
from verifier.errors import SandboxError

PRIVILEGED_ACCOUNTS = frozenset({"root", "postgres"})
NO_LOGIN_SHELL = "/usr/sbin/nologin"
NO_HOME = "/nonexistent"


def check_run_as(name: str, *, allow_privileged: bool) -> None:
    """Checks that the sandbox may run as `name` (or, when the agent is not root, as the agent itself).

    Returns None. Raises SandboxError naming the setting when the account is root or `postgres`
    and `verify.allow_privileged_run_as` is not set, or when the account does not exist.
    """
    if os.geteuid() != 0:
        name = pwd.getpwuid(os.geteuid()).pw_name  # without root the sandbox runs as the agent's own user
        if name in PRIVILEGED_ACCOUNTS and not allow_privileged:
            raise SandboxError(
                f"the agent runs as {name!r}, so the sandbox would too: run it as root (the sandbox then runs "
                f"as verify.run_as) or set verify.allow_privileged_run_as: true"
            )
        return
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise SandboxError(
            f"verify.run_as: user {name!r} does not exist; create it with `verifier doctor --fix` "
            f"(or install.sh), or name another unprivileged user"
        ) from None
    if (entry.pw_uid == 0 or name in PRIVILEGED_ACCOUNTS) and not allow_privileged:
        raise SandboxError(
            f"verify.run_as: {name!r} is privileged (code in a dump would run as it): use a dedicated account "
            f"such as {DEFAULT_ACCOUNT!r} (`verifier doctor --fix` creates it) or set "
            f"verify.allow_privileged_run_as: true"
        )


def create_account(name: str = DEFAULT_ACCOUNT) -> bool:
    """Creates `name` as a system account with its own group, no login shell and no home.

    Returns True when it was created, False when it already existed.
    Raises SandboxError when not root or when useradd fails.
    """
    if account_exists(name):
        return False
    if os.geteuid() != 0:
        raise SandboxError(f"creating the sandbox account {name!r} needs root")
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    argv = [useradd, "--system", "--user-group", "--no-create-home", "--home-dir", NO_HOME]
    completed = process.run([*argv, "--shell", NO_LOGIN_SHELL, "--comment", "pg-backup-verifier sandbox", name])
    if completed.returncode != 0 and not account_exists(name):  # a parallel creation is fine
        message = (completed.stderr or completed.stdout).strip().splitlines()
        raise SandboxError(f"useradd {name} failed: {message[-1] if message else 'no output'}")
    return completed.returncode == 0


def account_exists(name: str) -> bool:
    """Returns whether the account exists."""
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def account_groups(name: str) -> list[str]:
    """Returns the names of the account's primary and supplementary groups. Raises KeyError if absent."""
    entry = pwd.getpwnam(name)
    return sorted({grp.getgrgid(gid).gr_name for gid in os.getgrouplist(name, entry.pw_gid)})
