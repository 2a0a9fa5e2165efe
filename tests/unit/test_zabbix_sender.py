"""Where values go: server/port, HA nodes, or an existing Zabbix agent config (like `zabbix_sender -c`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from verifier.config import ZabbixConfig
from verifier.errors import ConfigError
from verifier.zabbix.sender import destination


def test_server_port_and_host() -> None:
    target = destination(ZabbixConfig(server="zbx.example", port=10052, host="db1"))
    assert target.clusters == (("zbx.example:10052",),) and target.host == "db1"


def test_several_ha_nodes_form_one_cluster() -> None:
    target = destination(ZabbixConfig(server="zbx1;zbx2:10061, zbx3", host="db1"))
    assert target.clusters == (("zbx1:10051", "zbx2:10061", "zbx3:10051"),)


def test_agent_config_supplies_server_active_and_hostname(tmp_path: Path) -> None:
    agent = tmp_path / "zabbix_agent2.conf"
    agent.write_text(
        "# comment\nServer=10.0.0.1\nServerActive=zbx1:10051;zbx2,proxy.example:10055\n"
        "Hostname=db-prod-1\nInclude=/etc/zabbix/zabbix_agent2.d/*.conf\n"
    )
    target = destination(ZabbixConfig(agent_config=agent))
    assert target.clusters == (("zbx1:10051", "zbx2:10051"), ("proxy.example:10055",))
    assert target.host == "db-prod-1"


def test_explicit_host_wins_over_the_agent_config(tmp_path: Path) -> None:
    agent = tmp_path / "zabbix_agentd.conf"
    agent.write_text("ServerActive=zbx1\nHostname=from-agent\n")
    assert destination(ZabbixConfig(agent_config=agent, host="explicit")).host == "explicit"


def test_unreadable_agent_config_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"zabbix\.agent_config: cannot read"):
        destination(ZabbixConfig(agent_config=tmp_path / "missing.conf"))


def test_agent_config_without_hostname_says_what_to_set(tmp_path: Path) -> None:
    agent = tmp_path / "zabbix_agentd.conf"
    agent.write_text("ServerActive=zbx1\n")
    with pytest.raises(ConfigError, match=r"set zabbix\.host"):
        destination(ZabbixConfig(agent_config=agent))
