"""A pgBackRest backup restored to the exact instant of a logical slot's snapshot holds exactly what the
snapshot held, table by table, while production moved on (issue 24). Real PostgreSQL, real pgBackRest,
a writer inserting and deleting rows in every transaction throughout."""

from __future__ import annotations

import re
import time

import pytest

from tests.integration.physical.conftest import PhysicalProduction, content_sums
from verifier.config import PostgresConfig, VerifyConfig
from verifier.physical.amcheck import run_amcheck
from verifier.physical.collations import collation_findings
from verifier.physical.instant_proof import restore_to_instant, take_instant
from verifier.physical.pgbackrest import PgBackRest
from verifier.postgres.catalog import count_rows
from verifier.postgres.collations import DATABASE_DEFAULT, actual_versions
from verifier.postgres.instant import InstantUnavailable, wait_until_archived

TABLES = [("public", "t"), ("public", "u"), ("public", "still")]


def test_restored_to_the_slots_lsn_it_holds_exactly_the_snapshot(logical_production: PhysicalProduction) -> None:
    production = logical_production
    writer = production.write_continuously()
    try:
        production.backup("full")
        production.backup("incr")
        inventory = PgBackRest(production.physical).inventory()
        assert [backup.kind for backup in inventory.backups] == ["full", "incr"]
        assert inventory.wal.oldest is not None and inventory.wal.newest is not None
        assert inventory.wal.newest_archived_at is not None
        writes_before = production.writes
        with take_instant(production.physical, production.params) as instant:
            with production.cluster.connect() as connection:
                snapshot_sums = content_sums(connection, instant.snapshot_id)
            snapshot_counts = count_rows(TABLES, production.cluster.connect, snapshot_id=instant.snapshot_id)
            with production.cluster.connect() as connection:
                production_collations = actual_versions(connection)
        assert instant.exact and instant.describe() == f"LSN {instant.lsn} (exact)"
        started = time.monotonic()
        with restore_to_instant(
            production.physical, VerifyConfig(), PostgresConfig(), production.params, instant
        ) as restored:
            restored_seconds = time.monotonic() - started
            assert production.writes > writes_before, "the writer wrote while the instant was taken"
            with restored.connect() as connection:
                restored_sums = content_sums(connection)
            restored_counts = count_rows(TABLES, restored.connect)
            amcheck = run_amcheck(restored, "full")
            collations = collation_findings(production_collations, restored, "postgres")
            print(
                f"\nrestore {restored.restore_seconds:.2f}s + recovery {restored.recovery_seconds:.2f}s "
                f"(whole {restored_seconds:.2f}s), amcheck full {amcheck.seconds if amcheck else 0:.2f}s; "
                f"{restored.describe()}; segments {len(restored.segments)}"
            )
            assert restored.backup.kind == "incr"
            assert not restored.state.in_recovery
    finally:
        production.stop_writing(writer)
    assert restored_counts == snapshot_counts
    assert restored_sums == snapshot_sums
    now = count_rows(TABLES, production.cluster.connect)
    assert now[("public", "u")] > snapshot_counts[("public", "u")], "production moved on after the instant"
    assert amcheck is not None and amcheck.findings == ()
    assert collations == []


def test_a_collation_whose_version_differs_names_the_indexes_sorted_by_it(
    logical_production: PhysicalProduction,
) -> None:
    """Production's host and the restored host are the same machine here, so production's versions are
    given as another host would report them: the restored host's own reading is real."""
    production = logical_production
    production.execute('CREATE COLLATION "de-x" (provider = libc, locale = "C.UTF-8")')
    production.execute('CREATE TABLE words (w text COLLATE "de-x"); CREATE INDEX words_w ON words (w)')
    production.backup("full")
    with take_instant(production.physical, production.params) as instant, production.cluster.connect() as connection:
        versions = actual_versions(connection)
    assert DATABASE_DEFAULT in versions and "public.de-x" in versions
    elsewhere = {**versions, DATABASE_DEFAULT: "2.28", "public.de-x": "2.28"}
    with restore_to_instant(
        production.physical, VerifyConfig(), PostgresConfig(), production.params, instant
    ) as restored:
        assert collation_findings(versions, restored, "postgres") == []
        findings = collation_findings(elsewhere, restored, "postgres")
    assert len(findings) == 2
    ours = versions[DATABASE_DEFAULT]
    assert findings[0].startswith(
        f"collation default is {'unversioned' if ours is None else 'version ' + ours} on the restored host, "
        "version 2.28 on production's: indexes sorted by it may miss rows ("
    )
    assert "public.t_payload" in findings[0]
    assert findings[1].startswith("collation public.de-x ") and "public.words_w" in findings[1]


