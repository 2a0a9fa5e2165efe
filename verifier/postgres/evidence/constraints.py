"""Constraints and indexes after a restore: every constraint of the snapshot present and as valid as
it was, every foreign key holding for the restored rows, no index left invalid.

A foreign key can be present and marked valid while rows break it: rows loaded with triggers
disabled (`session_replication_role = replica`, a data-only restore) are never checked. So each
foreign key is checked against the rows themselves, with one anti-join.
"""

from __future__ import annotations

from psycopg import sql

from verifier.postgres import catalog

_USER_SCHEMA = "{nsp} <> 'information_schema' AND {nsp} NOT LIKE 'pg\\_%'"
_NOT_EXTENSION_MEMBER = """NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
    WHERE e.classid = '{catalog}'::pg_catalog.regclass AND e.objid = {oid} AND e.deptype = 'e')"""

# Keys as the schema fingerprint names table constraints; domain constraints alike.
_CONSTRAINTS_SQL = f"""
SELECT 'constraint ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname) || '.' || quote_ident(k.conname),
       k.convalidated
FROM pg_catalog.pg_constraint k
JOIN pg_catalog.pg_class c ON c.oid = k.conrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE {_USER_SCHEMA.format(nsp="n.nspname")} AND c.relpersistence <> 't'
  AND {_NOT_EXTENSION_MEMBER.format(catalog="pg_catalog.pg_class", oid="c.oid")}
UNION ALL
SELECT 'domain constraint ' || quote_ident(n.nspname) || '.' || quote_ident(t.typname) || '.' || quote_ident(k.conname),
       k.convalidated
FROM pg_catalog.pg_constraint k
JOIN pg_catalog.pg_type t ON t.oid = k.contypid
JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
WHERE {_USER_SCHEMA.format(nsp="n.nspname")}
  AND {_NOT_EXTENSION_MEMBER.format(catalog="pg_catalog.pg_type", oid="t.oid")}
"""

# Top-level foreign keys only: the clones on partitions are checked through their partitioned table.
_FOREIGN_KEYS_SQL = f"""
SELECT 'constraint ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname) || '.' || quote_ident(k.conname),
       n.nspname, c.relname, c.relkind = 'p', pn.nspname, p.relname, p.relkind = 'p', k.confmatchtype = 'f',
       ARRAY(SELECT a.attname::text FROM unnest(k.conkey) WITH ORDINALITY AS u(attnum, position)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.attnum ORDER BY u.position),
       ARRAY(SELECT a.attname::text FROM unnest(k.confkey) WITH ORDINALITY AS u(attnum, position)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.attnum ORDER BY u.position)
FROM pg_catalog.pg_constraint k
JOIN pg_catalog.pg_class c ON c.oid = k.conrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_class p ON p.oid = k.confrelid
JOIN pg_catalog.pg_namespace pn ON pn.oid = p.relnamespace
WHERE k.contype = 'f' AND k.conparentid = 0 AND k.convalidated AND {_USER_SCHEMA.format(nsp="n.nspname")}
ORDER BY 1
"""

_INVALID_INDEXES_SQL = f"""
SELECT 'index ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname)
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE NOT i.indisvalid AND {_USER_SCHEMA.format(nsp="n.nspname")}
ORDER BY 1
"""


def read_constraints(connection: catalog.Connection) -> dict[str, bool]:
    """Returns every constraint (tables' and domains') → whether it is validated. Raises psycopg.Error."""
    return {str(key): bool(valid) for key, valid in connection.execute(_CONSTRAINTS_SQL).fetchall()}


def compare(expected: dict[str, bool], restored: dict[str, bool]) -> tuple[list[str], list[str]]:
    """Returns (problems, notes): constraints missing or no longer valid after the restore; the ones
    NOT VALID in production already (restored as they were, not an error). Pure."""
    problems = [f"{key} is missing after the restore" for key in sorted(expected) if key not in restored]
    problems += [
        f"{key} is NOT VALID after the restore (valid in production)"
        for key, valid in sorted(expected.items())
        if valid and restored.get(key) is False
    ]
    notes = [
        f"{key} is NOT VALID in production (rows before it was added are unchecked)"
        for key, valid in sorted(expected.items())
        if not valid
    ]
    return problems, notes


def foreign_key_violations(connection: catalog.Connection, only: set[str] | None = None) -> list[str]:
    """Returns one line per validated foreign key (of `only`, when given) that rows of the connected
    database break, with how many rows. Raises psycopg.Error."""
    problems = []
    for (
        key,
        schema,
        table,
        partitioned,
        parent_schema,
        parent,
        parent_partitioned,
        full,
        columns,
        referenced,
    ) in connection.execute(_FOREIGN_KEYS_SQL).fetchall():
        if only is not None and key not in only:
            continue
        row = connection.execute(
            _violations_statement(
                (str(schema), str(table)),
                bool(partitioned),
                (str(parent_schema), str(parent)),
                bool(parent_partitioned),
                bool(full),
                [str(column) for column in columns],  # type: ignore[attr-defined]
                [str(column) for column in referenced],  # type: ignore[attr-defined]
            )
        ).fetchone()
        broken = int(row[0]) if row else 0  # type: ignore[call-overload]
        if broken:
            problems.append(
                f"{key} is broken by {broken:,} row(s) of {catalog.quote_name(str(schema), str(table))} "
                f"without a match in {catalog.quote_name(str(parent_schema), str(parent))}"
            )
    return problems


def invalid_indexes(connection: catalog.Connection) -> list[str]:
    """Returns one line per index marked invalid (pg_dump never dumps one, so a restore left it so).
    Raises psycopg.Error."""
    return [f"{key} is left invalid by the restore" for (key,) in connection.execute(_INVALID_INDEXES_SQL).fetchall()]


def _violations_statement(
    table: catalog.TableName,
    partitioned: bool,
    parent: catalog.TableName,
    parent_partitioned: bool,
    full: bool,
    columns: list[str],
    referenced: list[str],
) -> sql.Composed:
    """Returns SELECT count(*) of the rows that break the foreign key: a complete key with no
    referenced row (MATCH SIMPLE and FULL), or a partly NULL key (MATCH FULL)."""
    child_columns = sql.SQL(", ").join(sql.SQL("c.{}").format(sql.Identifier(column)) for column in columns)
    matches = sql.SQL(" AND ").join(
        sql.SQL("p.{} = c.{}").format(sql.Identifier(theirs), sql.Identifier(ours))
        for ours, theirs in zip(columns, referenced, strict=True)
    )
    partly_null = (
        sql.SQL(" OR num_nulls({0}) BETWEEN 1 AND {1}").format(child_columns, sql.Literal(len(columns) - 1))
        if full
        else sql.SQL("")
    )
    return sql.SQL(
        "SELECT count(*) FROM {only}{child} AS c WHERE (num_nulls({columns}) = 0 AND NOT EXISTS "
        "(SELECT 1 FROM {parent_only}{parent} AS p WHERE {matches})){partly_null}"
    ).format(
        only=sql.SQL("" if partitioned else "ONLY "),
        child=sql.SQL("{}.{}").format(sql.Identifier(table[0]), sql.Identifier(table[1])),
        columns=child_columns,
        parent_only=sql.SQL("" if parent_partitioned else "ONLY "),
        parent=sql.SQL("{}.{}").format(sql.Identifier(parent[0]), sql.Identifier(parent[1])),
        matches=matches,
        partly_null=partly_null,
    )
