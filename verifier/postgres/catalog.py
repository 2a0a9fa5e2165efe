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
from dataclasses import dataclass, field
from typing import TypeVar

import psycopg
from psycopg import sql

from verifier.errors import one_line
from verifier.progress import TABLES_COUNTED, Meter

Connection = psycopg.Connection[tuple[object, ...]]
Connector = Callable[[], Connection]
TableName = tuple[str, str]
_Measured = TypeVar("_Measured")

# Ordinary tables (incl. leaf partitions and inheritance children), not temporary, not owned by an
# extension (their data is not dumped), outside the system schemas. Biggest first, for parallel counting.
_TABLES_SQL = """
SELECT n.nspname, c.relname, c.relpersistence = 'u'
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
             'owner ' || pg_get_userbyid(c.relowner), 'acl ' || c.relacl::text,
             CASE WHEN c.relrowsecurity THEN 'row level security' END,
             CASE WHEN c.relforcerowsecurity THEN 'forced row level security' END,
             'comment ' || obj_description(c.oid, 'pg_class'),
             (SELECT string_agg(concat_ws(' ', quote_ident(a.attname), format_type(a.atttypid, a.atttypmod),
                       CASE WHEN a.attnotnull THEN 'NOT NULL' END,
                       'DEFAULT ' || pg_get_expr(ad.adbin, ad.adrelid),
                       NULLIF(a.attidentity, ''), NULLIF(a.attgenerated, ''),
                       CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation
                            THEN 'COLLATE ' || a.attcollation::regcollation::text END,
                       'acl ' || a.attacl::text, 'comment ' || col_description(c.oid, a.attnum)),
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
    WHERE {_USER_SCHEMA.format(nsp="n.nspname")} AND c.relpersistence <> 't' AND i.indisvalid
      AND {_NOT_EXTENSION_MEMBER.format(catalog="'pg_class'", oid="i.indrelid")}
    """,
    # sequences: definition, not position
    f"""
    SELECT 'sequence ' || quote_ident(s.schemaname) || '.' || quote_ident(s.sequencename),
           concat_ws(' ', s.data_type, s.start_value, s.min_value, s.max_value, s.increment_by, s.cycle,
             'owner ' || s.sequenceowner, 'acl ' || c.relacl::text,
             (SELECT 'owned by ' || d.refobjid::regclass::text || '.' || quote_ident(a.attname)
                FROM pg_depend d JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
               WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('a', 'i')
                 AND d.refclassid = 'pg_class'::regclass LIMIT 1))
    FROM pg_sequences s
    JOIN pg_namespace n ON n.nspname = s.schemaname
    JOIN pg_class c ON c.relname = s.sequencename AND c.relnamespace = n.oid
    WHERE {_USER_SCHEMA.format(nsp="s.schemaname")}
      AND {_NOT_EXTENSION_MEMBER.format(catalog="'pg_class'", oid="c.oid")}
    """,
    # functions and procedures
    f"""
    SELECT 'function ' || p.oid::regprocedure::text,
           concat_ws(E'\\n',
             CASE WHEN p.prokind IN ('f', 'p') THEN md5(pg_get_functiondef(p.oid)) ELSE p.prokind::text END,
             'owner ' || pg_get_userbyid(p.proowner), 'acl ' || p.proacl::text,
             'comment ' || obj_description(p.oid, 'pg_proc'))
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
    SELECT CASE t.typtype WHEN 'e' THEN 'enum ' WHEN 'd' THEN 'domain ' ELSE 'type ' END || t.oid::regtype::text,
           concat_ws(E'\\n',
             CASE t.typtype
               WHEN 'e' THEN (SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
                                FROM pg_enum e WHERE e.enumtypid = t.oid)
               WHEN 'd' THEN format_type(t.typbasetype, t.typtypmod) || ' ' || t.typnotnull || ' '
                             || coalesce(pg_get_expr(t.typdefaultbin, 0), '')
               ELSE (SELECT string_agg(quote_ident(a.attname) || ' ' || format_type(a.atttypid, a.atttypmod),
                                       ', ' ORDER BY a.attnum)
                       FROM pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped)
             END,
             (SELECT string_agg(pg_get_constraintdef(k.oid), ' ' ORDER BY k.conname)
                FROM pg_constraint k WHERE k.contypid = t.oid),
             'owner ' || pg_get_userbyid(t.typowner), 'acl ' || t.typacl::text,
             'comment ' || obj_description(t.oid, 'pg_type'))
    FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
    WHERE (t.typtype IN ('e', 'd')
           OR (t.typtype = 'c' AND (SELECT r.relkind FROM pg_class r WHERE r.oid = t.typrelid) = 'c'))
      AND {_USER_SCHEMA.format(nsp="n.nspname")}
      AND {_NOT_EXTENSION_MEMBER.format(catalog="'pg_type'", oid="t.oid")}
    """,
    # schemas and extensions
    f"""
    SELECT 'schema ' || quote_ident(n.nspname),
           concat_ws(E'\\n', 'owner ' || pg_get_userbyid(n.nspowner), 'acl ' || n.nspacl::text,
                     'comment ' || obj_description(n.oid, 'pg_namespace'))
    FROM pg_namespace n
    WHERE {_USER_SCHEMA.format(nsp="n.nspname")}
      AND {_NOT_EXTENSION_MEMBER.format(catalog="'pg_namespace'", oid="n.oid")}
    UNION ALL
    SELECT 'extension ' || quote_ident(e.extname), e.extnamespace::regnamespace::text FROM pg_extension e
    """,
    # row-level security policies, with the roles they name
    f"""
    SELECT 'policy ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname) || '.' || quote_ident(p.polname),
           concat_ws(E'\\n', p.polcmd, p.polpermissive,
             (SELECT string_agg(CASE WHEN r = 0 THEN 'public' ELSE pg_get_userbyid(r) END, ',' ORDER BY 1)
                FROM unnest(p.polroles) AS r),
             'using ' || pg_get_expr(p.polqual, p.polrelid), 'check ' || pg_get_expr(p.polwithcheck, p.polrelid))
    FROM pg_policy p
    JOIN pg_class c ON c.oid = p.polrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE {_USER_SCHEMA.format(nsp="n.nspname")}
    """,
)

