"""The deeper proof as Zabbix values: tables whose contents differ, the measured RTO and RPO, and the
self-test. Read from the report's verification and from the results of the checks that measure them
(`recovery`, `selftest`), so that what Zabbix shows is exactly what the report says."""

from __future__ import annotations

from verifier.report import CheckResult, Command, Report
from verifier.zabbix import keys

RECOVERY_CHECK = "recovery"
CONTENTS_CHECK = "contents"
SELFTEST_CHECK = "selftest"

KeyValue = tuple[str, str]


def proof_values(report: Report) -> list[KeyValue]:
    """Returns the host item values of what `report` proved beyond row counts. Pure."""
    values: list[KeyValue] = []
    verification = report.verification
    if (
        verification is not None
        and report.command != Command.CHECK_FILE
        and verification.restored
        and verification.finding(CONTENTS_CHECK).not_compared is None
    ):
        values.append((keys.VERIFY_CONTENT_DIFFERING, str(len(verification.finding(CONTENTS_CHECK).problems))))
    for result in report.results:
        if result.name == RECOVERY_CHECK:
            values += _metric(result, "rto_seconds", keys.RECOVERY_RTO)
            values += _metric(result, "rpo_seconds", keys.RECOVERY_RPO)
    return values


def feature_values(report: Report) -> list[KeyValue]:
    """Returns the values of the optional features' items (discovered ones) that `report` measured. Pure."""
    return [value for result in report.results if result.name == SELFTEST_CHECK for value in selftest_values(result)]


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
