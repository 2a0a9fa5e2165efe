"""`verifier run` with the logical dump and the physical proof at an exact instant: one replication slot's
snapshot serves both (issue 24). pg_dump and every reading of the evidence run in the slot's exported
snapshot, the manifest records its LSN, and the physical proof restores to that LSN and compares with the
manifest's evidence, read once. Real PostgreSQL (wal_level = logical), real pgBackRest, a writer running."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.physical.conftest import PhysicalProduction
from verifier.config import Config
from verifier.pipeline import commands, physical_proof
from verifier.postgres.backup import dump_locks
from verifier.postgres.connection import ConnectionParams
from verifier.postgres.instant import Instant, SlotInstants
from verifier.progress import Meter
from verifier.report import Command, Report, Status

LSN = r"[0-9A-F]+/[0-9A-F]+"


def both_config(production: PhysicalProduction, repository: Path, **dump: object) -> Config:
    return Config.model_validate(
        {
            "dump": dump,
            "source": {"host": production.cluster.host, "port": production.cluster.port, "dbname": "postgres",
                       "user": "postgres"},
            "repository": {"path": str(repository)},
            "checks": {"min_count": 1},
            "physical": {"stanza": production.physical.stanza, "config": str(production.physical.config),
                         "amcheck": "off"},
        }
    )  # fmt: skip


def results(report: Report) -> dict[str, tuple[Status, str, tuple[str, ...]]]:
    return {result.name: (result.status, result.summary, result.details) for result in report.results}


def rows(report: Report, table: str) -> tuple[int | None, int | None]:
    assert report.verification is not None
    (compared,) = [entry for entry in report.verification.tables if (entry.schema, entry.table) == ("public", table)]
    return compared.snapshot_rows, compared.restored_rows


@pytest.mark.parametrize("dump", [{}, {"format": "directory", "jobs": 2}], ids=["restored-along", "directory-jobs"])
def test_run_proves_both_in_one_snapshot_while_production_writes(
    logical_production: PhysicalProduction, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dump: dict[str, object]
) -> None:
    """Rows committed between the two proofs (into `still`, which the writer leaves alone) make neither
    differ. The physical proof must not read production's evidence a second time: `read_at_instant` is
    replaced by a function that fails the test (a guard, not a stand-in: nothing real is replaced). The
    default custom archive is restored while it is dumped; a directory dump's workers import the slot's
    snapshot on connections of their own."""
    production = logical_production
    production.backup("full")
    config = both_config(production, tmp_path / "repository", **dump)

    def no_second_reading(*_: object, **__: object) -> None:
        raise AssertionError("the physical proof read production's evidence a second time")

    monkeypatch.setattr(physical_proof, "read_at_instant", no_second_reading)
    steps: list[str] = []

    def step(name: str) -> Meter | None:
        steps.append(name)
        if name == "instant":  # the physical proof begins: the logical proof is done
            production.execute("INSERT INTO still SELECT g, 'later ' || g FROM generate_series(1001, 1010) g")
        return None

    writer = production.write_continuously()
    try:
        logical, physical = commands.run_nightly(config, step=step)
    finally:
        production.stop_writing(writer)
    assert production.writes > 0 and "instant" in steps
    assert (logical.command, physical.command) == (Command.RUN, Command.RUN_PHYSICAL)
    assert logical.exit_code == 0, results(logical)
    assert physical.exit_code == 0, results(physical)
    assert logical.manifest is not None and logical.manifest.snapshot_lsn is not None
    lsn = logical.manifest.snapshot_lsn
    one = f"one snapshot: LSN {lsn} (exact)"
    status, summary, _ = results(logical)["dump"]
    assert status is Status.OK and one in summary, summary
    status, summary, details = results(physical)["physical"]
    assert status is Status.OK and re.fullmatch(
        rf"restored backup \d{{8}}-\d{{6}}F to LSN {re.escape(lsn)} \(exact\): every table equal to production "
        r"at that instant",
        summary,
    ), summary
    assert any(detail.startswith(one) and logical.manifest.name in detail for detail in details), details
    assert physical.verification is not None and physical.verification.instant == f"LSN {lsn} (exact)"
    # the same evidence: the physical proof's reference is the dump's manifest, table by table
    counts = logical.manifest.counts_by_table()
    for table in ("t", "u", "still"):
        assert rows(physical, table) == (counts[("public", table)],) * 2, table
        assert rows(logical, table) == (counts[("public", table)],) * 2, table
    assert counts[("public", "still")] == 300  # the rows written between the proofs are in neither
    assert production.execute("SELECT count(*) FROM still") == [(310,)]


class TruncatingOnce(SlotInstants):
    """Slots as the agent takes them; right after the first one, a TRUNCATE of `still` commits on production
    (before the dump's session could lock it): what a night's maintenance job may do at that moment."""

    def __init__(self, production: PhysicalProduction) -> None:
        super().__init__()
        self.production = production
        self.taken: list[Instant] = []

    def take(self, params: ConnectionParams) -> Instant:
        instant = super().take(params)
        self.taken.append(instant)
        if len(self.taken) == 1:
            self.production.execute("TRUNCATE still")
        return instant


def test_a_truncate_after_the_slot_is_not_silently_in_the_dump(
    logical_production: PhysicalProduction, tmp_path: Path
) -> None:
    """A TRUNCATE committed after the slot's snapshot is seen by a scan in that snapshot (TRUNCATE is not
    MVCC-safe): dumped and counted there, `still` would be empty while production at the slot's LSN held 300
    rows, and the physical proof would differ. The rewrite is detected and a new slot taken instead."""
    production = logical_production
    production.backup("full")
    config = both_config(production, tmp_path / "repository")
    instants = TruncatingOnce(production)
    logical = commands.run(config, instants=instants)
    assert logical.exit_code == 0, results(logical)
    assert len(instants.taken) == 2 and instants.last is instants.taken[1]
    assert logical.manifest is not None and logical.manifest.snapshot_lsn == instants.taken[1].lsn
    assert logical.manifest.counts_by_table()[("public", "still")] == 0  # the new slot sees the TRUNCATE
    assert rows(logical, "still") == (0, 0)
    physical = commands.check_physical(
        config, command=Command.RUN_PHYSICAL, one_snapshot=(instants.taken[1], logical.manifest)
    )
    assert physical.exit_code == 0, results(physical)
    assert rows(physical, "still") == (0, 0)


def test_the_rewrite_check_names_a_table_truncated_after_the_snapshot(
    logical_production: PhysicalProduction,
) -> None:
    """`import_locked_instant` on its own, with a slot's snapshot: a TRUNCATE committed between the slot and
    the locks is named, and a new slot taken; the second attempt's snapshot is returned, its tables locked."""
    production = logical_production
    params = production.params
    with SlotInstants() as slots:
        taken: list[str] = []

        def take() -> str:
            instant = slots.take(params)
            assert instant.snapshot_id is not None
            taken.append(instant.snapshot_id)
            if len(taken) == 1:
                production.execute("TRUNCATE still")
            return instant.snapshot_id

        with params.connect() as session:
            locked = dump_locks.import_locked_instant(session, take, lock_timeout_seconds=10)
            assert locked.snapshot_id == taken[1] and len(taken) == 2
            assert {name for name in locked.tables.values()} >= {("public", "still"), ("public", "t")}
            held = session.execute(
                "SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND mode = 'AccessShareLock' "
                "AND relation = 'still'::regclass"
            ).fetchone()
            assert held == (1,)
            session.execute("ROLLBACK")


