"""Proving one backup: its files against the manifest, readable to the end, restored into a
sandbox, counted and fingerprinted, and compared with the snapshot and with production now."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import TypeVar

from verifier.archive import zstd
from verifier.archive.files import verify_file
from verifier.config import Config
from verifier.errors import VerifierError, one_line
from verifier.pipeline import database_proof
from verifier.pipeline.proof import compare_restored, read_production
from verifier.pipeline.streamed import RestoreWhileDumping
from verifier.postgres import binaries, catalog
from verifier.postgres.backup.dump import TapFactory
from verifier.postgres.connection import DatabaseError, Source
from verifier.postgres.restore.restore_errors import failures
from verifier.postgres.restore.restore_progress import watching_restore
from verifier.postgres.restore.run import (
    RestoreResult,
    detect_server_major,
    detect_source,
    read_to_end,
    restore_archive,
    restore_compressed,
    restore_plain,
)
from verifier.process import LocalExecutor
from verifier.progress import Meter, Step
from verifier.report import Integrity, Verification
from verifier.repository.backups import Backup
from verifier.sandbox import Sandbox, open_sandbox, out_of_space, required_major
from verifier.sandbox.shared import SharedSandbox

logger = logging.getLogger(__name__)
_T = TypeVar("_T")


def check_integrity(backup: Backup, config: Config, *, read_through: bool) -> Integrity:
    """Returns whether the backup's files match their manifest (sha256, per-chunk byte ranges) and,
    with `read_through`, whether the archive reads to the end. A restore reads it to the end anyway,
    so only `check --quick` asks for that. Never raises for a damaged file; raises BinaryMissing."""
    started = time.monotonic()
    problems: list[str] = []
    if backup.problem is not None:  # nothing it names is read: it may point anywhere
        return Integrity(backup.name, checksummed=False, problems=[backup.problem], seconds=0.0, read_through=False)
    if backup.manifest is not None:
        for entry in backup.manifest.files:
            problems.extend(verify_file(backup.dump_path.parent / entry.path, entry).problems)
    if read_through:
        installation = binaries.choose(
            ("pg_restore",),
            configured_dir=config.postgres.bin_dir,
            minimum_major=_dump_major(backup),
            purpose="reading the archive to the end (check --quick)",
        )
        unreadable = read_to_end(LocalExecutor(installation), backup.format, backup.dump_path)
        if unreadable:
            problems.append(unreadable)
    for problem in problems:  # named now, before a restore that may run for hours
        logger.warning("archive: %s", problem)
    return Integrity(
        backup_name=backup.name,
        checksummed=backup.manifest is not None,
        read_through=read_through,
        problems=problems,
        seconds=round(time.monotonic() - started, 3),
    )


def verify_backup(
    backup: Backup,
    config: Config,
    source: Source | None,
    step: Step = lambda _: None,
    damage: Callable[[catalog.Connector], None] | None = None,
) -> Verification:
    """Restores the stored `backup` into a sandbox and compares (a `Proof` of its own). Returns the
    verification (with `error` set when the restore could not be attempted). `damage` (the self-test)
    alters the restored copy before the comparison. Raises the VerifierErrors that mean "could not
    run" (exit 3: BinaryMissing, SandboxError, DockerUnavailable)."""
    with Proof(config) as proof:
        return proof.prove(backup, source, step, damage)


