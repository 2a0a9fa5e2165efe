"""The physical proof on a real Zabbix 6.0 server: `verifier check --physical` discovers the physical items
(physical: configured), fills every one of them, and a failed proof opens the proof-failed trigger. Real
PostgreSQL, real pgBackRest, the bundled template imported by the product's own setup."""

from __future__ import annotations

from pathlib import Path

import pytest
from zabbix_utils import ZabbixAPI

from tests.integration.physical.conftest import PhysicalProduction, logical_production  # noqa: F401 (fixture)
from tests.integration.zabbix.conftest import (
    eventually,
    history_of,
    items_of,
    open_problems,
    set_up_host,
    zabbix_section,
)
from tests.support.zabbix_server import ZabbixServer
from verifier.config import Config
from verifier.manifest import Manifest
from verifier.pipeline.commands import check_physical
from verifier.postgres import catalog
from verifier.report import Status
from verifier.zabbix import keys
from verifier.zabbix.template import PHYSICAL_FAILED

pytestmark = [pytest.mark.integration, pytest.mark.zabbix]

PHYSICAL_KEYS = [
    keys.feature_item_key(key)
    for key in (
        keys.PHYSICAL_STATUS, keys.PHYSICAL_RTO, keys.PHYSICAL_FULL_AGE, keys.PHYSICAL_BACKUP_AGE,
        keys.PHYSICAL_ARCHIVE_LAG, keys.PHYSICAL_WINDOW,
    )
]  # fmt: skip


def test_the_physical_proof_fills_its_items_and_a_failed_proof_opens_its_trigger(
    logical_production: PhysicalProduction,  # noqa: F811
    zabbix_server: ZabbixServer,
    zabbix_api: ZabbixAPI,
    host_name: str,
    tmp_path: Path,
) -> None:
    production = logical_production
    production.backup("full")
    config = Config.model_validate(
        {
            "source": {"host": production.cluster.host, "port": production.cluster.port, "dbname": "postgres",
                       "user": "postgres"},
            "repository": {"path": str(tmp_path / "repository")},
            "physical": {"stanza": production.physical.stanza, "config": str(production.physical.config),
                         "amcheck": "off"},
            "zabbix": zabbix_section(zabbix_server, host_name),
        }
    )  # fmt: skip
    set_up_host(zabbix_server, config)
    report = check_physical(config)
    assert report.exit_code == 0, [(result.name, result.summary) for result in report.every_result]
    zabbix = next(result for result in report.deliveries if result.name == "zabbix")
    assert zabbix.status is Status.OK, zabbix
    items = eventually(
        lambda: (found := items_of(zabbix_api, host_name)) and set(PHYSICAL_KEYS) <= set(found) and found,
        "the physical items discovered",
    )
    for key in PHYSICAL_KEYS:
        assert eventually(lambda key=key: history_of(zabbix_api, items[key]), f"a value of {key}")
    assert history_of(zabbix_api, items[keys.feature_item_key(keys.PHYSICAL_STATUS)])[-1][1] == "1"
    assert keys.VERIFY_STATUS not in {key for key, item in items.items() if history_of(zabbix_api, item)}
    assert PHYSICAL_FAILED not in open_problems(zabbix_api, host_name)

    def delete_a_row(connect: catalog.Connector, manifest: Manifest) -> None:
        with connect() as connection:
            connection.execute("DELETE FROM still WHERE id = 7")

    assert check_physical(config, damage=delete_a_row).exit_code == 2
    assert eventually(lambda: PHYSICAL_FAILED in open_problems(zabbix_api, host_name), "the physical proof problem")
