"""One local sandbox for a night of several databases: the cluster is started once (initdb copied from
the template, the server started and jailed) and each database's backup is restored into a fresh
restore database of it, dropped again before the next — the fixed cost is paid once per night.

The databases of one server share their roles (globals) as in production, so the roles one database's
proof creates are the same the next one needs; nothing else outlives a restore database.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from pathlib import Path
from types import TracebackType

from verifier.config import PostgresConfig, VerifyConfig
from verifier.manifest import SourceInfo
from verifier.postgres.connection import DatabaseError
from verifier.sandbox import open_local_sandbox
from verifier.sandbox.local import LocalSandbox

logger = logging.getLogger(__name__)


class SharedSandbox:
    """The night's local sandbox, opened at the first database that needs it and removed when the
    night ends (leaving the `with` block). `starts` counts the clusters started (1 in a usual night;
    one more only when a backup needs a newer server than the running one)."""

    def __init__(self, verify: VerifyConfig, postgres: PostgresConfig, repository: Path) -> None:
        self.verify = verify
        self.postgres = postgres
        self.repository = repository
        self.starts = 0
        self._sandbox: LocalSandbox | None = None
        self._open = contextlib.ExitStack()
        self._lock = threading.Lock()  # the restore reading along opens it from its own thread

    def __enter__(self) -> SharedSandbox:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        with self._lock:
            self._sandbox = None
            self._open.__exit__(kind, error, traceback)

    def fresh(
        self,
        source: SourceInfo | None,
        *,
        minimum_major: int | None,
        preferred_major: int | None,
        expected_bytes: int = 0,
    ) -> LocalSandbox:
        """Returns the running sandbox with an empty restore database made with `source`'s locale,
        starting the sandbox first when none runs (or the running one is older than `minimum_major`).
        Raises SandboxError, BinaryMissing, psycopg.Error."""
        with self._lock:
            sandbox = self._sandbox
            if sandbox is not None and minimum_major is not None and sandbox.cluster.installation.major < minimum_major:
                self._open.close()  # a newer server is needed: this one is removed
                self._open = contextlib.ExitStack()
                sandbox = self._sandbox = None
            if sandbox is None:
                sandbox = self._open.enter_context(
                    open_local_sandbox(
                        self.verify,
                        self.postgres,
                        source,
                        minimum_major=minimum_major,
                        preferred_major=preferred_major,
                        repository=self.repository,
                        expected_bytes=expected_bytes,
                        create_database=False,
                    )
                )
                self._sandbox = sandbox
                self.starts += 1
                logger.info("sandbox: started once for the night (%s)", sandbox.describe())
            else:
                sandbox.drop_database()
            sandbox.create_database(source)
            return sandbox

    def release(self) -> None:
        """Drops the restore database after a proof (its disk is free for the next); a failure to drop
        is logged, and the next `fresh` tries again."""
        with self._lock:
            if self._sandbox is None:
                return
            try:
                self._sandbox.drop_database()
            except DatabaseError as error:
                logger.warning("sandbox: could not drop the restored database: %s", error)
