"""Row counts as a kind of evidence: every table counted in the snapshot (in the contents' scan, one pass
per table for both), compared restored vs the snapshot (the verdict: must be exact) and production now vs
the backup (drift: information, never the verdict).

The comparisons are pure functions over dictionaries, so every rule is unit-tested without a database; and
the self-test's damage to row counts (a row deleted in the restored copy).
"""

from __future__ import annotations

import contextlib
import logging

import psycopg
from psycopg import sql

from verifier.config import DriftConfig
from verifier.manifest import Manifest, TableCount
from verifier.postgres import catalog
from verifier.postgres.evidence import contents
from verifier.postgres.evidence.damage import Damage, identifier, note, quoted, tables_with_rows
from verifier.postgres.evidence.kind import Kind, ProductionSnapshot, RestoredCopy, named_first_in_a_problem
from verifier.report import Status, TableComparison

logger = logging.getLogger(__name__)
NAME = "row_counts"
TableName = tuple[str, str]


def read_in_snapshot(snapshot: ProductionSnapshot) -> None:
    """Counts every table in the snapshot, hashing the contents in the same scan unless `verify.content` is
    off (`contents.count_in_snapshot`), into the manifest's `row_counts` (and `contents`). The unlogged tables
    a standby cannot dump count 0, as dumped (their definitions are in the backup, their rows cannot be), and
    are named in `unlogged_not_dumped`. Raises CountFailed or psycopg.Error."""
    tables, not_dumped = catalog.tables_to_count(snapshot.session)
    counts, checksums = contents.count_in_snapshot(
        snapshot.session,
        tables,
        snapshot.connect,
        snapshot.verify,
        jobs=snapshot.jobs,
        snapshot_id=snapshot.snapshot_id,
        lock_timeout_seconds=snapshot.lock_timeout_seconds,
        meter=snapshot.meter,
    )
    if not_dumped:
        logger.info("dumped from a standby: the rows of %d unlogged table(s) are not in the backup", len(not_dumped))
        counts.update(dict.fromkeys(not_dumped, 0))
    snapshot.sections["row_counts"] = [
        TableCount(schema=schema, table=table, rows=rows) for (schema, table), rows in sorted(counts.items())
    ]
    snapshot.sections["unlogged_not_dumped"] = [catalog.quote_name(*table) for table in not_dumped]
    if checksums is not None:
        snapshot.sections[contents.SECTION.name] = checksums


def within_drift(restored: int, production: int, drift: DriftConfig) -> bool:
    """Returns True when production has moved from the restored count by no more than the tolerance:
    the larger of `max_rows` and `max_percent` of production's count."""
    allowed = max(drift.max_rows, abs(production) * drift.max_percent / 100.0)
    return abs(restored - production) <= allowed


def compare_exact(
    snapshot: dict[TableName, int],
    restored: dict[TableName, int],
    production: dict[TableName, int] | None,
    drift: DriftConfig,
    *,
    estimated: bool = False,
    counted: frozenset[TableName] | set[TableName] = frozenset(),
    unknown: frozenset[TableName] | set[TableName] = frozenset(),
) -> list[TableComparison]:
    """Returns one comparison per table for a backup with a manifest.

    The status is the verdict: restored must equal the snapshot exactly, a table missing after the
    restore or one the snapshot did not count is CRITICAL. Production now (`estimated` when taken
    from the statistics, except the tables `counted` exactly since) only sets the drift fields; a
    table whose production count is `unknown` claims no drift.
    """
    comparisons = []
    for name in sorted(snapshot.keys() | restored.keys()):
        expected, got = snapshot.get(name), restored.get(name)
        status, note = Status.OK, ""
        if expected is None:
            status, note = Status.CRITICAL, f"restored with {got:,} rows, but the snapshot did not count it"
        elif got is None:
            status, note = Status.CRITICAL, f"missing after the restore (the snapshot had {expected:,} rows)"
        elif got != expected:
            status, note = Status.CRITICAL, f"restored {got:,} rows, the snapshot had {expected:,}"
        now = production.get(name) if production is not None else None
        drifted, drift_note = False, ""
        if production is not None and expected is not None and name not in unknown:
            drifted, drift_note = _drift(expected, now, drift, estimated and name not in counted, name in counted)
        comparisons.append(
            TableComparison(name[0], name[1], expected, got, now, status, note, drifted=drifted, drift_note=drift_note)
        )
    return comparisons