class Proof:
    """Proving one backup in a sandbox, from opening the sandbox to removing it: the one owner of that
    flow, whichever way the archive arrives. `Proof(config)` restores the stored file; `while_dumping`
    restores while the dump writes it (see `streamed`: hand `tap_for` to `take_backup`), and falls
    back to the stored file when that restore did not start. Use as a context manager: leaving it stops
    a restore still running and removes every sandbox it opened."""

    def __init__(
        self, config: Config, along: RestoreWhileDumping | None = None, shared: SharedSandbox | None = None
    ) -> None:
        self.config = config
        self._along = along
        self._shared = shared if config.verify.sandbox == "local" else None
        self._owned = contextlib.ExitStack()
        if self._shared is not None:
            self._owned.callback(self._shared.release)  # runs last: after the restore reading along stopped
        if along is not None:
            self._owned.enter_context(along)

    @classmethod
    def while_dumping(cls, config: Config, meter: Meter | None, shared: SharedSandbox | None = None) -> Proof:
        """Returns a proof whose sandbox starts beside the dump and whose restore reads the dump's stream
        (`meter`, the dump step's, shows the rows restored). With `shared` (a night of several
        databases) the restore goes into a fresh database of the night's sandbox instead."""
        return cls(config, RestoreWhileDumping(config, meter, shared), shared)

    def __enter__(self) -> Proof:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._owned.__exit__(kind, error, traceback)

    @property
    def tap_for(self) -> TapFactory | None:
        """Returns what `take_backup` asks for the tap of the archive's stream (None: not restoring along)."""
        return self._along.tap_for if self._along is not None else None

    @property
    def restoring_along(self) -> bool:
        """Returns True when pg_restore read (or is reading) the dump's stream."""
        return self._along is not None and self._along.restoring

    @property
    def sandbox_seconds(self) -> float | None:
        """Returns how long the sandbox beside the dump took to start (None: none started)."""
        return self._along.sandbox_seconds if self._along is not None else None

    def prove(
        self,
        backup: Backup,
        source: Source | None,
        step: Step = lambda _: None,
        damage: Callable[[catalog.Connector], None] | None = None,
    ) -> Verification:
        """Restores `backup` (finishing the restore that read along, else from the stored file), then
        compares it with its manifest and with production now (`source`, None: not compared). `damage`
        (the self-test) alters the restored copy before the comparison. Returns the verification (with
        `error` set when the restore could not be attempted or completed). Raises the VerifierErrors that
        mean "could not run" (exit 3: BinaryMissing, SandboxError, DockerUnavailable)."""
        verification = Verification(
            backup_name=backup.name,
            exact=backup.manifest is not None,
            restored=False,
            sandbox=self.config.verify.sandbox,
        )
        with _errors_recorded(verification), contextlib.ExitStack() as opened:
            if self._along is not None and self._along.restoring:
                sandbox, result = self._finish_along(backup, verification, step)
            else:
                sandbox, result = self._restore_file(backup, source, verification, step, opened)
            _record_restore(verification, result, sandbox)
            subscriptions = database_proof.restore_properties(sandbox, backup, verification)
            if damage is not None:
                damage(sandbox.connect)
            compare_restored(
                sandbox, backup.manifest, self.config, source, verification, step, archive_subscriptions=subscriptions
            )
        return verification

    def _finish_along(self, backup: Backup, verification: Verification, step: Step) -> tuple[Sandbox, RestoreResult]:
        """Waits for the restore that read the dump's stream. Returns its sandbox and what it reported."""
        assert self._along is not None and self._along.sandbox is not None
        sandbox = self._along.sandbox
        verification.sandbox = sandbox.describe()
        _log_roles_created(self._along.roles_created)
        with watching_restore(sandbox.connect, _expected_rows(backup), step("restore")):  # indexes, constraints
            result, verification.restore_seconds = self._along.finish()
        return sandbox, result

    def _restore_file(
        self,
        backup: Backup,
        source: Source | None,
        verification: Verification,
        step: Step,
        opened: contextlib.ExitStack,
    ) -> tuple[Sandbox, RestoreResult]:
        """Opens a sandbox (into `opened`) and restores the stored file into it. Returns the sandbox and
        what the restore reported."""
        config = self.config
        detected_major = detect_server_major(backup.dump_path, backup.format)
        manifest = backup.manifest
        production_roles = None
        if (manifest is None or not manifest.roles) and source is not None:
            # the owners and grants of a dump without role list name production's roles
            production_roles = read_production(source, verification, catalog.list_roles)
        meter = step("restore")
        started = time.monotonic()
        sandbox: Sandbox
        if self._shared is not None:  # a fresh database in the night's sandbox
            minimum, preferred = required_major(backup, detected_major)
            sandbox = self._shared.fresh(
                manifest.source if manifest else detect_source(backup.dump_path, backup.format),
                minimum_major=minimum,
                preferred_major=preferred,
                expected_bytes=backup.size_bytes,
            )
        else:
            sandbox = opened.enter_context(
                open_sandbox(
                    config.verify,
                    config.postgres,
                    backup,
                    source,
                    detected_major,
                    repository=config.repository.path,
                    docker_host=config.source.docker.docker_host if config.source.docker is not None else None,
                )
            )
        verification.sandbox = sandbox.describe()
        with sandbox.connect() as connection:
            created = catalog.create_missing_roles(
                connection, (manifest.roles if manifest else []) or production_roles or []
            )
        _log_roles_created(len(created))
        with watching_restore(sandbox.connect, _expected_rows(backup), meter):
            result = _restore_archive(sandbox, backup, config.verify.jobs)
        verification.restore_seconds = round(time.monotonic() - started, 3)
        return sandbox, result


