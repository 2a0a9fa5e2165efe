"""`verifier selftest`: proves that the alarm fires. The newest backup is restored, the restored copy
is damaged in several ways, each on its own object, the usual comparison runs, and the self-test
passes only when every damage was named by the check that should see it."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from verifier.config import Config
from verifier.errors import BackupNotFound
from verifier.manifest import Manifest
from verifier.pipeline.physical_proof import prove_physical
from verifier.pipeline.source import resolve_source
from verifier.pipeline.verify import verify_backup
from verifier.postgres import catalog, evidence
from verifier.postgres.evidence import database_properties
from verifier.postgres.evidence.damage import Damage
from verifier.prometheus.textfile import write_metrics
from verifier.report import CheckResult, Status
from verifier.repository.backups import Backup, Repository
from verifier.repository.databases import Databases
from verifier.zabbix.selftest_push import push_selftest, selftest_report_values

logger = logging.getLogger(__name__)

STATE_FILE = "selftest.json"  # in the repository's state directory: when the last self-test finished
WEEK = timedelta(days=7)


@dataclass
class SelfTest:
    """The self-test's outcome: the damages done, those not attempted (and why), an error if the
    restore or comparison could not run."""

    backup_name: str
    damages: list[Damage] = field(default_factory=list)
    not_attempted: list[str] = field(default_factory=list)
    error: str | None = None
    finished_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    database: str = ""  # the backup's database: the `db` its Prometheus metrics carry
    turn: str = ""  # with source.databases and no --db: why this database's turn came (a detail line)

    @property
    def passed(self) -> bool:
        """Returns True when the comparison ran and named every damage done."""
        return self.error is None and bool(self.damages) and all(damage.caught for damage in self.damages)

    def result(self) -> CheckResult:
        """Returns the self-test as a check result: OK when passed, CRITICAL naming what went unseen."""
        missed = [damage for damage in self.damages if not damage.caught]
        details = (
            tuple([f"database {self.database}, next in rotation: {self.turn}"] if self.turn else [])
            + tuple(
                f"{'caught' if damage.caught else 'MISSED'} by {damage.check}: {damage.what}" for damage in self.damages
            )
            + tuple(f"not attempted: {reason}" for reason in self.not_attempted)
        )
        metrics: dict[str, int | float | str] = {
            "damages": len(self.damages),
            "missed": len(missed),
            "passed": int(self.passed),
            "finished_at": int(self.finished_at.timestamp()),
        }
        if self.error is not None:
            summary = f"self-test could not compare: {self.error}"
            return CheckResult("selftest", Status.CRITICAL, summary, details, metrics)
        if not self.damages:
            return CheckResult("selftest", Status.CRITICAL, "self-test found nothing to damage", details, metrics)
        if missed:
            summary = f"{len(missed)} of {len(self.damages)} damages went unnoticed: {missed[0].what}"
            return CheckResult("selftest", Status.CRITICAL, summary, details, metrics)
        summary = f"all {len(self.damages)} damages to the restored copy of {self.backup_name} were caught"
        return CheckResult("selftest", Status.OK, summary, details, metrics)


def run_selftest(config: Config) -> SelfTest:
    """Restores the newest backup with a manifest, damages it, compares. Returns the outcome.
    Raises BackupNotFound, and the VerifierErrors of a restore that cannot run (exit 3)."""
    backups = [backup for backup in Repository(config.repository.path).backups() if backup.manifest is not None]
    if not backups:
        raise BackupNotFound(f"no backup with a manifest in {config.repository.path} to test with")
    backup: Backup = max(backups, key=lambda candidate: candidate.manifest.created_at)  # type: ignore[union-attr]
    manifest = backup.manifest
    assert manifest is not None
    outcome = SelfTest(backup.name, database=manifest.source.dbname)

    def damage(connect: catalog.Connector) -> None:
        with connect() as connection:
            connection.autocommit = True
            database_properties.free_session(connection)  # the restored copy's own timeouts apply to it
            done = evidence.damage_for_selftest(connection, manifest, outcome.not_attempted)
        outcome.damages.extend(done)
        logger.info("selftest: %d damage(s) done to the restored copy", len(done))

    verification = verify_backup(backup, config, None, damage=damage)
    if verification.error is not None:
        outcome.error = verification.error
    for done in outcome.damages:
        done.caught = evidence.caught(done, verification)
    outcome.finished_at = datetime.now(UTC)
    return outcome


def run_physical_selftest(config: Config) -> SelfTest:
    """The self-test of the physical proof: the newest physical backup recovered to an instant, damaged in
    the same ways, compared through every kind. Returns the outcome. Raises the VerifierErrors of a proof
    that cannot run (exit 3)."""
    source = resolve_source(config.source)
    outcome = SelfTest("the newest physical backup", database=source.params.dbname)

    def damage(connect: catalog.Connector, manifest: Manifest) -> None:
        outcome.backup_name = manifest.name
        with connect() as connection:
            connection.autocommit = True
            database_properties.free_session(connection)
            done = evidence.damage_for_selftest(connection, manifest, outcome.not_attempted)
        outcome.damages.extend(done)
        logger.info("selftest: %d damage(s) done to the restored physical copy", len(done))

    verification, _ = prove_physical(config, source, lambda _: None, damage=damage)
    outcome.error = verification.error
    for done in outcome.damages:
        done.caught = evidence.caught(done, verification)
    outcome.finished_at = datetime.now(UTC)
    return outcome


def report_selftest(config: Config, outcome: SelfTest) -> CheckResult | None:
    """Records when the self-test ran and how in the repository (the daemon's weekly schedule reads it) and,
    with source.databases, in the tested database's (its turn in the rotation), writes its metrics to the
    Prometheus textfile and pushes its status to Zabbix (host-level items), each when configured. `config`
    is the whole config, never one database's. Returns the `zabbix` result, or None without Zabbix. Never
    raises for the state files or the textfile (logged)."""
    repository = Repository(config.repository.path)
    result = outcome.result()
    state = {"finished_at": outcome.finished_at.isoformat(), "status": result.status.name, "summary": result.summary}
    recorded = [repository]
    if config.source.several and outcome.database:
        recorded.append(Databases(config.repository.path).repository(outcome.database))
    for where in recorded:
        try:
            where.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            (where.state_dir / STATE_FILE).write_text(json.dumps(state), encoding="utf-8")
        except OSError as error:
            logger.error("could not record the self-test in %s: %s", where.state_dir, error)
    if config.prometheus is not None:
        database = outcome.database or config.source.dbname or ""
        values = selftest_report_values(result, outcome.finished_at)
        write_metrics(config.prometheus.textfile, values, database=database, features=None)  # never raises
    if config.zabbix is None:
        return None
    return push_selftest(config.zabbix, result, repository)


def selftest_due(config: Config, now: datetime) -> bool:
    """Returns True when `schedule.selftest` is weekly and no self-test finished in the last 7 days
    (an unreadable record counts as none)."""
    if config.schedule.selftest != "weekly":
        return False
    finished = last_selftest(Repository(config.repository.path))
    return finished is None or now - finished >= WEEK


def last_selftest(repository: Repository) -> datetime | None:
    """Returns when the last self-test recorded in `repository` finished, None when none is (an unreadable
    record counts as none)."""
    path = repository.state_dir / STATE_FILE
    try:
        finished = datetime.fromisoformat(json.loads(path.read_text(encoding="utf-8"))["finished_at"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return finished if finished.tzinfo is not None else None  # a naive time cannot be compared
