"""The kinds of evidence a backup is proven with, one unit each: row counts (`row_counts`), content checksums
(`contents`), the schema (`fingerprint`, `definitions`, `reparse`, `schema_damage`), sequences (`sequences`),
large objects, materialized views and constraints (`objects`, `constraints`, `object_proof`, `object_damage`:
the manifest's `objects`), the database's own properties and replication (`database_properties`,
`database_sql`). User assertions (`assertions`) are read on the restored copy only: no kind, no verdict.

Each kind's entry module declares a `KIND` (`kind.Kind`): the checks its findings are kept under in
`Verification.findings` (and that report them), the manifest sections it fills in the snapshot, and how the
self-test knows a damage was caught. `KINDS` is the one list of them: the verdict's order, the self-test's
judgement and the built-in checks' names come from it; `verdict_failures` reads the findings by name, so a
kind adds no line to the verdict.

To add a kind of evidence:
1. its module here: read it in the snapshot (what goes into the manifest), read it in the restored copy,
   compare into `Findings` under its check's name (`verification.findings_of(NAME)`), optionally damage it
   for the self-test, and declare `KIND = Kind(NAME, checks=(NAME,), sections=(...))`;
2. one line in `KINDS` below;
3. its check in `checks/` (one line in `checks/__init__.py`'s `BUILTIN`), reading `verification.finding(NAME)`;
4. its tests (a unit test of the check on plain data: tests/unit/test_evidence_checks.py).
Until the snapshot and the restored copy are read through the kinds too, the new kind's reading is also
called from `postgres/backup/dump.py` (a manifest field in `manifest.py`) and `pipeline/proof.py`.
"""

from __future__ import annotations

import logging

from verifier.errors import one_line
from verifier.manifest import Manifest
from verifier.postgres import catalog
from verifier.postgres.connection import DatabaseError
from verifier.postgres.evidence import (
    contents,
    database_properties,
    object_proof,
    reparse,
    row_counts,
    sequences,
)
from verifier.postgres.evidence.damage import Damage, damage_restored_copy
from verifier.postgres.evidence.kind import Kind
from verifier.postgres.evidence.object_damage import damage_objects
from verifier.postgres.evidence.schema_damage import change_a_check
from verifier.report import Verification

logger = logging.getLogger(__name__)

KINDS: tuple[Kind, ...] = (
    row_counts.KIND,
    reparse.KIND,  # the schema
    contents.KIND,
    sequences.KIND,
    object_proof.KIND,  # large objects, materialized views, constraints
    database_properties.KIND,  # database properties, replication
)
CHECKS: tuple[str, ...] = tuple(check for kind in KINDS for check in kind.checks)  # the verdict's order


def kind_of(check: str) -> Kind:
    """Returns the kind whose findings the check `check` reports. Raises KeyError for another check."""
    for kind in KINDS:
        if check in kind.checks:
            return kind
    raise KeyError(check)


def in_order(verification: Verification) -> None:
    """Orders `verification.findings` as `KINDS` are (the verdict names failures in that order)."""
    ordered = {name: verification.findings[name] for name in CHECKS if name in verification.findings}
    verification.findings = {**ordered, **verification.findings}


def caught(damage: Damage, verification: Verification) -> bool:
    """Returns True when the check that should see `damage` named its object in `verification`."""
    if damage.check == row_counts.KIND.name:  # row counts' findings are the tables
        return any(table.qualified_name == damage.evidence for table in verification.mismatched_tables)
    return kind_of(damage.check).caught(damage, verification.finding(damage.check))


def damage_restored_copy_for_selftest(
    connection: catalog.Connection, manifest: Manifest, not_attempted: list[str]
) -> list[Damage]:
    """Damages the restored copy on `connection` once per kind, each on its own object (rows, contents, a
    sequence, an index; large objects, views, constraints; a database setting; a CHECK, after the constraint
    made NOT VALID so it is another one). What could not be damaged is added to `not_attempted`. Returns the
    damages done."""
    done = damage_restored_copy(connection, manifest, not_attempted)
    done += damage_objects(connection, manifest.objects, not_attempted)
    done += _damage_database(connection, manifest, not_attempted)
    changed = change_a_check(connection)
    if changed is None:
        not_attempted.append("change a CHECK: no other validated CHECK constraint on a plain table")
    else:
        done.append(changed)
    return done


def _damage_database(connection: catalog.Connection, manifest: Manifest, not_attempted: list[str]) -> list[Damage]:
    """Returns the damage done to the restored copy's database properties (none, with the reason in
    `not_attempted`, for an older manifest or a sandbox role that may not alter its database)."""
    if manifest.database is None:
        not_attempted.append("database properties: the manifest has none")
        return []
    try:
        return [database_properties.damage(connection, manifest.database)]
    except DatabaseError as error:
        not_attempted.append(f"change a database setting: {one_line(error)}")
        return []
