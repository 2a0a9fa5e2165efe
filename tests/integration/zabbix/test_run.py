"""`verifier run` / `check` against a real Zabbix: every item gets its value, the LLD creates per-table
items, the triggers open and resolve the problems operators page on, and the spool loses nothing."""

from __future__ import annotations

import gzip
import time
from pathlib import Path
from typing import Any

import pytest
from zabbix_utils import ZabbixAPI

from tests.integration.conftest import SourceDatabase
from tests.integration.zabbix.conftest import (
    empty_items,
    eventually,
    history_of,
    host_id,
    items_of,
    open_problems,
    set_up_host,
    zabbix_section,
)
from tests.support.clock import Nights
from tests.support.zabbix_server import ZabbixServer
from verifier.config import Config
from verifier.pipeline import commands
from verifier.pipeline.selftest import report_selftest, run_selftest
from verifier.report import Report, Status
from verifier.repository.backups import Repository
from verifier.zabbix import keys
from verifier.zabbix.sender import ZabbixSender, destination
from verifier.zabbix.spool import Spool
from verifier.zabbix.template import (
    DUMP_FAILED,
    MISMATCH,
    NO_SUCCESS,
    NODATA,
    SIZE_DROP,
    STALE,
    TOO_FEW,
    VERIFY_FAILED,
)

pytestmark = [pytest.mark.integration, pytest.mark.zabbix]


def zabbix_result(report: Report) -> Any:
    return next(result for result in report.deliveries if result.name == "zabbix")


def configured(source_db: SourceDatabase, server: ZabbixServer, host: str, tmp_path: Path, **sections: Any) -> Config:
    return source_db.config(tmp_path / "repo", zabbix=zabbix_section(server, host), **sections)


def test_run_fills_every_item_and_the_backup_count_problem_resolves_on_the_third_backup(
    source_db: SourceDatabase, zabbix_server: ZabbixServer, zabbix_api: ZabbixAPI, host_name: str, tmp_path: Path
) -> None:
    config = configured(source_db, zabbix_server, host_name, tmp_path, checks={"min_count": 3})
    set_up_host(zabbix_server, config)

    report = commands.run(config)
    delivered = zabbix_result(report)
    assert delivered.status is Status.OK, delivered.summary
    items = items_of(zabbix_api, host_name)
    for item in keys.HOST_ITEMS:
        assert eventually(lambda item=item: history_of(zabbix_api, items[item.key]), f"a value of {item.key}")
    by_selftest = [keys.feature_item_key(key) for key in (keys.SELFTEST_STATUS, keys.SELFTEST_LAST_RUN)]
    assert not set(by_selftest) & set(items), "the self-test's items exist before it is scheduled or run"
    assert eventually(lambda: TOO_FEW in open_problems(zabbix_api, host_name), "the fewer-backups problem")
    selftest = report_selftest(config, run_selftest(config))  # its push discovers its items, then fills them
    assert selftest is not None and selftest.status is Status.OK, selftest
    items = items_of(zabbix_api, host_name)
    for key in by_selftest:
        assert eventually(lambda key=key: history_of(zabbix_api, items[key]), f"a value of {key}")
    assert history_of(zabbix_api, items[by_selftest[0]])[-1][1] == "1"

    assert report.verification is not None
    tables = report.verification.tables
    assert any(table.table == 'weird "quoted" table' for table in tables)
    items = items_of(zabbix_api, host_name, "pgbackup.table.")
    for table in tables:
        for base in (keys.TABLE_ROWS, keys.TABLE_ROWS_RESTORED, keys.TABLE_DIFF):
            key = keys.table_item_key(base, source_db.dbname, table.schema, table.table)
            assert key in items, f"LLD did not create {key}"
            values = eventually(lambda key=key: history_of(zabbix_api, items[key]), f"a value of {key}")
            if base == keys.TABLE_ROWS_RESTORED:
                assert values[-1][1] == str(table.restored_rows)
    db_rows = items_of(zabbix_api, host_name, keys.DB_ROWS)[keys.db_item_key(keys.DB_ROWS, source_db.dbname)]
    assert eventually(lambda: history_of(zabbix_api, db_rows), "the database's total rows")

    nights = Nights()  # backup names carry the second they were taken
    for _ in range(2):
        with nights.next():
            assert zabbix_result(commands.run(config)).status is Status.OK
    count = items_of(zabbix_api, host_name)[keys.BACKUP_COUNT]
    assert eventually(lambda: history_of(zabbix_api, count)[-1][1] == "3", "three backups")
    assert eventually(lambda: TOO_FEW not in open_problems(zabbix_api, host_name), "the fewer-backups problem resolved")
    assert open_problems(zabbix_api, host_name) == set()


