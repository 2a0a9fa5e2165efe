"""The off-site items on a real Zabbix 6.0 server: the template imported, a real run uploading to a real
target (sshd + rsync, real GPG, real PostgreSQL) fills `pgbackup.offsite.status` and the per-target LLD
items, read back through the API; the stale-copy trigger fires once the copy is older than the host's
{$PGBACKUP.OFFSITE.AGE.MAX}, and the upload trigger when the target is down."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from zabbix_utils import ZabbixAPI

from tests.integration.conftest import SourceDatabase
from tests.integration.offsite.conftest import (  # noqa: F401 (session fixtures of the off-site servers)
    GpgKeys,
    SshServer,
    free_port,
    gpg_keys,
    offsite_config,
    rsync_target,
    ssh_server,
)
from tests.integration.zabbix.conftest import (
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
from verifier.pipeline import commands
from verifier.report import Status
from verifier.zabbix import keys
from verifier.zabbix.template import OFFSITE_PROOF_FAILED, OFFSITE_STALE, OFFSITE_UPLOAD_FAILED

pytestmark = [pytest.mark.integration, pytest.mark.zabbix]


def problem(name: str, target: str) -> str:
    return name.replace("{#TARGET}", target)


def test_offsite_items_reach_zabbix_and_a_stale_copy_and_a_failed_upload_open_their_problems(
    source_db: SourceDatabase, zabbix_server: ZabbixServer, zabbix_api: ZabbixAPI, host_name: str,
    ssh_server: SshServer, gpg_keys: GpgKeys, tmp_path: Path,  # noqa: F811
) -> None:  # fmt: skip
    target = rsync_target(ssh_server)
    config = offsite_config(
        source_db, tmp_path / "repo", [target], gpg_keys, private_key=False,
        zabbix=zabbix_section(zabbix_server, host_name),
    )  # fmt: skip
    set_up_host(zabbix_server, config)

    report = commands.run(config)
    assert next(r for r in report.results if r.name == "offsite vault").status is Status.OK
    assert next(r for r in report.deliveries if r.name == "zabbix").status is Status.OK
    items = items_of(zabbix_api, host_name, "pgbackup.offsite.")
    expected = {
        keys.feature_item_key(keys.OFFSITE_STATUS): "1",  # discovered: off-site copies are on
        keys.item_key(keys.OFFSITE_UPLOAD_STATUS, "vault"): "1",
        keys.item_key(keys.OFFSITE_PROOF_STATUS, "vault"): "1",
        keys.item_key(keys.OFFSITE_COUNT, "vault"): "1",
    }
    for key, value in expected.items():
        assert key in items, f"the LLD did not create {key}"
        assert eventually(lambda key=key: history_of(zabbix_api, items[key]), f"a value of {key}")[-1][1] == value
    age_key = keys.item_key(keys.OFFSITE_AGE, "vault")
    [(_, age)] = eventually(lambda: history_of(zabbix_api, items[age_key]), f"a value of {age_key}")
    assert 0 <= int(age) < 600
    offsite_problems = {problem(name, "vault") for name in (OFFSITE_STALE, OFFSITE_UPLOAD_FAILED, OFFSITE_PROOF_FAILED)}
    assert not offsite_problems & open_problems(zabbix_api, host_name)

    zabbix_api.usermacro.create(hostid=host_id(zabbix_api, host_name), macro="{$PGBACKUP.OFFSITE.AGE.MAX}", value="3s")
    zabbix_server.wait_for_config_sync()
    time.sleep(max(0.0, 4 - (time.time() - report.started_at.timestamp())))  # the copy is now older than 3 s
    checked = commands.check(config, offsite="vault")
    assert next(r for r in checked.results if r.name == "offsite vault").status is Status.OK
    stale = problem(OFFSITE_STALE, "vault")
    assert eventually(lambda: stale in open_problems(zabbix_api, host_name), "the stale off-site copy problem")
    assert int(history_of(zabbix_api, items[age_key])[-1][1]) > 3

    unreachable = {**target, "url": target["url"].replace(str(ssh_server.port), str(free_port()))}
    down = offsite_config(
        source_db, tmp_path / "repo", [unreachable], gpg_keys, private_key=False,
        zabbix=zabbix_section(zabbix_server, host_name),
    )  # fmt: skip
    with Nights().next():  # backup names carry the second they were taken
        assert next(r for r in commands.run(down).results if r.name == "offsite vault").status is Status.WARNING
    failed = problem(OFFSITE_UPLOAD_FAILED, "vault")
    assert eventually(lambda: failed in open_problems(zabbix_api, host_name), "the off-site upload problem")
    status = items[keys.feature_item_key(keys.OFFSITE_STATUS)]
    assert eventually(lambda: history_of(zabbix_api, status)[-1][1] == "0", "pgbackup.offsite.status 0")
    assert problem(OFFSITE_PROOF_FAILED, "vault") not in open_problems(zabbix_api, host_name)