class Counting(SlotInstants):
    """Slots as the agent takes them, each one kept in `taken`; `after_first` runs once the first one is
    taken (an ACCESS EXCLUSIVE lock assigns its transaction an xid, and a slot waits for every transaction
    with one to end: a lock taken before the slot holds the slot back, not the dump session)."""

    def __init__(self, after_first: Callable[[], None]) -> None:
        super().__init__()
        self.taken: list[Instant] = []
        self.after_first = after_first

    def take(self, params: ConnectionParams) -> Instant:
        self.taken.append(super().take(params))
        if len(self.taken) == 1:
            self.after_first()
        return self.taken[-1]


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_ddl_queued_between_the_slot_locks_and_pg_dumps_goes_first_and_a_new_slot_follows(
    logical_production: PhysicalProduction, tmp_path: Path
) -> None:
    """As test_concurrent_ddl's DDL-before-pg_dump test, in a slot's snapshot: a VACUUM FULL queued behind
    the dump session's lock on `t`, and pg_dump's LOCK TABLE behind it; the agent lets it through, takes a
    new slot (whose snapshot sees the rewritten table) and dumps; both proofs hold at the new slot's LSN."""
    production = logical_production
    production.backup("full")
    config = both_config(production, tmp_path / "repository", lock_wait_timeout="60s")
    reports: list[Report] = []
    with production.cluster.connect() as migration, production.cluster.connect() as watcher:

        def lock_still() -> None:  # the dump session waits here, t already locked
            migration.execute("BEGIN")
            migration.execute("LOCK TABLE still IN ACCESS EXCLUSIVE MODE")

        instants = Counting(lock_still)
        agent = threading.Thread(target=lambda: reports.append(commands.run(config, instants=instants)))
        agent.start()
        blocked = "SELECT count(*) > 0 FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))"
        pid = migration.info.backend_pid
        wait_for(lambda: watcher.execute(blocked, (pid,)).fetchone() == (True,), "the dump session to wait")
        vacuum = threading.Thread(target=lambda: production.execute("VACUUM FULL t"))
        vacuum.start()
        queued = "SELECT count(*) FROM pg_stat_activity WHERE query = 'VACUUM FULL t' AND wait_event_type = 'Lock'"
        wait_for(lambda: watcher.execute(queued).fetchone() == (1,), "the VACUUM FULL to queue")
        migration.execute("COMMIT")
        vacuum.join(120)
        agent.join(300)
    assert not vacuum.is_alive() and not agent.is_alive()
    (logical,) = reports
    assert logical.exit_code == 0, results(logical)
    assert len(instants.taken) >= 2, "pg_dump waited behind the VACUUM FULL, the VACUUM FULL behind the dump"
    assert logical.manifest is not None and logical.manifest.snapshot_lsn == instants.taken[-1].lsn
    physical = commands.check_physical(
        config, command=Command.RUN_PHYSICAL, one_snapshot=(instants.taken[-1], logical.manifest)
    )
    assert physical.exit_code == 0, results(physical)
    assert rows(physical, "t") == rows(logical, "t") == (5000, 5000)


def test_without_a_slot_the_dump_takes_a_snapshot_of_its_own_and_the_physical_proof_says_why(
    replica_production: PhysicalProduction, tmp_path: Path
) -> None:
    """`target: exact` on a server with wal_level = replica: no slot can be had. The logical night is not
    lost to it (its dump takes a snapshot of its own, as without a physical proof); the physical proof, taking
    its own instant, meets the same refusal and says what to change."""
    production = replica_production
    production.backup("full")
    logical, physical = commands.run_nightly(both_config(production, tmp_path / "repository"))
    assert logical.exit_code == 0, results(logical)
    assert logical.manifest is not None and logical.manifest.snapshot_lsn is None
    status, summary, _ = results(logical)["dump"]
    assert status is Status.OK and "one snapshot" not in summary, summary
    assert physical.exit_code == 3, results(physical)
    assert physical.could_not_run is not None and "wal_level = logical" in physical.could_not_run
