"""Restoring while dumping: for `verifier run` with a custom archive and the local sandbox, the
sandbox starts while production is snapshotted, and pg_restore reads pg_dump's stream as it is
written (and compressed, and hashed into the repository), so the dump's time disappears into the
restore's. pg_dump waits for the restore when the restore is slower: the snapshot is then held for
the restore's data phase instead of the dump's alone (the indexes are built after pg_dump ended).

The stored file is proven separately: its sha256 against the manifest, as for every backup.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from types import TracebackType

from verifier.config import Config
from verifier.errors import VerifierError, one_line
from verifier.manifest import SourceInfo
from verifier.postgres import catalog
from verifier.postgres.restore.restore_progress import watching_restore
from verifier.postgres.restore.run import RestoreResult, StreamedRestore
from verifier.progress import Meter
from verifier.sandbox import open_local_sandbox
from verifier.sandbox.local import LocalSandbox
from verifier.sandbox.shared import SharedSandbox

logger = logging.getLogger(__name__)


def applies(config: Config) -> bool:
    """Returns True when `verifier run` can restore while it dumps: a custom archive the agent
    compresses, restored into the local sandbox."""
    dump = config.dump
    return dump.format == "custom" and dump.compression is None and config.verify.sandbox == "local"


class RestoreWhileDumping:
    """The sandbox and the restore that read along with one dump: how the archive arrives in the
    sandbox when `verify.Proof` restores while dumping. Use as a context manager: leaving it stops
    pg_restore and removes the sandbox, whatever happened.

    `tap_for` is handed to `take_backup`; after the dump, `finish` waits for pg_restore. When the
    sandbox could not be started, `error` says why and nothing was restored: the proof restores the
    stored backup the ordinary way instead (and meets the same error there, reported as usual).
    `meter` (the dump step's) shows the rows restored beside the bytes written.
    """

    def __init__(self, config: Config, meter: Meter | None = None, shared: SharedSandbox | None = None) -> None:
        self.config = config
        self.meter = meter
        self.shared = shared  # the night's sandbox of several databases (None: one of its own)
        self.sandbox: LocalSandbox | None = None
        self.restore: StreamedRestore | None = None
        self.error: BaseException | None = None
        self.sandbox_seconds: float | None = None
        self.restore_started: float | None = None
        self.roles_created = 0
        self._thread: threading.Thread | None = None
        self._sandbox_open = contextlib.ExitStack()  # entered by the opening thread, closed by the owner
        self._watching = contextlib.ExitStack()

    def __enter__(self) -> RestoreWhileDumping:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self.restore is not None:
            self.restore.abort()  # a no-op once it finished
        self._watching.close()
        if self._thread is not None:
            self._thread.join()
        self._sandbox_open.__exit__(kind, error, traceback)

    @property
    def restoring(self) -> bool:
        """Returns True when pg_restore read (or is reading) the dump's stream."""
        return self.restore is not None

    def tap_for(self, source: SourceInfo, roles: list[str]) -> _RestoreTap:
        """Starts the sandbox in the background and returns the tap `take_backup` feeds: its first
        chunk waits for the sandbox, creates the database and production's roles, starts pg_restore."""
        started = time.monotonic()
        self._thread = threading.Thread(target=self._open, args=(source, started), name="sandbox-start", daemon=True)
        self._thread.start()
        return _RestoreTap(self, source, roles)

    def finish(self) -> tuple[RestoreResult, float]:
        """Ends pg_restore's input and waits for it (the post-data section: indexes, constraints).
        Returns what it reported and the seconds since it started."""
        assert self.restore is not None and self.restore_started is not None
        result = self.restore.finish()
        self._watching.close()
        return result, round(time.monotonic() - self.restore_started, 3)

    def _open(self, source: SourceInfo, started: float) -> None:
        try:
            if self.shared is not None:
                self.sandbox = self.shared.fresh(source, minimum_major=source.major, preferred_major=source.major)
            else:
                sandbox = self._sandbox_open.enter_context(
                    open_local_sandbox(
                        self.config.verify,
                        self.config.postgres,
                        source,
                        minimum_major=source.major,
                        preferred_major=source.major,
                        repository=self.config.repository.path,
                        create_database=False,
                    )
                )
                self.sandbox = sandbox
                sandbox.create_database(source)
            self.sandbox_seconds = round(time.monotonic() - started, 3)
        except Exception as error:
            self.error = error

    def _start_restore(self, source: SourceInfo, roles: list[str]) -> None:
        assert self._thread is not None
        self._thread.join()
        if self.error is not None or self.sandbox is None:
            if isinstance(self.error, VerifierError) and self.error.could_not_run:
                # could not run (a program, the account or its reach): the verification after the dump meets
                # the same error and reports it; promising that verification would be untrue
                logger.warning("sandbox: %s", _why_not_started(self.error))
            else:
                logger.warning(
                    "sandbox: %s; the backup is verified after the dump instead", _why_not_started(self.error)
                )
            return
        try:
            with self.sandbox.connect() as connection:
                self.roles_created = len(catalog.create_missing_roles(connection, roles))
            self.restore = StreamedRestore(
                self.sandbox.executor, self.sandbox.dbname, self.sandbox.restore_environment()
            )
            self.restore_started = time.monotonic()
            self._watching.enter_context(watching_restore(self.sandbox.connect, None, self.meter))
        except Exception as error:
            self.error = error
            logger.warning("sandbox: %s; the backup is verified after the dump instead", one_line(error))


def _why_not_started(error: BaseException | None) -> str:
    return "not started" if error is None else one_line(error)


class _RestoreTap:
    """The tap `take_backup` feeds: the first chunk starts the restore (waiting for the sandbox)."""

    def __init__(self, owner: RestoreWhileDumping, source: SourceInfo, roles: list[str]) -> None:
        self.owner = owner
        self.source = source
        self.roles = roles
        self.flowing = threading.Event()

    def __call__(self, chunk: bytes) -> None:
        """Feeds `chunk` to pg_restore, starting it with the first one."""
        if not self.flowing.is_set():
            try:
                self.owner._start_restore(self.source, self.roles)
            finally:
                self.flowing.set()
        if self.owner.restore is not None:
            self.owner.restore.feed(chunk)

    def wait_until_flowing(self, timeout: float) -> bool:
        """Returns True once the restore reads the stream (or was given up), False after `timeout`."""
        return self.flowing.wait(timeout)