# Catalog queries run with only pg_catalog on the search_path, on production and in the sandbox
# alike: `format_type`, `::regclass` and the `pg_get_*def` functions leave out the schema of objects
# on the path, so the fingerprint would otherwise depend on the session's (or role's) search_path.
# Settings that change how definitions print (partition bounds and defaults hold dates, intervals, floats)
_FINGERPRINT_SETTINGS = {
    "search_path": "pg_catalog",
    "DateStyle": "ISO, YMD",
    "IntervalStyle": "postgres",
    "TimeZone": "UTC",
    "extra_float_digits": "3",
}

_EXTENSIONS_SQL = "SELECT extname, extversion FROM pg_extension ORDER BY extname"
_ROLES_SQL = "SELECT rolname FROM pg_roles WHERE rolname !~ '^pg_' ORDER BY rolname"

# Production now from the statistics: n_live_tup follows inserts and deletes as they commit;
# reltuples (last VACUUM/ANALYZE) when the statistics were reset.
_ESTIMATES_SQL = """
SELECT n.nspname, c.relname,
       coalesce(nullif(s.n_live_tup, 0), nullif(greatest(c.reltuples, 0), 0)::bigint, 0)
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid
WHERE c.relkind = 'r' AND c.relpersistence <> 't'
"""


@dataclass(frozen=True)
class SchemaFingerprint:
    """A hash per schema object, one hash over them all, and the installed extensions' versions
    (compared apart: a sandbox may only have another version of an extension's package)."""

    objects: dict[str, str]
    fingerprint: str
    extensions: dict[str, str] = field(default_factory=dict)


def list_tables(connection: Connection) -> list[TableName]:
    """Returns the (schema, table) pairs whose rows pg_dump dumps, biggest first. Raises psycopg.Error."""
    return [(str(schema), str(table)) for schema, table, _ in connection.execute(_TABLES_SQL).fetchall()]


