"""The template imports into a real Zabbix 6.0, `verifier zabbix setup` is idempotent, send-test tells
a refused value from a processed one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from zabbix_utils import ZabbixAPI

from tests.integration.zabbix.conftest import (
    eventually,
    history_of,
    host_id,
    items_of,
    set_up_host,
    write_config,
    zabbix_section,
)
from tests.support.zabbix_server import ADMIN_PASSWORD, ADMIN_USER, ZabbixServer
from verifier.config import load_config
from verifier.zabbix import keys
from verifier.zabbix.push import send_heartbeat
from verifier.zabbix.template import MACROS, TEMPLATE_NAME, TRIGGERS

pytestmark = [pytest.mark.integration, pytest.mark.zabbix]
VERIFIER = Path(sys.executable).with_name("verifier")


def verifier(*arguments: str, environment: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(VERIFIER), *arguments], capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, **(environment or {})},
    )  # fmt: skip


def config_file(tmp_path: Path, server: ZabbixServer, host: str, **checks: Any) -> Path:
    return write_config(
        tmp_path / "config.yaml",
        {
            "source": {"host": "127.0.0.1", "dbname": "unused"},
            "repository": {"path": str(tmp_path / "repo")},
            "checks": {"max_age_hours": 30, "min_count": 4, **checks},
            "zabbix": zabbix_section(server, host),
        },
    )


def test_setup_imports_the_template_creates_the_host_and_is_idempotent(
    zabbix_server: ZabbixServer, zabbix_api: ZabbixAPI, host_name: str, tmp_path: Path
) -> None:
    config = config_file(tmp_path, zabbix_server, host_name)
    password = {"ZABBIX_API_PASSWORD": ADMIN_PASSWORD}
    first = verifier("zabbix", "setup", "--config", str(config), "--url", zabbix_server.frontend_url,
                     "--user", ADMIN_USER, environment=password)  # fmt: skip
    assert first.returncode == 0, first.stderr
    assert f"host {host_name} created" in first.stdout
    assert "macro {$PGBACKUP.AGE.MAX}=30h set" in first.stdout

    second = verifier("zabbix", "setup", "--config", str(config), "--url", zabbix_server.frontend_url,
                      "--user", ADMIN_USER, environment=password)  # fmt: skip
    assert second.returncode == 0, second.stderr
    assert "already in place" in second.stdout

    [template] = zabbix_api.template.get(
        filter={"host": [TEMPLATE_NAME]}, output=["templateid"], selectItems=["key_"],
        selectTriggers=["description"], selectDiscoveries=["key_"], selectMacros=["macro", "value"],
        selectGraphs=["name"], selectDashboards=["name"],
    )  # fmt: skip
    assert {item["key_"] for item in template["items"]} == {item.key for item in keys.HOST_ITEMS}
    assert {rule["key_"] for rule in template["discoveries"]} == {rule.key for rule in keys.DISCOVERY_RULES}
    assert {trigger["description"] for trigger in template["triggers"]} == {trigger.name for trigger in TRIGGERS}
    assert {macro["macro"] for macro in template["macros"]} == {macro.name for macro in MACROS}
    assert {graph["name"] for graph in template["graphs"]} == {"Backup: Sizes", "Backup: Durations"}
    assert [dashboard["name"] for dashboard in template["dashboards"]] == ["PG backup verification"]

    hosts = zabbix_api.host.get(filter={"host": [host_name]}, selectParentTemplates=["host"], output=["hostid"])
    assert len(hosts) == 1
    assert [parent["host"] for parent in hosts[0]["parentTemplates"]] == [TEMPLATE_NAME]
    macros = zabbix_api.usermacro.get(hostids=[host_id(zabbix_api, host_name)], output=["macro", "value"])
    assert {macro["macro"]: macro["value"] for macro in macros} == {
        "{$PGBACKUP.AGE.MAX}": "30h",
        "{$PGBACKUP.COUNT.MIN}": "4",
    }


def test_setup_changes_a_macro_when_the_config_changes(
    zabbix_server: ZabbixServer, zabbix_api: ZabbixAPI, host_name: str, tmp_path: Path
) -> None:
    password = {"ZABBIX_API_PASSWORD": ADMIN_PASSWORD}
    arguments = ("--url", zabbix_server.frontend_url, "--user", ADMIN_USER)
    config = config_file(tmp_path, zabbix_server, host_name)
    assert verifier("zabbix", "setup", "--config", str(config), *arguments, environment=password).returncode == 0
    config = config_file(tmp_path, zabbix_server, host_name, min_count=7)
    changed = verifier("zabbix", "setup", "--config", str(config), *arguments, environment=password)
    assert changed.returncode == 0, changed.stderr
    assert changed.stdout.splitlines()[0] == "macro {$PGBACKUP.COUNT.MIN} changed to 7"


def test_setup_without_a_secret_says_where_to_put_it(
    zabbix_server: ZabbixServer, host_name: str, tmp_path: Path
) -> None:
    config = config_file(tmp_path, zabbix_server, host_name)
    environment = {key: value for key, value in os.environ.items() if not key.startswith("ZABBIX_API")}
    completed = subprocess.run(
        [str(VERIFIER), "zabbix", "setup", "--config", str(config), "--url", zabbix_server.frontend_url],
        capture_output=True, text=True, timeout=60, check=False, env=environment,
    )  # fmt: skip
    assert completed.returncode == 3
    assert "set ZABBIX_API_TOKEN (or --token-file FILE)" in completed.stderr


def test_wrong_password_is_one_line_without_the_password(
    zabbix_server: ZabbixServer, host_name: str, tmp_path: Path
) -> None:
    config = config_file(tmp_path, zabbix_server, host_name)
    secret = tmp_path / "password"
    secret.write_text("not-the-password\n")
    completed = verifier("zabbix", "setup", "--config", str(config), "--url", zabbix_server.frontend_url,
                         "--user", ADMIN_USER, "--password-file", str(secret))  # fmt: skip
    assert completed.returncode == 3
    assert completed.stderr.count("\n") == 1 and "cannot log in" in completed.stderr
    assert "not-the-password" not in completed.stderr


def test_send_test_is_refused_before_setup_and_processed_after(
    zabbix_server: ZabbixServer, host_name: str, tmp_path: Path
) -> None:
    config = config_file(tmp_path, zabbix_server, host_name)
    refused = verifier("zabbix", "send-test", "--config", str(config))
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "processed 0, failed 1" in refused.stdout and "import the template / link the host" in refused.stdout

    password = {"ZABBIX_API_PASSWORD": ADMIN_PASSWORD}
    assert verifier("zabbix", "setup", "--config", str(config), "--url", zabbix_server.frontend_url,
                    "--user", ADMIN_USER, environment=password).returncode == 0  # fmt: skip
    zabbix_server.wait_for_config_sync()
    processed = verifier("zabbix", "send-test", "--config", str(config))
    assert processed.returncode == 0, processed.stdout + processed.stderr
    assert "processed 1, failed 0" in processed.stdout


def test_send_test_to_a_closed_port_is_unreachable(zabbix_server: ZabbixServer, host_name: str, tmp_path: Path) -> None:
    config_path = config_file(tmp_path, zabbix_server, host_name)
    text = config_path.read_text().replace(f"port: {zabbix_server.trapper_port}", "port: 1")
    config_path.write_text(text)
    completed = verifier("zabbix", "send-test", "--config", str(config_path))
    assert completed.returncode == 2
    assert "unreachable" in completed.stdout


def test_send_test_fails_over_to_the_next_ha_node_and_reads_an_agent_config(
    zabbix_server: ZabbixServer, host_name: str, tmp_path: Path
) -> None:
    password = {"ZABBIX_API_PASSWORD": ADMIN_PASSWORD}
    config = config_file(tmp_path, zabbix_server, host_name)
    assert verifier("zabbix", "setup", "--config", str(config), "--url", zabbix_server.frontend_url,
                    "--user", ADMIN_USER, environment=password).returncode == 0  # fmt: skip
    zabbix_server.wait_for_config_sync()

    text = config.read_text().replace(
        "server: 127.0.0.1", f"server: 127.0.0.1:1;127.0.0.1:{zabbix_server.trapper_port}"
    )
    config.write_text(text)
    failover = verifier("zabbix", "send-test", "--config", str(config))
    assert failover.returncode == 0 and "processed 1, failed 0" in failover.stdout, failover.stdout + failover.stderr

    agent = tmp_path / "zabbix_agent2.conf"
    agent.write_text(f"Server=127.0.0.1\nServerActive=127.0.0.1:{zabbix_server.trapper_port}\nHostname={host_name}\n")
    from_agent = write_config(
        tmp_path / "agent-config.yaml",
        {"source": {"host": "127.0.0.1", "dbname": "unused"}, "zabbix": {"agent_config": str(agent)}},
    )
    completed = verifier("zabbix", "send-test", "--config", str(from_agent))
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert f"host {host_name}: processed 1, failed 0" in completed.stdout


def test_daemon_heartbeat_reaches_zabbix(
    zabbix_server: ZabbixServer, zabbix_api: ZabbixAPI, host_name: str, tmp_path: Path
) -> None:
    config = load_config(config_file(tmp_path, zabbix_server, host_name))
    assert not send_heartbeat(config.zabbix), "a heartbeat for an unknown host must not count as delivered"
    set_up_host(zabbix_server, config)
    assert send_heartbeat(config.zabbix)
    heartbeat = items_of(zabbix_api, host_name)[keys.HEARTBEAT]
    assert eventually(lambda: history_of(zabbix_api, heartbeat), "the heartbeat")
