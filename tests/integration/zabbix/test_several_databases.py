"""A night of several databases on one real Zabbix 6.0 host: each database discovered with its own items,
the tables of all of them at once, the per-database trigger firing for the broken one only, and the host
items summarising the night."""

from __future__ import annotations

from pathlib import Path

import pytest
from zabbix_utils import ZabbixAPI

from tests.integration.zabbix.conftest import (
    eventually,
    history_of,
    items_of,
    open_problems,
    set_up_host,
    zabbix_section,
)
from tests.support.databases import BROKEN_SCHEMA, SMALL_SCHEMA, create_database
from tests.support.zabbix_server import ZabbixServer
from verifier.config import Config
from verifier.pipeline.night import run_night
from verifier.postgres.throwaway.cluster import TemporaryCluster
from verifier.report import Status
from verifier.zabbix import keys
from verifier.zabbix.template import VERIFY_FAILED, db_trigger_name

pytestmark = [pytest.mark.integration, pytest.mark.zabbix]

NAMES = ("app", "billing", "broken")


def test_a_night_of_three_databases_one_broken_is_one_host_that_names_the_broken_one(
    cluster: TemporaryCluster, zabbix_server: ZabbixServer, zabbix_api: ZabbixAPI, host_name: str, tmp_path: Path
) -> None:
    for name in NAMES:
        create_database(cluster, name, BROKEN_SCHEMA if name == "broken" else SMALL_SCHEMA)
    config = Config.model_validate(
        {
            "source": {"host": cluster.host, "port": cluster.port, "user": "postgres", "databases": "all"},
            "repository": {"path": str(tmp_path / "repo")},
            "checks": {"min_count": 1},
            "zabbix": zabbix_section(zabbix_server, host_name),
        }
    )
    set_up_host(zabbix_server, config)

    night = run_night(config)

    [pushed] = night.deliveries
    assert pushed.status is Status.OK, pushed.summary
    assert night.exit_code == 2
    items = items_of(zabbix_api, host_name)

    def last(key: str) -> str:
        assert key in items, f"Zabbix has no item {key}"
        return eventually(lambda: history_of(zabbix_api, items[key]), f"a value of {key}")[-1][1]

    for name in NAMES:  # every database read back by its own items
        assert last(keys.db_item_key(keys.DB_VERIFY_STATUS, name)) == ("0" if name == "broken" else "1"), name
        assert last(keys.db_item_key(keys.DB_DUMP_STATUS, name)) == "1", name
        assert last(keys.db_item_key(keys.DB_BACKUP_COUNT, name)) == "1", name
    assert last(keys.db_item_key(keys.DB_VERIFY_MISMATCHED_TABLES, "app")) == "0"
    for name in ("app", "billing"):  # one table discovery, every database's tables: none replaced another's
        rows = keys.table_item_key(keys.TABLE_ROWS_RESTORED, name, "public", "orders")
        assert last(rows) == "1000", name
    assert last(keys.VERIFY_STATUS) == "0"  # the host summarises the night: one database failed
    assert last(keys.NIGHT_DATABASES) == "3" and last(keys.NIGHT_DATABASES_FAILED) == "1"
    assert last(keys.DUMP_STATUS) == "1"
    assert last(keys.BACKUP_COUNT) == "1"
    report = last(keys.REPORT)
    assert all(name in report for name in NAMES) and "NOT VERIFIED" in report

    broken_failed = db_trigger_name(VERIFY_FAILED).replace("{#DB}", "broken")
    assert eventually(lambda: broken_failed in open_problems(zabbix_api, host_name), broken_failed)
    problems = open_problems(zabbix_api, host_name)
    assert VERIFY_FAILED in problems
    for name in ("app", "billing"):
        assert not any(problem.startswith(f"DB {name}: ") for problem in problems), problems
