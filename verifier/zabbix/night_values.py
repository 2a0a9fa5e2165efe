"""A night of several databases as one push: its databases' values (`values_from_report`, one each) merged
into what one Zabbix host holds.

A discovery value replaces its rule's whole list, so each rule is sent once with every database's rows
(the tables of all of them, every database). Per-database and per-table items keep their own values. The
host items summarise the night: the worst status, the oldest backup, the fewest backups, the sums of
sizes and durations (`HOST_RULES`); the discovered items without a database (a proof check, an assertion,
an off-site target) merge the same way (`SHARED_RULES`). A key with no rule is left out and logged: a test
holds every key of `keys.py` to a rule.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from verifier.zabbix import keys
from verifier.zabbix.values import REPORT_TEXT_LIMIT, Value, Values, table_rows

logger = logging.getLogger(__name__)

Rule = Callable[[list[str]], str | None]


def _numbers(texts: list[str]) -> list[float]:
    return [float(text) for text in texts]


def _formatted(number: float, texts: list[str]) -> str:
    return f"{number:.3f}" if any("." in text for text in texts) else str(int(number))


def worst_low(texts: list[str]) -> str | None:
    """The smallest (a status: 0 when any database's is 0; the fewest backups)."""
    return _formatted(min(_numbers(texts)), texts) if texts else None


def worst_high(texts: list[str]) -> str | None:
    """The largest (the oldest backup, the widest data-loss window)."""
    return _formatted(max(_numbers(texts)), texts) if texts else None


def total(texts: list[str]) -> str | None:
    """The sum (sizes, durations, tables, problems)."""
    return _formatted(sum(_numbers(texts)), texts) if texts else None


HOST_RULES: dict[str, Rule] = {
    keys.BACKUP_AGE: worst_high,
    keys.BACKUP_COUNT: worst_low,
    keys.BACKUP_SIZE: total,
    keys.BACKUP_TOTAL_SIZE: total,
    keys.DUMP_STATUS: worst_low,
    keys.DUMP_DURATION: total,
    keys.VERIFY_STATUS: worst_low,
    keys.VERIFY_DURATION: total,
    keys.VERIFY_MISMATCHED_TABLES: total,
    keys.DRIFT_TABLES: total,
    keys.RECOVERY_RTO: total,  # restoring every database, one after the other
    keys.RECOVERY_RPO: worst_high,
}
"""How each host item of a database's values becomes the night's. The heartbeat, the last success, the
report and the night's counts are the night's own (`night_values`)."""

NIGHT_OWN = frozenset(
    {keys.HEARTBEAT, keys.VERIFY_LAST_SUCCESS, keys.REPORT, keys.NIGHT_DATABASES, keys.NIGHT_DATABASES_FAILED}
)

SHARED_RULES: dict[str, Rule] = {
    keys.PROOF_PROBLEMS: total,
    keys.ASSERTION_STATUS: worst_low,
    keys.OFFSITE_STATUS: worst_low,
    keys.OFFSITE_AGE: worst_high,
    keys.OFFSITE_UPLOAD_STATUS: worst_low,
    keys.OFFSITE_PROOF_STATUS: worst_low,
    keys.OFFSITE_COUNT: total,
    keys.VERIFY_CONTENT_DIFFERING: total,
    keys.SELFTEST_STATUS: worst_low,
    keys.SELFTEST_LAST_RUN: worst_low,
    # a physical proof is pushed as its own report, never merged into a night; if one were, its worst value
    keys.PHYSICAL_STATUS: worst_low,
    keys.PHYSICAL_RTO: worst_high,
    keys.PHYSICAL_FULL_AGE: worst_high,
    keys.PHYSICAL_BACKUP_AGE: worst_high,
    keys.PHYSICAL_ARCHIVE_LAG: worst_high,
    keys.PHYSICAL_WINDOW: worst_low,
}
"""How each discovered item that names no database merges over the night's databases."""

PER_DATABASE = frozenset(
    {
        keys.TABLE_ROWS,
        keys.TABLE_ROWS_RESTORED,
        keys.TABLE_DIFF,
        keys.DB_TABLES,
        keys.DB_ROWS,
        *keys.DB_MIRRORS.values(),
    }
)
"""Discovered items whose key names the database: each database's value is its own."""


@dataclass(frozen=True)
class DatabaseValues:
    """One database's part of the night: its values, whether its part failed, and the tables its newest
    backup holds (schema, table): discovered still when its proof listed none tonight (a failed dump), so
    that one database's bad night does not take its tables out of the night's one table discovery."""

    name: str
    values: Values
    failed: bool
    known_tables: Sequence[tuple[str, str]] = ()


def night_values(parts: Sequence[DatabaseValues], now: datetime, report: str) -> Values:
    """Returns the one push of a night (see the module): `parts` in the night's order, `report` its text."""
    clock, ns = int(now.timestamp()), now.microsecond * 1000
    discovery = [Value(key, json.dumps(rows, ensure_ascii=False), clock, ns) for key, rows in _discovery(parts).items()]
    items = [Value(keys.HEARTBEAT, str(clock), clock, ns)]
    gathered: dict[str, list[str]] = {}
    for part in parts:
        for value in part.values.items:
            gathered.setdefault(value.key, []).append(value.value)
    for key, texts in gathered.items():
        if key in HOST_RULES and (merged := HOST_RULES[key](texts)) is not None:
            items.append(Value(key, merged, clock, ns))
        elif key not in NIGHT_OWN:
            logger.warning("zabbix: no rule to summarise %s over the databases: not sent", key)
    successes = gathered.get(keys.VERIFY_LAST_SUCCESS, [])
    if parts and len(successes) == len(parts):  # while one database was never proven, none is "the last"
        items.append(Value(keys.VERIFY_LAST_SUCCESS, worst_low(successes) or "", clock, ns))
    if len(report) > REPORT_TEXT_LIMIT:
        report = report[: REPORT_TEXT_LIMIT - 40] + "\n… report cut; see reports/ in the repository"
    items += [
        Value(keys.REPORT, report, clock, ns),
        Value(keys.NIGHT_DATABASES, str(len(parts)), clock, ns),
        Value(keys.NIGHT_DATABASES_FAILED, str(sum(part.failed for part in parts)), clock, ns),
    ]
    return Values(discovery=discovery, items=items, prototypes=_prototypes(parts, clock, ns))


def _discovery(parts: Sequence[DatabaseValues]) -> dict[str, list[dict[str, str]]]:
    """Returns each discovery rule's rows over every database, in order, each row once."""
    rules: dict[str, list[dict[str, str]]] = {}
    for part in parts:
        sent = {value.key: json.loads(value.value) for value in part.values.discovery}
        if keys.TABLE_DISCOVERY not in sent and part.known_tables:
            sent[keys.TABLE_DISCOVERY] = table_rows(part.name, part.known_tables)
        for key, found in sent.items():
            rows = rules.setdefault(key, [])
            rows += [row for row in found if row not in rows]
    return rules


def _prototypes(parts: Sequence[DatabaseValues], clock: int, ns: int) -> list[Value]:
    own: list[Value] = []
    shared: dict[str, list[str]] = {}
    for part in parts:
        for value in part.values.prototypes:
            base, _ = keys.key_parameters(value.key)
            if base in PER_DATABASE:
                own.append(value)
            elif base in SHARED_RULES:
                shared.setdefault(value.key, []).append(value.value)
            else:
                logger.warning("zabbix: no rule to merge %s over the databases: not sent", value.key)
    merged = []
    for key, texts in shared.items():
        rule = SHARED_RULES[keys.key_parameters(key)[0]]
        if (text := rule(texts)) is not None:
            merged.append(Value(key, text, clock, ns))
    return own + merged
