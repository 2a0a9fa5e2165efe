"""The locks that keep every dumped table as the snapshot sees it, from the export until the last read.

TRUNCATE, VACUUM FULL, CLUSTER and ALTER TABLE … SET DATA TYPE are not MVCC-safe: a scan after one of
them commits sees the rewritten file even inside an older snapshot (a truncated table is empty in it).
pg_dump guards against them with an ACCESS SHARE lock on every table it dumps, but takes those locks
only after it imported the snapshot; a rewrite committed in between is silently in the snapshot's view.
So the exporting transaction takes the same locks *before* it exports (LOCK TABLE takes no snapshot,
so the snapshot is taken after the locks), and keeps them until pg_dump and every reading session are
done: no rewrite can commit while anything reads the snapshot.

Holding them opens one trap, watched here: a DDL arriving between the export and pg_dump's own LOCK
TABLE queues behind the exporter's lock, pg_dump's LOCK queues behind the DDL, and the exporter waits
for pg_dump in the client, where PostgreSQL sees no deadlock. pg_dump alone would have let that DDL
pass first; so does the agent: it kills pg_dump (which had copied nothing yet), releases its locks and
takes a new snapshot once the DDL is through. The exporter takes no other lock until pg_dump has read
the schema (the fingerprint locks the views it reads, as pg_dump's own reading of them does).

**In a replication slot's snapshot** (`import_locked_instant`: `verifier run` with a physical proof at an
exact instant, one snapshot for both proofs). The server exports the slot's snapshot when it creates the
slot, so no lock can come before it inside its transaction. Of the two ways to keep the guarantee — hold
the locks in a session opened before the slot, or lock after importing and detect a rewrite — the agent
detects: it imports the slot's snapshot, lists the tables *in it*, locks them, then compares each table's
`pg_class.relfilenode` as the snapshot sees it with `pg_relation_filenode(oid)`, the file it has now (the
catalog cache, current once the lock is granted). A difference is a rewrite committed after the snapshot
(a TRUNCATE, VACUUM FULL, CLUSTER, a rewriting ALTER TABLE): the transaction is rolled back, the slot
dropped and a new one taken, whose snapshot sees the rewrite. Once the locks are held no rewrite can
commit until the dump and every reader are done, as above. Detecting keeps everything on the one session
the deadlock watch already knows (the lock holder is the snapshot's reader), where a locking session
opened first would have held its locks through the slot's wait for running transactions, and a session
waiting to rewrite behind them would have held up everyone else's writes for that long.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from psycopg import sql

from verifier.errors import DumpFailed
from verifier.postgres import catalog
from verifier.process import RunningProgram

logger = logging.getLogger(__name__)

ATTEMPTS = 5  # snapshots tried when DDL keeps slipping in before pg_dump's locks
POLL_SECONDS = (0.05, 0.5)  # the watch over pg_dump's start: first and longest pause (pg_locks is read whole)
APPLICATION_NAME = "pg-backup-verifier pg_dump"
_STATEMENT_CHARACTERS = 100_000  # per LOCK TABLE statement, as pg_dump batches its own

# The tables pg_dump locks: ordinary and partitioned tables outside the system schemas that the role may
# read (pg_dump fails on the others with its own message). In oid order, as pg_dump locks them.
_DUMPED_TABLES_SQL = """
SELECT c.oid::bigint, n.nspname::text, c.relname::text
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND c.relpersistence <> 't'
  AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
  AND pg_catalog.has_table_privilege(c.oid, 'SELECT')
ORDER BY c.oid
"""

# The earliest session of pg_dump (its leader: workers connect later), what it runs, whether it waits
# for a lock or for its output to be read, and how many sessions pg_dump has (workers: the schema is read).
_DUMP_SESSION_SQL = """
SELECT a.pid, coalesce(a.query, ''), a.wait_event_type IS NOT DISTINCT FROM 'Lock',
       a.wait_event IS NOT DISTINCT FROM 'ClientWrite',
       (SELECT count(*) FROM pg_catalog.pg_stat_activity w WHERE w.application_name = a.application_name)