def test_without_wal_level_logical_the_exact_instant_says_what_to_change(
    replica_production: PhysicalProduction,
) -> None:
    with (
        pytest.raises(InstantUnavailable) as caught,
        take_instant(replica_production.physical, replica_production.params),
    ):
        pass
    assert str(caught.value) == (
        "an exact instant needs wal_level = logical on production (it is replica): set it (a restart) or use "
        "physical.target: restore-point"
    )


def test_without_the_replication_attribute_the_exact_instant_says_what_to_change(
    logical_production: PhysicalProduction,
) -> None:
    production = logical_production
    production.execute("CREATE ROLE reader LOGIN")
    params = production.params
    reader = type(params)(dbname=params.dbname, host=params.host, port=params.port, user="reader")
    with pytest.raises(InstantUnavailable) as caught, take_instant(production.physical, reader):
        pass
    assert str(caught.value) == "an exact instant needs the REPLICATION attribute: ALTER ROLE reader REPLICATION"


def test_without_the_right_to_switch_wal_the_wait_says_what_to_grant(logical_production: PhysicalProduction) -> None:
    production = logical_production
    production.execute("CREATE ROLE plain LOGIN")
    params = production.params
    plain = type(params)(dbname=params.dbname, host=params.host, port=params.port, user="plain")
    latest = production.physical.model_copy(update={"target": "latest"})
    with take_instant(latest, plain) as instant, pytest.raises(InstantUnavailable) as caught:
        wait_until_archived(plain, instant, 5)
    assert str(caught.value) == (
        "waiting for the instant's WAL to be archived needs pg_switch_wal() and pg_ls_archive_statusdir(): "
        "permission denied for function pg_switch_wal (GRANT pg_monitor, and EXECUTE on pg_switch_wal, to the agent)"
    )


def test_a_transaction_prepared_after_the_backup_is_replayed(logical_production: PhysicalProduction) -> None:
    """Recovery replays the PREPARE: the sandbox allows as many prepared transactions as production."""
    production = logical_production
    production.backup("full")
    with production.cluster.connect(autocommit=False) as connection:
        connection.execute("INSERT INTO still VALUES (1000, 'prepared')")
        connection.execute("PREPARE TRANSACTION 'pgbv_two_phase'")
    production.execute("COMMIT PREPARED 'pgbv_two_phase'")
    with take_instant(production.physical, production.params) as instant:
        counts = count_rows(TABLES, production.cluster.connect, snapshot_id=instant.snapshot_id)
    assert instant.prepared_transactions == 3
    with restore_to_instant(
        production.physical, VerifyConfig(), PostgresConfig(), production.params, instant
    ) as restored:
        assert count_rows(TABLES, restored.connect) == counts
    assert counts[("public", "still")] == 301


def test_a_transaction_left_prepared_holds_the_exact_instant_back_and_is_named(
    logical_production: PhysicalProduction,
) -> None:
    """A logical slot is consistent only once the transactions open when it began have ended; a prepared one
    never ends by itself."""
    production = logical_production
    with production.cluster.connect(autocommit=False) as connection:
        connection.execute("INSERT INTO still VALUES (1000, 'prepared')")
        connection.execute("PREPARE TRANSACTION 'pgbv_forgotten'")
    physical = production.physical.model_copy(update={"instant_wait": 2.0})
    try:
        with pytest.raises(InstantUnavailable) as caught, take_instant(physical, production.params):
            pass
    finally:
        production.execute("ROLLBACK PREPARED 'pgbv_forgotten'")
    assert re.fullmatch(
        r"the exact instant waited 2s for transactions open when it began to end: prepared transaction "
        r"'pgbv_forgotten' \(since \d\d:\d\d:\d\d\); end them or raise physical.instant_wait",
        str(caught.value),
    ), str(caught.value)
