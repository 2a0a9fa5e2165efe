"""Proving one backup: its files against the manifest, readable to the end, restored into a
sandbox, counted and fingerprinted, and compared with the snapshot and with production now."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from verifier.archive import zstd
from verifier.archive.files import verify_file
from verifier.config import Config
from verifier.errors import VerifierError, one_line
from verifier.pipeline import database_proof
from verifier.pipeline.proof import compare_restored, read_production
from verifier.pipeline.streamed import RestoreWhileDumping
from verifier.postgres import binaries, catalog
from verifier.postgres.connection import DatabaseError, Source
from verifier.postgres.restore.restore_errors import failures
from verifier.postgres.restore.restore_progress import watching_restore
from verifier.postgres.restore.run import (
    RestoreResult,
    detect_server_major,
    read_to_end,
    restore_archive,
    restore_compressed,
    restore_plain,
)
from verifier.process import LocalExecutor
from verifier.progress import Step
from verifier.report import Integrity, Verification
from verifier.repository.backups import Backup
from verifier.sandbox import Sandbox, open_sandbox, out_of_space

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
    """Restores `backup` into a sandbox and compares. Returns the verification (with `error` set when
    the restore could not be attempted). `damage` (the self-test) alters the restored copy before the
    comparison. Raises the VerifierErrors that mean "could not run" (exit 3: BinaryMissing,
    SandboxError, DockerUnavailable)."""
    verification = Verification(
        backup_name=backup.name, exact=backup.manifest is not None, restored=False, sandbox=config.verify.sandbox
    )
    with _errors_recorded(verification):
        _restore_and_compare(backup, config, source, verification, step, damage)
    return verification


def verify_streamed(
    backup: Backup, config: Config, source: Source | None, streamed: RestoreWhileDumping, step: Step
) -> Verification:
    """Finishes the restore that read along with the dump of `backup` and compares. Returns the
    verification (with `error` set when it could not be completed). Raises the VerifierErrors that
    mean "could not run" (exit 3)."""
    verification = Verification(backup_name=backup.name, exact=True, restored=False, sandbox=config.verify.sandbox)
    assert streamed.sandbox is not None
    sandbox = streamed.sandbox
    with _errors_recorded(verification):
        verification.sandbox = sandbox.describe()
        if streamed.roles_created:
            logger.info(
                "sandbox: created %d role(s) without password or login for owners and grants", streamed.roles_created
            )
        expected_rows = sum(backup.manifest.counts_by_table().values()) if backup.manifest else None
        with watching_restore(sandbox.connect, expected_rows, step("restore")):  # the indexes, constraints
            result, verification.restore_seconds = streamed.finish()
        _record_restore(verification, result, sandbox)
        subscriptions = database_proof.restore_properties(sandbox, backup, verification)
        compare_restored(
            sandbox, backup.manifest, config, source, verification, step, archive_subscriptions=subscriptions
        )
    return verification


@contextlib.contextmanager
def _errors_recorded(verification: Verification) -> Iterator[None]:
    """Records in `verification.error` what ends a verification early; re-raises the VerifierErrors
    that mean "could not run" (exit 3: a program missing, no sandbox user): the caller reports those."""
    try:
        yield
    except VerifierError as error:
        if error.exit_code == 3:
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


def _restore_and_compare(
    backup: Backup,
    config: Config,
    source: Source | None,
    verification: Verification,
    step: Step,
    damage: Callable[[catalog.Connector], None] | None = None,
) -> None:
    detected_major = detect_server_major(backup.dump_path, backup.format)
    manifest = backup.manifest
    production_roles = None
    if (manifest is None or not manifest.roles) and source is not None:
        # the owners and grants of a dump without role list name production's roles
        production_roles = read_production(source, verification, catalog.list_roles)
    meter = step("restore")
    started = time.monotonic()
    expected_rows = sum(backup.manifest.counts_by_table().values()) if backup.manifest else None
    with open_sandbox(
        config.verify,
        config.postgres,
        backup,
        source,
        detected_major,
        repository=config.repository.path,
        docker_host=config.source.docker.docker_host if config.source.docker is not None else None,
    ) as sandbox:
        verification.sandbox = sandbox.describe()
        with sandbox.connect() as connection:
            created = catalog.create_missing_roles(
                connection, (manifest.roles if manifest else []) or production_roles or []
            )
        if created:
            logger.info("sandbox: created %d role(s) without password or login for owners and grants", len(created))
        environment = sandbox.restore_environment()
        publications = sandbox.kind != "server"  # publishing all tables needs a superuser
        with watching_restore(sandbox.connect, expected_rows, meter):
            if backup.format == "plain":
                result = restore_plain(
                    sandbox.executor,
                    backup.dump_path,
                    sandbox.dbname,
                    environment,
                    server=sandbox.kind == "server",
                )
            elif backup.format == "custom" and zstd.is_compressed(backup.dump_path):
                result = restore_compressed(
                    sandbox.executor, backup.dump_path, sandbox.dbname, environment, publications=publications
                )
            else:
                result = restore_archive(
                    sandbox.executor,
                    sandbox.archive_path(backup),
                    sandbox.dbname,
                    config.verify.jobs,
                    environment,
                    publications=publications,
                )
        verification.restore_seconds = round(time.monotonic() - started, 3)
        _record_restore(verification, result, sandbox)
        subscriptions = database_proof.restore_properties(sandbox, backup, verification)
        if damage is not None:
            damage(sandbox.connect)
        compare_restored(sandbox, manifest, config, source, verification, step, archive_subscriptions=subscriptions)


def _dump_major(backup: Backup) -> int | None:
    if backup.manifest is None:
        return None
    try:
        return int(backup.manifest.pg_dump_version.split(".")[0])
    except ValueError:
        return None
