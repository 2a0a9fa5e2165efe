"""The kinds of evidence a backup is proven with, one unit each (its entry module first, helpers after):
row counts (`row_counts`), content checksums (`contents`), the schema (`schema`; `fingerprint`, `definitions`,
`reparse`, `schema_damage`), sequences (`sequences`), large objects, materialized views and constraints
(`object_proof`; `objects`, `constraints`, `object_damage`: the manifest's `objects`), the database's own
properties and replication (`database`; `database_properties`, `database_sql`). User assertions
(`assertions`) are read on the restored copy only: no kind, no verdict.

Each entry module declares a `KIND` (`kind.Kind`): the checks its findings are kept under in
`Verification.findings` (and that report them), its readings on production (`before_snapshot`,
`read_catalog`, `read_snapshot`: `postgres/backup/dump.py` runs each phase for every kind, and the sections
they fill are the manifest's), its proof on the restored copy (`prepare`, `prove`, `read_restored`,
`judge`: `pipeline/proof.py` runs each phase for every kind), the self-test's steps that damage it and how
the self-test knows a damage was caught. `KINDS` is the one list of them: the manifest's sections, the
findings' (and the verdict's) order, the proof, the self-test's damages and judgement come from it;
`verdict_failures` reads the findings by name; the checks are loaded from `checks/`'s `BUILTIN`.

To add a kind of evidence (its own files, and one line in each registry list):
1. `evidence/NAME.py`: `SECTION = Section(NAME, Model)` (its key in the manifest, typed by it); a reading on
   production into `snapshot.sections[NAME]`; `prove(copy)` (or `judge`, when it needs production's counts
   first): read the restored copy and compare `SECTION.of(copy.manifest)` into `Findings` under its check's
   name (`copy.verification.findings_of(NAME)`); a `Damager` for the self-test; and
   `KIND = Kind(NAME, checks=(NAME,), damages=(...), read_snapshot=read, prove=prove)`;
2. one line in `KINDS` below, and its damage in `SELFTEST_DAMAGES` (where in the self-test's order);
3. `checks/NAME.py` reading `verification.finding(NAME)`, and its line in `checks/__init__.py`'s `BUILTIN`;
4. its tests: the check on plain data (tests/unit/test_evidence_checks.py), the kind on a real database.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

import psycopg

from verifier.manifest import Manifest
from verifier.postgres import catalog
from verifier.postgres.evidence import (
    contents,
    database,
    object_damage,
    object_proof,
    row_counts,
    schema,
    schema_damage,
    sequences,
    table_settings,
)
from verifier.postgres.evidence.damage import Damage, Damager
from verifier.postgres.evidence.kind import Kind, ProductionSnapshot, RestoredCopy
from verifier.report import Verification

logger = logging.getLogger(__name__)

KINDS: tuple[Kind, ...] = (
    row_counts.KIND,
    schema.KIND,
    contents.KIND,
    sequences.KIND,
    table_settings.KIND,
    object_proof.KIND,  # large objects, materialized views, constraints
    database.KIND,  # database properties, replication
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
    database.damage_a_setting,
    table_settings.set_a_fillfactor,
    schema_damage.change_another_check,
)


def read_before_snapshot(snapshot: ProductionSnapshot) -> None:
    """Runs every kind's `before_snapshot` on the snapshot's session before its transaction begins, into
    `snapshot.sections`. Raises psycopg.Error."""
    for kind in KINDS:
        if kind.before_snapshot is not None:
            kind.before_snapshot(snapshot)


def read_in_snapshot(snapshot: ProductionSnapshot, wait: Callable[[], None] = lambda: None) -> None:
    """Runs every kind's `read_catalog`, then `wait` (until a restore reading along has started: its start
    needs the CPU more), then every kind's `read_snapshot`, all inside the snapshot, into `snapshot.sections`.
    Raises CountFailed or psycopg.Error."""
    for kind in KINDS:
        if kind.read_catalog is not None:
            kind.read_catalog(snapshot)
    wait()
    for kind in KINDS:
        if kind.read_snapshot is not None:
            kind.read_snapshot(snapshot)


def prepare(connection: catalog.Connection, copy: RestoredCopy) -> None:
    """Runs every kind's `prepare` on the proof's first session, before its own sessions. Raises psycopg.Error."""
    for kind in KINDS:
        if kind.prepare is not None:
            kind.prepare(connection, copy)


def prove(copy: RestoredCopy) -> dict[catalog.TableName, int]:
    """Proves each kind that reads the restored copy along the row counts (contents, sequences, objects), in
    `KINDS`' order, recording the findings (a backup without a manifest: against production now where a kind
    can). Returns the row counts of the tables the contents' scan counted, so that only the others still
    need counting. Raises CountFailed or psycopg.Error."""
    for kind in KINDS:
        if kind.prove is not None:
            kind.prove(copy)
    return copy.counts


def read_restored(connection: catalog.Connection, copy: RestoredCopy) -> None:
    """Runs every kind's `read_restored` on the proof's first session. Raises psycopg.Error."""
    for kind in KINDS:
        if kind.read_restored is not None:
            kind.read_restored(connection, copy)


def judge(copy: RestoredCopy) -> None:
    """Runs every kind's `judge` (the findings are put in `KINDS`' order once the comparison ends, see
    `in_order`). Raises psycopg.Error."""
    for kind in KINDS:
        if kind.judge is not None:
            kind.judge(copy)


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
