"""The daemon's weekly self-test: run when due, recorded, its status waiting for Zabbix in the spool (the
Zabbix server is unreachable here on purpose: the spool is where values go then), and not run again
within the week."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.integration.conftest import SourceDatabase
from verifier.pipeline import commands
from verifier.pipeline.selftest import weekly_selftest
from verifier.repository.backups import Repository
from verifier.zabbix import keys
from verifier.zabbix.spool import Spool


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def spooled(repository: Path, key: str) -> list[str]:
    spool = Spool(Repository(repository).spool_path, 1_000_000).load()
    return [value.value for value in spool.values if value.key == key]


def test_weekly_selftest_runs_once_a_week_and_its_status_goes_to_zabbix(
    source_db: SourceDatabase, tmp_path: Path
) -> None:
    repository = tmp_path / "repo"
    zabbix = {"server": "127.0.0.1", "port": closed_port(), "host": "db", "timeout": 2}
    config = source_db.config(repository, zabbix=zabbix, schedule={"selftest": "weekly"})
    assert commands.run(config).verification_passed
    outcome = weekly_selftest(config)
    assert outcome is not None and outcome.passed, outcome and outcome.result()
    # none before the first self-test (the run's discovery is empty), then the self-test's own push makes them
    assert spooled(repository, keys.SELFTEST_FEATURE_DISCOVERY) == ["[]", '[{"{#SINGLETON}": ""}]']
    assert spooled(repository, keys.feature_item_key(keys.SELFTEST_STATUS)) == ["1"]
    finished = str(int(outcome.finished_at.timestamp()))
    assert spooled(repository, keys.feature_item_key(keys.SELFTEST_LAST_RUN)) == [finished]
    assert weekly_selftest(config) is None  # not due again within the week
    off = source_db.config(repository, zabbix=zabbix)
    assert weekly_selftest(off) is None


def test_a_selftest_that_cannot_run_is_reported_failed(source_db: SourceDatabase, tmp_path: Path) -> None:
    repository = tmp_path / "empty"
    zabbix = {"server": "127.0.0.1", "port": closed_port(), "host": "db", "timeout": 2}
    outcome = weekly_selftest(source_db.config(repository, zabbix=zabbix, schedule={"selftest": "weekly"}))
    assert outcome is not None and not outcome.passed and "no backup" in (outcome.error or "")
    assert spooled(repository, keys.feature_item_key(keys.SELFTEST_STATUS)) == ["0"]