def tables_to_count(connection: Connection) -> tuple[list[TableName], list[TableName]]:
    """Returns (tables to count, unlogged tables whose data pg_dump skips) for a production session.

    On a hot standby pg_dump dumps the definition of an unlogged table but not its rows (they cannot
    be read during recovery), so those are not counted either. Raises psycopg.Error.
    """
    row = connection.execute("SELECT pg_is_in_recovery()").fetchone()
    in_recovery = bool(row and row[0])
    counted: list[TableName] = []
    skipped: list[TableName] = []
    for schema, table, unlogged in connection.execute(_TABLES_SQL).fetchall():
        (skipped if in_recovery and unlogged else counted).append((str(schema), str(table)))
    return counted, skipped


def estimate_rows(connection: Connection) -> dict[TableName, int]:
    """Returns every table's row count from the statistics (no table is read). Raises psycopg.Error."""
    rows = connection.execute(_ESTIMATES_SQL).fetchall()
    return {(str(schema), str(table)): int(count) for schema, table, count in rows}  # type: ignore[call-overload]


def list_roles(connection: Connection) -> list[str]:
    """Returns the names of the cluster's roles, without the predefined `pg_*` ones. Raises psycopg.Error."""
    return [str(name) for (name,) in connection.execute(_ROLES_SQL).fetchall()]


def create_missing_roles(connection: Connection, roles: list[str]) -> list[str]:
    """Creates, without password or login, each role that does not exist yet, so that owners, grants
    and policies naming it restore. Returns the roles created. Raises psycopg.Error."""
    existing = set(list_roles(connection))
    created = []
    for role in roles:
        if role not in existing and not role.startswith("pg_"):
            connection.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role)))
            created.append(role)
    return created


def count_rows(
    tables: list[TableName],
    connect: Connector,
    *,
    jobs: int = 1,
    snapshot_id: str | None = None,
    first: Connection | None = None,
    lock_timeout_seconds: float | None = None,
    meter: Meter | None = None,
) -> dict[TableName, int]:
    """Returns the exact row count of every table in `tables`.

    With `snapshot_id`, every connection joins that snapshot, so the counts are the ones a
    `pg_dump --snapshot` of the same id dumps. `first` (already inside the right transaction) is
    used as one of the workers. `lock_timeout_seconds` bounds the wait for a table lock (a pending
    ALTER TABLE queued behind pg_dump must not hang the night). `meter` hears of every table
    counted. Raises CountFailed naming the table.
    """

    def count(connection: Connection, schema: str, table: str) -> int:
        statement = sql.SQL("SELECT count(*) FROM ONLY {}.{}").format(sql.Identifier(schema), sql.Identifier(table))
        row = connection.execute(statement).fetchone()
        return int(row[0]) if row else 0  # type: ignore[call-overload]

    return measure_tables(
        tables,
        connect,
        count,
        jobs=jobs,
        snapshot_id=snapshot_id,
        first=first,
        lock_timeout_seconds=lock_timeout_seconds,
        meter=meter,
    )


def measure_tables(
    tables: list[TableName],
    connect: Connector,
    measure: Callable[[Connection, str, str], _Measured],
    *,
    jobs: int = 1,
    snapshot_id: str | None = None,
    first: Connection | None = None,
    lock_timeout_seconds: float | None = None,
    meter: Meter | None = None,
    prepare: Callable[[Connection], None] | None = None,
) -> dict[TableName, _Measured]:
    """Returns `measure(connection, schema, table)` for every table, on up to `jobs` connections in
    one snapshot, as `count_rows` describes; `prepare` runs once on each connection inside its
    transaction (e.g. to pin session settings with SET LOCAL). Raises CountFailed naming the table."""
    work: queue.Queue[TableName] = queue.Queue()
    for table in tables:
        work.put(table)
    results: dict[TableName, _Measured] = {}
    errors: list[BaseException] = []
    lock = threading.Lock()

    def drain(connection: Connection) -> None:
        if lock_timeout_seconds is not None:
            set_lock_timeout(connection, lock_timeout_seconds)
        if prepare is not None:
            prepare(connection)
        while not errors:
            try:
                schema, table = work.get_nowait()
            except queue.Empty:
                return
            try:
                value = measure(connection, schema, table)
            except psycopg.Error as error:
                raise CountFailed(schema, table, error) from error
            with lock:
                results[(schema, table)] = value
                if meter is not None:
                    meter(TABLES_COUNTED, len(results), len(tables))

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
    return results


