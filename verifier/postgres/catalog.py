"""What a database holds: the tables pg_dump dumps and their exact row counts (the schema fingerprint is
in fingerprint.py).

Counting may run on several connections that all see one snapshot: the first connection exports it
(or it is given), the others join it with `SET TRANSACTION SNAPSHOT`. Each table is counted with
`ONLY`, so an inheritance parent is never counted twice and partitioned parents (no rows of their
own) are left to their leaf partitions.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable
from typing import TypeVar

import psycopg
from psycopg import sql

from verifier.errors import one_line
from verifier.names import qualified
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

_DATABASES_SQL = "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY datname"

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


def list_databases(connection: Connection) -> list[str]:
    """Returns the names of the server's databases that accept connections, templates left out, in
    name order. Raises psycopg.Error."""
    rows = connection.execute(_DATABASES_SQL).fetchall()
    return [str(name) for (name,) in rows]


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


TABLES_PER_TRANSACTION = 200


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
    transaction (e.g. to pin session settings with SET LOCAL). Raises CountFailed naming the table.

    `first`, when given, holds the snapshot; for the dump it locked every table before exporting it
    (`dump_locks`), so it never queues for a table lock. The other sessions must not queue either (a
    DDL waiting behind first's lock would be waited for, while first waits for them in the client: a
    deadlock PostgreSQL cannot see), so they take each table's lock NOWAIT and hand a table whose lock
    would wait to `first`."""
    work: queue.Queue[TableName] = queue.Queue()
    for table in tables:
        work.put(table)
    handed_back: queue.Queue[TableName] = queue.Queue()  # a worker would have queued for them; `first` holds them
    results: dict[TableName, _Measured] = {}
    errors: list[BaseException] = []
    lock = threading.Lock()
    threads: list[threading.Thread] = []

    def next_table(holder: bool) -> TableName | None:
        with contextlib.suppress(queue.Empty):
            return work.get_nowait()
        while holder and not errors:
            workers_done = not any(thread.is_alive() for thread in threads)  # before looking: none put after
            with contextlib.suppress(queue.Empty):
                return handed_back.get(timeout=0.0 if workers_done else 0.05)
            if workers_done:
                return None
        return None

    def locked_without_waiting(connection: Connection, schema: str, table: str) -> bool:
        """Takes the table's ACCESS SHARE lock NOWAIT; False (and the table handed to `first`) when it
        would wait."""
        statement = sql.SQL("SAVEPOINT verifier_lock; LOCK TABLE ONLY {}.{} IN ACCESS SHARE MODE NOWAIT").format(
            sql.Identifier(schema), sql.Identifier(table)
        )
        try:
            connection.execute(statement)
        except psycopg.errors.LockNotAvailable:
            connection.execute("ROLLBACK TO SAVEPOINT verifier_lock")
            handed_back.put((schema, table))
            return False
        return True

    def begin(connection: Connection) -> None:
        # autocommit, so that the explicit BEGIN is the transaction (psycopg adds none)
        connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        if snapshot_id is not None:
            connection.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot_id)))
        if prepare is not None:
            prepare(connection)

    def drain(connection: Connection, *, renew: bool) -> None:
        """Measures tables until none is left. With `renew`, the transaction (its snapshot imported
        again) is renewed every TABLES_PER_TRANSACTION tables, so that the locks it holds stay few:
        a database of 10,000 tables would otherwise exhaust the lock table."""
        if lock_timeout_seconds is not None:
            set_lock_timeout(connection, lock_timeout_seconds)
        if renew:
            begin(connection)
        elif prepare is not None:
            prepare(connection)
        measured_here = 0
        holder = connection is first
        while not errors:
            following = next_table(holder)
            if following is None:
                return
            schema, table = following
            if renew and measured_here and measured_here % TABLES_PER_TRANSACTION == 0:
                connection.execute("ROLLBACK")  # read only: nothing to commit, only locks to release
                begin(connection)
            try:
                if first is not None and not holder and not locked_without_waiting(connection, schema, table):
                    continue
                value = measure(connection, schema, table)
            except psycopg.Error as error:
                raise CountFailed(schema, table, error) from error
            measured_here += 1
            with lock:
                results[(schema, table)] = value
                if meter is not None:
                    meter(TABLES_COUNTED, len(results), len(tables))

    def worker() -> None:
        try:
            with connect() as connection:
                connection.autocommit = True
                drain(connection, renew=True)
                connection.execute("ROLLBACK")
        except BaseException as error:
            errors.append(error)

    extra_workers = max(0, min(jobs, len(tables)) - (1 if first is not None else 0))
    threads += [threading.Thread(target=worker, daemon=True) for _ in range(extra_workers)]
    for thread in threads:
        thread.start()
    if first is not None:
        try:
            drain(first, renew=False)  # the session that exported the snapshot: it must stay open
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
    """Returns `schema.table` quoted as PostgreSQL's quote_ident quotes each part (plain names stay plain)."""
    return qualified(schema, table)


def legacy_quote_name(schema: str, table: str) -> str:
    """Returns `schema.table` quoted as earlier manifests recorded names (keywords and non-ASCII
    letters left plain), to find their entries. Pure."""
    return ".".join(sql.Identifier(part).as_string(None) if _needs_quotes(part) else part for part in (schema, table))


def _needs_quotes(name: str) -> bool:
    return not name.replace("_", "a").isalnum() or not name.islower() or name[:1].isdigit()
