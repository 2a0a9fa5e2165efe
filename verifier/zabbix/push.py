"""The one call the pipeline makes after the other checks: push the report to Zabbix.

Returns a `CheckResult` named `zabbix`. Zabbix being down does not change the run's verdict: the
values wait in the spool and Zabbix's own nodata trigger tells people the agent went quiet, so the
result stays OK unless values were lost (refused by Zabbix, or dropped from a full spool), which is
a WARNING that says what to fix.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

from verifier.config import ZabbixConfig
from verifier.errors import ConfigError
from verifier.report import CheckResult, Report, Status
from verifier.repository.backups import Backup, Repository
from verifier.zabbix import keys
from verifier.zabbix.delivery import Delivery, deliver
from verifier.zabbix.sender import Destination, Transport, UnreachableError, ZabbixSender, destination
from verifier.zabbix.spool import Spool
from verifier.zabbix.values import Features, Values, values_from_report

logger = logging.getLogger(__name__)

CHECK_NAME = "zabbix"
DISCOVERED_FILE = "zabbix-discovered.json"
SELFTEST_DISCOVERED_FILE = "zabbix-discovered-selftest.json"  # the self-test's own: a push remembers only its keys
SHOWN_KEYS = 10


def push_report(
    zabbix: ZabbixConfig | None,
    report: Report,
    repository: Repository,
    *,
    database: str,
    backups: list[Backup],
    last_success: datetime | None,
    features: Features | None = None,
    now: datetime | None = None,
    transport: Transport | None = None,
    deadline: float | None = None,
) -> CheckResult:
    """Sends `report` and the repository's state (`backups`, the last successful verification before
    this run, `database` for the per-table items, the optional `features` that are on) to Zabbix, spooled
    values first. Past `deadline`
    (the monotonic clock; the run's `run_timeout`) whatever is not delivered is spooled.

    Returns the `zabbix` check result; never raises for Zabbix or spool problems (they become the
    result), so a run always ends with its own verdict.
    """
    if zabbix is None:
        return CheckResult(CHECK_NAME, Status.OK, "Zabbix not configured")
    values = values_from_report(
        report, backups, now or datetime.now(UTC), database=database, last_success=last_success, features=features
    )
    return push_values(zabbix, values, repository, transport=transport, deadline=deadline)


def push_values(
    zabbix: ZabbixConfig,
    values: Values,
    repository: Repository,
    *,
    transport: Transport | None = None,
    deadline: float | None = None,
) -> CheckResult:
    """Sends `values` (a report's, or a night's of several databases) to Zabbix, spooled values first, with
    `repository`'s spool and discovered-keys record. Returns the `zabbix` check result; never raises."""
    try:
        target = destination(zabbix)
    except ConfigError as error:
        return CheckResult(CHECK_NAME, Status.WARNING, f"values not sent: {error}")
    try:
        delivery = deliver(
            values,
            target.host,
            transport or ZabbixSender(target, deadline=deadline),
            Spool(repository.spool_path, zabbix.spool_max),
            known_path=repository.state_dir / DISCOVERED_FILE,
            lld_retry_seconds=zabbix.lld_retry_seconds,
            deadline=deadline,
        )
    except OSError as error:
        logger.warning("zabbix push failed: %s", error)
        return CheckResult(CHECK_NAME, Status.WARNING, f"values not sent: spool unusable: {error}")
    return delivery_result(delivery, target, repository.spool_path)


def send_heartbeat(
    zabbix: ZabbixConfig | None, *, now: datetime | None = None, transport: Transport | None = None
) -> bool:
    """Sends `pgbackup.heartbeat` alone (the daemon, between runs). Returns True when Zabbix processed it.

    Not spooled: a late heartbeat says nothing. Never raises; problems are logged.
    """
    if zabbix is None:
        return False
    moment = now or datetime.now(UTC)
    try:
        target = destination(zabbix)
        sender = transport or ZabbixSender(target)
        clock = int(moment.timestamp())
        return sender.send(target.host, keys.HEARTBEAT, str(clock), clock, moment.microsecond * 1000)
    except (ConfigError, UnreachableError) as error:
        logger.warning("zabbix heartbeat not sent: %s", error)
        return False


def delivery_result(delivery: Delivery, target: Destination, spool_path: Path) -> CheckResult:
    """Returns the `zabbix` check result describing `delivery`."""
    where = f"Zabbix {target.describe()} (host {target.host})"
    metrics: dict[str, int | float | str] = {
        "delivered": delivery.delivered,
        "resent_from_spool": delivery.resent_from_spool,
        "refused": len(delivery.refused),
        "spooled": delivery.spooled,
        "spool_dropped_total": delivery.dropped_total,
    }
    details: list[str] = []
    status = Status.OK
    if delivery.unreachable is not None:
        # a WARNING, not OK: nobody is watching these results until Zabbix is back (nothing is lost)
        status = Status.WARNING
        summary = f"{where} unreachable ({delivery.unreachable}): {delivery.spooled} values spooled for the next run"
        details.append(f"spool: {spool_path}")
    else:
        summary = f"{delivery.delivered} values delivered to {where}"
        if delivery.resent_from_spool:
            summary += f", plus {delivery.resent_from_spool} spooled values from earlier runs"
    if delivery.refused:
        status = Status.WARNING
        # the host items first (the heartbeat above all: refused, it means the template is not linked)
        unique = sorted(set(delivery.refused), key=lambda key: (key != keys.HEARTBEAT, "[" in key, key))
        summary = (
            f"{where} refused {len(delivery.refused)} values: import the template / link the host "
            f"({', '.join(unique[:SHOWN_KEYS])}{', …' if len(unique) > SHOWN_KEYS else ''})"
        )
        details.extend(f"refused: {key}" for key in unique)
    if delivery.skipped:
        status = Status.WARNING
        noun = "record" if len(delivery.skipped) == 1 else "records"
        summary += f"; {len(delivery.skipped)} unreadable spool {noun} skipped (their values are lost)"
        details.extend(f"spool: {line}" for line in delivery.skipped)
    if delivery.dropped_now:
        status = Status.WARNING
        details.append(f"spool full: {delivery.dropped_now} oldest values dropped now, {delivery.dropped_total} ever")
        summary += f"; spool full, {delivery.dropped_now} oldest values dropped"
    return CheckResult(CHECK_NAME, status, summary, tuple(details), metrics)
