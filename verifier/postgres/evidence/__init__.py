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

import contextlib
import logging

import psycopg

from verifier.manifest import Manifest
from verifier.postgres import catalog
from verifier.postgres.evidence import (
    contents,
    database_properties,
    object_damage,
    object_proof,
    reparse,
    row_counts,
    schema_damage,
    sequences,
)
from verifier.postgres.evidence.damage import Damage, Damager
from verifier.postgres.evidence.kind import Kind
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
# the self-test's damages, every kind's, in the order they are done: each on another object than the ones
# before (a value changed in another table than the row deleted; a CHECK changed after the constraints' damage
# made one NOT VALID)
SELFTEST_DAMAGES: tuple[Damager, ...] = (
    row_counts.delete_a_row,
    contents.change_a_value,
    sequences.reset_a_sequence,
    schema_damage.drop_an_index,
    object_damage.damage_snapshot_objects,
    database_properties.damage_a_setting,
    schema_damage.change_another_check,
)


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


def damage_for_selftest(connection: catalog.Connection, manifest: Manifest, not_attempted: list[str]) -> list[Damage]:
    """Damages the restored copy on `connection` in `SELFTEST_DAMAGES`' order, each damage on its own object;
    what could not be damaged is added to `not_attempted`. Returns the damages done."""
    with contextlib.suppress(psycopg.Error):  # triggers and foreign keys stay quiet where permitted
        connection.execute("SET session_replication_role = replica")
    done: list[Damage] = []
    for step in SELFTEST_DAMAGES:
        step(connection, manifest, done, not_attempted)
    return done
