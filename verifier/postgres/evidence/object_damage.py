"""The self-test's damage to the objects row counts never see (on the restored copy, never production):
a large object removed, a materialized view emptied, a constraint made NOT VALID, an index marked
invalid. Each returns the Damage with the words the comparison must use, or None when the database
has nothing to damage that way (or the sandbox's role may not)."""

from __future__ import annotations

import psycopg
from psycopg import sql

from verifier.manifest import Manifest
from verifier.postgres import catalog
from verifier.postgres.evidence.damage import Damage
from verifier.postgres.evidence.objects import SECTION, SnapshotObjects

# A validated CHECK or foreign key on a plain table without inheritance: it can be re-added NOT VALID.
_VALID_CONSTRAINTS_SQL = """
SELECT 'constraint ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname) || '.' || quote_ident(k.conname),
       n.nspname, c.relname, k.conname, pg_catalog.pg_get_constraintdef(k.oid)
FROM pg_catalog.pg_constraint k
JOIN pg_catalog.pg_class c ON c.oid = k.conrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE k.contype IN ('c', 'f') AND k.convalidated AND c.relkind = 'r' AND NOT c.relhassubclass
  AND k.coninhcount = 0 AND k.conparentid = 0 AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
ORDER BY k.contype, 1
"""

# An index backing a constraint (the self-test drops a plain one elsewhere).
_CONSTRAINT_INDEX_SQL = """
SELECT 'index ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname), i.indexrelid
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE i.indisvalid AND c.relkind = 'i' AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
  AND EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k WHERE k.conindid = i.indexrelid)
ORDER BY 1 LIMIT 1
"""


def damage_snapshot_objects(
    connection: catalog.Connection, manifest: Manifest, done: list[Damage], skipped: list[str]
) -> None:
    """The self-test's damage to large objects, materialized views and constraints (see `damage_objects`)."""
    done.extend(damage_objects(connection, SECTION.of(manifest), skipped))


def damage_objects(
    connection: catalog.Connection, snapshot: SnapshotObjects | None, not_attempted: list[str]
) -> list[Damage]:
    """Damages the restored copy's large objects, materialized views, constraints and indexes, one
    object each; what could not be damaged is added to `not_attempted`. Returns the damages done."""
    if snapshot is None:
        not_attempted.append("objects: the manifest has no snapshot of large objects, views and constraints")
        return []
    attempts = (
        (_remove_a_large_object(connection, snapshot), "remove a large object: the database has none"),
        (_empty_a_view(connection, snapshot), "empty a materialized view: none was populated in the snapshot"),
        (_invalidate_a_constraint(connection, snapshot), "invalidate a constraint: no validated CHECK or foreign key"),
        (_invalidate_an_index(connection), "invalidate an index: none backs a constraint, or not permitted"),
    )
    done = []
    for damage, reason in attempts:
        if damage is None:
            not_attempted.append(reason)
        else:
            done.append(damage)
    return done


def _remove_a_large_object(connection: catalog.Connection, snapshot: SnapshotObjects) -> Damage | None:
    if snapshot.large_objects.count == 0:
        return None
    row = connection.execute("SELECT min(oid)::bigint FROM pg_catalog.pg_largeobject_metadata").fetchone()
    if row is None or row[0] is None or not _ran(connection, "SELECT pg_catalog.lo_unlink(%s)", (row[0],)):
        return None
    oid = str(row[0])
    evidence = (
        f"large object {oid} is missing" if snapshot.large_objects.hashes is not None else "large objects restored"
    )
    return Damage(f"removed large object {oid}", "large_objects", evidence)


def _empty_a_view(connection: catalog.Connection, snapshot: SnapshotObjects) -> Damage | None:
    for view in snapshot.materialized_views:
        if not view.populated:
            continue
        name = catalog.quote_name(view.schema_name, view.name)
        statement = sql.SQL("REFRESH MATERIALIZED VIEW {}.{} WITH NO DATA").format(
            sql.Identifier(view.schema_name), sql.Identifier(view.name)
        )
        if _ran(connection, statement):
            return Damage(
                f"emptied materialized view {name}", "materialized_views", f"materialized view {name} is not populated"
            )
    return None


def _invalidate_a_constraint(connection: catalog.Connection, snapshot: SnapshotObjects) -> Damage | None:
    for key, schema, table, name, definition in connection.execute(_VALID_CONSTRAINTS_SQL).fetchall():
        if not snapshot.constraints.get(str(key)):
            continue
        statement = sql.SQL("ALTER TABLE {}.{} DROP CONSTRAINT {}, ADD CONSTRAINT {} {} NOT VALID").format(
            sql.Identifier(str(schema)),
            sql.Identifier(str(table)),
            sql.Identifier(str(name)),
            sql.Identifier(str(name)),
            sql.SQL(str(definition)),  # the restored copy's own definition
        )
        if _ran(connection, statement):
            return Damage(f"re-added {key} as NOT VALID", "constraints", f"{key} is NOT VALID after the restore")
    return None


def _invalidate_an_index(connection: catalog.Connection) -> Damage | None:
    row = connection.execute(_CONSTRAINT_INDEX_SQL).fetchone()
    if row is None:
        return None
    key, index_oid = str(row[0]), row[1]
    if not _ran(connection, "UPDATE pg_catalog.pg_index SET indisvalid = false WHERE indexrelid = %s", (index_oid,)):
        return None  # only a superuser may: the server sandbox's role may not be one
    return Damage(f"marked {key} invalid", "constraints", f"{key} is left invalid")


def _ran(connection: catalog.Connection, statement: str | sql.Composed, params: tuple[object, ...] = ()) -> bool:
    """Returns True when the statement ran (in its own savepoint), False when the server refused it."""
    try:
        with connection.transaction():
            connection.execute(statement, params or None)
    except psycopg.Error:
        return False
    return True