def test_a_run_without_offsite_and_before_any_selftest_leaves_no_item_of_the_host_empty(
    source_db: SourceDatabase, zabbix_server: ZabbixServer, zabbix_api: ZabbixAPI, host_name: str, tmp_path: Path
) -> None:
    """Optional features that are off (no `offsite:`; no self-test yet, though scheduled: only the daemon
    runs it, a timer's `verifier run` never) have no items on the host at all: an operator never looks at
    an item that can never get a value."""
    config = configured(source_db, zabbix_server, host_name, tmp_path, schedule={"selftest": "weekly"})
    assert not config.offsite
    set_up_host(zabbix_server, config)

    assert zabbix_result(commands.run(config)).status is Status.OK
    items = items_of(zabbix_api, host_name)
    assert keys.HEARTBEAT in items and any(key.startswith(keys.TABLE_ROWS) for key in items)
    assert empty_items(zabbix_api, host_name) == set(), "items that never get a value on this host"
    assert open_problems(zabbix_api, host_name) <= {TOO_FEW}


def test_stale_backup_opens_the_problem_after_the_configured_age(
    source_db: SourceDatabase, zabbix_server: ZabbixServer, zabbix_api: ZabbixAPI, host_name: str, tmp_path: Path
) -> None:
    config = configured(source_db, zabbix_server, host_name, tmp_path)
    set_up_host(zabbix_server, config)
    assert commands.run(config).exit_code == 0
    assert STALE not in open_problems(zabbix_api, host_name)
    [macro] = zabbix_api.usermacro.get(
        hostids=[host_id(zabbix_api, host_name)], filter={"macro": "{$PGBACKUP.AGE.MAX}"}
    )
    zabbix_api.usermacro.update(hostmacroid=macro["hostmacroid"], value="3s")
    zabbix_server.wait_for_config_sync()
    time.sleep(2)  # the newest backup is now older than 3 s
    report = commands.check(config, quick=True)
    assert zabbix_result(report).status is Status.OK
    assert eventually(lambda: STALE in open_problems(zabbix_api, host_name), "the stale-backup problem")
    assert eventually(lambda: NO_SUCCESS in open_problems(zabbix_api, host_name), "the no-verification problem")


def damage_one_row(dump: Path, table: str) -> None:
    """Deletes the first data row of `table` from a plain (.sql.gz) dump: a backup that lost data."""
    lines = gzip.decompress(dump.read_bytes()).decode().split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith(f"COPY {table} "))
    assert lines[start + 1] != "\\."
    del lines[start + 1]
    dump.write_bytes(gzip.compress("\n".join(lines).encode()))


