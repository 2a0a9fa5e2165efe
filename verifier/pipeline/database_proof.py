"""Proof of the database's own properties (settings, per-role settings, privileges, comment, owner,
publications, subscriptions) on a restored copy, against the snapshot's (or production's now).

`restore_properties` gives an archive's restored copy what pg_restore leaves out without `--create`
(a plain dump carries them in its SQL). Reading them in the restored copy and comparing them is the kind's
own (`verifier.postgres.evidence.database`).
"""

from __future__ import annotations

import logging

from verifier.archive import zstd
from verifier.postgres.evidence import database_properties, database_sql
from verifier.report import Verification
from verifier.repository.backups import Backup
from verifier.sandbox import Sandbox

logger = logging.getLogger(__name__)

PROPERTIES = database_properties.DATABASE_PROPERTIES


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
