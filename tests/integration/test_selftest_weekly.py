"""The daemon's weekly self-test: run when due, recorded, its status waiting for Zabbix in the spool (the
Zabbix server is unreachable here on purpose: the spool is where values go then), and not run again
within the week. With several databases, one a week in turn: the one whose last self-test is oldest."""

from __future__ import annotations

import json
import logging
import socket
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.integration.conftest import SourceDatabase
from tests.support.databases import SMALL_SCHEMA, create_database
from verifier.config import Config
from verifier.pipeline import commands
from verifier.pipeline.night import run_night
from verifier.pipeline.selftest import STATE_FILE
from verifier.pipeline.selftest_rotation import weekly_selftest
from verifier.postgres.throwaway.cluster import TemporaryCluster
from verifier.repository.backups import Repository
from verifier.repository.databases import Databases
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


def a_week_ago(repository: Path) -> None:
    """Moves the host's record of its last self-test 8 days back, as if a week had passed."""
    path = Repository(repository).state_dir / STATE_FILE
    record = json.loads(path.read_text())
    record["finished_at"] = (datetime.fromisoformat(record["finished_at"]) - timedelta(days=8)).isoformat()
    path.write_text(json.dumps(record))


def test_with_several_databases_the_weekly_selftest_tests_the_one_tested_longest_ago(
    cluster: TemporaryCluster, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    for name in ("app", "shop"):
        create_database(cluster, name, SMALL_SCHEMA)
    repository = tmp_path / "repo"
    config = Config.model_validate(
        {
            "source": {"host": cluster.host, "port": cluster.port, "user": "postgres", "databases": "all"},
            "repository": {"path": str(repository)},
            "checks": {"min_count": 1},
            "schedule": {"selftest": "weekly"},
            "zabbix": {"server": "127.0.0.1", "port": closed_port(), "host": "db", "timeout": 2},
        }
    )
    night = run_night(config)  # a WARNING: Zabbix is unreachable, its values spooled
    assert [(one.name, one.exit_code) for one in night.databases] == [("app", 0), ("shop", 0)]
    databases = Databases(repository)
    databases.repository("aaa_new").ensure()  # a database with no backup yet: never the one tested
    caplog.set_level(logging.INFO, logger="verifier")

    tested = []
    for _ in range(3):
        outcome = weekly_selftest(config)
        assert outcome is not None and outcome.passed, outcome and outcome.result()
        assert weekly_selftest(config) is None  # one self-test a week for the host, not one per database
        tested.append(outcome.database)
        a_week_ago(repository)
    # never tested first (in name order), then the one whose last self-test is oldest
    assert tested == ["app", "shop", "app"]
    assert "weekly self-test of database shop (never self-tested)" in caplog.text
    assert f"{outcome.backup_name}" in outcome.result().summary and outcome.backup_name.startswith("app_")
    # the host-level items, as with one database: the discovery of the feature, its status and time
    assert spooled(repository, keys.feature_item_key(keys.SELFTEST_STATUS)) == ["1", "1", "1"]
    assert spooled(repository, keys.SELFTEST_FEATURE_DISCOVERY)[-1] == '[{"{#SINGLETON}": ""}]'
    assert (databases.repository("shop").state_dir / STATE_FILE).exists()
    assert not (databases.repository("aaa_new").state_dir / STATE_FILE).exists()