def test_damaged_backup_opens_verification_failed_and_mismatch_problems_naming_the_table(
    source_db: SourceDatabase, zabbix_server: ZabbixServer, zabbix_api: ZabbixAPI, host_name: str, tmp_path: Path
) -> None:
    config = configured(source_db, zabbix_server, host_name, tmp_path, dump={"format": "plain"})
    set_up_host(zabbix_server, config)
    assert commands.run(config).exit_code == 0
    backup = Repository(tmp_path / "repo").newest()
    assert backup is not None
    damage_one_row(backup.dump_path, "public.cities")

    report = commands.check(config)
    assert report.exit_code == 2
    table_problem = f"DB {source_db.dbname}: Table public.cities: Restored rows differ from the snapshot"
    expected = {VERIFY_FAILED, MISMATCH, table_problem}
    assert eventually(lambda: expected <= open_problems(zabbix_api, host_name), f"problems {expected}")
    assert DUMP_FAILED not in open_problems(zabbix_api, host_name)
    diff = items_of(zabbix_api, host_name, keys.TABLE_DIFF)[
        keys.table_item_key(keys.TABLE_DIFF, source_db.dbname, "public", "cities")
    ]
    assert history_of(zabbix_api, diff)[-1][1] in ("-1", "-1.0", "-1.0000")
    proof = items_of(zabbix_api, host_name, keys.PROOF_PROBLEMS)  # which proof check saw it, discovered
    assert history_of(zabbix_api, proof[keys.item_key(keys.PROOF_PROBLEMS, "row_counts")])[-1][1] == "1"
    assert history_of(zabbix_api, proof[keys.item_key(keys.PROOF_PROBLEMS, "schema")])[-1][1] == "0"


def test_zabbix_down_spools_and_the_next_run_delivers_with_original_clocks_once(
    source_db: SourceDatabase, zabbix_server: ZabbixServer, zabbix_api: ZabbixAPI, host_name: str, tmp_path: Path
) -> None:
    config = configured(source_db, zabbix_server, host_name, tmp_path)
    set_up_host(zabbix_server, config)
    assert zabbix_result(commands.run(config)).status is Status.OK  # tables discovered while the server is up

    nights = Nights()  # one heartbeat clock per run
    zabbix_server.stop_server()
    try:
        with nights.next():
            down = commands.run(config)
        assert down.exit_code == 1, [(result.name, result.summary) for result in down.every_result]
        spooled = zabbix_result(down)
        assert spooled.status is Status.WARNING and "unreachable" in spooled.summary
        spool = Spool(Repository(tmp_path / "repo").spool_path, 10_000).load()
        assert spool.dropped == 0 and len(spool.values) == spooled.metrics["spooled"] > 12
        heartbeat_clock = next(value.clock for value in spool.values if value.key == keys.HEARTBEAT)
    finally:
        zabbix_server.start_server()
    zabbix_server.wait_for_config_sync()

    with nights.next():
        up = commands.run(config)
    delivered = zabbix_result(up)
    assert delivered.status is Status.OK, delivered.summary
    assert delivered.metrics["resent_from_spool"] == len(spool.values)
    assert not Repository(tmp_path / "repo").spool_path.exists()

    heartbeat = items_of(zabbix_api, host_name)[keys.HEARTBEAT]
    during_outage = eventually(
        lambda: history_of(zabbix_api, heartbeat, since=heartbeat_clock, until=heartbeat_clock),
        "the spooled heartbeat at its original clock",
    )
    assert during_outage == [(heartbeat_clock, str(heartbeat_clock))]
    clocks = [
        clock
        for clock, _ in eventually(
            lambda: len(history_of(zabbix_api, heartbeat)) >= 3 and history_of(zabbix_api, heartbeat),
            "three heartbeats",
        )
    ]
    assert len(clocks) == len(set(clocks)) == 3, "a heartbeat was stored twice or lost"
    count = items_of(zabbix_api, host_name)[keys.BACKUP_COUNT]
    assert eventually(
        lambda: [value for _, value in history_of(zabbix_api, count)] == ["1", "2", "3"], "counts 1, 2, 3 in order"
    )


def test_values_for_a_host_zabbix_does_not_know_are_a_warning_that_says_what_to_do(
    source_db: SourceDatabase, zabbix_server: ZabbixServer, host_name: str, tmp_path: Path
) -> None:
    config = configured(source_db, zabbix_server, host_name, tmp_path)
    report = commands.run(config)
    refused = zabbix_result(report)
    assert refused.status is Status.WARNING
    assert "import the template / link the host" in refused.summary and keys.HEARTBEAT in refused.summary
    assert report.exit_code == 1
    assert not Repository(tmp_path / "repo").spool_path.exists(), "refused values must not be spooled"