FROM pg_catalog.pg_stat_activity a WHERE a.application_name = %s
ORDER BY a.backend_start, a.pid LIMIT 1
"""

# Sessions that pg_dump waits behind and that themselves wait for one of the agent's sessions.
_CYCLE_SQL = """
SELECT b.pid, coalesce(nullif(b.application_name, ''), b.usename::text, '?'),
       left(regexp_replace(coalesce(b.query, ''), '\\s+', ' ', 'g'), 120),
       (SELECT string_agg(DISTINCT l.relation::regclass::text, ', ') FROM pg_catalog.pg_locks l
        WHERE l.pid = b.pid AND NOT l.granted AND l.relation IS NOT NULL)
FROM unnest(pg_catalog.pg_blocking_pids(%s)) AS blocker(pid)
JOIN pg_catalog.pg_stat_activity b ON b.pid = blocker.pid
WHERE pg_catalog.pg_blocking_pids(blocker.pid) && %s::int[]
"""

# Who holds, or waits for, an ACCESS EXCLUSIVE lock on a relation (the only mode ACCESS SHARE waits for).
_EXCLUSIVE_SQL = """
SELECT l.relation::regclass::text, l.pid, l.granted,
       coalesce(nullif(a.application_name, ''), a.usename::text, '?'),
       left(regexp_replace(coalesce(a.query, ''), '\\s+', ' ', 'g'), 120)
FROM pg_catalog.pg_locks l LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'relation' AND l.mode = 'AccessExclusiveLock' AND l.pid <> pg_catalog.pg_backend_pid()
  AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())
  AND (cardinality(%s::oid[]) = 0 OR l.relation = ANY(%s::oid[]))
ORDER BY l.granted DESC, 1, 2
"""


@dataclass(frozen=True)
class LockedSnapshot:
    """An exported snapshot whose transaction holds ACCESS SHARE on every table in `tables` (oid → name)."""

    snapshot_id: str
    tables: dict[int, catalog.TableName]


def export_locked_snapshot(session: catalog.Connection, *, lock_timeout_seconds: float) -> LockedSnapshot:
    """Opens a read-only REPEATABLE READ transaction on `session` (autocommit, outside a transaction),
    locks every table pg_dump will dump in ACCESS SHARE mode, then exports its snapshot. Returns it.
    The caller ends the transaction.

    A table dropped before it was locked, or created before the export, is met by listing and locking
    again. Raises DumpFailed naming the tables and sessions when a lock cannot be had within
    `lock_timeout_seconds`, or psycopg.Error.
    """
    catalog.set_lock_timeout(session, lock_timeout_seconds)
    for _ in range(ATTEMPTS):
        tables = _dumped_tables(session)
        session.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        try:
            _lock(session, tables)
        except psycopg.errors.UndefinedTable:  # dropped since it was listed
            session.execute("ROLLBACK")
            continue
        row = session.execute("SELECT pg_catalog.pg_export_snapshot()").fetchone()
        snapshot_id = str(row[0]) if row else ""
        if set(_dumped_tables(session)) <= set(tables):  # in the snapshot: nothing created unlocked
            return LockedSnapshot(snapshot_id, tables)
        session.execute("ROLLBACK")
    raise DumpFailed(f"tables kept being created or dropped while the snapshot was taken ({ATTEMPTS} tries)")


def import_locked_instant(
    session: catalog.Connection, take: Callable[[], str], *, lock_timeout_seconds: float
) -> LockedSnapshot:
    """Takes a snapshot exported elsewhere (`take`: a new replication slot's, see the module's docstring)
    and imports it into a read-only REPEATABLE READ transaction on `session` (autocommit, outside a
    transaction), locks every table pg_dump will dump in it in ACCESS SHARE mode, and checks that none
    was rewritten since the snapshot; a rewritten or dropped table means a new snapshot. Returns it; the
    caller ends the transaction.

    Raises DumpFailed when tables keep being rewritten (ATTEMPTS snapshots) or a lock cannot be had within
    `lock_timeout_seconds` (naming the tables and sessions), what `take` raises, or psycopg.Error."""
    catalog.set_lock_timeout(session, lock_timeout_seconds)
    rewritten: list[str] = []
    for _ in range(ATTEMPTS):
        snapshot_id = take()
        session.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        session.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot_id)))
        tables = _dumped_tables(session)  # as the snapshot sees them
        try:
            _lock(session, tables)
        except psycopg.errors.UndefinedTable:  # dropped (or renamed) since the snapshot
            session.execute("ROLLBACK")
            continue
        rewritten = _rewritten_since_snapshot(session, list(tables))
        if not rewritten:
            return LockedSnapshot(snapshot_id, tables)
        logger.warning("dump: %s rewritten after the slot's snapshot: a new slot", ", ".join(rewritten))
        session.execute("ROLLBACK")
    raise DumpFailed(
        f"tables kept being rewritten while the instant was taken ({ATTEMPTS} tries, last {', '.join(rewritten)})"
    )


# The tables whose file as the snapshot sees it (pg_class read in it) is not their file now (the catalog
# cache, current once the lock is granted), and the tables not locked by this session under their oid (a
# name locked that is another table's now). Partitioned tables have no file.
_REWRITTEN_SQL = """
SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname)
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = ANY(%s::oid[])
  AND ((c.relfilenode <> 0 AND pg_catalog.pg_relation_filenode(c.oid) IS DISTINCT FROM c.relfilenode)
       OR NOT EXISTS (SELECT FROM pg_catalog.pg_locks l WHERE l.pid = pg_catalog.pg_backend_pid()
                      AND l.locktype = 'relation' AND l.relation = c.oid AND l.granted))
