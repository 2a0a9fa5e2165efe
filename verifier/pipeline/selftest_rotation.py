"""Which self-test runs: the daemon's weekly one, and with `source.databases` the database whose turn it
is. The self-test proves the verifier, not a database, so one database a week is enough: the one whose
last self-test is oldest (one never tested first, in name order), among those holding a backup with a
manifest. It runs under the repository root's lock, as a night does."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from verifier.config import Config
from verifier.errors import BackupNotFound, VerifierError
from verifier.pipeline.night import database_config
from verifier.pipeline.selftest import (
    SelfTest,
    last_selftest,
    report_selftest,
    run_physical_selftest,
    run_selftest,
    selftest_due,
)
from verifier.repository.backups import Repository
from verifier.repository.databases import Databases
from verifier.repository.lock import RepositoryLock

logger = logging.getLogger(__name__)


def next_in_rotation(databases: Databases) -> tuple[str, str]:
    """Returns the database to self-test next and why (its last self-test, or never), for the detail
    line. Raises BackupNotFound when no database holds a backup with a manifest yet."""
    tested: dict[str, datetime | None] = {
        name: last_selftest(databases.repository(name))
        for name in databases.held()
        if any(backup.manifest is not None for backup in databases.repository(name).backups())
    }
    if not tested:
        raise BackupNotFound(f"no database in {databases.root.path} holds a backup with a manifest to test with yet")
    never = datetime.min.replace(tzinfo=UTC)
    name = min(tested, key=lambda candidate: (tested[candidate] or never, candidate))
    finished = tested[name]
    if finished is None:
        return name, "never self-tested"
    return name, f"last self-tested {finished.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def selftest_of_database(config: Config, dbname: str | None, *, physical: bool = False) -> SelfTest:
    """With source.databases: the self-test of `dbname`, or of the database next in rotation when None,
    under the repository root's lock. Returns the outcome (not yet reported: `report_selftest` with the
    whole `config`). Raises LockHeld, RepositoryError for a `dbname` not held, BackupNotFound, and the
    VerifierErrors of a restore that cannot run."""
    databases = Databases(config.repository.path)
    if not databases.root.path.is_dir():
        raise BackupNotFound(f"no backup with a manifest in {databases.root.path} to test with")
    with RepositoryLock(databases.root.lock_path):
        if dbname is None:
            dbname, turn = next_in_rotation(databases)
            logger.info("self-test of database %s (%s)", dbname, turn)
        else:
            (dbname,), turn = databases.chosen(dbname), ""
        return _of_database(config, databases, dbname, turn, physical=physical)


def weekly_selftest(config: Config) -> SelfTest | None:
    """Runs the self-test when `selftest_due` (the daemon calls this after each night), under the repository
    lock, and reports it: with source.databases, of the database next in rotation. A self-test that cannot
    run is reported as failed (a database's in its turn: the next week's is another's). Returns the
    outcome, or None when none was due."""
    if not selftest_due(config, datetime.now(UTC)):
        return None
    logger.info("weekly self-test starting")
    repository = Repository(config.repository.path)
    try:
        repository.ensure()
        with RepositoryLock(repository.lock_path):
            outcome = _weekly_of_several(config) if config.source.several else run_selftest(config)
    except VerifierError as error:
        outcome = SelfTest(backup_name="", error=str(error))
    except OSError as error:
        outcome = SelfTest(backup_name="", error=f"repository {repository.path} unusable: {error.strerror or error}")
    report_selftest(config, outcome)
    logger.info("self-test: %s", outcome.result().summary)
    return outcome


def _weekly_of_several(config: Config) -> SelfTest:
    """Returns the self-test of the database next in rotation, one that could not run as its error. The
    caller holds the root's lock. Raises BackupNotFound when no database has a backup to test."""
    databases = Databases(config.repository.path)
    dbname, turn = next_in_rotation(databases)
    logger.info("weekly self-test of database %s (%s)", dbname, turn)
    try:
        return _of_database(config, databases, dbname, turn)
    except VerifierError as error:
        return SelfTest(backup_name="", error=str(error), database=dbname, turn=turn)


def _of_database(config: Config, databases: Databases, dbname: str, turn: str, *, physical: bool = False) -> SelfTest:
    """Returns the self-test of `dbname`'s newest (physical: the newest physical) backup, `turn` saying why
    it was chosen ("" when named). Raises the VerifierErrors of a restore that cannot run."""
    one = database_config(config, dbname, databases.repository(dbname).path, seconds_left=config.run_timeout)
    outcome = run_physical_selftest(one) if physical else run_selftest(one)
    outcome.turn = turn
    return outcome
