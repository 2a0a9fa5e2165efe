"""The self-test's damage to a restored copy (never production): a row deleted, a value changed, a
sequence reset, an index dropped — each on its own object, each named as the comparison must name it."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import psycopg
from psycopg import sql

from verifier.manifest import Manifest
from verifier.postgres import catalog

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
  AND c.relkind = 'i' AND NOT c.relispartition  -- a partition's index goes only with its parent's
ORDER BY 1 LIMIT 1
"""


@dataclass
class Damage:
    """One damage done to the restored copy, what the comparison must name, and whether it did."""

    what: str
    check: str  # row_counts | contents | sequences | schema | large_objects | materialized_views | constraints
    evidence: str  # the object as the comparison names it
    caught: bool = False


def damage_restored_copy(connection: catalog.Connection, manifest: Manifest, not_attempted: list[str]) -> list[Damage]:
    """Damages the restored copy on `connection` in several ways, each on its own object; what could
    not be damaged is added to `not_attempted`. Returns the damages done."""
    with contextlib.suppress(psycopg.Error):  # triggers and foreign keys stay quiet where permitted
        connection.execute("SET session_replication_role = replica")
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


def _relation(table: catalog.TableName) -> sql.Composed:
    return sql.SQL("{}.{}").format(sql.Identifier(table[0]), sql.Identifier(table[1]))


def _name(table: catalog.TableName) -> str:
    return catalog.quote_name(*table)