def compare_legacy(
    restored: dict[TableName, int],
    production: dict[TableName, int],
    drift: DriftConfig,
) -> list[TableComparison]:
    """Returns one comparison per table for a backup without a manifest (no snapshot to match).

    A production table missing from the backup, or empty in it while production has rows, is
    CRITICAL; other differences beyond the drift tolerance are WARNINGs (production moves on).
    """
    comparisons = []
    for name in sorted(restored.keys() | production.keys()):
        got, now = restored.get(name), production.get(name)
        status, note = Status.OK, ""
        if got is None:
            status, note = Status.CRITICAL, f"missing from the backup (production has {now:,} rows)"
        elif now is None:
            status, note = Status.WARNING, "in the backup, but no longer in production"
        elif got == 0 and now > 0:
            status, note = Status.CRITICAL, f"empty in the backup, production has {now:,} rows"
        elif not within_drift(got, now, drift):
            status, note = Status.WARNING, f"the backup has {got:,} rows, production now {now:,} ({_percent(got, now)})"
        comparisons.append(TableComparison(name[0], name[1], None, got, now, status, note))
    return comparisons


def _drift(
    backup_rows: int, now: int | None, drift: DriftConfig, estimated: bool, counted: bool = False
) -> tuple[bool, str]:
    """Returns (beyond the tolerance, a sentence saying how production moved since the backup and, for
    a statistics estimate ("about") or a table counted to confirm one ("counted"), how it was measured)."""
    if now is None:
        return True, "no longer in production"
    if now == backup_rows:
        return False, ""
    about = "about " if estimated else ""
    how = " (counted)" if counted else ""
    change = now - backup_rows
    direction = "more" if change > 0 else "fewer"
    sentence = (
        f"production now has {about}{now:,} rows{how}, {abs(change):,} {direction} than the backup's {backup_rows:,}"
    )
    return not within_drift(backup_rows, now, drift), sentence


def _percent(before: int, after: int) -> str:
    if before == 0:
        return f"+{after:,} rows"
    change = (after - before) * 100.0 / before
    return f"{change:+.1f}%"


def delete_a_row(connection: catalog.Connection, manifest: Manifest, done: list[Damage], skipped: list[str]) -> None:
    """The self-test's damage to row counts: deletes one row of the largest table that had rows."""
    note(
        done,
        skipped,
        _delete_a_row(connection, tables_with_rows(connection, manifest)),
        "delete a row: no table with rows",
    )


def _delete_a_row(connection: catalog.Connection, tables: list[catalog.TableName]) -> Damage | None:
    for table in tables:
        relation = identifier(table)
        statement = sql.SQL("DELETE FROM ONLY {0} WHERE ctid = (SELECT ctid FROM ONLY {0} LIMIT 1)").format(relation)
        with contextlib.suppress(psycopg.Error):
            if connection.execute(statement).rowcount == 1:
                return Damage(f"deleted one row of {quoted(table)}", NAME, quoted(table))
    return None


def judge(copy: RestoredCopy) -> None:
    """Compares the restored copy's counts (`copy.counts`, complete once the proof counted every table) with
    the snapshot's, production's now (`copy.production_now`) setting only the drift; or, for a backup
    without a manifest, with production's now, recording one comparison per table in the verification."""
    drift = copy.drift or DriftConfig()
    now = copy.production_now
    if copy.manifest is not None:
        copy.verification.tables = compare_exact(
            copy.manifest.counts_by_table(), copy.counts, now.rows if now is not None else None, drift,
            estimated=now is not None and now.estimated,
            counted=now.counted if now is not None else frozenset(),
            unknown=now.unknown if now is not None else frozenset(),
        )  # fmt: skip
    elif now is not None:
        copy.verification.tables = compare_legacy(copy.counts, now.rows, drift)
    found = copy.verification.findings_of(NAME)  # the tables that fail the verdict, as every kind's findings
    found.problems = [f"{table.qualified_name}: {table.note}" for table in copy.verification.mismatched_tables]
    found.compared = len(copy.verification.tables)


KIND = Kind(
    NAME,
    checks=(NAME,),
    caught=named_first_in_a_problem,
    damages=(delete_a_row,),
    read_snapshot=read_in_snapshot,
    judge=judge,
)
