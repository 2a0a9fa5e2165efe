"""Proof beyond the tables, on the restored copy: large objects and materialized views against what the
manifest recorded in the snapshot, constraints present and valid, foreign keys holding, no invalid index.

The findings go into `Verification.object_problems` (the verdict), `object_notes` (named, not failing)
and `objects_compared`, keyed by the check that reports them.
"""

from __future__ import annotations

import logging
import time

from verifier.manifest import Manifest
from verifier.postgres import catalog, constraints, objects
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
        verification.objects_not_compared = (
            "no manifest" if manifest is None else "the backup was made by an older version of the agent"
        )
    else:
        expected = snapshot.large_objects
        restored = objects.read_large_objects(
            connection, keep_hashes=expected.hashes is not None, excluding=expected.unreadable
        )
        problems[LARGE_OBJECTS], notes[LARGE_OBJECTS] = objects.compare_large_objects(expected, restored)
        problems[MATERIALIZED_VIEWS], notes[MATERIALIZED_VIEWS] = objects.compare_views(
            snapshot.materialized_views, objects.read_restored_views(connection)
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
