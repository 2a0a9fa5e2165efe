"""What a database holds: the tables pg_dump dumps, their exact row counts, and a schema fingerprint.

Counting may run on several connections that all see one snapshot: the first connection exports it
(or it is given), the others join it with `SET TRANSACTION SNAPSHOT`. Each table is counted with
`ONLY`, so an inheritance parent is never counted twice and partitioned parents (no rows of their
own) are left to their leaf partitions.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from psycopg import sql

from verifier.progress import TABLES_COUNTED, Meter

Connection = psycopg.Connection[tuple[object, ...]]
Connector = Callable[[], Connection]
TableName = tuple[str, str]

# Ordinary tables (incl. leaf partitions and inheritance children), not temporary, not owned by an
# extension (their data is not dumped), outside the system schemas. Biggest first, for parallel counting.
_TABLES_SQL = """
SELECT n.nspname, c.relname
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r'
  AND c.relpersistence <> 't'
  AND n.nspname <> 'information_schema'
  AND n.nspname NOT LIKE 'pg\\_%'
  AND NOT EXISTS (
      SELECT 1 FROM pg_depend d
      WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY c.relpages DESC, n.nspname, c.relname
"""

_NOT_EXTENSION_MEMBER = """
NOT EXISTS (SELECT 1 FROM pg_depend d
            WHERE d.classid = {catalog}::regclass AND d.objid = {oid} AND d.deptype = 'e')
"""
_USER_SCHEMA = "{nsp} <> 'information_schema' AND {nsp} NOT LIKE 'pg\\_%'"

# Each query returns (key, canonical definition). Keys name the object for humans.
_SCHEMA_QUERIES: tuple[str, ...] = (
    # relations with their columns (in order, without attnum), kind, partitioning and inheritance
    f"""
    SELECT CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'table' WHEN 'v' THEN 'view'
                          WHEN 'm' THEN 'materialized view' WHEN 'f' THEN 'foreign table' END
           || ' ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname),
           concat_ws(E'\\n', c.relkind, c.relpersistence,
             pg_get_partkeydef(c.oid), pg_get_expr(c.relpartbound, c.oid),
             (SELECT string_agg(i.inhparent::regclass::text, ',' ORDER BY i.inhseqno)
                FROM pg_inherits i WHERE i.inhrelid = c.oid),
             CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) END,
             (SELECT string_agg(concat_ws(' ', quote_ident(a.attname), format_type(a.atttypid, a.atttypmod),
                       CASE WHEN a.attnotnull THEN 'NOT NULL' END,
                       'DEFAULT ' || pg_get_expr(ad.adbin, ad.adrelid),
                       NULLIF(a.attidentity, ''), NULLIF(a.attgenerated, ''),
                       CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation
                            THEN 'COLLATE ' || a.attcollation::regcollation::text END),
                       E'\\n' ORDER BY a.attnum)
                FROM pg_attribute a
                JOIN pg_type t ON t.oid = a.atttypid
                LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
               WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped))
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND c.relpersistence <> 't'
      AND {_USER_SCHEMA.format(nsp="n.nspname")}
      AND {_NOT_EXTENSION_MEMBER.format(catalog="'pg_class'", oid="c.oid")}
    """,
    # constraints (primary keys, foreign keys, checks, uniques, exclusions)
    f"""
    SELECT 'constraint ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname)
           || '.' || quote_ident(k.conname), pg_get_constraintdef(k.oid)
    FROM pg_constraint k
    JOIN pg_class c ON c.oid = k.conrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE {_USER_SCHEMA.format(nsp="n.nspname")} AND c.relpersistence <> 't'
      AND {_NOT_EXTENSION_MEMBER.format(catalog="'pg_class'", oid="c.oid")}
    """,
    # indexes
    f"""
    SELECT 'index ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname), pg_get_indexdef(c.oid)
    FROM pg_index i
    JOIN pg_class c ON c.oid = i.indexrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE {_USER_SCHEMA.format(nsp="n.nspname")} AND c.relpersistence <> 't'
      AND {_NOT_EXTENSION_MEMBER.format(catalog="'pg_class'", oid="i.indrelid")}
    """,
    # sequences: definition, not position
    f"""
    SELECT 'sequence ' || quote_ident(s.schemaname) || '.' || quote_ident(s.sequencename),
           concat_ws(' ', s.data_type, s.start_value, s.min_value, s.max_value, s.increment_by, s.cycle)
    FROM pg_sequences s
    JOIN pg_namespace n ON n.nspname = s.schemaname
    JOIN pg_class c ON c.relname = s.sequencename AND c.relnamespace = n.oid
    WHERE {_USER_SCHEMA.format(nsp="s.schemaname")}
      AND {_NOT_EXTENSION_MEMBER.format(catalog="'pg_class'", oid="c.oid")}
    """,
    # functions and procedures
    f"""
    SELECT 'function ' || p.oid::regprocedure::text,
           CASE WHEN p.prokind IN ('f', 'p') THEN md5(pg_get_functiondef(p.oid)) ELSE p.prokind::text END
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE {_USER_SCHEMA.format(nsp="n.nspname")}
      AND {_NOT_EXTENSION_MEMBER.format(catalog="'pg_proc'", oid="p.oid")}
    """,
    # triggers
    f"""
    SELECT 'trigger ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname) || '.' || quote_ident(t.tgname),
           pg_get_triggerdef(t.oid)
    FROM pg_trigger t
    JOIN pg_class c ON c.oid = t.tgrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE NOT t.tgisinternal AND {_USER_SCHEMA.format(nsp="n.nspname")}
    """,
    # enum and domain types
    f"""
    SELECT CASE t.typtype WHEN 'e' THEN 'enum ' ELSE 'domain ' END || t.oid::regtype::text,
           CASE t.typtype
             WHEN 'e' THEN (SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
                              FROM pg_enum e WHERE e.enumtypid = t.oid)
             ELSE format_type(t.typbasetype, t.typtypmod) || ' ' || t.typnotnull END
    FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
    WHERE t.typtype IN ('e', 'd') AND {_USER_SCHEMA.format(nsp="n.nspname")}
      AND {_NOT_EXTENSION_MEMBER.format(catalog="'pg_type'", oid="t.oid")}
    """,
    # schemas and extensions
    f"""
    SELECT 'schema ' || quote_ident(n.nspname), ''
    FROM pg_namespace n
    WHERE {_USER_SCHEMA.format(nsp="n.nspname")}
      AND {_NOT_EXTENSION_MEMBER.format(catalog="'pg_namespace'", oid="n.oid")}
    UNION ALL
    SELECT 'extension ' || quote_ident(e.extname), e.extversion FROM pg_extension e
    """,
)


@dataclass(frozen=True)
class SchemaFingerprint:
    """A hash per schema object and one hash over them all."""

    objects: dict[str, str]
    fingerprint: str


def list_tables(connection: Connection) -> list[TableName]:
    """Returns the (schema, table) pairs whose rows pg_dump dumps, biggest first. Raises psycopg.Error."""
    rows = connection.execute(_TABLES_SQL).fetchall()
    return [(str(schema), str(table)) for schema, table in rows]


def count_rows(
    tables: list[TableName],
    connect: Connector,
    *,
    jobs: int = 1,
    snapshot_id: str | None = None,
    first: Connection | None = None,
    meter: Meter | None = None,
) -> dict[TableName, int]:
    """Returns the exact row count of every table in `tables`.

    With `snapshot_id`, every connection joins that snapshot, so the counts are the ones a
    `pg_dump --snapshot` of the same id dumps. `first` (already inside the right transaction) is
    used as one of the workers; `meter` hears of every table counted. Raises psycopg.Error from any worker.
    """
    work: queue.Queue[TableName] = queue.Queue()
    for table in tables:
        work.put(table)
    counts: dict[TableName, int] = {}
    errors: list[BaseException] = []
    lock = threading.Lock()

    def drain(connection: Connection) -> None:
        while not errors:
            try:
                schema, table = work.get_nowait()
            except queue.Empty:
                return
            statement = sql.SQL("SELECT count(*) FROM ONLY {}.{}").format(sql.Identifier(schema), sql.Identifier(table))
            row = connection.execute(statement).fetchone()
            with lock:
                counts[(schema, table)] = int(row[0]) if row else 0  # type: ignore[call-overload]
                if meter is not None:
                    meter(TABLES_COUNTED, len(counts), len(tables))

    def worker() -> None:
        try:
            with connect() as connection:
                # autocommit, so that the explicit BEGIN below is the transaction (psycopg adds none)
                connection.autocommit = True
                connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                if snapshot_id is not None:
                    connection.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot_id)))
                drain(connection)
                connection.execute("ROLLBACK")
        except BaseException as error:
            errors.append(error)

    extra_workers = max(0, min(jobs, len(tables)) - (1 if first is not None else 0))
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(extra_workers)]
    for thread in threads:
        thread.start()
    if first is not None:
        try:
            drain(first)
        except BaseException as error:
            errors.append(error)
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return counts


def fingerprint_schema(connection: Connection) -> SchemaFingerprint:
    """Returns the schema fingerprint of the connected database. Raises psycopg.Error.

    Ownership and privileges are left out: the sandbox restores without them.
    """
    definitions: dict[str, str] = {}
    for query in _SCHEMA_QUERIES:
        for key, definition in connection.execute(query).fetchall():
            definitions[str(key)] = str(definition or "")
    objects = {key: hashlib.sha256(value.encode()).hexdigest()[:16] for key, value in sorted(definitions.items())}
    overall = hashlib.sha256("\n".join(f"{key} {value}" for key, value in objects.items()).encode()).hexdigest()
    return SchemaFingerprint(objects=objects, fingerprint=overall)


def schema_differences(expected: dict[str, str], actual: dict[str, str]) -> list[str]:
    """Returns one line per object missing, extra or different between two fingerprints' objects."""
    lines = [f"missing: {key}" for key in sorted(expected.keys() - actual.keys())]
    lines += [f"unexpected: {key}" for key in sorted(actual.keys() - expected.keys())]
    lines += [f"differs: {key}" for key in sorted(expected.keys() & actual.keys()) if expected[key] != actual[key]]
    return lines
