"""A run's bookkeeping in the repository: open the repository (one database per repository), open the
run history, hand the checks the recent runs as data, and record the run."""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from verifier.check_registry import RECENT_RUNS, RECOVERY_TREND_RUNS
from verifier.config import Config
from verifier.errors import RepositoryError
from verifier.report import Command, Report
from verifier.repository.backups import Repository
from verifier.repository.history import History, RunRecord

logger = logging.getLogger(__name__)


def ensure_repository(repository: Repository) -> None:
    """Creates the repository (its lock, its reports) if missing, one line saying so. Raises RepositoryError
    (exit 3) when it cannot be written."""
    try:
        if repository.ensure():
            logger.warning("created the repository %s (it did not exist)", repository.path)
    except OSError as error:
        raise RepositoryError(
            f"repository {repository.path} cannot be written: {error.strerror or error}; "
            "fix repository.path or the permissions"
        ) from None


def open_repository(config: Config, *, create: bool) -> Repository:
    """Returns the repository serving this config's database alone: created if missing when `create`
    (a run: one line says so), else it must exist (a check of the newest backup only reads it).

    Raises RepositoryError (exit 3) when it is missing and not to be created, cannot be written or
    holds another database's backups.
    """
    repository = Repository(config.repository.path)
    if not create:
        repository.must_exist()
    ensure_repository(repository)
    databases = repository.databases()
    others = sorted(databases - {config.source.dbname}) if config.source.dbname else []
    if others or len(databases) > 1:
        names = ", ".join(repr(name) for name in (others or sorted(databases)))
        raise RepositoryError(
            f"repository {repository.path} holds backups of database {names}: one repository serves one "
            "database (its checks, history, retention and Zabbix items would mix); give this config its own "
            "repository.path"
        )
    return repository


def open_history(repository: Repository) -> tuple[History, str | None]:
    """Returns the run history and, when it cannot be read, why: the run goes on (report written and
    pushed) and ends as could-not-run (exit 3) naming it."""
    history = History(repository.history_path)
    problem = history.probe()
    if problem is not None:
        logger.error("%s", problem)
    return history, problem


@dataclass(frozen=True)
class Past:
    """What the checks read of the history, as plain data, read before the run writes its own row
    (empty when the history cannot be read)."""

    recent_runs: list[RunRecord] = field(default_factory=list)
    last_successful_verification: datetime | None = None
    last_dump: RunRecord | None = None
    recovery_trend: list[tuple[datetime, dict[str, object]]] = field(default_factory=list)

    def as_fields(self) -> dict[str, Any]:
        """Returns the fields as the keyword arguments of `CheckContext`."""
        return {item.name: getattr(self, item.name) for item in fields(self)}


def recent_runs(history: History, *, physical: bool = False) -> Past:
    """Returns what the checks read of the history (empty when it cannot be read): the recent runs of the
    same kind of proof only (`physical`: the physical proofs'; else the logical runs'), so that a trend
    compares a restore with restores of its own kind, never a pgBackRest recovery with a dump's restore."""
    physical_commands = {Command.CHECK_PHYSICAL.value, Command.RUN_PHYSICAL.value}
    try:
        runs = history.runs(limit=RECENT_RUNS * 2)
        return Past(
            recent_runs=[run for run in runs if (run.command in physical_commands) == physical][:RECENT_RUNS],
            last_successful_verification=history.last_successful_verification(),
            last_dump=history.last_dump(),
            recovery_trend=history.check_metrics("recovery", RECOVERY_TREND_RUNS),
        )
    except (OSError, sqlite3.Error) as error:
        logger.error("could not read the run history %s: %s", history.path, error)
        return Past()


def record_run(history: History, report: Report, *, finished: bool) -> None:
    """Writes the run's history row (replacing the one written earlier in the run); `finished` False
    marks it as a run still going (what a killed run leaves). A broken history must not lose the
    report: its error is logged."""
    try:
        history.record(report, finished=finished)
    except (OSError, sqlite3.Error) as error:
        logger.error("could not record the run in %s: %s", history.path, error)
