"""Proof beyond the tables, on the restored copy: large objects and materialized views against what the
manifest recorded in the snapshot, constraints present and valid, foreign keys holding, no invalid index.

The findings go into `Verification.findings`, keyed by the check that reports them.
"""

from __future__ import annotations

import logging
import time

from verifier.manifest import Manifest
from verifier.postgres import catalog
from verifier.postgres.evidence import constraints, object_damage, objects
from verifier.postgres.evidence.kind import OLDER_AGENT, Kind, ProductionSnapshot, RestoredCopy
from verifier.postgres.restore.restore_errors import unverifiable_views
from verifier.report import Verification

logger = logging.getLogger(__name__)

LARGE_OBJECTS = "large_objects"
MATERIALIZED_VIEWS = "materialized_views"
CONSTRAINTS = "constraints"


def prove_objects(manifest: Manifest | None, connection: catalog.Connection, verification: Verification) -> None:
    """Compares the restored copy on `connection` with the snapshot's objects and checks its
    constraints and indexes, recording the findings in `verification`. Without the snapshot's objects
    (no manifest, an older agent) only the foreign keys and indexes are checked. Raises psycopg.Error."""
    started = time.monotonic()
    problems: dict[str, list[str]] = {LARGE_OBJECTS: [], MATERIALIZED_VIEWS: [], CONSTRAINTS: []}
    notes: dict[str, list[str]] = {LARGE_OBJECTS: [], MATERIALIZED_VIEWS: [], CONSTRAINTS: []}
    snapshot = objects.SECTION.of(manifest)
    validated_in_production = None
    unreachable = _needing_servers(connection, unverifiable_views(verification.restore_issues))
    found = {name: verification.findings_of(name) for name in (LARGE_OBJECTS, MATERIALIZED_VIEWS, CONSTRAINTS)}
    found[MATERIALIZED_VIEWS].warnings = [
        f"{name}: not verifiable in the sandbox: needs {need}" for name, need in unreachable.items()
    ]
    if snapshot is None:
        for findings in found.values():
            findings.not_compared = "no manifest" if manifest is None else OLDER_AGENT
    else:
        expected = snapshot.large_objects
        restored = objects.read_large_objects(
            connection, keep_hashes=expected.hashes is not None, excluding=expected.unreadable
        )
        problems[LARGE_OBJECTS], notes[LARGE_OBJECTS] = objects.compare_large_objects(expected, restored)
        views = [view for view in snapshot.materialized_views if _label(view) not in unreachable]
        problems[MATERIALIZED_VIEWS], notes[MATERIALIZED_VIEWS] = objects.compare_views(
            views, objects.read_restored_views(connection)
        )
        problems[CONSTRAINTS], notes[CONSTRAINTS] = constraints.compare(
            snapshot.constraints, constraints.read_constraints(connection)
        )
        validated_in_production = {key for key, valid in snapshot.constraints.items() if valid}
        found[LARGE_OBJECTS].compared = expected.count
        found[MATERIALIZED_VIEWS].compared = len(snapshot.materialized_views)
        found[CONSTRAINTS].compared = len(snapshot.constraints)
    problems[CONSTRAINTS] += constraints.foreign_key_violations(connection, validated_in_production)
    problems[CONSTRAINTS] += constraints.invalid_indexes(connection)
    for name, findings in found.items():
        findings.problems, findings.notes = problems[name], notes[name]
    logger.info(
        "objects: large objects, materialized views and constraints compared in %.1fs, %d problem(s)",
        time.monotonic() - started,
        sum(len(lines) for lines in problems.values()),
    )


def prove_in_session(copy: RestoredCopy) -> None:
    """Proves the objects of the restored copy in one session of their own (see `prove_objects`)."""
    with copy.connect() as connection:
        prove_objects(copy.manifest, connection, copy.verification)


def _label(view: objects.MaterializedView) -> str:
    return f"materialized view {catalog.quote_name(view.schema_name, view.name)}"


def _needing_servers(connection: catalog.Connection, refreshes: dict[str, str]) -> dict[str, str]:
    """Returns {"materialized view public.v" or "view public.v": what it needs} for the views the sandbox
    cannot run for want of a server outside it: those over a foreign table, and the materialized views
    whose REFRESH failed for it (`refreshes`, named as the restore names them: a plain dump's section
    says schema.name, pg_restore the name alone). Raises psycopg.Error."""
    needs: dict[str, str] = {}
    for materialized, schema, name, servers in objects.views_over_foreign_tables(connection):
        kind = "materialized view" if materialized else "view"
        plural = "s" if ", " in servers else ""
        needs[f"{kind} {catalog.quote_name(schema, name)}"] = f"foreign server{plural} {servers}"
    for restored_name, need in refreshes.items():
        schema, _, name = restored_name.rpartition(".")
        found = objects.find_materialized_view(connection, schema or None, name)
        label = f"materialized view {catalog.quote_name(*found) if found else restored_name}"
        needs.setdefault(label, need)
    return dict(sorted(needs.items()))


def read_in_snapshot(snapshot: ProductionSnapshot) -> None:
    """Reads production's large objects, materialized views and constraints in the snapshot, into the
    manifest's `objects`. Raises psycopg.Error only when a catalog cannot be read."""
    snapshot.sections[objects.SECTION.name] = objects.read_in_snapshot(snapshot.session)


KIND = Kind(
    "objects",
    checks=(LARGE_OBJECTS, MATERIALIZED_VIEWS, CONSTRAINTS),
    damages=(object_damage.damage_snapshot_objects,),
    read_snapshot=read_in_snapshot,
    prove=prove_in_session,
)
