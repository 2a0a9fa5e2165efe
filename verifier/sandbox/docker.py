"""The docker sandbox: a throwaway container of the production image, with one database to restore into."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from verifier.config import DockerSandboxConfig
from verifier.docker.engine import (
    Client,
    ThrowawayContainer,
    connect,
    engine_errors,
    engine_path,
    is_local_engine,
    remove_orphans,
)
from verifier.docker.exec import DEFAULT_PORT, DockerExecutor
from verifier.errors import ContainerNotRunning, SandboxError, one_line
from verifier.postgres.catalog import Connection
from verifier.postgres.connection import ConnectionParams, DatabaseError, Source
from verifier.postgres.restore.run import RESTORE_DATABASE, create_restore_database
from verifier.postgres.throwaway.cluster import throwaway_settings
from verifier.process import Executor
from verifier.repository.backups import Backup, Repository

logger = logging.getLogger(__name__)

SANDBOX_SUPERUSER = "postgres"

SANDBOX_START_SECONDS = 120.0

SOCKET_DIRECTORY_INSIDE = "/var/run/postgresql"  # where PostgreSQL's images put the server's socket

SOCKET_FILE = f".s.PGSQL.{DEFAULT_PORT}"

SOCKET_DIRECTORY_PREFIX = "pgbv-docker-sandbox-"

UNIX_PATH_MAX = 107  # bytes of a unix socket's path (sun_path, less its terminating NUL)


@contextlib.contextmanager
def open_docker_sandbox(
    settings: DockerSandboxConfig,
    backup: Backup,
    source: Source | None,
    *,
    repository: Path,
    docker_host: str | None = None,
    allow_network: bool = False,
) -> Iterator[DockerSandbox]:
    """Yields a ready docker sandbox for `backup` and removes it on exit. The engine is at `docker_host`
    (the source's, `source.docker.docker_host`), else the default; containers are labelled with `repository`.

    The container has no network; the agent reaches its server through a private socket directory. When
    the engine cannot see such a directory (a remote engine; the agent in a container without a bind
    mount of the repository), it is refused unless `allow_network` (`verify.allow_network`), which puts
    it on an internal network instead. The image is `verify.docker.image`, else the production
    container's image. Raises DockerUnavailable, SandboxError.
    """
    image = settings.image or (source.image if source is not None else None)
    if not image:
        raise SandboxError("verify.docker: name an image (verify.docker.image), or use a source.docker container")
    client = connect(docker_host, setting="source.docker.docker_host" if docker_host else "DOCKER_HOST")
    repository = repository.resolve()
    _remove_socket_directories(remove_orphans(client, repository))
    engine = docker_host or os.environ.get("DOCKER_HOST") or "the local socket"
    with private_socket_directory(client, repository, engine) as found:
        if isinstance(found, str):
            if not allow_network:
                raise SandboxError(
                    f"the docker sandbox cannot be cut off from the network: {found}; run the agent where the "
                    "engine sees its directories, or set verify.allow_network: true to use an internal Docker "
                    "network, which only the engine's iptables rules cut off"
                )
            logger.warning(
                "the docker sandbox sits on an internal network, cut off by the engine's iptables rules only "
                "(verify.allow_network: true): %s",
                found,
            )
        elif settings.network:
            logger.warning("verify.docker.network %s is not used: the docker sandbox has no network", settings.network)
        sandbox = DockerSandbox(
            client,
            image,
            backup,
            repository=repository,
            network=settings.network,
            socket_directory=None if isinstance(found, str) else found,
        )
        with sandbox:
            yield sandbox


@contextlib.contextmanager
def private_socket_directory(client: Client, repository: Path, engine: str) -> Iterator[tuple[Path, str] | str]:
    """Yields (directory, the engine's path of it) for the sandbox server's socket, or the reason the
    engine (`engine` names it) cannot see one; removes the directory on exit.

    The directory is `socket` inside a 0700 directory of the agent's under the repository's state/ (the
    engine sees that path: the systemd unit's PrivateTmp hides the agent's /tmp from it, and an agent in
    a container has the repository bind-mounted), else under the temp directory: the server's socket
    trusts every local connection, so no account of this host but the agent's (and root) may reach it.
    Inside the container the server's own entrypoint takes the directory over. The first path is the
    agent's (a short alias when the socket's path would be too long), the second the engine's.
    """
    if not is_local_engine(client):
        yield f"the engine at {engine} is not on this host, so it cannot mount a directory of it"
        return
    for base in (Repository(repository).state_dir, Path(tempfile.gettempdir())):
        if not base.is_dir():
            continue
        private = Path(tempfile.mkdtemp(prefix=SOCKET_DIRECTORY_PREFIX, dir=base))
        try:
            directory = private / "socket"
            directory.mkdir()
            directory.chmod(0o777)  # the container's postgres must create its socket; the parent keeps others out
            seen_as = engine_path(client, directory)
            if seen_as is not None:
                with _short_alias(directory) as reachable:
                    yield reachable, seen_as
                return
        finally:
            shutil.rmtree(private, ignore_errors=True)
            if private.exists():
                logger.warning("could not remove the sandbox's socket directory %s", private)
    yield "the agent runs in a container and neither the repository nor its temp directory is bind-mounted into it"


def _remove_socket_directories(paths: list[str]) -> None:
    """Removes the private socket directories (`pgbv-docker-sandbox-*/socket`) of sandboxes a killed run
    left, where the agent sees them at the engine's path (on the host)."""
    for path in map(Path, paths):
        if path.name == "socket" and path.parent.name.startswith(SOCKET_DIRECTORY_PREFIX) and path.is_dir():
            shutil.rmtree(path.parent, ignore_errors=True)


@contextlib.contextmanager
def _short_alias(directory: Path) -> Iterator[Path]:
    """Yields `directory`, or a symlink to it in a private temp directory when the socket's path in it is
    longer than a unix socket address may be (107 bytes; a deep repository path); removes the alias."""
    if len(os.fsencode(directory / SOCKET_FILE)) <= UNIX_PATH_MAX:
        yield directory
        return
    base = tempfile.gettempdir()
    private = Path(tempfile.mkdtemp(prefix="pgbv-", dir=base if len(base) <= UNIX_PATH_MAX // 2 else "/tmp"))
    try:
        alias = private / "s"
        alias.symlink_to(directory)
        yield alias
    finally:
        shutil.rmtree(private, ignore_errors=True)


class DockerSandbox:
    """A throwaway PostgreSQL container of the production image, with one database to restore into.

    It has no network (only its loopback interface), publishes no port, and has a random superuser
    password; the agent counts rows over the server's unix socket, in a private directory bind-mounted
    at the image's socket directory, and pg_restore/psql run inside it over the same socket. Without
    such a directory (`socket_directory` None) it sits on a private internal network (or the one
    `verify.docker.network` names) and is reached at its address. Only the dump itself (file, or
    directory of a directory-format dump) is bind-mounted read-only at the same path, so archive paths
    need no translation and nothing else of the repository is in reach. Labels carry the
    run id and the repository, so a killed run's leftovers are found and removed next time.
    """

    kind = "docker"
    dbname = RESTORE_DATABASE

    def __init__(
        self,
        client: Client,
        image: str,
        backup: Backup,
        *,
        repository: Path,
        network: str | None = None,
        socket_directory: tuple[Path, str] | None = None,
    ) -> None:
        self.backup = backup
        self.socket_directory = socket_directory
        self.container = ThrowawayContainer(client, image, repository=repository, network=network)
        self.name = self.container.name
        self._password = secrets.token_urlsafe(24)
        self.address = ""
        self._inside = DockerExecutor(client, "", self.name)
        self.executor: Executor = self._inside
        self.server_version = ""

    def __enter__(self) -> DockerSandbox:
        try:
            self._start()
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.remove()

    def restore_environment(self) -> dict[str, str]:
        """Returns PG* variables for pg_restore/psql inside the sandbox (unix socket, superuser)."""
        return {"PGUSER": SANDBOX_SUPERUSER, "PGDATABASE": self.dbname, "PGPASSWORD": self._password}

    def archive_path(self, backup: Backup) -> str:
        """Returns the dump's path inside the sandbox: the same as on the host (bind mount)."""
        return str(backup.dump_path.resolve())

    def connect(self) -> Connection:
        """Returns an autocommit connection to the restored database. Raises SourceUnreachable."""
        return self._params(self.dbname).connect()

    def describe(self) -> str:
        """Returns e.g. 'docker container pg-backup-verifier-sandbox-… (postgres:15, PostgreSQL 15.20)'."""
        return f"docker container {self.name} ({self.container.image_label()}, {self.server_version or 'PostgreSQL'})"

    def remove(self) -> None:
        """Removes the container (with its anonymous volumes) and the private network. Never raises."""
        self.container.remove()

    def _start(self) -> None:
        started = time.monotonic()
        # the one dump (a file, or a directory-format dump's directory), never the repository:
        # it also holds the roles file with password hashes and every other backup
        mount = str(self.backup.dump_path.resolve())
        settings = [arg for key, value in throwaway_settings().items() for arg in ("-c", f"{key}={value}")]
        with engine_errors():
            container_id = self.container.start(
                command=["postgres", *settings],
                environment={
                    "POSTGRES_USER": SANDBOX_SUPERUSER,
                    "POSTGRES_PASSWORD": self._password,
                    "POSTGRES_DB": SANDBOX_SUPERUSER,
                },
                read_only_mount=mount,
                writable_mount=((self.socket_directory[1], SOCKET_DIRECTORY_INSIDE) if self.socket_directory else None),
            )
            self._inside = DockerExecutor(self.container.client, container_id, self.name)
            self.executor = self._inside
            self._wait_until_ready()
            self.address = self._reach()
        self._create_database()
        logger.info("docker sandbox %s ready in %.1f s", self.name, time.monotonic() - started)

    def _wait_until_ready(self) -> None:
        """Waits until the final server answers on TCP (the entrypoint's set-up server does not).

        Raises SandboxError with the container's last log lines when it exits or never answers.
        """
        deadline = time.monotonic() + SANDBOX_START_SECONDS
        probe = ["pg_isready", "--quiet", "--host=127.0.0.1", f"--port={DEFAULT_PORT}"]
        while time.monotonic() < deadline:
            if self.container.status() in ("exited", "dead"):
                raise SandboxError(f"sandbox container exited while starting: {self.container.log_tail()}")
            with contextlib.suppress(ContainerNotRunning):
                program = self._inside.start(probe, environment={}, stdout=False)
                if program.wait() == 0:
                    version = self._inside.output(["postgres", "--version"])
                    found = re.search(r"\(PostgreSQL\) (\S+)", version)
                    self.server_version = f"PostgreSQL {found.group(1)}" if found else version.strip()
                    return
            time.sleep(0.2)
        raise SandboxError(
            f"sandbox container not ready after {SANDBOX_START_SECONDS:.0f} s: {self.container.log_tail()}"
        )

    def _reach(self) -> str:
        """Returns where the agent connects: the socket directory, else the container's address.

        Raises SandboxError when the server put no socket in the directory (an image whose server
        keeps its socket elsewhere).
        """
        if self.socket_directory is None:
            return self.container.address()
        directory = self.socket_directory[0]
        if not (directory / SOCKET_FILE).exists():
            raise SandboxError(
                f"the sandbox's server put no socket in {directory}, mounted at {SOCKET_DIRECTORY_INSIDE} "
                "(the image keeps it elsewhere, or the engine does not see this host's directories), so the agent "
                "cannot reach it without a network: use an image of the usual layout, or set "
                "verify.allow_network: true"
            )
        return str(directory)

    def _create_database(self) -> None:
        manifest = self.backup.manifest
        try:
            with self._params(SANDBOX_SUPERUSER).connect() as connection:
                create_restore_database(connection, self.dbname, manifest.source if manifest else None)
        except DatabaseError as error:
            raise SandboxError(f"cannot create the sandbox database: {one_line(error)}") from None

    def _params(self, dbname: str) -> ConnectionParams:
        return ConnectionParams(
            dbname=dbname, host=self.address, port=DEFAULT_PORT, user=SANDBOX_SUPERUSER, password=self._password
        )
