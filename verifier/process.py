"""The one place external programs are started.

Commands are argv lists, never shell strings. Secrets travel in the child's environment
(`PGPASSWORD`), never on argv. Unit tests replace `run` with a fake runner that records argv.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

logger = logging.getLogger(__name__)

CHUNK_BYTES = 1024 * 1024
SANDBOXED_PROGRAMS = frozenset({"psql"})  # read the dump from stdin, so need no access to the repository


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


def _identity(environment: Mapping[str, str] | None, user: User | None, sandboxed: bool) -> dict[str, Any]:
    """Returns the environment and account keyword arguments `run` and `start` give subprocess."""
    return {
        "env": sandbox_environment(environment) if sandboxed else child_environment(environment),
        "user": user.uid if user else None,
        "group": user.gid if user else None,
        "extra_groups": [] if user else None,
    }


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
        **_identity(environment, user, sandboxed),
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
        **_identity(environment, user, sandboxed),
        cwd=cwd,
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        start_new_session=new_session,
    )


class Installation(Protocol):
    """Where an executor finds a program by name (a PostgreSQL installation's bin directory)."""

    @property
    def version(self) -> str:
        """Returns the installation's version, e.g. '15.18'."""

    def program(self, name: str) -> Path:
        """Returns the path of `name`. Raises BinaryMissing when it is not there."""


class RunningProgram(Protocol):
    """A program started by an executor; stdout is streamed, stderr collected."""

    def stdout_chunks(self) -> Iterator[bytes]:
        """Yields stdout in chunks until EOF."""

    def output_started(self) -> bool:
        """Returns True once the program wrote to its streamed stdout (or closed it), without taking
        anything from it; always False when stdout is not streamed."""

    def write_stdin(self, data: bytes) -> None:
        """Writes to the program's stdin. Raises BrokenPipeError when it stopped reading."""

    def close_stdin(self) -> None:
        """Signals end of input."""

    def wait(self) -> int:
        """Waits for the program to exit and returns its exit code."""

    def stderr_text(self) -> str:
        """Returns everything the program wrote to stderr (after wait)."""

    def kill(self) -> None:
        """Stops the program at once; safe after it exited."""


class Executor(Protocol):
    """Runs PostgreSQL programs somewhere: on this host, or inside a container."""

    #: True when paths the agent writes are paths the program sees (directory-format dumps need it)
    shares_filesystem: bool

    def start(
        self,
        argv: Sequence[str],
        *,
        environment: Mapping[str, str],
        stdin: bool = False,
        stdout: bool = True,
    ) -> RunningProgram:
        """Starts `argv` (argv[0] is a program name such as 'pg_dump'). Raises BinaryMissing."""


class LocalProgram:
    """A program running on this host. stderr (and stdout when not streamed) go to temp files,
    so a chatty program can never block on a full pipe."""

    def __init__(self, process: subprocess.Popen[bytes], stderr_file: IO[bytes]) -> None:
        self.process = process
        self._stderr_file = stderr_file

    def stdout_chunks(self) -> Iterator[bytes]:
        """Yields stdout in chunks of up to 1 MiB until EOF."""
        assert self.process.stdout is not None
        read = self.process.stdout.read1 if hasattr(self.process.stdout, "read1") else self.process.stdout.read
        while chunk := read(CHUNK_BYTES):
            yield chunk

    def output_started(self) -> bool:
        """Returns True once the program wrote to its stdout pipe (or closed it), without reading it;
        False when stdout is no pipe."""
        if self.process.stdout is None:
            return False
        return bool(select.select([self.process.stdout.fileno()], [], [], 0)[0])

    def write_stdin(self, data: bytes) -> None:
        """Writes `data` to stdin. Raises BrokenPipeError when the program stopped reading."""
        assert self.process.stdin is not None
        self.process.stdin.write(data)

    def close_stdin(self) -> None:
        """Closes stdin; ignores a program that already exited."""
        if self.process.stdin is not None:
            with contextlib.suppress(BrokenPipeError, OSError):
                self.process.stdin.close()

    def wait(self) -> int:
        """Returns the exit code once the program exited."""
        return self.process.wait()

    def stderr_text(self) -> str:
        """Returns the captured stderr (at most the last 1 MiB)."""
        self._stderr_file.seek(0, 2)
        size = self._stderr_file.tell()
        self._stderr_file.seek(max(0, size - CHUNK_BYTES))
        return self._stderr_file.read().decode("utf-8", errors="replace")

    def kill(self) -> None:
        """Kills the program if it still runs and reaps it."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.close_stdin()


class LocalExecutor:
    """Runs PostgreSQL programs from one installation on this host.

    With a `sandbox_user`, psql (which reads untrusted SQL from stdin) runs as that account with the
    sandbox's environment only; programs that open the archive themselves run as the agent.
    """

    shares_filesystem = True

    def __init__(self, installation: Installation, *, sandbox_user: User | None = None) -> None:
        self.installation = installation
        self.sandbox_user = sandbox_user

    def start(
        self,
        argv: Sequence[str],
        *,
        environment: Mapping[str, str],
        stdin: bool = False,
        stdout: bool = True,
    ) -> LocalProgram:
        """Starts argv[0] from the installation. Returns the running program. Raises BinaryMissing."""
        program = self.installation.program(argv[0])
        stderr_file = tempfile.TemporaryFile()  # noqa: SIM115 - owned by LocalProgram
        sandboxed = self.sandbox_user is not None and argv[0] in SANDBOXED_PROGRAMS
        process = start(
            [str(program), *argv[1:]],
            environment=environment,
            user=self.sandbox_user if sandboxed else None,
            cwd=Path("/") if sandboxed else None,
            sandboxed=sandboxed,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdout else stderr_file.fileno(),
            stderr=stderr_file.fileno(),
        )
        return LocalProgram(process, stderr_file)
