"""The deeper proof as Zabbix values: the measured RTO and RPO, and the optional features' (tables whose
contents differ, the self-test, the physical proof). Read from the report's verification and from the
results of the checks that measure them (`recovery`, `selftest`), so that what Zabbix shows is exactly
what the report says."""

from __future__ import annotations

from verifier.report import CheckResult, Command, Report
from verifier.zabbix import keys

RECOVERY_CHECK = "recovery"
CONTENTS_CHECK = "contents"
SELFTEST_CHECK = "selftest"

KeyValue = tuple[str, str]


def proof_values(report: Report) -> list[KeyValue]:
    """Returns the host item values of what `report` measured of a recovery: its RTO and RPO. Pure."""
    values: list[KeyValue] = []
    for result in report.results:
        if result.name == RECOVERY_CHECK:
            values += _metric(result, "rto_seconds", keys.RECOVERY_RTO)
            values += _metric(result, "rpo_seconds", keys.RECOVERY_RPO)
    return values


def feature_values(report: Report) -> list[KeyValue]:
    """Returns the values of the optional features' items (discovered ones) that `report` measured. Pure."""
    selftest = [
        value for result in report.results if result.name == SELFTEST_CHECK for value in selftest_values(result)
    ]
    return contents_values(report) + selftest + physical_values(report)


def contents_values(report: Report) -> list[KeyValue]:
    """Returns the tables whose restored contents differ from the snapshot's checksums, under the content
    checksums' feature key, when `report` restored a backup of the source and compared them; none else. Pure."""
    verification = report.verification
    if (
        verification is None
        or report.command == Command.CHECK_FILE
        or Command(report.command).physical
        or not verification.restored
        or verification.finding(CONTENTS_CHECK).not_compared is not None
    ):
        return []
    differing = len(verification.finding(CONTENTS_CHECK).problems)
    return [(keys.feature_item_key(keys.VERIFY_CONTENT_DIFFERING), str(differing))]


PHYSICAL_MEASURES = {
    "full_age": keys.PHYSICAL_FULL_AGE,
    "backup_age": keys.PHYSICAL_BACKUP_AGE,
    "archive_lag": keys.PHYSICAL_ARCHIVE_LAG,
    "window": keys.PHYSICAL_WINDOW,
}


def physical_values(report: Report) -> list[KeyValue]:
    """Returns a physical proof's values under the physical feature's keys: its status (1: the verdict passed),
    its restore time (RTO: restore and recovery, when it restored) and the repository's ages, WAL archive lag
    and recoverable window; none for another report. Pure."""
    verification = report.verification
    if verification is None or not Command(report.command).physical:
        return []
    values = [(keys.feature_item_key(keys.PHYSICAL_STATUS), "1" if report.verification_passed else "0")]
    if verification.restored:
        values.append((keys.feature_item_key(keys.PHYSICAL_RTO), str(round(verification.restore_seconds))))
    values += [
        (keys.feature_item_key(key), str(verification.inventory[name]))
        for name, key in PHYSICAL_MEASURES.items()
        if name in verification.inventory
    ]
    return values


def selftest_values(result: CheckResult) -> list[KeyValue]:
    """Returns the self-test's status (1 passed, 0 not) and finish time from its result's metrics, under the
    keys of the self-test's discovered items. Pure."""
    status, last_run = keys.feature_item_key(keys.SELFTEST_STATUS), keys.feature_item_key(keys.SELFTEST_LAST_RUN)
    return _metric(result, "passed", status) + _metric(result, "finished_at", last_run)


def _metric(result: CheckResult, metric: str, key: str) -> list[KeyValue]:
    if metric not in result.metrics:
        return []
    value = result.metrics[metric]
    return [(key, f"{value:.3f}" if isinstance(value, float) else str(value))]
