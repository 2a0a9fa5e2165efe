"""Issue 25: no item of the template stays empty on a host where a feature is not configured. After a run,
every item the host holds (host items, and what the discovery rules created) has a value on the real
Zabbix 6.0 server, whatever optional part of the proof the config switches off and however many databases
the night holds: an item that can never get a value is not on the host at all."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
from zabbix_utils import ZabbixAPI

from tests.integration.conftest import SourceDatabase
from tests.integration.offsite.conftest import (  # noqa: F401 (session fixtures of the off-site servers)
    GpgKeys,
    SshServer,
    gpg_keys,
    offsite_config,
    rsync_target,
    ssh_server,
)
from tests.integration.physical.conftest import PhysicalProduction, logical_production  # noqa: F401 (fixture)
from tests.integration.zabbix.conftest import (
    disabled_items,
    empty_items,
    items_of,
    open_problems,
    set_up_host,
    zabbix_section,
)
from tests.support.databases import SMALL_SCHEMA, create_database
from tests.support.zabbix_server import ZabbixServer
from verifier.config import Config
from verifier.pipeline import commands
from verifier.pipeline.commands import run_nightly
from verifier.pipeline.night import run_night
from verifier.postgres.throwaway.cluster import TemporaryCluster
from verifier.report import Status
from verifier.zabbix import keys

pytestmark = [pytest.mark.integration, pytest.mark.zabbix]


@pytest.mark.parametrize(
    "verify",
    [
        {"content": "off"},
        {"content": "sample", "content_sample_percent": 50},
        {"assertions": [{"name": "order_lines", "sql": 'SELECT count(*) FROM "Sales"."OrderLines"', "expect": "500"}]},
    ],
    ids=["contents-off", "contents-sampled", "assertions"],
)
def test_a_run_with_part_of_the_proof_switched_off_or_on_leaves_no_item_of_the_host_empty(
    verify: dict[str, Any],
    source_db: SourceDatabase,
    zabbix_server: ZabbixServer,
    zabbix_api: ZabbixAPI,
    host_name: str,
    tmp_path: Path,
) -> None:
    config = source_db.config(tmp_path / "repo", zabbix=zabbix_section(zabbix_server, host_name), verify=verify)
    set_up_host(zabbix_server, config)

    report = commands.run(config)
    [delivered] = [result for result in report.deliveries if result.name == "zabbix"]
    assert delivered.status is Status.OK, delivered.summary
    assert report.exit_code == 0, [(result.name, result.summary) for result in report.every_result]
    items = items_of(zabbix_api, host_name)
    assert keys.HEARTBEAT in items
    compared = verify.get("content") != "off"  # contents compared: their item, discovered, holds their count
    assert (keys.feature_item_key(keys.VERIFY_CONTENT_DIFFERING) in items) is compared, sorted(items)
    assert (keys.item_key(keys.ASSERTION_STATUS, "order_lines") in items) is ("assertions" in verify)
    assert disabled_items(zabbix_api, host_name) == set()
    left = empty_items(zabbix_api, host_name)
    assert left == set(), f"items that never get a value on this host: {sorted(left)}"
    assert open_problems(zabbix_api, host_name) == set()


def test_a_run_with_off_site_copies_leaves_no_item_of_the_host_empty(
    source_db: SourceDatabase, zabbix_server: ZabbixServer, zabbix_api: ZabbixAPI, host_name: str,
    ssh_server: SshServer, gpg_keys: GpgKeys, tmp_path: Path,  # noqa: F811
) -> None:  # fmt: skip
    """The feature on: its summary and each target's items are discovered and filled by the same run."""
    config = offsite_config(
        source_db, tmp_path / "repo", [rsync_target(ssh_server)], gpg_keys, private_key=False,
        zabbix=zabbix_section(zabbix_server, host_name),
    )  # fmt: skip
    set_up_host(zabbix_server, config)

    report = commands.run(config)
    [delivered] = [result for result in report.deliveries if result.name == "zabbix"]
    assert delivered.status is Status.OK, delivered.summary
    assert report.exit_code == 0, [(result.name, result.summary) for result in report.every_result]
    items = items_of(zabbix_api, host_name)
    assert keys.feature_item_key(keys.OFFSITE_STATUS) in items and keys.item_key(keys.OFFSITE_AGE, "vault") in items
    assert disabled_items(zabbix_api, host_name) == set()
    left = empty_items(zabbix_api, host_name)
    assert left == set(), f"items that never get a value on this host: {sorted(left)}"


def test_a_night_of_several_databases_leaves_no_item_of_the_host_empty(
    cluster: TemporaryCluster, zabbix_server: ZabbixServer, zabbix_api: ZabbixAPI, host_name: str, tmp_path: Path
) -> None:
    """`source.databases: all`, no off-site copies, no self-test (not yet with several databases): the host
    items summarising the night and every database's own items all hold a value."""
    names = ("app", "billing")
    for name in names:
        create_database(cluster, name, SMALL_SCHEMA)
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

    assert [result.status for result in night.deliveries] == [Status.OK], night.deliveries
    assert night.exit_code == 0, night.summary_lines(UTC)
    items = items_of(zabbix_api, host_name)
    assert all(keys.db_item_key(keys.DB_VERIFY_STATUS, name) in items for name in names), sorted(items)
    assert disabled_items(zabbix_api, host_name) == set()
    left = empty_items(zabbix_api, host_name)
    assert left == set(), f"items that never get a value on this host: {sorted(left)}"
    assert open_problems(zabbix_api, host_name) == set()


def test_a_night_that_proves_only_physical_backups_leaves_no_item_of_the_host_empty(
    logical_production: PhysicalProduction,  # noqa: F811
    zabbix_server: ZabbixServer,
    zabbix_api: ZabbixAPI,
    host_name: str,
    tmp_path: Path,
) -> None:
    """`dump.enabled: false` with `physical:`: `verifier run` takes no logical dump and proves the newest
    pgBackRest backup. The logical proof's host items (backups, dump, verification, drift, RTO, RPO, the
    night), which nothing on such a host can fill, are disabled by the setup: none stays empty; the physical
    proof's items are discovered and filled."""
    production = logical_production
    production.backup("full")
    config = Config.model_validate(
        {
            "source": {"host": production.cluster.host, "port": production.cluster.port, "dbname": "postgres",
                       "user": "postgres"},
            "repository": {"path": str(tmp_path / "repository")},
            "dump": {"enabled": False},
            "physical": {"stanza": production.physical.stanza, "config": str(production.physical.config),
                         "amcheck": "off"},
            "zabbix": zabbix_section(zabbix_server, host_name),
        }
    )  # fmt: skip
    set_up_host(zabbix_server, config)

    [report] = run_nightly(config)

    assert report.exit_code == 0, [(result.name, result.summary) for result in report.every_result]
    [delivered] = [result for result in report.deliveries if result.name == "zabbix"]
    assert delivered.status is Status.OK, delivered.summary
    assert keys.feature_item_key(keys.PHYSICAL_STATUS) in items_of(zabbix_api, host_name)
    assert disabled_items(zabbix_api, host_name) == keys.LOGICAL_HOST_ITEMS
    left = empty_items(zabbix_api, host_name)
    assert left == set(), f"items that never get a value on this host: {sorted(left)}"

    assert set_up_host(zabbix_server, config).changes == []  # again: nothing to change
    with_dumps = config.model_copy(update={"dump": config.dump.model_copy(update={"enabled": True})})
    assert set_up_host(zabbix_server, with_dumps).changes  # dumps switched on: the items are monitored again
    assert disabled_items(zabbix_api, host_name) == set()