def set_lock_timeout(connection: Connection, seconds: float) -> None:
    """Bounds how long the session's statements wait for a table lock. Raises psycopg.Error."""
    connection.execute(sql.SQL("SET lock_timeout = {}").format(sql.Literal(f"{max(1, int(seconds * 1000))}ms")))


_LOCKED_TABLES_SQL = """
SELECT DISTINCT n.nspname, c.relname
FROM pg_locks l
JOIN pg_class c ON c.oid = l.relation
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE l.granted AND l.mode = 'AccessExclusiveLock' AND l.pid <> pg_backend_pid()
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
ORDER BY 1, 2
"""


def exclusively_locked_tables(connect: Connector) -> list[str]:
    """Returns the tables another session holds an ACCESS EXCLUSIVE lock on (what a lock timeout
    waited for), on a new connection; [] when even that fails."""
    try:
        with connect() as connection:
            return [quote_name(str(schema), str(table)) for schema, table in connection.execute(_LOCKED_TABLES_SQL)]
    except Exception:  # a diagnosis must never hide the error it explains
        return []


class CountFailed(Exception):
    """Counting one table failed; says which, with the server's one-line reason."""

    def __init__(self, schema: str, table: str, error: psycopg.Error) -> None:
        reason = one_line(error)
        if isinstance(error, psycopg.errors.LockNotAvailable):
            reason = "lock timeout: another session holds or waits for a conflicting lock on it"
        super().__init__(f"{quote_name(schema, table)}: {reason}")
        self.error = error


def quote_name(schema: str, table: str) -> str:
    """Returns `schema.table` quoted as PostgreSQL shows it (plain names stay plain)."""
    return ".".join(sql.Identifier(part).as_string(None) if _needs_quotes(part) else part for part in (schema, table))


def _needs_quotes(name: str) -> bool:
    return not name.replace("_", "a").isalnum() or not name.islower() or name[:1].isdigit()


def fingerprint_schema(connection: Connection) -> SchemaFingerprint:
    """Returns the schema fingerprint of the connected database, taken with only `pg_catalog` on the
    search_path and the date/interval/float styles pinned (then restored), so that it depends on
    nothing but the schema. Raises psycopg.Error.
    """
    previous = {}
    for name, value in _FINGERPRINT_SETTINGS.items():
        row = connection.execute("SELECT pg_catalog.current_setting(%s)", (name,)).fetchone()
        previous[name] = str(row[0]) if row else ""
        connection.execute("SELECT pg_catalog.set_config(%s, %s, false)", (name, value))
    try:
        definitions: dict[str, str] = {}
        for query in _SCHEMA_QUERIES:
            for key, definition in connection.execute(query).fetchall():
                definitions[str(key)] = str(definition or "")
        extensions = {str(name): str(version) for name, version in connection.execute(_EXTENSIONS_SQL).fetchall()}
    finally:
        idle = (psycopg.pq.TransactionStatus.IDLE, psycopg.pq.TransactionStatus.INTRANS)
        if not connection.closed and connection.info.transaction_status in idle:
            for name, value in previous.items():
                connection.execute("SELECT pg_catalog.set_config(%s, %s, false)", (name, value))
    objects = {key: hashlib.sha256(value.encode()).hexdigest()[:16] for key, value in sorted(definitions.items())}
    overall = hashlib.sha256("\n".join(f"{key} {value}" for key, value in objects.items()).encode()).hexdigest()
    return SchemaFingerprint(objects=objects, fingerprint=overall, extensions=extensions)


def extension_differences(expected: dict[str, str], actual: dict[str, str]) -> list[str]:
    """Returns one sentence per extension whose restored version differs from production's."""
    return [
        f"extension {name} is {expected[name]} in production but {actual[name]} in the sandbox "
        "(the sandbox's packages provide another version)"
        for name in sorted(expected.keys() & actual.keys())
        if expected[name] != actual[name]
    ]


def schema_differences(expected: dict[str, str], actual: dict[str, str]) -> list[str]:
    """Returns one line per object missing, extra or different between two fingerprints' objects."""
    lines = [f"missing: {key}" for key in sorted(expected.keys() - actual.keys())]
    lines += [f"unexpected: {key}" for key in sorted(actual.keys() - expected.keys())]
    lines += [f"differs: {key}" for key in sorted(expected.keys() & actual.keys()) if expected[key] != actual[key]]
    return lines
