"""A night of several databases on one real Zabbix 6.0 host: each database discovered with its own items,
the tables of all of them at once, the per-database trigger firing for the broken one only, and the host
items summarising the night."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
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
from verifier.pipeline.night import check_night, run_night
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
            "prometheus": {"textfile": str(tmp_path / "pgbv.prom")},
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

    samples = {  # Prometheus beside it: the same night, per database by its `db` label
        (sample.name, sample.labels.get("db")): sample.value
        for family in text_string_to_metric_families((tmp_path / "pgbv.prom").read_text(encoding="utf-8"))
        for sample in family.samples
    }
    assert [samples[("pgbackup_night_databases_failed", name)] for name in NAMES] == [0, 0, 1]
    assert [samples[("pgbackup_verify_ok", name)] for name in NAMES] == [1, 1, 0]

    checked = check_night(config)  # `verifier check` of every database: one push again, onto the same items
    assert [result.status for result in checked.deliveries] == [Status.OK], checked.deliveries
    heartbeat = items[keys.HEARTBEAT]
    assert eventually(lambda: len(history_of(zabbix_api, heartbeat)) == 2, "the check's heartbeat")
    failed = items[keys.NIGHT_DATABASES_FAILED]
    values = eventually(
        lambda: len(history_of(zabbix_api, failed)) == 2 and history_of(zabbix_api, failed), "the check's count"
    )
    assert values[-1][1] == "1"

    # the per-database trigger: LLD creates it with the items, and a trigger on last() is evaluated by the
    # next value of its item, so a night's first push may land before the trigger exists (under load it
    # did): the check's push above is that next value, as the next night is in production
    broken_failed = db_trigger_name(VERIFY_FAILED).replace("{#DB}", "broken")
    assert eventually(lambda: broken_failed in open_problems(zabbix_api, host_name), broken_failed)
    problems = open_problems(zabbix_api, host_name)
    assert VERIFY_FAILED in problems
    for name in ("app", "billing"):
        assert not any(problem.startswith(f"DB {name}: ") for problem in problems), problems
