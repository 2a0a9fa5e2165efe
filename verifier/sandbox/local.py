"""The local sandbox: a temporary cluster from this host's binaries, run as the sandbox account."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from verifier.config import VerifyConfig
from verifier.errors import SandboxError
from verifier.manifest import SourceInfo
from verifier.postgres import binaries
from verifier.postgres.catalog import Connection
from verifier.postgres.restore.run import RESTORE_DATABASE, create_restore_database, drop_restore_database
from verifier.postgres.throwaway.cluster import SUPERUSER, TemporaryCluster, remove_orphans
from verifier.process import Executor, LocalExecutor
from verifier.repository.backups import Backup
from verifier.sandbox.account import check_run_as
from verifier.sandbox.reach import require_reach
from verifier.units import mebibytes


class LocalSandbox:
    """A temporary cluster on this host, with one database the backup is restored into.

    The server and psql run as `verify.run_as` (a dedicated unprivileged account) with nothing of
    the agent's environment; pg_restore runs as the agent, which alone can read the repository.
    """

    kind = "local"
    dbname = RESTORE_DATABASE

    def __init__(
        self,
        installation: binaries.Installation,
        verify: VerifyConfig,
        source: SourceInfo | None,
        *,
        expected_bytes: int = 0,
        create_database: bool = True,
        templates: Path | None = None,
    ) -> None:
        """`source` gives the restore database's locale; `expected_bytes` (the backup's size) is checked
        against the free space; without `create_database` the caller creates it (`create_database`);
        `templates` is where the pristine initdb it starts from is kept (None: initdb every time).

        Raises SandboxError when the sandbox account may not be used or cannot reach the programs or
        its directories."""
        check_run_as(verify.run_as, allow_privileged=verify.allow_privileged_run_as)
        self.cluster = TemporaryCluster(
            installation,
            run_as=verify.run_as,
            base_dir=verify.temp_dir,
            templates=templates,
            isolated=not verify.allow_network,
        )
        require_reach(installation, verify.temp_dir, self.cluster.user)  # before anything starts as that account
        self.executor: Executor = LocalExecutor(installation, sandbox_user=self.cluster.user)
        self.source = source
        self.expected_bytes = expected_bytes
        self.creates_database = create_database
        self.locale_note = ""
        self.orphan_note = ""

    def __enter__(self) -> LocalSandbox:
        orphans = remove_orphans(self.cluster.base_dir)
        free = shutil.disk_usage(self.cluster.base_dir or tempfile.gettempdir()).free
        if free < self.expected_bytes:
            raise SandboxError(
                f"the sandbox would run out of disk space: {mebibytes(free)} free in "
                f"{self.cluster.base_dir or tempfile.gettempdir()}, the backup alone is "
                f"{mebibytes(self.expected_bytes)}; point verify.temp_dir at a larger disk"
            )
        if orphans:
            self.orphan_note = (
                f"; removed {len(orphans)} orphan sandbox{'es' if len(orphans) > 1 else ''} left by a killed run"
            )
        try:  # start() inside the try: an interrupt right after it must still stop the cluster
            self.cluster.start()
            if self.creates_database:
                self.create_database(self.source)
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

    def drop_database(self) -> None:
        """Drops the restore database (with whatever is still connected to it) when it exists, so the
        running cluster can take the next backup. Raises psycopg.Error."""
        with self.cluster.connect() as connection:
            drop_restore_database(connection, self.dbname)

    def create_database(self, source: SourceInfo | None) -> None:
        """Creates the restore database with `source`'s encoding and locale when this server has them.
        Raises psycopg.Error."""
        with self.cluster.connect() as connection:
            note = create_restore_database(connection, self.dbname, source)
        self.locale_note = f"; {note}" if note else ""