@contextlib.contextmanager
def _errors_recorded(verification: Verification) -> Iterator[None]:
    """Records in `verification.error` what ends a verification early; re-raises the VerifierErrors
    that mean "could not run" (exit 3: a program missing, no sandbox user): the caller reports those."""
    try:
        yield
    except VerifierError as error:
        if error.could_not_run:
            raise
        verification.error = str(error)
    except DatabaseError as error:
        verification.error = f"sandbox database error: {one_line(error)}"
    except catalog.CountFailed as error:
        verification.error = f"counting the restored copy failed: {error}"


def _record_restore(verification: Verification, result: RestoreResult, sandbox: Sandbox) -> None:
    """Records what the restore reported. Raises SandboxError when it filled the sandbox's disk."""
    disk_full = out_of_space(sandbox, result.issues)
    if disk_full is not None:
        raise disk_full
    verification.restore_issues = result.issues
    # a REFRESH that needed a foreign server is no failed restore (the view is named not verifiable)
    verification.restored = result.completed or bool(result.issues and not failures(result.issues))
    logger.info(
        "restore: %s in %.1fs, %d issue(s)",
        "complete" if result.completed else "INCOMPLETE",
        verification.restore_seconds,
        len(result.issues),
    )


def _restore_archive(sandbox: Sandbox, backup: Backup, jobs: int) -> RestoreResult:
    """Restores the stored file of `backup` into `sandbox` the way its format needs. Returns what the
    restore reported."""
    environment = sandbox.restore_environment()
    publications = sandbox.kind != "server"  # publishing all tables needs a superuser
    if backup.format == "plain":
        return restore_plain(
            sandbox.executor, backup.dump_path, sandbox.dbname, environment, server=sandbox.kind == "server"
        )
    if backup.format == "custom" and zstd.is_compressed(backup.dump_path):
        return restore_compressed(
            sandbox.executor, backup.dump_path, sandbox.dbname, environment, publications=publications
        )
    return restore_archive(
        sandbox.executor, sandbox.archive_path(backup), sandbox.dbname, jobs, environment, publications=publications
    )


def _expected_rows(backup: Backup) -> int | None:
    return sum(backup.manifest.counts_by_table().values()) if backup.manifest else None


def _log_roles_created(count: int) -> None:
    if count:
        logger.info("sandbox: created %d role(s) without password or login for owners and grants", count)


def _dump_major(backup: Backup) -> int | None:
    if backup.manifest is None:
        return None
    try:
        return int(backup.manifest.pg_dump_version.split(".")[0])
    except ValueError:
        return None