ORDER BY 1
"""


def _rewritten_since_snapshot(session: catalog.Connection, oids: list[int]) -> list[str]:
    """Returns the names of the tables among `oids` rewritten after the transaction's snapshot (or not
    locked under their oid), in the snapshot's names."""
    return [str(name) for (name,) in session.execute(_REWRITTEN_SQL, (oids,))]


def start_dump_locked(
    session: catalog.Connection,
    connect: catalog.Connector,
    start_dump: Callable[[str, str], RunningProgram],
    *,
    lock_timeout_seconds: float,
    discard: Callable[[], None],
    take_instant: Callable[[], str] | None = None,
) -> tuple[LockedSnapshot, RunningProgram]:
    """Exports a locked snapshot on `session` (with `take_instant`: imports the snapshot it returns, see
    `import_locked_instant`) and starts pg_dump in it with `start_dump(snapshot_id, application_name)`;
    returns both once pg_dump has read the schema (its locks taken). When pg_dump waits behind a session
    that waits for the exporter's locks, pg_dump is killed, `discard` removes what it wrote, the locks are
    released (that session goes first, as it would with pg_dump alone) and a new snapshot is taken.
    Raises DumpFailed naming the session after ATTEMPTS snapshots, what `take_instant` raises, or
    psycopg.Error."""
    deadlock = ""
    for _ in range(ATTEMPTS):
        if take_instant is None:
            locked = export_locked_snapshot(session, lock_timeout_seconds=lock_timeout_seconds)
        else:
            locked = import_locked_instant(session, take_instant, lock_timeout_seconds=lock_timeout_seconds)
        name = f"{APPLICATION_NAME} {locked.snapshot_id}"[:63]
        program = start_dump(locked.snapshot_id, name)
        try:
            deadlock = _wait_for_dump_locks(
                connect,
                name,
                session.info.backend_pid,
                give_up_seconds=lock_timeout_seconds + 30,
                wrote=program.output_started,
            )
        except BaseException:
            program.kill()
            discard()
            raise
        if not deadlock:
            return locked, program
        logger.warning("dump: %s; pg_dump restarted in a new snapshot once it is through", deadlock)
        program.kill()
        discard()
        session.execute("ROLLBACK")
    raise DumpFailed(f"pg_dump could not take its locks in {ATTEMPTS} snapshots: {deadlock}")


def blocking_sessions(connect: catalog.Connector, relations: list[int] | None = None) -> list[str]:
    """Returns one phrase per session that holds or waits for an ACCESS EXCLUSIVE lock on one of
    `relations` (any relation when None), on a new connection: "public.orders: pid 42 (psql) holds
    ACCESS EXCLUSIVE: VACUUM FULL orders". [] when even that fails: a diagnosis never hides the error."""
    try:
        with connect() as connection:
            return _exclusive_lockers(connection, relations or [])
    except Exception:
        return []


