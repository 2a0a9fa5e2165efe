"""Where a backup is restored for proof: behind one small interface, always torn down.

`local` (default): a temporary cluster from this host's binaries (`verifier.postgres.cluster`).
`server`: a scratch database the agent creates on a server the user names, and drops.
`docker`: a throwaway container of the production image (see `verifier.docker`).
Each is a context manager; leaving it (normally, by error, Ctrl-C or SIGTERM) removes everything.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from typing import Protocol

import psycopg
from psycopg import sql

from verifier.config import Config, ServerSandboxConfig
from verifier.errors import SandboxError
from verifier.postgres import binaries
from verifier.postgres.catalog import Connection
from verifier.postgres.cluster import SUPERUSER, TemporaryCluster, remove_orphans
from verifier.postgres.connection import ConnectionParams, Source
from verifier.postgres.restore import create_restore_database
from verifier.process import Executor, LocalExecutor
from verifier.report import RestoreIssue
from verifier.repository.backups import Backup
from verifier.sandbox_account import check_run_as

logger = logging.getLogger(__name__)

RESTORED_DATABASE = "restored"
_DISK_FULL = ("No space left on device", "could not extend file")  # PostgreSQL says either


class Sandbox(Protocol):
    """A database a backup can be restored into and counted in."""

    kind: str
    executor: Executor
    dbname: str

    def restore_environment(self) -> dict[str, str]:
        """Returns the PG* environment that points the executor's pg_restore/psql at the database."""

    def archive_path(self, backup: Backup) -> str:
        """Returns the dump's path as the executor sees it."""

    def connect(self) -> Connection:
        """Returns an autocommit connection to the restored database. Raises SandboxError."""

    def describe(self) -> str:
        """Returns a one-line description for the report."""


def required_major(backup: Backup, detected_source_major: int | None) -> tuple[int | None, int | None]:
    """Returns (minimum major, preferred major) of the server a backup must be restored into.

    The server must be at least the source's major and at least the pg_dump's that wrote the
    archive (pg_restore cannot read newer archives); the source's own major is preferred.
    """
    source_major = backup.manifest.source.major if backup.manifest else detected_source_major
    dump_major = None
    if backup.manifest is not None:
        with contextlib.suppress(ValueError):
            dump_major = int(backup.manifest.pg_dump_version.split(".")[0])
    majors = [major for major in (source_major, dump_major) if major is not None]
    return (max(majors) if majors else None), source_major


@contextlib.contextmanager
def open_sandbox(
    config: Config, backup: Backup, source: Source | None, detected_source_major: int | None = None
) -> Iterator[Sandbox]:
    """Yields a ready sandbox of the configured kind and removes it on exit.

    Raises SandboxError, BinaryMissing, DockerUnavailable.
    """
    minimum, preferred = required_major(backup, detected_source_major)
    if config.verify.sandbox == "local":
        installation = binaries.choose(
            ("initdb", "postgres", "pg_restore", "psql"),
            configured_dir=config.postgres.bin_dir,
            minimum_major=minimum,
            prefer_major=preferred,
            purpose="the local sandbox",
        )
        with LocalSandbox(installation, config, backup) as sandbox:
            yield sandbox
    elif config.verify.sandbox == "server":
        assert config.verify.server is not None
        if backup.manifest is None:  # a real server: only what the agent itself dumped
            raise SandboxError(
                f"verify.sandbox server restores only backups the agent made (with a manifest); "
                f"{backup.dump_path.name} has none: verify it with verify.sandbox local"
            )
        installation = binaries.choose(
            ("pg_restore", "psql"),
            configured_dir=config.postgres.bin_dir,
            minimum_major=minimum,
            prefer_major=preferred,
            purpose="restoring into the scratch server",
        )
        with ServerSandbox(config.verify.server, installation, source) as sandbox:
            yield sandbox
    else:
        from verifier import docker  # the Docker SDK is imported only when a container sandbox is configured

        with docker.open_docker_sandbox(config, backup, source) as sandbox:
            yield sandbox


