"""Zabbix down, then back: the values of the nights it missed are resent in order with their own clocks,
none lost or duplicated (counted on a real Zabbix server), and the spool holds more than one night of a
5,000-table database."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from zabbix_utils import ZabbixAPI

from tests.faults.conftest import Fault, config, first_backup, result
from tests.integration.conftest import SourceDatabase
from tests.integration.zabbix.conftest import eventually, history_of, items_of, set_up_host, zabbix_section
from tests.support.clock import Nights
from tests.support.zabbix_server import ZabbixServer
from verifier.pipeline import commands
from verifier.report import Status
from verifier.repository.backups import Repository
from verifier.zabbix import keys
from verifier.zabbix.push import push_report
from verifier.zabbix.spool import Spool

TABLES = 5_000


def test_14_zabbix_down_then_back_counted_on_the_server(
    source_db: SourceDatabase,
    zabbix_server: ZabbixServer,
    zabbix_api: ZabbixAPI,
    host_name: str,
    tmp_path: Path,
    fault: Fault,
) -> None:
    repository = tmp_path / "repo"
    configured = config(source_db, repository, zabbix=zabbix_section(zabbix_server, host_name))
    set_up_host(zabbix_server, configured)
    assert result(commands.run(configured), "zabbix").status is Status.OK
    fault.protect(repository)
    zabbix_server.stop_server()
    try:
        fault.inject("Zabbix down for two nights")
        spooled_clocks = []
        nights = Nights()  # one clock per night
        for _ in range(2):
            with nights.next():
                down = result(commands.run(configured), "zabbix")
            assert down.status is Status.WARNING and "unreachable" in down.summary and "\n" not in down.summary
            spool = Spool(Repository(repository).spool_path, 1_000_000).load()
            spooled_clocks = [value.clock for value in spool.values if value.key == keys.HEARTBEAT]
    finally:
        zabbix_server.start_server()
    zabbix_server.wait_for_config_sync()
    with nights.next():
        up = result(commands.run(configured), "zabbix")
    assert up.status is Status.OK, up.summary
    assert up.metrics["resent_from_spool"] == len(spool.values)
    assert not Repository(repository).spool_path.exists()
    heartbeat = items_of(zabbix_api, host_name)[keys.HEARTBEAT]
    stored = eventually(
        lambda: len(history_of(zabbix_api, heartbeat)) >= 4 and history_of(zabbix_api, heartbeat), "4 heartbeats"
    )
    clocks = [clock for clock, _ in stored]
    assert len(clocks) == len(set(clocks)) == 4, "a heartbeat was lost or stored twice"
    assert set(spooled_clocks) <= set(clocks), "a spooled value lost its original clock"
    count = items_of(zabbix_api, host_name)[keys.BACKUP_COUNT]
    assert eventually(
        lambda: [value for _, value in history_of(zabbix_api, count)] == ["1", "2", "3", "4"], "counts 1-4 in order"
    )


def test_14_spool_holds_more_than_one_night_of_5000_tables(
    source_db: SourceDatabase, tmp_path: Path, fault: Fault
) -> None:
    """A real run's report, its table list grown to 5,000 tables, pushed twice to a Zabbix that is down
    (default spool size): nothing is dropped."""
    repository = tmp_path / "repo"
    configured = first_backup(source_db, repository)
    fault.protect(repository)
    report = commands.check(configured)
    assert report.verification is not None
    table = report.verification.tables[0]
    report.verification.tables = [dataclasses.replace(table, table=f"t{index}") for index in range(TABLES)]
    fault.inject("Zabbix down for two nights of a 5,000-table database")
    for _ in range(2):
        repo = Repository(repository)
        pushed = push_report(configured.zabbix, report, repo, database="app", backups=repo.backups(), last_success=None)
        assert pushed.status is Status.WARNING and "unreachable" in pushed.summary
    spool = Spool(Repository(repository).spool_path, 1_000_000).load()
    assert spool.dropped == 0, f"{spool.dropped} values dropped from a spool of {len(spool.values)}"
    assert len(spool.values) > 2 * 3 * TABLES