def test_failed_dump_opens_the_dump_problem(
    source_db: SourceDatabase, zabbix_server: ZabbixServer, zabbix_api: ZabbixAPI, host_name: str, tmp_path: Path
) -> None:
    config = configured(source_db, zabbix_server, host_name, tmp_path)
    set_up_host(zabbix_server, config)
    assert commands.run(config).exit_code == 0
    unreachable = configured(
        source_db, zabbix_server, host_name, tmp_path, source={"host": "127.0.0.1", "port": 1, "connect_timeout": 2}
    )
    report = commands.run(unreachable)
    assert report.exit_code == 2 and zabbix_result(report).status is Status.OK
    assert eventually(lambda: DUMP_FAILED in open_problems(zabbix_api, host_name), "the dump-failed problem")
    assert STALE not in open_problems(zabbix_api, host_name)


def test_a_much_smaller_backup_opens_the_size_drop_problem(
    source_db: SourceDatabase, zabbix_server: ZabbixServer, zabbix_api: ZabbixAPI, host_name: str, tmp_path: Path
) -> None:
    source_db.execute(
        "CREATE TABLE bulk AS SELECT g, md5(g::text) || md5((g + 1)::text) AS payload FROM generate_series(1, 60000) g"
    )
    config = configured(source_db, zabbix_server, host_name, tmp_path, dump={"format": "plain"})
    set_up_host(zabbix_server, config)
    assert commands.run(config).exit_code == 0
    source_db.execute("TRUNCATE bulk")
    with Nights().next():  # the next night's values, not a second value at the same clock
        assert zabbix_result(commands.run(config)).status is Status.OK
    assert eventually(lambda: SIZE_DROP in open_problems(zabbix_api, host_name), "the size-drop problem")


def test_a_silent_agent_opens_the_nodata_problem(
    source_db: SourceDatabase, zabbix_server: ZabbixServer, zabbix_api: ZabbixAPI, host_name: str, tmp_path: Path
) -> None:
    config = configured(source_db, zabbix_server, host_name, tmp_path)
    set_up_host(zabbix_server, config)
    assert zabbix_result(commands.run(config)).status is Status.OK
    # the 30 s silence window is set once the run has delivered (a first push may wait on LLD for longer
    # than that: its retry window is 90 s, and the agent is not silent while it delivers), right after a
    # heartbeat as fresh as the end of a run
    assert config.zabbix is not None
    zabbix_api.usermacro.create(hostid=host_id(zabbix_api, host_name), macro="{$PGBACKUP.NODATA}", value="30s")
    zabbix_server.wait_for_config_sync()
    beat = int(time.time())  # a report now: whatever the slow first push left open, the agent is heard
    assert ZabbixSender(destination(config.zabbix)).send(host_name, keys.HEARTBEAT, str(beat), beat, 0)
    assert eventually(lambda: NODATA not in open_problems(zabbix_api, host_name), "no nodata problem after a report")
    # nodata() periods start at 30 s and the server's timer checks them about every 30 s
    assert eventually(lambda: NODATA in open_problems(zabbix_api, host_name), "the nodata problem", timeout=150)

    # one root cause, one alarm: while the agent is silent, a stale age does not page on top of it
    [macro] = zabbix_api.usermacro.get(
        hostids=[host_id(zabbix_api, host_name)], filter={"macro": "{$PGBACKUP.AGE.MAX}"}
    )
    zabbix_api.usermacro.update(hostmacroid=macro["hostmacroid"], value="1s")
    zabbix_server.wait_for_config_sync()
    assert config.zabbix is not None
    sender = ZabbixSender(destination(config.zabbix))
    now = int(time.time())
    assert sender.send(host_name, keys.BACKUP_AGE, "100000", now, 0)
    assert sender.send(host_name, keys.DUMP_STATUS, "0", now, 1)  # evaluated after the age value
    assert eventually(lambda: DUMP_FAILED in open_problems(zabbix_api, host_name), "the dump-failed problem")
    assert STALE not in open_problems(zabbix_api, host_name)