class LocalSandbox:
    """A temporary cluster on this host, with one database the backup is restored into.

    The server and psql run as `verify.run_as` (a dedicated unprivileged account) with nothing of
    the agent's environment; pg_restore runs as the agent, which alone can read the repository.
    """

    kind = "local"
    dbname = RESTORED_DATABASE

    def __init__(self, installation: binaries.Installation, config: Config, backup: Backup) -> None:
        check_run_as(config.verify.run_as, allow_privileged=config.verify.allow_privileged_run_as)
        self.cluster = TemporaryCluster(installation, run_as=config.verify.run_as, base_dir=config.verify.temp_dir)
        self.executor: Executor = LocalExecutor(installation, sandbox_user=self.cluster.user)
        self.backup = backup
        self.locale_note = ""
        self.orphan_note = ""

    def __enter__(self) -> LocalSandbox:
        orphans = remove_orphans(self.cluster.base_dir)
        free = shutil.disk_usage(self.cluster.base_dir or tempfile.gettempdir()).free
        if free < self.backup.size_bytes:
            raise SandboxError(
                f"the sandbox would run out of disk space: {_mebibytes(free)} free in "
                f"{self.cluster.base_dir or tempfile.gettempdir()}, the backup alone is "
                f"{_mebibytes(self.backup.size_bytes)}; point verify.temp_dir at a larger disk"
            )
        if orphans:
            self.orphan_note = (
                f"; removed {len(orphans)} orphan sandbox{'es' if len(orphans) > 1 else ''} left by a killed run"
            )
        try:  # start() inside the try: an interrupt right after it must still stop the cluster
            self.cluster.start()
            self._create_database()
        except BaseException:
            self.cluster.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.cluster.stop()

    def restore_environment(self) -> dict[str, str]:
        """Returns PG* variables for the cluster's socket and the restore database."""
        return {
            "PGHOST": self.cluster.host,
            "PGPORT": str(self.cluster.port),
            "PGUSER": SUPERUSER,
            "PGDATABASE": self.dbname,
        }

    def archive_path(self, backup: Backup) -> str:
        """Returns the dump's path on this host."""
        return str(backup.dump_path)

    def connect(self) -> Connection:
        """Returns a connection to the restored database. Raises psycopg.Error."""
        return self.cluster.connect(self.dbname)

    def describe(self) -> str:
        """Returns e.g. 'local PostgreSQL 15.18 (temporary cluster)'."""
        version = self.cluster.installation.version
        return f"local PostgreSQL {version} (temporary cluster){self.locale_note}{self.orphan_note}"

    def _create_database(self) -> None:
        with self.cluster.connect() as connection:
            note = create_restore_database(
                connection, self.dbname, self.backup.manifest.source if self.backup.manifest else None
            )
        self.locale_note = f"; {note}" if note else ""


def out_of_space(sandbox: Sandbox, issues: list[RestoreIssue]) -> SandboxError | None:
    """Returns the error for a restore that filled the sandbox's disk (the machine's problem, not the
    backup's), or None when no issue says so."""
    full = [issue for issue in issues if any(sign in issue.message for sign in _DISK_FULL)]
    if not full:
        return None
    where = ""
    if isinstance(sandbox, LocalSandbox) and sandbox.cluster.directory is not None:
        free = shutil.disk_usage(sandbox.cluster.directory).free
        where = f"; {_mebibytes(free)} free in {sandbox.cluster.directory.parent}"
    return SandboxError(
        f"the sandbox ran out of disk space ({full[0].object}: {full[0].message}){where}; "
        "point verify.temp_dir at a larger disk"
    )


def _mebibytes(size: int) -> str:
    return f"{size / 1048576:.1f} MiB"


class ServerSandbox:
    """A scratch database on a server the user names: created by the agent, dropped by the agent,
    never the source database."""

    kind = "server"

    def __init__(
        self, settings: ServerSandboxConfig, installation: binaries.Installation, source: Source | None
    ) -> None:
        self.settings = settings
        self.executor: Executor = LocalExecutor(installation)
        self.dbname = f"{settings.database_prefix}{uuid.uuid4().hex[:12]}"
        self.maintenance = ConnectionParams(
            dbname=settings.maintenance_db,
            host=settings.host,
            port=settings.port,
            user=settings.user,
            password=settings.password.get_secret_value() if settings.password else None,
        )
        if source is not None and self.dbname == source.params.dbname:
            raise SandboxError("verify.server: the scratch database would be the source database")
        self.created = False

    def __enter__(self) -> ServerSandbox:
        try:
            with psycopg.connect(**self.maintenance.psycopg_kwargs(), autocommit=True) as connection:  # type: ignore[arg-type]
                connection.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(self.dbname)))
        except psycopg.Error as error:
            raise SandboxError(
                f"verify.server: cannot create scratch database on {self.maintenance.label}: "
                f"{' '.join(str(error).split())}"
            ) from None
        self.created = True
        return self

    def __exit__(self, *exc_info: object) -> None:
        if not self.created:
            return
        try:
            with psycopg.connect(**self.maintenance.psycopg_kwargs(), autocommit=True) as connection:  # type: ignore[arg-type]
                connection.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.dbname))
                )
        except psycopg.Error as error:
            logger.error("could not drop scratch database %s: %s", self.dbname, " ".join(str(error).split()))

    def _params(self) -> ConnectionParams:
        return ConnectionParams(
            dbname=self.dbname,
            host=self.maintenance.host,
            port=self.maintenance.port,
            user=self.maintenance.user,
            password=self.maintenance.password,
        )

    def restore_environment(self) -> dict[str, str]:
        """Returns PG* variables for the scratch database (password included, in the environment only)."""
        return self._params().libpq_environment()

    def archive_path(self, backup: Backup) -> str:
        """Returns the dump's path on this host."""
        return str(backup.dump_path)

    def connect(self) -> Connection:
        """Returns a connection to the scratch database. Raises psycopg.Error."""
        return psycopg.connect(**self._params().psycopg_kwargs(), autocommit=True)  # type: ignore[arg-type]

    def describe(self) -> str:
        """Returns e.g. 'scratch database pgbv_verify_… on host:5432'."""
        return f"scratch database {self.dbname} on {self.maintenance.host or 'local socket'}:{self.maintenance.port}"
