"""A run's report and the repository's state, turned into Zabbix item values with their clocks.

Only what was measured is sent: `verifier check --quick` restores nothing, so it sends no
verification values and the items keep the last run's; a run whose dump failed sends `dump.status`
0 and no new backup size. Every key comes from `keys.py`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from verifier.names import quote_ident
from verifier.report import Command, Report, Status, TableComparison, Verification
from verifier.repository.backups import Backup, newest_backup
from verifier.zabbix import keys
from verifier.zabbix.proof_values import feature_values, proof_values

REPORT_TEXT_LIMIT = 60_000
"""Zabbix stores text values up to 64 KB; longer reports are cut with a note."""


@dataclass(frozen=True)
class Value:
    """One item value: key, value as text, and the unix time (seconds, nanoseconds) it was measured."""

    key: str
    value: str
    clock: int
    ns: int = 0


@dataclass(frozen=True)
class Features:
    """Which optional features the agent uses. Their items are discovered (`keys.SINGLETON`) only where they
    are on, so a host never holds an item that can never get a value."""

    offsite: bool
    selftest: bool
    physical: bool = False  # physical: is configured (issue 24)
    contents: bool = True  # verify.content is not off: restored contents are compared with checksums

    def discovery(self, clock: int) -> list[Value]:
        """Returns each feature's discovery value (see `feature_discovery`)."""
        return [
            feature_discovery(keys.OFFSITE_FEATURE_DISCOVERY, self.offsite, clock),
            feature_discovery(keys.SELFTEST_FEATURE_DISCOVERY, self.selftest, clock),
            feature_discovery(keys.PHYSICAL_FEATURE_DISCOVERY, self.physical, clock),
            feature_discovery(keys.CONTENTS_FEATURE_DISCOVERY, self.contents, clock),
        ]


def feature_discovery(key: str, on: bool, clock: int, ns: int = 0) -> Value:
    """Returns an optional feature's discovery value: one row (`{#SINGLETON}` empty) when the feature is on,
    none when it is off (Zabbix then removes its items after the rule's lifetime)."""
    return Value(key, json.dumps([{keys.SINGLETON: ""}] if on else []), clock, ns)


@dataclass(frozen=True)
class Values:
    """What one report sends: discovery first, then host items, then the discovered items' values."""

    discovery: list[Value] = field(default_factory=list)
    items: list[Value] = field(default_factory=list)
    prototypes: list[Value] = field(default_factory=list)

    def all(self) -> list[Value]:
        """Returns every value in sending order."""
        return [*self.discovery, *self.items, *self.prototypes]


def values_from_report(
    report: Report,
    backups: Sequence[Backup],
    now: datetime,
    *,
    database: str,
    last_success: datetime | None = None,
    features: Features | None = None,
) -> Values:
    """Returns the values that describe `report` and the repository's `backups` (oldest first) at `now`.

    `database` fills `{#DB}`: its discovery and its per-database items (`keys.DB_MIRRORS`: the host items'
    values again, under its name, so that a template reads one database like several) are always sent, and
    the night's items say one database, failed or not; `last_success` is when a verification last passed
    (from the run history), used when this run verified nothing or failed; `features`, when given,
    discovers the optional features' items where they are on and removes them where they are off.
    """
    clock = _unix(now)
    ns = now.microsecond * 1000
    physical = Command(report.command).physical  # its values are the physical feature's (`feature_values`)
    items = [Value(keys.HEARTBEAT, str(clock), clock)]
    if not physical:  # the logical dumps' items: a physical proof (maybe without dumps) says nothing of them
        items.append(Value(keys.BACKUP_COUNT, str(len(backups)), clock))
    newest = newest_backup(list(backups), now) if not physical else None
    if newest is not None:
        age = max(0, int((now - newest.created_at).total_seconds()))
        items += [
            Value(keys.BACKUP_AGE, str(age), clock),
            Value(keys.BACKUP_SIZE, str(newest.size_bytes), clock),
            Value(keys.BACKUP_TOTAL_SIZE, str(sum(backup.size_bytes for backup in backups)), clock),
        ]
    if report.dump is not None:
        dump_clock = clock
        if report.dump.manifest is not None:
            dump_clock = min(clock, _unix(report.dump.manifest.completed_at))
        items += [
            Value(keys.DUMP_STATUS, "1" if report.dump.ok else "0", dump_clock),
            Value(keys.DUMP_DURATION, _number(report.dump.duration_seconds), dump_clock),
        ]
    discovery: list[Value] = []
    prototypes: list[Value] = []
    verification = report.verification
    if (
        verification is not None and report.command != Command.CHECK_FILE and not physical
    ):  # a single file says nothing of the source's backups
        passed = report.verification_passed
        items += [
            Value(keys.VERIFY_STATUS, "1" if passed else "0", clock),
            Value(keys.VERIFY_DURATION, _number(verification.duration_seconds), clock),
            Value(keys.VERIFY_MISMATCHED_TABLES, str(len(verification.mismatched_tables)), clock),
        ]
        if verification.production_compared:
            items.append(Value(keys.DRIFT_TABLES, str(len(verification.drifted_tables)), clock))
        if passed:
            last_success = now
        discovery, prototypes = _table_values(verification, database, clock)
        for more_discovery, more_prototypes in (
            _assertion_values(verification, clock),
            _proof_check_values(verification, clock),
        ):
            discovery += more_discovery
            prototypes += more_prototypes
    if last_success is not None and not physical:
        items.append(Value(keys.VERIFY_LAST_SUCCESS, str(_unix(last_success)), clock))
    discovery += features.discovery(clock) if features is not None else []
    offsite_discovery, offsite_prototypes = _offsite_values(report, clock)
    discovery += offsite_discovery
    prototypes += offsite_prototypes
    items += [Value(key, value, clock) for key, value in proof_values(report)]
    prototypes += [Value(key, value, clock) for key, value in feature_values(report)]
    items.append(Value(keys.REPORT, report_text(report, now), clock))
    if not physical:  # the database's own items and the night's; a physical proof's push leaves them alone
        discovery.insert(0, Value(keys.DB_DISCOVERY, json.dumps([{"{#DB}": database}], ensure_ascii=False), clock))
        prototypes += [
            Value(keys.db_item_key(keys.DB_MIRRORS[value.key], database), value.value, value.clock)
            for value in items
            if value.key in keys.DB_MIRRORS
        ]
        failed = report_failed(report)
        items += [
            Value(keys.NIGHT_DATABASES, "1", clock),
            Value(keys.NIGHT_DATABASES_FAILED, "1" if failed else "0", clock),
        ]
    return Values(discovery=_with_ns(discovery, ns), items=_with_ns(items, ns), prototypes=_with_ns(prototypes, ns))


