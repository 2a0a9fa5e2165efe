"""Pushing a self-test's outcome to Zabbix on its own (`verifier selftest`, the daemon's weekly run):
the self-test's discovery (a self-test that ran is a feature that is on), its status and time, plus the
heartbeat, through the same spool as a run's values."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from verifier.config import ZabbixConfig
from verifier.errors import ConfigError
from verifier.report import CheckResult, Status
from verifier.repository.backups import Repository
from verifier.zabbix import keys
from verifier.zabbix.delivery import deliver
from verifier.zabbix.proof_values import selftest_values
from verifier.zabbix.push import CHECK_NAME, SELFTEST_DISCOVERED_FILE, delivery_result
from verifier.zabbix.sender import Transport, ZabbixSender, destination
from verifier.zabbix.spool import Spool
from verifier.zabbix.values import Value, Values, feature_discovery

logger = logging.getLogger(__name__)


def push_selftest(
    zabbix: ZabbixConfig,
    selftest: CheckResult,
    repository: Repository,
    *,
    now: datetime | None = None,
    transport: Transport | None = None,
) -> CheckResult:
    """Sends the self-test's discovery, the `selftest` result's status and finish time (and the heartbeat),
    waiting up to `lld_retry_seconds` for Zabbix to accept the values of items it has just created.
    Returns the `zabbix` check result; never raises for Zabbix or spool problems (values wait in the spool)."""
    try:
        target = destination(zabbix)
    except ConfigError as error:
        return CheckResult(CHECK_NAME, Status.WARNING, f"values not sent: {error}")
    values = selftest_report_values(selftest, now or datetime.now(UTC))
    try:
        delivery = deliver(
            values,
            target.host,
            transport or ZabbixSender(target),
            Spool(repository.spool_path, zabbix.spool_max),
            known_path=repository.state_dir / SELFTEST_DISCOVERED_FILE,
            lld_retry_seconds=zabbix.lld_retry_seconds,
        )
    except OSError as error:
        logger.warning("zabbix push failed: %s", error)
        return CheckResult(CHECK_NAME, Status.WARNING, f"values not sent: spool unusable: {error}")
    return delivery_result(delivery, target, repository.spool_path)


def selftest_report_values(selftest: CheckResult, moment: datetime) -> Values:
    """Returns what a self-test sends at `moment`: its discovery (a self-test that ran is a feature that is
    on), the heartbeat, its status and finish time. Pure."""
    clock, ns = int(moment.timestamp()), moment.microsecond * 1000
    return Values(
        discovery=[feature_discovery(keys.SELFTEST_FEATURE_DISCOVERY, True, clock, ns)],
        items=[Value(keys.HEARTBEAT, str(clock), clock, ns)],
        prototypes=[Value(key, value, clock, ns) for key, value in selftest_values(selftest)],
    )
