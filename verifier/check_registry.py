"""The check registry: checks are plain functions. The built-in ones live in the top-level `checks/` folder
(installed as `pg_backup_verifier_checks`) and are named in its `BUILTIN` list, loaded from there (a new
built-in check needs no reinstall); a user's package adds its own as entry points
(`pg_backup_verifier.checks`).

A check takes a `CheckContext` and returns a `CheckResult`, or None when it does not apply
(e.g. `restore` under `--quick`), or a list of results when it answers one question per object (e.g.
`assertions`: one per user assertion). Checks never print and never touch the outside world: what they
may look at is plain data (the recent runs, not a live history).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from importlib.metadata import entry_points

from verifier.config import Config
from verifier.report import CheckResult, DumpOutcome, Integrity, Status, Verification, verification_passed
from verifier.repository.backups import Backup, newest_backup
from verifier.repository.history import RunRecord
from verifier.repository.retention import RetentionOutcome, RetentionPlan

logger = logging.getLogger(__name__)

GROUP = "pg_backup_verifier.checks"
CHECKS_PACKAGE = "pg_backup_verifier_checks"  # checks/ as installed; its BUILTIN names the built-in checks
BUILTIN_ORDER = ("backup_age", "backup_count", "dump", "archive", "restore", "row_counts", "schema", "drift")
LAST = ("retention",)  # what this run deleted closes the list, after every other check
RECENT_RUNS = 100  # the runs a check may look back on (the trend windows are smaller)
RECOVERY_TREND_RUNS = 30  # the runs whose RTO and RPO the report shows as a trend


@dataclass(frozen=True)
class CheckContext:
    """Everything a check may look at: the config, the repository, this run, and the recent runs
    (`recent_runs`, newest first, at most RECENT_RUNS; empty when the history is unreadable)."""

    config: Config
    now: datetime
    command: str
    backups: list[Backup]
    single_file: bool
    quick: bool
    dump: DumpOutcome | None
    integrity: Integrity | None
    verification: Verification | None
    recent_runs: list[RunRecord] = field(default_factory=list)
    last_successful_verification: datetime | None = None
    last_dump: RunRecord | None = None
    retention: tuple[RetentionPlan, RetentionOutcome] | None = None  # what `run` planned and did
    retention_skipped: str | None = None  # why `run` applied no retention
    recovery_trend: list[tuple[datetime, dict[str, object]]] = field(default_factory=list)  # past `recovery` metrics

    @property
    def newest(self) -> Backup | None:
        """Returns the newest backup in the repository not dated in the future, or None."""
        return newest_backup(self.backups, self.now)

    @property
    def verified_now(self) -> bool:
        """Returns True when this run verified a backup: restored, and no enabled proof check failed."""
        return verification_passed(self.verification, self.integrity, self.config.checks.disabled)


Check = Callable[[CheckContext], CheckResult | list[CheckResult] | None]


def load_checks(disabled: list[str] | None = None) -> list[tuple[str, Check]]:
    """Returns the built-in and registered checks (built-ins first, in their order), minus the disabled
    ones. A plug-in's entry point never replaces a built-in check of the same name."""
    found: dict[str, Callable[[], Check]] = {entry.name: entry.load for entry in entry_points(group=GROUP)}
    found.update({name: _builtin_loader(target) for name, target in builtin_checks().items()})
    names = [name for name in BUILTIN_ORDER if name in found]
    names += sorted(name for name in found if name not in BUILTIN_ORDER and name not in LAST)
    names += [name for name in LAST if name in found]
    checks = []
    for name in names:
        if name in (disabled or []):
            continue
        try:
            checks.append((name, found[name]()))
        except Exception as error:  # a broken plug-in must not stop the built-in checks
            logger.error("check %s cannot be loaded: %s", name, error)
    return checks


def builtin_checks() -> dict[str, str]:
    """Returns the built-in checks: name -> "module:function" in the checks package (its `BUILTIN`)."""
    builtin: dict[str, str] = importlib.import_module(CHECKS_PACKAGE).BUILTIN
    return builtin


def _builtin_loader(target: str) -> Callable[[], Check]:
    """Returns a function that imports the built-in check `target` ("module:function" in the checks package)."""
    module, function = target.split(":")

    def load() -> Check:
        check: Check = getattr(importlib.import_module(f"{CHECKS_PACKAGE}.{module}"), function)
        return check

    return load


def run_checks(context: CheckContext) -> list[CheckResult]:
    """Returns the results of every enabled check; a check that raises yields an UNKNOWN result."""
    results = []
    for name, check in load_checks(context.config.checks.disabled):
        results += _answer(name, check, context)
    return results


def run_check(name: str, context: CheckContext) -> CheckResult | None:
    """Returns the (first) result of the one check `name` (UNKNOWN when it raised, as in `run_checks`), or
    None when it is disabled, not installed or does not apply."""
    for found, check in load_checks(context.config.checks.disabled):
        if found == name:
            return next(iter(_answer(name, check, context)), None)
    return None


def _answer(name: str, check: Check, context: CheckContext) -> list[CheckResult]:
    """Returns what `check` answers, or one UNKNOWN result naming the error when it raised."""
    try:
        return _as_list(check(context))
    except Exception as error:
        logger.exception("check %s failed", name)
        return [CheckResult(name, Status.UNKNOWN, f"check failed: {error}")]


def _as_list(result: CheckResult | list[CheckResult] | None) -> list[CheckResult]:
    if result is None:
        return []
    return result if isinstance(result, list) else [result]