def repository_values(
    backups: Sequence[Backup], now: datetime, *, database: str, last_success: datetime | None = None
) -> Values:
    """Returns what a database whose run could not start still says: its backups (count, newest's age and
    size) and its last success, on the host items and its own (`keys.DB_MIRRORS`), and its discovery."""
    clock, ns = _unix(now), now.microsecond * 1000
    items = [Value(keys.BACKUP_COUNT, str(len(backups)), clock)]
    newest = newest_backup(list(backups), now)
    if newest is not None:
        items += [
            Value(keys.BACKUP_AGE, str(max(0, int((now - newest.created_at).total_seconds()))), clock),
            Value(keys.BACKUP_SIZE, str(newest.size_bytes), clock),
            Value(keys.BACKUP_TOTAL_SIZE, str(sum(backup.size_bytes for backup in backups)), clock),
        ]
    if last_success is not None:
        items.append(Value(keys.VERIFY_LAST_SUCCESS, str(_unix(last_success)), clock))
    discovery = [Value(keys.DB_DISCOVERY, json.dumps([{"{#DB}": database}], ensure_ascii=False), clock)]
    prototypes = [
        Value(keys.db_item_key(keys.DB_MIRRORS[value.key], database), value.value, clock)
        for value in items
        if value.key in keys.DB_MIRRORS
    ]
    return Values(discovery=_with_ns(discovery, ns), items=_with_ns(items, ns), prototypes=_with_ns(prototypes, ns))


def report_failed(report: Report) -> bool:
    """Returns True when `report` counts as a failed database: CRITICAL or could not run, or its dump or its
    proof failed."""
    dump_failed = report.dump is not None and not report.dump.ok
    proof_failed = report.verification is not None and not report.verification_passed
    return report.exit_code >= Status.CRITICAL.exit_code or dump_failed or proof_failed


def report_text(report: Report, now: datetime) -> str:
    """Returns the one-screen text report: overall status, then one line per check with details."""
    lines = [
        f"{report.status.name}: {report.command} of {report.source} at {now.isoformat(timespec='seconds')}",
    ]
    if report.backup_name:
        lines.append(f"backup: {report.backup_name}")
    for result in sorted(report.results, key=lambda result: -result.status):
        lines.append(f"[{result.status.name}] {result.name}: {result.summary}")
        lines.extend(f"    {detail}" for detail in result.details[:20])
        if len(result.details) > 20:
            lines.append(f"    … and {len(result.details) - 20} more")
    verification = report.verification
    if verification is not None:
        for table in verification.mismatched_tables[:50]:
            lines.append(f"table {table.qualified_name}: {_table_line(table)}")
    text = "\n".join(lines)
    if len(text) > REPORT_TEXT_LIMIT:
        text = text[: REPORT_TEXT_LIMIT - 40] + "\n… report cut; see reports/ in the repository"
    return text


# -- helpers ------------------------------------------------------------------------------------


