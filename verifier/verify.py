"""Proving one backup: its files against the manifest, readable to the end, restored into a
sandbox, counted and fingerprinted, and compared with the snapshot and with production now."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import psycopg

from verifier.compare import compare_exact, compare_legacy
from verifier.config import Config
from verifier.errors import VerifierError
from verifier.postgres import binaries, catalog
from verifier.postgres.files import verify_file
from verifier.postgres.restore import detect_server_major, read_to_end, restore_archive, restore_plain
from verifier.report import Integrity, Verification
from verifier.repository.backups import Backup
from verifier.sandbox import open_sandbox, out_of_space
from verifier.source import LocalExecutor, Source

logger = logging.getLogger(__name__)
Step = Callable[[str], None]


def check_integrity(backup: Backup, config: Config, *, read_through: bool) -> Integrity:
    """Returns whether the backup's files match their manifest (sha256, per-chunk byte ranges) and,
    with `read_through`, whether the archive reads to the end. A restore reads it to the end anyway,
    so only `check --quick` asks for that. Never raises for a damaged file; raises BinaryMissing."""
    started = time.monotonic()
    problems: list[str] = []
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


def verify_backup(backup: Backup, config: Config, source: Source | None, step: Step = lambda _: None) -> Verification:
    """Restores `backup` into a sandbox and compares. Returns the verification (with `error` set when
    the restore could not be attempted). Raises the VerifierErrors that mean "could not run" (exit 3:
    BinaryMissing, SandboxError, DockerUnavailable)."""
    verification = Verification(
        backup_name=backup.name, exact=backup.manifest is not None, restored=False, sandbox=config.verify.sandbox
    )
    try:
        _restore_and_compare(backup, config, source, verification, step)
    except VerifierError as error:
        if error.exit_code == 3:  # could not run (a program missing, no sandbox user): the caller reports it
            raise
        verification.error = str(error)
    except psycopg.Error as error:
        verification.error = f"sandbox database error: {' '.join(str(error).split())}"
    return verification


def _restore_and_compare(
    backup: Backup, config: Config, source: Source | None, verification: Verification, step: Step
) -> None:
    detected_major = detect_server_major(backup.dump_path, backup.format)
    step("restore")
    started = time.monotonic()
    with open_sandbox(config, backup, source, detected_major) as sandbox:
        verification.sandbox = sandbox.describe()
        environment = sandbox.restore_environment()
        if backup.format == "plain":
            result = restore_plain(sandbox.executor, backup.dump_path, sandbox.dbname, environment)
        else:
            result = restore_archive(
                sandbox.executor, sandbox.archive_path(backup), sandbox.dbname, config.verify.jobs, environment
            )
        disk_full = out_of_space(sandbox, result.issues)
        if disk_full is not None:
            raise disk_full
        verification.restore_issues = result.issues
        verification.restored = result.completed
        verification.restore_seconds = round(time.monotonic() - started, 3)
        logger.info(
            "restore: %s in %.1fs, %d issue(s)",
            "complete" if result.completed else "INCOMPLETE",
            verification.restore_seconds,
            len(result.issues),
        )
        step("compare")
        started = time.monotonic()
        with sandbox.connect() as connection:
            tables = catalog.list_tables(connection)
            restored = catalog.count_rows(tables, sandbox.connect, jobs=config.verify.jobs)
            restored_schema = catalog.fingerprint_schema(connection)
            size = connection.execute("SELECT pg_database_size(current_database())").fetchone()
            verification.restored_bytes = int(size[0]) if size else None  # type: ignore[call-overload]
    production, production_schema = _production_now(source, config, verification)
    if backup.manifest is not None:
        verification.tables = compare_exact(
            backup.manifest.counts_by_table(), restored, production, config.verify.drift
        )
        verification.schema_differences = catalog.schema_differences(
            backup.manifest.schema_objects, restored_schema.objects
        )
    elif production is not None:
        verification.tables = compare_legacy(restored, production, config.verify.drift)
        if production_schema is not None:
            verification.schema_differences = catalog.schema_differences(
                production_schema.objects, restored_schema.objects
            )
    else:
        verification.error = "no manifest and production unreachable: nothing to compare the restored counts with"
    verification.compare_seconds = round(time.monotonic() - started, 3)


def _production_now(
    source: Source | None, config: Config, verification: Verification
) -> tuple[dict[catalog.TableName, int] | None, catalog.SchemaFingerprint | None]:
    """Counts production now in one snapshot. Returns (None, None) when it cannot be reached."""
    if source is None:
        return None, None
    try:
        with source.params.connect() as session:
            session.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            row = session.execute("SELECT pg_export_snapshot()").fetchone()
            snapshot_id = str(row[0]) if row else None
            tables = catalog.list_tables(session)
            counts = catalog.count_rows(
                tables, source.params.connect, jobs=config.verify.jobs, snapshot_id=snapshot_id, first=session
            )
            fingerprint = catalog.fingerprint_schema(session)
            session.execute("ROLLBACK")
            return counts, fingerprint
    except (VerifierError, psycopg.Error) as error:
        text = str(error) if isinstance(error, VerifierError) else " ".join(str(error).split())
        verification.notes.append(f"production not compared: {text}")
        return None, None


def _dump_major(backup: Backup) -> int | None:
    if backup.manifest is None:
        return None
    try:
        return int(backup.manifest.pg_dump_version.split(".")[0])
    except ValueError:
        return None
