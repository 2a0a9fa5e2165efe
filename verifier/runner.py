"""The one place external programs are started.

Commands are argv lists, never shell strings. Secrets travel in the child's environment
(`PGPASSWORD`), never on argv. Unit tests replace `run` with a fake runner that records argv.
"""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)


_TARGET_VARIABLES = frozenset(
    {"PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER", "PGPASSWORD", "PGOPTIONS", "PGSERVICE"}
)
# what a sandboxed program (the sandbox's server, psql restoring untrusted SQL) may see of ours
_SANDBOX_VARIABLES = frozenset({"PATH", "LANG", "LANGUAGE", "TZ"})
_SANDBOX_PATH = "/usr/local/bin:/usr/bin:/bin"


@dataclass(frozen=True)
class User:
    """An unprivileged account a child process runs as when the agent itself runs as root."""

    name: str
    uid: int
    gid: int


def child_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Returns the environment for a child: ours without libpq's target variables, plus `extra`.

    Dropping an inherited `PGDATABASE`/`PGHOST`/… keeps it from redirecting a dump or a restore;
    `PGPASSFILE` and the TLS settings stay.
    """
    environment = {key: value for key, value in os.environ.items() if key not in _TARGET_VARIABLES}
    environment["LC_MESSAGES"] = "C"
    environment.update(extra or {})
    return environment


def sandbox_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Returns the environment for a sandboxed child: PATH, LANG/LC_*, TZ, plus `extra`; nothing else.

    Code inside an untrusted dump runs with the server's environment (`COPY … TO PROGRAM`), so no
    secret of the agent (`${DB_PASS}`, ZABBIX_API_TOKEN, SMTP credentials) may reach it.
    """
    environment = {
        key: value for key, value in os.environ.items() if key in _SANDBOX_VARIABLES or key.startswith("LC_")
    }
    environment.setdefault("PATH", _SANDBOX_PATH)
    environment["LC_MESSAGES"] = "C"
    environment.update(extra or {})
    return environment


def run(
    argv: Sequence[str | Path],
    *,
    environment: Mapping[str, str] | None = None,
    user: User | None = None,
    cwd: Path | None = None,
    timeout: float | None = None,
    sandboxed: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Runs a program to completion and captures its output as text. `sandboxed` gives it
    `sandbox_environment` instead of ours.

    Returns the completed process (the caller judges its return code).
    Raises FileNotFoundError when the program does not exist, subprocess.TimeoutExpired on timeout.
    """
    logger.debug("running %s", " ".join(str(part) for part in argv))
    return subprocess.run(
        [str(part) for part in argv],
        env=sandbox_environment(environment) if sandboxed else child_environment(environment),
        user=user.uid if user else None,
        group=user.gid if user else None,
        extra_groups=[] if user else None,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def start(
    argv: Sequence[str | Path],
    *,
    environment: Mapping[str, str] | None = None,
    user: User | None = None,
    cwd: Path | None = None,
    stdin: int | None = subprocess.DEVNULL,
    stdout: int | None = subprocess.PIPE,
    stderr: int | None = subprocess.PIPE,
    new_session: bool = False,
    sandboxed: bool = False,
) -> subprocess.Popen[bytes]:
    """Starts a program whose output the caller streams. `sandboxed` gives it `sandbox_environment`
    instead of ours.

    Returns the process. Raises FileNotFoundError when the program does not exist.
    `new_session` keeps a terminal's Ctrl-C from reaching the child: the agent stops it itself.
    """
    logger.debug("starting %s", " ".join(str(part) for part in argv))
    return subprocess.Popen(
        [str(part) for part in argv],
        env=sandbox_environment(environment) if sandboxed else child_environment(environment),
        user=user.uid if user else None,
        group=user.gid if user else None,
        extra_groups=[] if user else None,
        cwd=cwd,
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        start_new_session=new_session,
    )
