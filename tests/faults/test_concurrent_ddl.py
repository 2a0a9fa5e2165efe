"""Production keeps changing while the agent dumps: TRUNCATE and DDL from a concurrent session, each sent
at the moment that matters (found by watching the agent's sessions in pg_stat_activity/pg_locks).

What must hold: the backup and the row counts in its manifest are the snapshot's (never "exact" about a
table that lost rows, never a false CRITICAL stored in a manifest); a DDL waits no longer than it would
behind pg_dump alone (never until dump.lock_wait_timeout); the night's dump is kept.

The agent connects as a non-superuser role that owns the database; the concurrent session is that role.
On the code before issue 21's fix, the TRUNCATE/rewrite tests stored 0 rows in the manifest, and the
DDL-while-counting test deadlocked until dump.lock_wait_timeout and threw the dump away; the DDL-before-
pg_dump test guards the fix's own trap (the exporter's early locks), so it passed before too.
Counting is held still where a test needs it by a REINDEX in an open transaction: it holds the index's
ACCESS EXCLUSIVE lock, which a count's planning waits for, while pg_dump's COPY never opens the index.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from tests.faults.conftest import Fault, config
from tests.integration.conftest import SourceDatabase
from tests.support import leftovers
from verifier.pipeline import commands
from verifier.postgres.throwaway.cluster import TemporaryCluster
from verifier.report import Report

LOCK_WAIT = 60  # dump.lock_wait_timeout in these tests: a self-deadlock would last this long
WAITED = 20.0  # what no DDL may wait here (the agent's own work, not the lock timeout)

Connection = psycopg.Connection[tuple[Any, ...]]


@dataclass
class AppDatabase:
    """A database owned by a non-superuser login role, on the shared production cluster."""

    source: SourceDatabase
    role: str

    def connect(self) -> Connection:
        """Returns an autocommit connection as the owner role."""
        kwargs = {**self.source.cluster.connection_kwargs(self.source.dbname), "user": self.role}
        return psycopg.connect(**kwargs, autocommit=True)  # type: ignore[arg-type]

    def run(self, statements: str) -> None:
        """Runs `statements` as the owner role."""
        with self.connect() as connection:
            connection.execute(statements)


@pytest.fixture
def app_db(production: TemporaryCluster) -> Iterator[AppDatabase]:
    """A fresh database owned by a new login role (not a superuser)."""
    suffix = secrets.token_hex(3)
    role, name = f"owner_{suffix}", f"ddl_{suffix}"
    with production.connect() as connection:
        connection.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        connection.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(role)))
    with production.connect(name) as connection:
        connection.execute(sql.SQL("ALTER SCHEMA public OWNER TO {}").format(sql.Identifier(role)))
    yield AppDatabase(SourceDatabase(production, name), role)
    with production.connect() as connection:
        connection.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
        connection.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def _run_in_background(
    database: AppDatabase, repository: Path, **sections: Any
) -> tuple[threading.Thread, list[Report]]:
    configured = config(database.source, repository, source={"user": database.role}, zabbix=None, **sections)
    reports: list[Report] = []
    thread = threading.Thread(target=lambda: reports.append(commands.run(configured)), name="agent-run")
    thread.start()
    return thread, reports


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _blocked_by(watcher: Connection, pid: int) -> list[tuple[int, Any]]:
    """Returns (pid, backend_start) of the sessions waiting behind session `pid`, oldest first."""
    rows = watcher.execute(
        "SELECT pid, backend_start FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid)) ORDER BY backend_start",
        (pid,),
    ).fetchall()
    return [(int(row[0]), row[1]) for row in rows]


class TimedStatement(threading.Thread):
    """Runs one statement on its own connection and measures how long it took (its lock wait)."""

    def __init__(self, database: AppDatabase, statement: str) -> None:
        super().__init__(name="ddl", daemon=True)
        self.connection = database.connect()
        self.pid = self.connection.info.backend_pid
        self.statement = statement
        self.seconds: float | None = None
        self.error: BaseException | None = None
        self.finished_at: float | None = None

    def run(self) -> None:
        started = time.monotonic()
        try:
            self.connection.execute(self.statement)
        except BaseException as error:  # reported by the test
            self.error = error
        self.finished_at = time.monotonic()
        self.seconds = round(self.finished_at - started, 2)
        self.connection.close()


def _counts(report: Report) -> dict[str, int]:
    assert report.manifest is not None, [(found.name, found.summary) for found in report.results]
    return {count.table: count.rows for count in report.manifest.row_counts}


def _explain(report: Report) -> list[tuple[str, str, str]]:
    return [(found.name, found.status.name, found.summary) for found in report.results]


def test_truncate_between_export_and_pg_dump_lock_loses_no_row(
    app_db: AppDatabase, tmp_path: Path, fault: Fault
) -> None:
    """Issue 21.1: a transaction moving rows out with TRUNCATE, committing after the snapshot could be
    exported and before pg_dump locked the table, left the rows in neither table of the backup."""
    app_db.run(
        "CREATE TABLE staging (id integer PRIMARY KEY, payload text);"
        "CREATE TABLE archive (id integer PRIMARY KEY, payload text);"
        "INSERT INTO staging SELECT g, md5(g::text) FROM generate_series(1, 1000) g;"
        "CREATE TABLE other AS SELECT g AS id FROM generate_series(1, 100) g;"
    )
    repository = tmp_path / "repo"
    fault.watch(repository)
    with app_db.connect() as mover, app_db.connect() as watcher:
        mover.execute("BEGIN")
        mover.execute("INSERT INTO archive SELECT * FROM staging")
        mover.execute("TRUNCATE staging")  # its ACCESS EXCLUSIVE lock is held until COMMIT
        run, reports = _run_in_background(app_db, repository, dump={"lock_wait_timeout": "60s"})
        _wait_for(lambda: bool(_blocked_by(watcher, mover.info.backend_pid)), "the agent to meet the TRUNCATE")
        fault.inject("TRUNCATE committed between the snapshot's export and pg_dump's lock")
        mover.execute("COMMIT")
        run.join()
    report = reports[0]
    counts = _counts(report)
    assert (counts["archive"], counts["staging"]) == (1000, 0), counts  # production's rows, in the backup
    assert report.verification_passed, _explain(report)
    assert report.exit_code == 0, [found for found in _explain(report) if found[1] != "OK"]


@pytest.mark.parametrize("rewrite", ["TRUNCATE scratch", "ALTER TABLE scratch ALTER COLUMN id SET DATA TYPE bigint"])
def test_rewrite_after_pg_dump_copied_the_table_stores_no_false_count(
    app_db: AppDatabase, tmp_path: Path, fault: Fault, rewrite: str
) -> None:
    """Issue 21.2: a TRUNCATE (or another rewrite that is not MVCC-safe) committing after pg_dump had
    copied the table and before it was counted stored 0 rows in the manifest (pg_dump had 1,000):
    every later check of that good backup CRITICAL."""
    app_db.run(
        "CREATE TABLE big (id integer, payload text);"
        "INSERT INTO big SELECT g, md5(g::text) FROM generate_series(1, 50000) g;"
        "CREATE INDEX big_payload ON big (payload);"
        "CREATE TABLE scratch AS SELECT g AS id FROM generate_series(1, 1000) g;"
        "ANALYZE;"  # relpages: big is counted first
    )
    repository = tmp_path / "repo"
    fault.watch(repository)
    programs_before = leftovers.client_programs()
    with app_db.connect() as staller, app_db.connect() as watcher:
        staller.execute("BEGIN")
        staller.execute("REINDEX INDEX big_payload")  # holds the index: counting big waits, pg_dump does not
        run, reports = _run_in_background(app_db, repository, dump={"jobs": 1, "lock_wait_timeout": "60s"})
        _wait_for(lambda: bool(_blocked_by(watcher, staller.info.backend_pid)), "the agent to count big")
        _wait_for(lambda: _pg_dump_done(programs_before), "pg_dump to finish")
        truncate = TimedStatement(app_db, rewrite)
        fault.inject(f"{rewrite} after pg_dump copied the table, before it was counted")
        truncate.start()
        time.sleep(1.0)  # committed by now unless the snapshot's lock holds it
        staller.execute("COMMIT")
        run.join()
        truncate.join(LOCK_WAIT)
    report = reports[0]
    assert truncate.error is None, truncate.error
    assert _counts(report)["scratch"] == 1000
    assert report.verification_passed, _explain(report)
    assert report.exit_code == 0, [found for found in _explain(report) if found[1] != "OK"]


def _pg_dump_done(programs_before: set[int]) -> bool:
    """Returns True when no pg_dump started by this test runs (yet or any more)."""
    return not any(
        leftovers.descendants().get(pid) == "pg_dump" for pid in leftovers.client_programs() - programs_before
    )


def test_ddl_while_counting_waits_only_for_the_agent_and_keeps_the_dump(
    app_db: AppDatabase, tmp_path: Path, fault: Fault
) -> None:
    """Issue 21.3: a DDL queued behind the snapshot holder's lock, a counting session queued behind the
    DDL, the holder waiting for that session in the client: a deadlock PostgreSQL cannot see, until
    dump.lock_wait_timeout, and the complete dump thrown away."""
    app_db.run(
        "CREATE TABLE big1 (id integer, payload text);"
        "INSERT INTO big1 SELECT g, md5(g::text) FROM generate_series(1, 40000) g;"
        "CREATE INDEX big1_payload ON big1 (payload);"
        "CREATE TABLE big2 (id integer, payload text);"
        "INSERT INTO big2 SELECT g, md5(g::text) FROM generate_series(1, 30000) g;"
        "CREATE INDEX big2_payload ON big2 (payload);"
        "CREATE TABLE orders AS SELECT g AS id, g * 2 AS amount FROM generate_series(1, 500) g;"
        "CREATE VIEW order_totals AS SELECT sum(amount) FROM orders;"  # the fingerprint reads orders
        "ANALYZE;"
    )
    repository = tmp_path / "repo"
    fault.watch(repository)
    with app_db.connect() as staller1, app_db.connect() as staller2, app_db.connect() as watcher:
        for staller, index in ((staller1, "big1_payload"), (staller2, "big2_payload")):
            staller.execute("BEGIN")
            staller.execute(f"REINDEX INDEX {index}")
        run, reports = _run_in_background(app_db, repository, dump={"jobs": 2, "lock_wait_timeout": f"{LOCK_WAIT}s"})
        stallers = {staller1.info.backend_pid: staller1, staller2.info.backend_pid: staller2}
        _wait_for(lambda: all(_blocked_by(watcher, pid) for pid in stallers), "both counting sessions to stall")
        # the snapshot's holder connected first; the counting session that joined it, later
        stalled = sorted((_blocked_by(watcher, pid)[0][1], pid) for pid in stallers)
        holders_staller, workers_staller = stallers[stalled[0][1]], stallers[stalled[1][1]]
        ddl = TimedStatement(app_db, "ALTER TABLE orders ADD COLUMN note text")
        ddl.start()
        _wait_for(
            lambda: (
                watcher.execute(
                    "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s", (ddl.pid,)
                ).fetchone()
                == (True,)
            ),
            "the DDL to queue",
        )
        fault.inject("ALTER TABLE queued behind the agent's lock while a counting session still had to read it")
        workers_staller.execute("COMMIT")  # the counting session goes on to orders, where the DDL waits
        time.sleep(1.0)
        holders_staller.execute("COMMIT")
        released = time.monotonic()
        run.join()
        ddl.join(LOCK_WAIT + 30)
    report = reports[0]
    assert ddl.error is None, ddl.error
    assert ddl.seconds is not None and ddl.seconds < WAITED, f"the DDL waited {ddl.seconds}s"
    assert ddl.finished_at is not None and ddl.finished_at - released < 10, "the DDL outwaited the agent"
    assert report.exit_code == 0, [found for found in _explain(report) if found[1] != "OK"]
    assert report.verification_passed, _explain(report)
    assert _counts(report)["orders"] == 500
    assert list(repository.glob("*.dump*")), "the dump was thrown away"


@pytest.mark.parametrize("dump_format", ["custom", "directory"])
def test_ddl_before_pg_dump_locks_goes_first_and_the_dump_follows(
    app_db: AppDatabase, tmp_path: Path, fault: Fault, dump_format: str
) -> None:
    """A VACUUM FULL arriving after the snapshot's tables were locked but before pg_dump locked them
    queues behind the agent, and pg_dump's LOCK TABLE behind it: the agent lets it through (as pg_dump
    alone would have) and dumps in a new snapshot, instead of waiting for its own lock timeout."""
    app_db.run(
        "CREATE TABLE first_table AS SELECT g AS id FROM generate_series(1, 2000) g;"
        "CREATE TABLE second_table AS SELECT g AS id FROM generate_series(1, 10) g;"
    )
    repository = tmp_path / "repo"
    fault.watch(repository)
    with app_db.connect() as migration, app_db.connect() as watcher:
        migration.execute("BEGIN")
        migration.execute("LOCK TABLE second_table IN ACCESS EXCLUSIVE MODE")  # the agent waits here
        held = time.monotonic()
        run, reports = _run_in_background(
            app_db, repository, dump={"lock_wait_timeout": f"{LOCK_WAIT}s", "format": dump_format, "jobs": 2}
        )
        _wait_for(lambda: bool(_blocked_by(watcher, migration.info.backend_pid)), "the agent to wait for the lock")
        vacuum = TimedStatement(app_db, "VACUUM FULL first_table")  # first_table is already locked by then
        vacuum.start()
        _wait_for(
            lambda: (
                watcher.execute(
                    "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s", (vacuum.pid,)
                ).fetchone()
                == (True,)
            ),
            "the VACUUM FULL to queue",
        )
        fault.inject("VACUUM FULL between the snapshot's locks and pg_dump's")
        time.sleep(0.5)
        migration.execute("COMMIT")
        held = time.monotonic() - held
        vacuum.join(LOCK_WAIT + 30)
        run.join()
    report = reports[0]
    assert vacuum.error is None, vacuum.error
    assert vacuum.seconds is not None and vacuum.seconds < held + 5, f"VACUUM FULL waited {vacuum.seconds}s"
    assert report.exit_code == 0, [found for found in _explain(report) if found[1] != "OK"]
    assert _counts(report) == {"first_table": 2000, "second_table": 10}
    assert report.verification_passed, _explain(report)


def test_a_lock_that_cannot_be_had_names_the_table_and_the_session(
    app_db: AppDatabase, tmp_path: Path, fault: Fault
) -> None:
    """When a migration holds a table past dump.lock_wait_timeout, the one line says which table and
    which session holds it (pid, application, statement), not only that "another session" does."""
    app_db.run("CREATE TABLE invoices AS SELECT g AS id FROM generate_series(1, 10) g")
    repository = tmp_path / "repo"
    fault.watch(repository)
    with app_db.connect() as migration:
        migration.execute("SET application_name = 'nightly-migration'")
        migration.execute("BEGIN")
        migration.execute("LOCK TABLE invoices IN ACCESS EXCLUSIVE MODE")
        fault.inject("a migration holds a table past dump.lock_wait_timeout")
        configured = config(
            app_db.source, repository, source={"user": app_db.role}, zabbix=None, dump={"lock_wait_timeout": "2s"}
        )
        report = commands.run(configured)
        pid = migration.info.backend_pid
        migration.execute("ROLLBACK")
    dump = next(found for found in report.results if found.name == "dump")
    assert report.exit_code == 2, _explain(report)
    assert "\n" not in dump.summary
    for expected in ("invoices", f"pid {pid}", "nightly-migration", "LOCK TABLE invoices"):
        assert expected in dump.summary, dump.summary
    assert not list(repository.glob("*.dump*"))
