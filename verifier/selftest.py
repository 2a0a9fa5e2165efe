"""`verifier selftest`: proves that the alarm fires. The newest backup is restored, the restored copy
is damaged in several ways, each on its own object, the usual comparison runs, and the self-test
passes only when every damage was named by the check that should see it."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

import psycopg
from psycopg import sql

from verifier.config import Config
from verifier.errors import BackupNotFound
from verifier.manifest import Manifest
from verifier.postgres import catalog
from verifier.report import CheckResult, Status, Verification
from verifier.repository.backups import Backup, Repository
from verifier.verify import verify_backup

logger = logging.getLogger(__name__)

NOT_YET_CHECKED = (
    "remove a large object: large objects are not compared yet",
    "empty a materialized view: materialized views are not compared yet",
)

_CHANGEABLE_COLUMNS_SQL = """
SELECT a.attname::text, t.typname::text FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
  AND t.typname IN ('text', 'varchar', 'int2', 'int4', 'int8', 'numeric', 'float4', 'float8', 'bool')
ORDER BY a.attnum
"""
_PLAIN_INDEXES_SQL = """
SELECT 'index ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname), n.nspname, c.relname
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
  AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = i.indrelid AND d.deptype = 'e')
  AND c.relkind = 'i'
ORDER BY 1 LIMIT 1
"""


@dataclass
class Damage:
    """One damage done to the restored copy, what the comparison must name, and whether it did."""

    what: str
    check: str  # row_counts | contents | sequences | schema
    evidence: str  # the object as the comparison names it
    caught: bool = False


@dataclass
class SelfTest:
    """The self-test's outcome: the damages done, those not attempted (and why), an error if the
    restore or comparison could not run."""

    backup_name: str
    damages: list[Damage] = field(default_factory=list)
    not_attempted: list[str] = field(default_factory=list)
    error: str | None = None
    finished_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def passed(self) -> bool:
        """Returns True when the comparison ran and named every damage done."""
        return self.error is None and bool(self.damages) and all(damage.caught for damage in self.damages)

    def result(self) -> CheckResult:
        """Returns the self-test as a check result: OK when passed, CRITICAL naming what went unseen."""
        missed = [damage for damage in self.damages if not damage.caught]
        details = tuple(
            f"{'caught' if damage.caught else 'MISSED'} by {damage.check}: {damage.what}" for damage in self.damages
        ) + tuple(f"not attempted: {reason}" for reason in self.not_attempted)
        metrics: dict[str, int | float | str] = {"damages": len(self.damages), "missed": len(missed)}
        if self.error is not None:
            return CheckResult("selftest", Status.CRITICAL, f"self-test could not compare: {self.error}", details)
        if not self.damages:
            return CheckResult("selftest", Status.CRITICAL, "self-test found nothing to damage", details, metrics)
        if missed:
            summary = f"{len(missed)} of {len(self.damages)} damages went unnoticed: {missed[0].what}"
            return CheckResult("selftest", Status.CRITICAL, summary, details, metrics)
        summary = f"all {len(self.damages)} damages to the restored copy of {self.backup_name} were caught"
        return CheckResult("selftest", Status.OK, summary, details, metrics)


def run_selftest(config: Config) -> SelfTest:
    """Restores the newest backup with a manifest, damages it, compares. Returns the outcome.
    Raises BackupNotFound, and the VerifierErrors of a restore that cannot run (exit 3)."""
    backups = [backup for backup in Repository(config.repository.path).backups() if backup.manifest is not None]
    if not backups:
        raise BackupNotFound(f"no backup with a manifest in {config.repository.path} to test with")
    backup: Backup = max(backups, key=lambda candidate: candidate.manifest.created_at)  # type: ignore[union-attr]
    manifest = backup.manifest
    assert manifest is not None
    outcome = SelfTest(backup.name)

    def damage(connect: catalog.Connector) -> None:
        with connect() as connection:
            connection.autocommit = True
            with contextlib.suppress(psycopg.Error):  # triggers and foreign keys stay quiet where permitted
                connection.execute("SET session_replication_role = replica")
            done = _damage(connection, manifest, outcome.not_attempted)
        outcome.damages.extend(done)
        logger.info("selftest: %d damage(s) done to the restored copy", len(done))

    verification = verify_backup(backup, config, None, damage=damage)
    outcome.not_attempted.extend(NOT_YET_CHECKED)
    if verification.error is not None:
        outcome.error = verification.error
    for done in outcome.damages:
        done.caught = _caught(done, verification)
    return outcome


def _damage(connection: catalog.Connection, manifest: Manifest, not_attempted: list[str]) -> list[Damage]:
    """Damages the restored copy, each damage on another object. Returns what was done."""
    present = set(catalog.list_tables(connection))
    counts = manifest.counts_by_table()
    with_rows = sorted((table for table in present if counts.get(table, 0) > 0), key=lambda t: (-counts[t], t))
    done: list[Damage] = []
    deleted = _delete_a_row(connection, with_rows)
    if deleted is None:
        not_attempted.append("delete a row: no table with rows")
    else:
        done.append(deleted)
    full = {(entry.schema_name, entry.table) for entry in manifest.contents or [] if entry.mode != "sample"}
    candidates = [
        table for table in with_rows if table in full and (deleted is None or deleted.evidence != _name(table))
    ]
    changed = _change_a_value(connection, candidates)
    if changed is None:
        not_attempted.append("change one value: no other table hashed in full with a changeable column")
    else:
        done.append(changed)
    reset = _reset_a_sequence(connection, manifest.sequences or {})
    if reset is None:
        not_attempted.append("reset a sequence: no sequence past its start")
    else:
        done.append(reset)
    dropped = _drop_an_index(connection)
    if dropped is None:
        not_attempted.append("drop an index: no index outside a constraint")
    else:
        done.append(dropped)
    return done


def _delete_a_row(connection: catalog.Connection, tables: list[catalog.TableName]) -> Damage | None:
    for table in tables:
        relation = _relation(table)
        statement = sql.SQL("DELETE FROM ONLY {0} WHERE ctid = (SELECT ctid FROM ONLY {0} LIMIT 1)").format(relation)
        with contextlib.suppress(psycopg.Error):
            if connection.execute(statement).rowcount == 1:
                return Damage(f"deleted one row of {_name(table)}", "row_counts", _name(table))
    return None


def _change_a_value(connection: catalog.Connection, tables: list[catalog.TableName]) -> Damage | None:
    for table in tables:
        relation = _relation(table)
        columns = connection.execute(_CHANGEABLE_COLUMNS_SQL, (relation.as_string(connection),)).fetchall()
        for column_name, type_name in columns:
            column = sql.Identifier(str(column_name))
            changed = {"text": "{column} || '~'", "varchar": "{column} || '~'", "bool": "NOT {column}"}.get(
                str(type_name), "{column} + 1"
            )
            statement = sql.SQL(
                "UPDATE ONLY {table} SET {column} = " + changed + " WHERE ctid = "
                "(SELECT ctid FROM ONLY {table} WHERE {column} IS NOT NULL LIMIT 1)"
            ).format(table=relation, column=column)
            with contextlib.suppress(psycopg.Error):  # a unique index, a length limit, identity: the next one
                if connection.execute(statement).rowcount == 1:
                    return Damage(f"changed {_name(table)}.{column_name} in one row", "contents", _name(table))
    return None


def _reset_a_sequence(connection: catalog.Connection, sequences: dict[str, int]) -> Damage | None:
    for name, next_value in sorted(sequences.items()):
        if next_value <= 1:
            continue
        with contextlib.suppress(psycopg.Error):  # a minimum above 1: the next one
            connection.execute("SELECT pg_catalog.setval(%s::regclass, 1, false)", (name,))
            return Damage(f"reset sequence {name} to 1", "sequences", name)
    return None


def _drop_an_index(connection: catalog.Connection) -> Damage | None:
    row = connection.execute(_PLAIN_INDEXES_SQL).fetchone()
    if row is None:
        return None
    key, schema, name = (str(value) for value in row)
    connection.execute(sql.SQL("DROP INDEX {}.{}").format(sql.Identifier(schema), sql.Identifier(name)))
    return Damage(f"dropped {key}", "schema", f"missing: {key}")


def _caught(damage: Damage, verification: Verification) -> bool:
    """Returns True when the check that should see `damage` named its object."""
    if damage.check == "row_counts":
        return any(table.qualified_name == damage.evidence for table in verification.mismatched_tables)
    if damage.check == "contents":
        return any(line.startswith(f"{damage.evidence}: ") for line in verification.content_differences)
    if damage.check == "sequences":
        return any(f"sequence {damage.evidence} " in line for line in verification.sequence_problems)
    return damage.evidence in verification.schema_differences


def _relation(table: catalog.TableName) -> sql.Composed:
    return sql.SQL("{}.{}").format(sql.Identifier(table[0]), sql.Identifier(table[1]))


def _name(table: catalog.TableName) -> str:
    return catalog.quote_name(*table)
