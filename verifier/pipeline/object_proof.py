"""Proof beyond the tables, on the restored copy: large objects and materialized views against what the
manifest recorded in the snapshot, constraints present and valid, foreign keys holding, no invalid index.

The findings go into `Verification.object_problems` (the verdict), `object_notes` (named, not failing)
and `objects_compared`, keyed by the check that reports them.
"""

from __future__ import annotations

import logging
import time

from verifier.manifest import Manifest, MaterializedView
from verifier.postgres import catalog, constraints, objects
from verifier.postgres.restore_errors import unverifiable_views
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
    snapshot = manifest.objects if manifest is not None else None
    validated_in_production = None
    if snapshot is None:
        verification.object_warnings[MATERIALIZED_VIEWS] = [
            f"{name}: not verifiable in the sandbox: needs {need}"
            for name, need in unverifiable_views(verification.restore_issues).items()
        ]
        verification.objects_not_compared = (
            "no manifest" if manifest is None else "the backup was made by an older version of the agent"
        )
    else:
        expected = snapshot.large_objects
        restored = objects.read_large_objects(
            connection, keep_hashes=expected.hashes is not None, excluding=expected.unreadable
        )
        problems[LARGE_OBJECTS], notes[LARGE_OBJECTS] = objects.compare_large_objects(expected, restored)
        views, verification.object_warnings[MATERIALIZED_VIEWS] = _verifiable(
            snapshot.materialized_views, unverifiable_views(verification.restore_issues)
        )
        problems[MATERIALIZED_VIEWS], notes[MATERIALIZED_VIEWS] = objects.compare_views(
            views, objects.read_restored_views(connection)
        )
        problems[CONSTRAINTS], notes[CONSTRAINTS] = constraints.compare(
            snapshot.constraints, constraints.read_constraints(connection)
        )
        validated_in_production = {key for key, valid in snapshot.constraints.items() if valid}
        verification.objects_compared = {
            LARGE_OBJECTS: expected.count,
            MATERIALIZED_VIEWS: len(snapshot.materialized_views),
            CONSTRAINTS: len(snapshot.constraints),
        }
    problems[CONSTRAINTS] += constraints.foreign_key_violations(connection, validated_in_production)
    problems[CONSTRAINTS] += constraints.invalid_indexes(connection)
    verification.object_problems = problems
    verification.object_notes = notes
    logger.info(
        "objects: large objects, materialized views and constraints compared in %.1fs, %d problem(s)",
        time.monotonic() - started,
        sum(len(lines) for lines in problems.values()),
    )


def _verifiable(views: list[MaterializedView], unreachable: dict[str, str]) -> tuple[list[MaterializedView], list[str]]:
    """Returns (the views the sandbox could refresh, one line per view it could not for want of a server
    outside it: "public.v: not verifiable in the sandbox: needs foreign server remote"). `unreachable` is
    `unverifiable_views`, named as the restore names them (pg_restore's tag, or a plain dump's section)."""
    kept, lines = [], []
    for view in views:
        quoted, plain = catalog.quote_name(view.schema_name, view.name), f"{view.schema_name}.{view.name}"
        names = (quoted, plain, view.name)  # a plain dump's section names it schema.name, pg_restore by name
        need = next((unreachable[name] for name in names if name in unreachable), None)
        if need is None:
            kept.append(view)
        else:
            lines.append(f"{names[0]}: not verifiable in the sandbox: needs {need}")
    return kept, lines
