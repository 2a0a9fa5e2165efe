"""The server sandbox: a scratch database on a server the user names, created and dropped by the agent."""

from __future__ import annotations

import logging
import uuid

from verifier.config import ServerSandboxConfig
from verifier.errors import SandboxError, one_line
from verifier.postgres import binaries
from verifier.postgres.catalog import Connection
from verifier.postgres.connection import ConnectionParams, DatabaseError, Source
from verifier.postgres.restore.run import create_scratch_database, drop_scratch_database
from verifier.process import Executor, LocalExecutor
from verifier.repository.backups import Backup

logger = logging.getLogger(__name__)


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
            create_scratch_database(self.maintenance, self.dbname)
        except DatabaseError as error:
            raise SandboxError(
                f"verify.server: cannot create scratch database on {self.maintenance.label}: {one_line(error)}"
            ) from None
        self.created = True
        return self

    def __exit__(self, *exc_info: object) -> None:
        if not self.created:
            return
        try:
            drop_scratch_database(self.maintenance, self.dbname)
        except DatabaseError as error:
            logger.error("could not drop scratch database %s: %s", self.dbname, one_line(error))

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
        """Returns a connection to the scratch database. Raises DatabaseError."""
        return self._params().connect_plain()

    def describe(self) -> str:
        """Returns e.g. 'scratch database pgbv_verify_… on host:5432'."""
        return f"scratch database {self.dbname} on {self.maintenance.host or 'local socket'}:{self.maintenance.port}"