def _table_values(verification: Verification, database: str, clock: int) -> tuple[list[Value], list[Value]]:
    tables = sorted(verification.tables, key=lambda table: (table.schema, table.table))
    rows = table_rows(database, [(table.schema, table.table) for table in tables])
    discovery = [Value(keys.TABLE_DISCOVERY, json.dumps(rows, ensure_ascii=False), clock)]
    prototypes: list[Value] = []
    snapshot_total = 0
    for table in tables:
        reference = table.snapshot_rows if table.snapshot_rows is not None else table.production_rows
        per_table = (
            (keys.TABLE_ROWS, reference),
            (keys.TABLE_ROWS_RESTORED, table.restored_rows),
            (keys.TABLE_DIFF, table.difference),
        )
        for base, number in per_table:
            if number is not None:
                key = keys.table_item_key(base, database, table.schema, table.table)
                prototypes.append(Value(key, str(number), clock))
        snapshot_total += reference or 0
    prototypes += [
        Value(keys.db_item_key(keys.DB_TABLES, database), str(len(tables)), clock),
        Value(keys.db_item_key(keys.DB_ROWS, database), str(snapshot_total), clock),
    ]
    return discovery, prototypes


def table_rows(database: str, tables: Sequence[tuple[str, str]]) -> list[dict[str, str]]:
    """Returns the table discovery's rows of `database`'s (schema, table) pairs, in their order."""
    # names quoted as PostgreSQL quotes them: app."orders.archive" and "app.orders".archive stay apart
    return [
        {"{#DB}": database, "{#SCHEMA}": quote_ident(schema), "{#TABLE}": quote_ident(table)}
        for schema, table in tables
    ]


def _assertion_values(verification: Verification, clock: int) -> tuple[list[Value], list[Value]]:
    """Returns (discovery, prototypes) for the assertions run on the restored copy; nothing when none ran."""
    if not verification.assertions:
        return [], []
    rows = [{"{#ASSERTION}": outcome.name} for outcome in verification.assertions]
    discovery = [Value(keys.ASSERTION_DISCOVERY, json.dumps(rows, ensure_ascii=False), clock)]
    prototypes = [
        Value(keys.item_key(keys.ASSERTION_STATUS, outcome.name), "1" if outcome.passed else "0", clock)
        for outcome in verification.assertions
    ]
    return discovery, prototypes


def _proof_check_values(verification: Verification, clock: int) -> tuple[list[Value], list[Value]]:
    """Returns (discovery, prototypes): each proof check that compared the restored copy (its findings, in the
    kinds' order) and how many problems it named; nothing when none compared (the restore failed)."""
    compared = {name: found for name, found in verification.findings.items() if found.not_compared is None}
    if not verification.restored or not compared:
        return [], []
    rows = [{"{#CHECK}": name} for name in compared]
    discovery = [Value(keys.PROOF_DISCOVERY, json.dumps(rows, ensure_ascii=False), clock)]
    prototypes = [
        Value(keys.item_key(keys.PROOF_PROBLEMS, name), str(len(found.problems)), clock)
        for name, found in compared.items()
    ]
    return discovery, prototypes


def _offsite_values(report: Report, clock: int) -> tuple[list[Value], list[Value]]:
    """Returns (discovery, prototypes) for the `offsite <target>` results of this run: per target, and the
    summary of all (an item of the off-site feature's discovery)."""
    targets = [result for result in report.results if result.name.startswith("offsite ") and "target" in result.metrics]
    if not targets:
        return [], []
    rows = [{"{#TARGET}": str(result.metrics["target"])} for result in targets]
    discovery = [Value(keys.OFFSITE_DISCOVERY, json.dumps(rows, ensure_ascii=False), clock)]
    healthy = all(
        result.metrics.get("upload_status") == 1 and result.metrics.get("proof_status") == 1 for result in targets
    )
    prototypes = [Value(keys.feature_item_key(keys.OFFSITE_STATUS), "1" if healthy else "0", clock)]
    for result in targets:
        target = str(result.metrics["target"])
        for base, metric in (
            (keys.OFFSITE_AGE, "age_seconds"),
            (keys.OFFSITE_UPLOAD_STATUS, "upload_status"),
            (keys.OFFSITE_PROOF_STATUS, "proof_status"),
            (keys.OFFSITE_COUNT, "count"),
        ):
            if metric in result.metrics:
                prototypes.append(Value(keys.item_key(base, target), str(result.metrics[metric]), clock))
    return discovery, prototypes


def _table_line(table: TableComparison) -> str:
    note = f" ({table.note})" if table.note else ""
    status = "" if table.status is Status.OK else f"{table.status.name} "
    return f"{status}snapshot {table.snapshot_rows}, restored {table.restored_rows}{note}"


def _with_ns(values: list[Value], ns: int) -> list[Value]:
    """Returns the values with the run's nanoseconds: two runs in one second still differ in (clock, ns)."""
    return [Value(value.key, value.value, value.clock, ns) for value in values]


def _unix(moment: datetime) -> int:
    return int(moment.timestamp())


def _number(seconds: float) -> str:
    return f"{seconds:.3f}"
