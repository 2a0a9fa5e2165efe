"""Proof of the database's own properties (settings, per-role settings, privileges, comment, owner,
publications, subscriptions) on a restored copy, against the snapshot's (or production's now).

`restore_properties` gives an archive's restored copy what pg_restore leaves out without `--create`
(a plain dump carries them in its SQL); `read_restored` reads them first thing, then settles the copy
(its settings cleared, so production's timeouts do not govern the proof's sessions); `record` puts the
findings into the verification, keyed by the checks `database_properties` and `replication`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from verifier.archive import zstd
from verifier.manifest import DatabaseProperties, Manifest
from verifier.postgres import catalog
from verifier.postgres.evidence import database_properties, database_sql
from verifier.report import Verification
from verifier.repository.backups import Backup
from verifier.sandbox import Sandbox

logger = logging.getLogger(__name__)

PROPERTIES = database_properties.DATABASE_PROPERTIES
REPLICATION = database_properties.REPLICATION


@dataclass
class RestoredDatabase:
    """The restored copy's properties as read before the proof's own sessions, and whether the
    sandbox's role could have restored an owner and per-role settings (a superuser)."""

    properties: DatabaseProperties
    privileged: bool


def restore_properties(sandbox: Sandbox, backup: Backup, verification: Verification) -> list[str] | None:
    """For a custom or directory archive: applies its database-level entries to the restored copy
    (under the copy's own name). Returns the subscriptions the archive holds (None for plain SQL,
    whose restore creates them). Statements the sandbox refused are noted in `verification`.
    Raises BinaryMissing, DatabaseError."""
    if backup.format == "plain":
        return None
    archive = sandbox.archive_path(backup)
    compressed = backup.format == "custom" and zstd.is_compressed(backup.dump_path)
    statements = database_sql.archive_statements(sandbox.executor, archive, backup.dump_path, compressed=compressed)
    with sandbox.connect() as connection:
        refused = database_sql.apply(connection, statements)
    verification.findings_of(PROPERTIES).notes.extend(refused)
    logger.info(
        "database properties: %d statement(s) applied, %d refused", len(statements) - len(refused), len(refused)
    )
    return database_sql.archive_subscriptions(sandbox.executor, archive, backup.dump_path, compressed=compressed)


def read_restored(connection: catalog.Connection, archive_subscriptions: list[str] | None) -> RestoredDatabase:
    """Returns the restored copy's properties (its subscriptions those of the archive when given), and
    clears its settings afterwards. Raises psycopg.Error."""
    database_properties.free_session(connection)  # it began under them: a 5 ms statement_timeout stops nothing
    properties = database_properties.read(connection)
    if archive_subscriptions is not None:
        properties.subscriptions = archive_subscriptions
    restored = RestoredDatabase(properties, database_properties.is_privileged(connection))
    database_properties.settle(connection, properties)
    return restored


def record(
    verification: Verification,
    expected: DatabaseProperties | None,
    restored: RestoredDatabase | None,
    *,
    manifest: Manifest | None,
    not_compared: str,
) -> None:
    """Records the findings of `restored` against `expected` (the manifest's, or production's now when
    there is no manifest) in `verification`; without either, why they were not compared."""
    if expected is None or restored is None:
        for check in (PROPERTIES, REPLICATION):
            verification.findings_of(check).not_compared = not_compared
        return
    findings = database_properties.compare(
        expected,
        restored.properties,
        reference="the snapshot" if manifest is not None else "production now",
        subscriptions_not_dumped=manifest is not None
        and database_properties.SUBSCRIPTIONS_NOT_DUMPED in manifest.dump_warnings,
        privileged=restored.privileged,
    )
    for check in sorted({*findings.problems, *findings.warnings, *findings.notes, *findings.compared}):
        found = verification.findings_of(check)
        found.problems = findings.problems.get(check, [])
        found.warnings = findings.warnings.get(check, [])
        found.notes.extend(findings.notes.get(check, []))
        found.compared = findings.compared.get(check, 0)
