"""The pipeline as plain functions: what `verifier run` (the nightly job), `verifier check` and the
daemon call. Each step's failure is recorded in the report rather than raised, so a failed dump
still produces a report, a Zabbix push and an exit code; only "could not run" errors (config,
lock, missing binary) end the run early, with exit code 3.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from verifier.check_registry import CheckContext, run_checks
from verifier.config import Config
from verifier.errors import BackupNotFound, ConfigError, VerifierError
from verifier.manifest import Manifest
from verifier.offsite import drill as offsite_drill
from verifier.offsite import upload as offsite_upload
from verifier.physical.engine import Engine
from verifier.pipeline import crash, report_delivery, streamed
from verifier.pipeline.crash import StepTracker
from verifier.pipeline.deadline import Deadline
from verifier.pipeline.exposure import exposure_results
from verifier.pipeline.features import optional_features
from verifier.pipeline.opening import Past, open_history, open_repository, recent_runs, record_run
from verifier.pipeline.outcomes import Checked, Dumped, Outcomes, Proven, build_report, start_run
from verifier.pipeline.physical_proof import Damage, prove_physical
from verifier.pipeline.pruning import Pruned, apply_retention
from verifier.pipeline.source import resolve_source
from verifier.pipeline.verify import Proof, check_integrity
from verifier.postgres.backup.dump import TapFactory, take_backup
from verifier.postgres.connection import Source
from verifier.postgres.instant import Instant, InstantUnavailable, SlotInstants
from verifier.progress import Meter, Step
from verifier.prometheus.textfile import write_report_metrics
from verifier.report import CheckResult, Command, DumpOutcome, Report, Verification
from verifier.repository.backups import Backup, Repository, backup_from_file
from verifier.repository.exposure import found_open
from verifier.repository.history import History
from verifier.repository.lock import RepositoryLock
from verifier.sandbox.shared import SharedSandbox
from verifier.zabbix.push import push_report

logger = logging.getLogger(__name__)


def _no_progress(_: str) -> None:
    return None


def run(
    config: Config,
    *,
    step: Step = _no_progress,
    command: Command = Command.RUN,
    prove: bool = True,
    exposures: Sequence[str] = (),
    instants: SlotInstants | None = None,
) -> Report:
    """Dumps, proves the new backup (unless `prove` is False), records it in the history, applies
    retention, runs the checks and delivers the report; `exposures` (the config file's, found by the
    caller) are WARNINGs in it. With `instants` the dump runs in a replication slot's snapshot (one
    snapshot for the logical and the physical proof, see `run_nightly`). An unexpected exception at any
    step ends the run as could-not-run (exit 3) with its report, history row and Zabbix values (see `crash`).

    Returns the report. Raises LockHeld and other exit-3 errors that prevent any run.
    """
    exposed = exposure_results([*exposures, *found_open(config.repository.path)])  # before it is tightened
    repository = open_repository(config, create=True)
    with RepositoryLock(repository.lock_path):
        return run_locked(
            config, repository, step=step, command=command, prove=prove, exposed=exposed, instants=instants
        )


def run_locked(
    config: Config,
    repository: Repository,
    *,
    step: Step = _no_progress,
    command: Command = Command.RUN,
    prove: bool = True,
    exposed: Sequence[CheckResult] = (),
    shared: SharedSandbox | None = None,
    instants: SlotInstants | None = None,
) -> Report:
    """`run` in `repository`, opened and locked by the caller (a night of several databases holds one
    lock for all of them); `exposed` are the exposures found. `shared` is the night's sandbox the proof
    restores into (None: a sandbox of its own); `instants` as `run` has them. Returns the report. Raises
    the exit-3 errors of `run`."""
    exposed = list(exposed)
    outcomes = Outcomes(start_run(config, command))
    tracker = StepTracker(step)
    history, past = History(repository.history_path), Past()
    deadline_at = time.monotonic() + config.run_timeout  # Zabbix included
    try:
        history, outcomes.history_problem = open_history(repository)
        past = recent_runs(history)  # read before this run writes its own row
        return _run(
            outcomes, config, repository, history, past, tracker, deadline_at, exposed, prove=prove, shared=shared,
            instants=instants,
        )  # fmt: skip
    except VerifierError:
        raise  # errors of our own keep their one line and exit code
    except Exception as error:  # the crash rule; KeyboardInterrupt (SIGTERM too) stays an interrupt
        outcomes.crashed = crash.note_crash(
            outcomes.start.run_id, error, tracker.current, dumping=True, verifying=prove,
            sandbox=config.verify.sandbox,
        )  # fmt: skip
        return _finish(  # no retention: nothing is deleted after a crash
            outcomes, config, repository, history, past, single_file=False, quick=False, step=tracker,
            deadline_at=deadline_at, extra=exposed, crashed=True,
        )  # fmt: skip


def _run(
    outcomes: Outcomes,
    config: Config,
    repository: Repository,
    history: History,
    past: Past,
    step: Step,
    deadline_at: float,
    exposed: list[CheckResult],
    *,
    prove: bool,
    shared: SharedSandbox | None,
    instants: SlotInstants | None = None,
) -> Report:
    """The body of `run`: see there. Returns the report."""
    with Deadline(config.run_timeout) as deadline:
        if prove and streamed.applies(config):
            _dump_and_restore(outcomes, config, repository, step, shared, instants)
        else:
            source, outcomes.dumped = _dump(outcomes, config, repository, step("snapshot and dump"), instants=instants)
            if prove and outcomes.manifest is not None:
                backup = backup_from_file(repository.path / outcomes.manifest.dump_path)
                _verify(outcomes, backup, config, source, quick=False, step=step, shared=shared)
    outcomes.timed_out = deadline.blame
    night = build_report(outcomes)
    record_run(history, night, finished=False)  # the night's facts, durably, before anything is deleted
    step("retention")
    verified_now = night.backup_name if night.backup_name and night.verification_passed else None
    pruned = apply_retention(config, repository, history, verified_now=verified_now, now=datetime.now(UTC))
    offsite_results: list[CheckResult] = []
    if config.offsite:  # a step only where off-site copies are configured
        step("offsite")
        verified = (
            set() if history.unreadable else history.verified_backups() | ({verified_now} if verified_now else set())
        )
        offsite_results = offsite_upload.offsite_step(
            repository.backups(),
            verified,
            repository.state_dir,
            targets=config.offsite,
            encryption=config.encryption,
            retention=config.offsite_retention,
            timezone=config.schedule.display_zone,
        )
    return _finish(
        outcomes, config, repository, history, past, single_file=False, quick=False, step=step, pruned=pruned,
        extra=offsite_results + exposed, deadline_at=deadline_at,
    )  # fmt: skip


def _dump_and_restore(
    outcomes: Outcomes,
    config: Config,
    repository: Repository,
    step: Step,
    shared: SharedSandbox | None,
    instants: SlotInstants | None,
) -> None:
    """Steps 2-5 with the restore reading along with the dump (see `streamed`), recorded in `outcomes`;
    `instants` as `run` has them."""
    meter = step("snapshot and dump")
    with Proof.while_dumping(config, meter, shared) as proof:  # the restore's rows show in the dump's step
        source, outcomes.dumped = _dump(outcomes, config, repository, meter, tap_for=proof.tap_for, instants=instants)
        if proof.sandbox_seconds is not None:
            outcomes.step_timings["sandbox"] = proof.sandbox_seconds
        if outcomes.manifest is None:
            return
        backup = backup_from_file(repository.path / outcomes.manifest.dump_path)
        restored_along = proof.restoring_along  # else the proof restores the stored file and meets the error
        _verify(outcomes, backup, config, source, quick=False, step=step, proof=proof)
        if not restored_along:
            return
        closing = time.monotonic()
    outcomes.step_timings["teardown"] = round(time.monotonic() - closing, 3)


def _dump(
    outcomes: Outcomes,
    config: Config,
    repository: Repository,
    meter: Meter | None,
    tap_for: TapFactory | None = None,
    instants: SlotInstants | None = None,
) -> tuple[Source | None, Dumped]:
    """Step 2-3 (its step started by the caller, `meter` its meter): snapshot and dump. Production's
    description goes into `outcomes` as soon as it is resolved. Returns the source (None when it could
    not be resolved) and the dump's outcome. `tap_for` gives a restore reading along (see `streamed`);
    with `instants` the dump runs in a slot's snapshot, the slot's session ended once it is done."""
    source: Source | None = None
    started = time.monotonic()
    try:
        source = resolve_source(config.source)
        outcomes.source = source.description
        try:
            with instants or contextlib.nullcontext():  # the slot is held until pg_dump and every reader are done
                manifest = take_backup(
                    source, config.dump, config.postgres, repository, meter, config.verify, tap_for, instants
                )
        except InstantUnavailable as error:  # the physical proof, taking its own instant, meets it and says it
            logger.warning("no slot's snapshot for the dump (%s): it takes a snapshot of its own", error)
            manifest = take_backup(source, config.dump, config.postgres, repository, meter, config.verify, tap_for)
        seconds = round(time.monotonic() - started, 3)
        return source, Dumped(
            DumpOutcome(ok=True, duration_seconds=seconds, manifest=manifest, warnings=list(manifest.notes))
        )
    except VerifierError as error:
        logger.error("dump failed: %s", error)
        seconds = round(time.monotonic() - started, 3)
        return source, Dumped(DumpOutcome(ok=False, duration_seconds=seconds, error=str(error)), _could_not_run(error))


def check(
    config: Config,
    *,
    backup_file: Path | None = None,
    quick: bool = False,
    step: Step = _no_progress,
    offsite: str | None = None,
    exposures: Sequence[str] = (),
) -> Report:
    """Verifies the newest backup (or `backup_file`, or with `offsite` the newest off-site copy: "" for
    every target, else the target's name) without taking a new one. Returns the report.

    `quick` checks age, count, checksums and readability but does not restore. Raises LockHeld,
    BackupNotFound (exit 2) when there is nothing to verify.
    """
    exposed = exposure_results([*exposures, *found_open(config.repository.path)])  # before it is tightened
    # a file or an off-site copy named on the command line is verified into any repository (its record
    # goes there); the newest backup of a repository that does not exist is a typo'd repository.path
    repository = open_repository(config, create=backup_file is not None or offsite is not None)
    with RepositoryLock(repository.lock_path):
        return check_locked(
            config, repository, backup_file=backup_file, quick=quick, step=step, offsite=offsite, exposed=exposed
        )


def check_locked(
    config: Config,
    repository: Repository,
    *,
    backup_file: Path | None = None,
    quick: bool = False,
    step: Step = _no_progress,
    offsite: str | None = None,
    exposed: Sequence[CheckResult] = (),
    shared: SharedSandbox | None = None,
) -> Report:
    """`check` in `repository`, opened and locked by the caller (a night of several databases holds one
    lock for all of them); `exposed` are the exposures found; `shared` the night's sandbox (None: one
    of its own). Returns the report. Raises BackupNotFound and the exit-3 errors of `check`."""
    with contextlib.ExitStack() as fetched:
        command = Command.of_check(backup_file=backup_file is not None, quick=quick, offsite=offsite is not None)
        outcomes = Outcomes(start_run(config, command))
        tracker = StepTracker(step)
        single_file = backup_file is not None or offsite is not None
        history, past = History(repository.history_path), Past()
        deadline_at = time.monotonic() + config.run_timeout  # Zabbix included
        try:
            history, outcomes.history_problem = open_history(repository)
            past = recent_runs(history)  # read before this run writes its own row
            return _check(
                outcomes, config, repository, history, past, fetched, tracker, deadline_at, backup_file, quick,
                offsite, list(exposed), shared,
            )  # fmt: skip
        except VerifierError:
            raise  # BackupNotFound and the like: exit codes of their own, before any check ran
        except Exception as error:  # the crash rule; KeyboardInterrupt (SIGTERM too) stays an interrupt
            outcomes.crashed = crash.note_crash(
                outcomes.start.run_id, error, tracker.current, dumping=False, verifying=not quick,
                sandbox=config.verify.sandbox,
            )  # fmt: skip
            return _finish(
                outcomes, config, repository, history, past, single_file=single_file, quick=quick, step=tracker,
                deadline_at=deadline_at, extra=list(exposed), crashed=True,
            )  # fmt: skip


def _check(
    outcomes: Outcomes,
    config: Config,
    repository: Repository,
    history: History,
    past: Past,
    fetched: contextlib.ExitStack,
    step: Step,
    deadline_at: float,
    backup_file: Path | None,
    quick: bool,
    offsite: str | None,
    exposed: list[CheckResult],
    shared: SharedSandbox | None = None,
) -> Report:
    """The body of `check`: see there. Returns the report."""
    offsite_results: list[CheckResult] = []
    if offsite is not None:
        step("offsite")
        backup: Backup | None = fetched.enter_context(
            offsite_drill.fetch_newest(
                config.offsite, config.encryption, offsite or None, repository.state_dir, offsite_results
            )
        )
    elif backup_file is not None:
        try:
            backup = backup_from_file(backup_file.resolve())
        except FileNotFoundError:
            raise BackupNotFound(f"--backup {backup_file}: no such file") from None
    else:
        backup = repository.newest(datetime.now(UTC))
    if backup is not None:
        outcomes.backup = (backup.name, backup.manifest)
        source = None
        unreachable: str | None = None
        with Deadline(config.run_timeout) as deadline:
            if not quick:
                try:
                    source = resolve_source(config.source)
                    outcomes.source = source.description
                except VerifierError as error:
                    logger.warning("production not reachable for comparison: %s", error)
                    unreachable = str(error)
            _verify(outcomes, backup, config, source, quick=quick, step=step, unreachable=unreachable, shared=shared)
        outcomes.timed_out = deadline.blame
    return _finish(
        outcomes, config, repository, history, past, single_file=backup_file is not None or offsite is not None,
        quick=quick, step=step, extra=offsite_results + exposed, deadline_at=deadline_at,
    )  # fmt: skip


def run_nightly(config: Config, *, step: Step = _no_progress, exposures: Sequence[str] = ()) -> list[Report]:
    """`verifier run` for one database: the logical dump and its proof (unless `dump.enabled` is false),
    then, where `physical:` is configured, the physical proof. With both and `physical.target: exact`, one
    snapshot serves both: the dump runs in a replication slot's snapshot, and the physical proof restores
    to that slot's LSN and compares with the dump's manifest (`check_physical`'s `one_snapshot`). Returns
    their reports in that order. Raises the exit-3 errors of `run` and `check_physical`."""
    physical = config.physical
    if not config.dump.enabled:
        reports = []
        instants = None
    elif physical is None or physical.target != "exact":
        reports = [run(config, step=step, exposures=exposures)]
        instants = None
    else:
        instants = SlotInstants(physical.instant_wait)
        reports = [run(config, step=step, exposures=exposures, instants=instants)]
    if physical is not None:
        one_snapshot = _one_snapshot(instants, reports[0].manifest if reports else None)
        reports.append(
            check_physical(
                config, step=step, exposures=exposures, command=Command.RUN_PHYSICAL, one_snapshot=one_snapshot
            )
        )
    return reports


def _one_snapshot(instants: SlotInstants | None, manifest: Manifest | None) -> tuple[Instant, Manifest] | None:
    """Returns the slot's instant and the manifest read in its snapshot when the dump ran in it (a dump that
    failed, or took a snapshot of its own, leaves the physical proof to take its instant), else None."""
    if instants is None or instants.last is None or manifest is None:
        return None
    instant = instants.last
    if manifest.snapshot_lsn != instant.lsn or manifest.snapshot_id != instant.snapshot_id:
        return None
    return instant, manifest


def check_physical(
    config: Config,
    *,
    step: Step = _no_progress,
    exposures: Sequence[str] = (),
    damage: Damage | None = None,
    command: Command = Command.CHECK_PHYSICAL,
    engine: Engine | None = None,
    one_snapshot: tuple[Instant, Manifest] | None = None,
) -> Report:
    """Proves the newest physical backup now (`physical_proof`): its verification, the checks, the history
    row, Zabbix and the reports as for `check --backup` (a proof that says nothing of the repository's
    dumps). `damage` is the self-test's hook; `engine` replaces the configured backup tool (tests);
    `one_snapshot` the instant a logical dump ran in and its manifest (the evidence, not read again).
    Returns the report. Raises LockHeld, ConfigError and the exit-3 errors that prevent any run."""
    if config.physical is None:
        raise ConfigError(
            "no physical: section in the config: name the pgBackRest stanza there (physical: {stanza: …})"
        )
    exposed = exposure_results([*exposures, *found_open(config.repository.path)])
    repository = open_repository(config, create=True)
    with RepositoryLock(repository.lock_path):
        outcomes = Outcomes(start_run(config, command))
        history, outcomes.history_problem = open_history(repository)
        past = recent_runs(history, physical=True)
        deadline_at = time.monotonic() + config.run_timeout
        with Deadline(config.run_timeout) as deadline:
            try:
                source = resolve_source(config.source)
                outcomes.source = source.description
                verification, manifest = prove_physical(
                    config, source, step, damage=damage, engine=engine, one_snapshot=one_snapshot
                )
                if manifest is not None:
                    outcomes.backup = (manifest.name, manifest)
                outcomes.proven = Proven(verification)
            except VerifierError as error:
                logger.error("physical proof could not run: %s", error)
                failed = Verification(backup_name="physical backup", exact=False, restored=False,
                                      sandbox="physical", error=str(error))  # fmt: skip
                outcomes.proven = Proven(failed, _could_not_run(error))
        outcomes.timed_out = deadline.blame
        return _finish(
            outcomes, config, repository, history, past, single_file=True, quick=False, step=step,
            deadline_at=deadline_at, extra=list(exposed),
        )  # fmt: skip


def _verify(
    outcomes: Outcomes,
    backup: Backup,
    config: Config,
    source: Source | None,
    *,
    quick: bool,
    step: Step,
    proof: Proof | None = None,
    unreachable: str | None = None,
    shared: SharedSandbox | None = None,
) -> None:
    """Steps 3-4, each outcome recorded in `outcomes` as it is known: the integrity of `backup`'s files,
    then (unless `quick`) its proof: in `proof` when the caller holds one (the restore that read along
    with the dump), else in a proof of its own. `unreachable` says why production could not be compared."""
    step("integrity")
    try:
        outcomes.checked = Checked(check_integrity(backup, config, read_through=quick))
    except VerifierError as error:
        outcomes.checked = Checked(None, _could_not_run(error))
        return
    if quick or backup.problem is not None:  # a backup whose manifest cannot be trusted is not restored
        return
    could_not_run: str | None = None
    try:
        with contextlib.ExitStack() as owned:
            proof = proof or owned.enter_context(Proof(config, shared=shared))
            verification = proof.prove(backup, source, step)
    except VerifierError as error:
        verification = Verification(
            backup_name=backup.name,
            exact=backup.manifest is not None,
            restored=False,
            sandbox=config.verify.sandbox,
            error=str(error),
        )
        could_not_run = _could_not_run(error)
    if unreachable and verification.production_error is None:
        verification.production_error = unreachable
    outcomes.proven = Proven(verification, could_not_run)


def _finish(
    outcomes: Outcomes,
    config: Config,
    repository: Repository,
    history: History,
    past: Past,
    *,
    single_file: bool,
    quick: bool,
    step: Step,
    deadline_at: float,
    pruned: Pruned | None = None,
    extra: list[CheckResult] | None = None,
    crashed: bool = False,
) -> Report:
    """Steps 6-7: the checks, the history row, Zabbix (bounded by the run's deadline, `deadline_at` on
    the monotonic clock), the report files and the final history row. After a crash (`crashed`) each
    part is attempted even when another fails. Returns the report, assembled from `outcomes`, the
    checks' results and the deliveries (see `outcomes`)."""
    step("checks")
    backups: list[Backup] = []
    last_success: datetime | None = None
    results: list[CheckResult] = []
    steps_done = build_report(outcomes)
    with crash.survived("the checks", crashed):
        backups = repository.backups()  # after retention: what the checks, Zabbix and the HTML report describe
        context = CheckContext(
            config=config,
            now=datetime.now(UTC),
            command=steps_done.command,
            backups=backups,
            single_file=single_file,
            quick=quick,
            dump=steps_done.dump,
            integrity=steps_done.integrity,
            verification=steps_done.verification,
            **past.as_fields(),
            retention=pruned[0] if pruned else None,
            retention_skipped=pruned[1] if pruned and pruned[0] is None else None,
        )
        last_success = context.last_successful_verification
        results = run_checks(context) + (extra or [])
    checked = build_report(outcomes, results=results)
    record_run(history, checked, finished=False)  # the history row never waits for Zabbix
    deliveries: list[CheckResult] = []
    if config.zabbix is not None:
        step("zabbix")
        with crash.survived("the Zabbix push", crashed):
            deliveries.append(
                push_report(
                    config.zabbix,
                    checked,
                    repository,
                    database=_database(checked, config),
                    backups=backups,
                    last_success=last_success,
                    features=optional_features(config),
                    deadline=max(deadline_at, time.monotonic() + config.zabbix.timeout),
                )
            )
    if config.prometheus is not None:  # beside Zabbix: the same values, for node_exporter's textfile collector
        with crash.survived("the Prometheus textfile", crashed):
            deliveries.append(
                write_report_metrics(
                    config.prometheus,
                    checked,
                    database=_database(checked, config),
                    backups=backups,
                    last_success=last_success,
                    features=optional_features(config),
                )
            )
    finished_at = datetime.now(UTC)
    step("report")
    pushed = build_report(outcomes, results=results, deliveries=deliveries, finished_at=finished_at)
    with crash.survived("the HTML report and e-mail", crashed):
        deliveries += report_delivery.deliver_html_and_email(
            pushed, config, repository, history, retention_summary=pruned[1] if pruned else None, backups=backups
        )
    report = build_report(outcomes, results=results, deliveries=deliveries, finished_at=finished_at)
    with crash.survived("the JSON report", crashed):
        report_delivery.write_report_file(report.to_dict(), repository.reports_dir / f"{report.run_id}.json")
    record_run(history, report, finished=True)
    return report


def _database(report: Report, config: Config) -> str:
    """Returns the database name the per-table Zabbix items carry."""
    return report.manifest.source.dbname if report.manifest else config.source.dbname or report.source


def _could_not_run(error: VerifierError) -> str | None:
    """Returns the run's could-not-run line when `error` means it could not run (exit 3), else None."""
    return str(error) if error.could_not_run else None
