"""A night of several databases told to Zabbix once, after every database has run: each database's values
(as its single-database run would send them), merged into one push to the one host
(`zabbix.night_values`), spooled as a single run's when Zabbix is down."""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
import time
from datetime import UTC, datetime

from verifier.config import Config
from verifier.pipeline.features import optional_features
from verifier.pipeline.night_report import DatabaseNight, Night
from verifier.repository.databases import Databases
from verifier.repository.history import History
from verifier.zabbix.night_values import DatabaseValues, night_values
from verifier.zabbix.push import push_values
from verifier.zabbix.values import Features, report_failed, report_text, repository_values, values_from_report

logger = logging.getLogger(__name__)

PUSHED = ("ran", "failed")  # a database no longer run (vanished, left out) is no longer discovered


def night_zabbix(config: Config, databases: Databases, night: Night, ends_at: float) -> Night:
    """Returns `night` with the result of its push to `config.zabbix` among its deliveries (unchanged when
    Zabbix is not configured). `ends_at` (monotonic) is the night's deadline; the push gets at least
    `zabbix.timeout` past it. Never raises for Zabbix: its problems are the result."""
    if config.zabbix is None:
        return night
    now = datetime.now(UTC)
    features = optional_features(config)
    parts = [
        _database_values(databases, database, now, features) for database in night.databases if database.why in PUSHED
    ]
    text = _night_text(config, night, now)
    deadline = max(ends_at, time.monotonic() + config.zabbix.timeout)
    result = push_values(config.zabbix, night_values(parts, now, text), databases.root, deadline=deadline)
    logger.info("zabbix: %s", result.summary)
    return dataclasses.replace(night, deliveries=[*night.deliveries, result])


def _database_values(
    databases: Databases, database: DatabaseNight, now: datetime, features: Features
) -> DatabaseValues:
    """Returns one database's values: its report's, or for a run that could not start what its
    repository holds (then it counts as failed)."""
    repository = databases.repository(database.name)
    backups = repository.backups()
    try:
        last_success = History(repository.history_path).last_successful_verification()
    except (OSError, sqlite3.Error) as error:  # unreadable: the report already says so
        logger.warning("database %s: run history unreadable (%s)", database.name, error)
        last_success = None
    newest = database.newest
    known = (
        [(count.schema_name, count.table) for count in newest.manifest.row_counts] if newest and newest.manifest else []
    )
    if database.report is None:
        values = repository_values(backups, now, database=database.name, last_success=last_success)
        return DatabaseValues(database.name, values, failed=True, known_tables=known)
    values = values_from_report(
        database.report, backups, now, database=database.name, last_success=last_success, features=features
    )
    return DatabaseValues(database.name, values, report_failed(database.report), known)


def _night_text(config: Config, night: Night, now: datetime) -> str:
    """Returns the night's text report: one line per database, then each database's own report."""
    sections = ["\n".join(night.summary_lines(config.schedule.display_zone))]
    sections += [
        f"== {database.name} ==\n{report_text(database.report, now)}"
        for database in night.databases
        if database.report is not None
    ]
    return "\n\n".join(sections)
