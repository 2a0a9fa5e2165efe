"""The self-test's damage to a restored copy's schema (never production): an index dropped, and a CHECK
constraint's expression changed, so that it no longer constrains anything. The comparison must name the
latter as a real difference however PostgreSQL prints the two definitions."""

from __future__ import annotations

import psycopg
from psycopg import sql

from verifier.manifest import Manifest
from verifier.postgres import catalog
from verifier.postgres.evidence.damage import Damage, note

# A validated CHECK of a plain table without inheritance, not marked NO INHERIT: it can be dropped and
# added again with another expression (a constraint another damage made NOT VALID is left alone).
_CHECKS_SQL = """
SELECT 'constraint ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname) || '.' || quote_ident(k.conname),
       n.nspname, c.relname, k.conname, pg_catalog.pg_get_expr(k.conbin, k.conrelid)
FROM pg_catalog.pg_constraint k
JOIN pg_catalog.pg_class c ON c.oid = k.conrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE k.contype = 'c' AND k.convalidated AND NOT k.connoinherit AND c.relkind = 'r' AND NOT c.relhassubclass
  AND NOT c.relispartition AND k.coninhcount = 0 AND k.conparentid = 0
  AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
ORDER BY 1
"""


_PLAIN_INDEXES_SQL = """
SELECT 'index ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname), n.nspname, c.relname
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
  AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = i.indrelid AND d.deptype = 'e')
  AND c.relkind = 'i' AND NOT c.relispartition  -- a partition's index goes only with its parent's
ORDER BY 1 LIMIT 1
"""


def drop_an_index(connection: catalog.Connection, manifest: Manifest, done: list[Damage], skipped: list[str]) -> None:
    """The self-test's damage to the schema: drops one index outside a constraint."""
    note(done, skipped, _drop_an_index(connection), "drop an index: no index outside a constraint")


def change_another_check(
    connection: catalog.Connection, manifest: Manifest, done: list[Damage], skipped: list[str]
) -> None:
    """The self-test's damage to the schema: changes a CHECK (after the constraints' damage made one NOT
    VALID, so another one)."""
    reason = "change a CHECK: no other validated CHECK constraint on a plain table"
    note(done, skipped, change_a_check(connection), reason)


def _drop_an_index(connection: catalog.Connection) -> Damage | None:
    row = connection.execute(_PLAIN_INDEXES_SQL).fetchone()
    if row is None:
        return None
    key, schema, name = (str(value) for value in row)
    connection.execute(sql.SQL("DROP INDEX {}.{}").format(sql.Identifier(schema), sql.Identifier(name)))
    return Damage(f"dropped {key}", "schema", f"missing: {key}")


def change_a_check(connection: catalog.Connection) -> Damage | None:
    """Replaces one CHECK constraint of the restored copy by one whose expression is `(old) OR true`
    (same name, still validated). Returns the Damage, or None when there is no such constraint (or the
    sandbox's role may not change it)."""
    for key, schema, table, name, expression in connection.execute(_CHECKS_SQL).fetchall():
        statement = sql.SQL("ALTER TABLE {}.{} DROP CONSTRAINT {}, ADD CONSTRAINT {} CHECK (({}) OR true)").format(
            sql.Identifier(str(schema)),
            sql.Identifier(str(table)),
            sql.Identifier(str(name)),
            sql.Identifier(str(name)),
            sql.SQL(str(expression)),  # the restored copy's own expression
        )
        try:
            with connection.transaction():
                connection.execute(statement)
        except psycopg.Error:
            continue
        return Damage(f"changed the expression of CHECK {key} (now always true)", "schema", f"differs: {key}")
    return None
