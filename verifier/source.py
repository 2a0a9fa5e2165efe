"""The production database as the pipeline sees it: how to connect to it, and where its programs run.

A source gives two things: connection parameters for the agent's own sessions (the snapshot
transaction, counting, fingerprinting) and an `Executor` that runs `pg_dump`/`pg_dumpall` next to
the server (on this host, or inside the production container). Sandboxes use executors too, for
`pg_restore`/`psql`, so the dump and restore code never knows where a program runs.
"""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

import psycopg

from verifier import runner
from verifier.config import SourceConfig
from verifier.errors import SourceUnreachable
from verifier.postgres.binaries import Installation

CHUNK_BYTES = 1024 * 1024
SANDBOXED_PROGRAMS = frozenset({"psql"})  # read the dump from stdin, so need no access to the repository
_ENVIRONMENT_VARIABLE = {
    "dbname": "PGDATABASE",
    "host": "PGHOST",
    "port": "PGPORT",
    "user": "PGUSER",
    "password": "PGPASSWORD",
    "sslmode": "PGSSLMODE",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "application_name": "PGAPPNAME",
    "options": "PGOPTIONS",
}
# What every session on production gets, as pg_dump's own sessions do: no timeout may end the
# snapshot work half-way (a role's `statement_timeout` included: startup options win over role
# settings), and row-level security off, so a policy can never hide rows from a count silently (a
# role that is not exempt gets an error instead, as pg_dump does).
PRODUCTION_OPTIONS = (
    "-c statement_timeout=0 -c lock_timeout=0 -c idle_in_transaction_session_timeout=0 -c row_security=off"
)


@dataclass(frozen=True)
class ConnectionParams:
    """How to reach one database. `password` is never shown by `repr` or `label`."""

    dbname: str
    host: str | None = None
    port: int = 5432
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    sslmode: str | None = None
    connect_timeout: int = 10
    options: str | None = None  # libpq startup options, e.g. PRODUCTION_OPTIONS

    @property
    def label(self) -> str:
        """Returns `user@host:port/dbname` for humans (no password)."""
        host = self.host or "local socket"
        return f"{self.user + '@' if self.user else ''}{host}:{self.port}/{self.dbname}"

    def psycopg_kwargs(self) -> dict[str, str | int]:
        """Returns keyword arguments for psycopg.connect."""
        kwargs: dict[str, str | int] = {
            "dbname": self.dbname,
            "port": self.port,
            "connect_timeout": self.connect_timeout,
            "application_name": "pg-backup-verifier",
        }
        for key, value in (
            ("host", self.host),
            ("user", self.user),
            ("password", self.password),
            ("sslmode", self.sslmode),
            ("options", self.options),
        ):
            if value:
                kwargs[key] = value
        return kwargs

    def libpq_environment(self) -> dict[str, str]:
        """Returns PG* variables for a child program: the password travels here, never on argv."""
        return {_ENVIRONMENT_VARIABLE[key]: str(value) for key, value in self.psycopg_kwargs().items()}

    def connect(self, *, autocommit: bool = True) -> psycopg.Connection[tuple[object, ...]]:
        """Returns a new connection. Raises SourceUnreachable with libpq's one-line reason."""
        try:
            connection = psycopg.connect(**self.psycopg_kwargs(), autocommit=autocommit)  # type: ignore[arg-type]
        except psycopg.OperationalError as error:
            reason = " ".join(str(error).split()) or "connection failed"
            raise SourceUnreachable(f"cannot connect to {self.label}: {reason}") from None
        if self.options and connection.info.server_version >= 170000:
            connection.execute("SET transaction_timeout = 0")  # unknown before 17: not a startup option
        return connection


class RunningProgram(Protocol):
    """A program started by an executor; stdout is streamed, stderr collected."""

    def stdout_chunks(self) -> Iterator[bytes]:
        """Yields stdout in chunks until EOF."""

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

    def __init__(self, installation: Installation, *, sandbox_user: runner.User | None = None) -> None:
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
        process = runner.start(
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


@dataclass(frozen=True)
class Source:
    """The resolved production database: connection parameters, the executor next to it, and
    where its credentials came from (for `doctor`; never the values)."""

    params: ConnectionParams
    executor: Executor | None  # None: choose a local pg_dump matching the server's version
    description: str
    credentials_from: str = "config"
    image: str | None = None


def resolve_source(config: SourceConfig) -> Source:
    """Returns the source named by the config. Raises SourceUnreachable / DockerUnavailable / ConfigError."""
    if config.docker is not None:
        from verifier import docker  # the Docker SDK is imported only when a container is configured

        return docker.resolve_container_source(config)
    assert config.dbname is not None  # the config validator requires it without docker
    params = ConnectionParams(
        dbname=config.dbname,
        host=config.host,
        port=config.port,
        user=config.user,
        password=config.password.get_secret_value() if config.password else None,
        sslmode=config.sslmode,
        connect_timeout=config.connect_timeout,
        options=PRODUCTION_OPTIONS,
    )
    source_of_password = "config" if config.password else "pgpass/peer/environment"
    return Source(params=params, executor=None, description=params.label, credentials_from=source_of_password)