def _exclusive_lockers(connection: catalog.Connection, oids: list[int]) -> list[str]:
    rows = connection.execute(_EXCLUSIVE_SQL, (oids, oids)).fetchall()
    return [
        f"{relation}: pid {pid} ({application}) {'holds' if granted else 'waits for'} ACCESS EXCLUSIVE: {query}"
        for relation, pid, granted, application, query in rows
    ]


def _dumped_tables(connection: catalog.Connection) -> dict[int, catalog.TableName]:
    rows = connection.execute(_DUMPED_TABLES_SQL).fetchall()
    return {int(oid): (str(schema), str(table)) for oid, schema, table in rows}  # type: ignore[call-overload]


def _lock(session: catalog.Connection, tables: dict[int, catalog.TableName]) -> None:
    """Locks `tables` in ACCESS SHARE mode, in batches of statements of about 100 kB. Raises DumpFailed
    naming the tables and sessions on a lock timeout (the transaction is then rolled back)."""
    batch: list[tuple[int, catalog.TableName]] = []
    size = 0
    items = list(tables.items())
    for index, (oid, name) in enumerate(items):
        batch.append((oid, name))
        size += len(name[0]) + len(name[1]) + 6
        if size < _STATEMENT_CHARACTERS and index + 1 < len(items):
            continue
        statement = sql.SQL("LOCK TABLE {} IN ACCESS SHARE MODE").format(
            sql.SQL(", ").join(
                sql.SQL("ONLY {}.{}").format(sql.Identifier(schema), sql.Identifier(table))
                for _, (schema, table) in batch
            )
        )
        try:
            session.execute(statement)
        except psycopg.errors.LockNotAvailable:
            session.execute("ROLLBACK")
            try:
                who = _exclusive_lockers(session, [oid for oid, _ in batch])
            except psycopg.Error:  # a diagnosis never hides the error it explains
                who = []
            raise DumpFailed(
                "could not lock the tables for the snapshot within dump.lock_wait_timeout: "
                + ("; ".join(who) if who else "another session holds or waits for an ACCESS EXCLUSIVE lock")
            ) from None
        batch, size = [], 0


def _wait_for_dump_locks(
    connect: catalog.Connector,
    application_name: str,
    holder: int,
    *,
    give_up_seconds: float,
    wrote: Callable[[], bool],
) -> str:
    """Watches pg_dump's leading session until it has read the schema: it writes the archive, copies a
    table or has started its workers (or it ended, or never showed up). Returns "" then, or what pg_dump
    waits behind when that session waits for `holder`'s locks. Until then the exporter takes no other
    lock (the fingerprint reads views, and pg_dump reads them too while it reads the schema)."""
    started = time.monotonic()
    seen = False
    pause = POLL_SECONDS[0]
    with connect() as monitor:
        while time.monotonic() - started < give_up_seconds:
            if wrote():
                return ""  # pg_dump is writing the archive: it has read the schema and holds its locks
            row = monitor.execute(_DUMP_SESSION_SQL, (application_name,)).fetchone()
            if row is None:
                if seen or time.monotonic() - started > 30:
                    return ""  # pg_dump ended (its own error says why) or never connected
            else:
                seen = True
                pid, query, waiting, writing, sessions = row
                if _past_schema_phase(str(query), bool(writing), int(sessions)):  # type: ignore[call-overload]
                    return ""
                cycle = monitor.execute(_CYCLE_SQL, (pid, [holder])).fetchone() if waiting else None
                if cycle is not None:
                    blocker, application, statement, relation = cycle
                    return (
                        f"pid {blocker} ({application}: {statement}) waited for {relation or 'a relation'} "
                        "behind the snapshot's lock, and pg_dump behind it"
                    )
            time.sleep(pause)
            pause = min(POLL_SECONDS[1], pause * 1.5)
    return ""


def _past_schema_phase(query: str, writing: bool, sessions: int) -> bool:
    """Returns True when pg_dump has read the schema (and so taken its locks): it writes the archive,
    copies a table, or its parallel workers have connected. Pure."""
    return writing or query.lstrip().upper().startswith("COPY") or sessions > 1
