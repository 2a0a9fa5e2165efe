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
from verifier.errors import BackupNotFound, VerifierError
from verifier.offsite import drill as offsite_drill
from verifier.offsite import upload as offsite_upload
from verifier.pipeline import crash, report_delivery, streamed
from verifier.pipeline.crash import StepTracker
from verifier.pipeline.deadline import Deadline
from verifier.pipeline.exposure import exposure_results
from verifier.pipeline.opening import Past, new_report, open_history, open_repository, recent_runs, record_run
from verifier.pipeline.pruning import Pruned, apply_retention
from verifier.pipeline.source import resolve_source
from verifier.pipeline.verify import Proof, check_integrity
from verifier.postgres.backup.dump import TapFactory, take_backup
from verifier.postgres.connection import Source
from verifier.progress import Meter, Step
from verifier.report import CheckResult, Command, DumpOutcome, Report, Verification
from verifier.repository.backups import Backup, Repository, backup_from_file
from verifier.repository.exposure import found_open
from verifier.repository.history import History
from verifier.repository.lock import RepositoryLock
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
) -> Report:
    """Dumps, proves the new backup (unless `prove` is False), records it in the history, applies
    retention, runs the checks and delivers the report; `exposures` (the config file's, found by the
    caller) are WARNINGs in it. An unexpected exception at any step ends the run as could-not-run
    (exit 3) with its report, history row and Zabbix values (see `crash`).

    Returns the report. Raises LockHeld and other exit-3 errors that prevent any run.
    """
    exposed = exposure_results([*exposures, *found_open(config.repository.path)])  # before it is tightened
    repository = open_repository(config, create=True)
    with RepositoryLock(repository.lock_path):
        report = new_report(config, command)
        tracker = StepTracker(step)
        history, past = History(repository.history_path), Past()
        deadline_at = time.monotonic() + config.run_timeout  # Zabbix included
        try:
            history = open_history(report, repository)
            past = recent_runs(history)  # read before this run writes its own row
            return _run(report, config, repository, history, past, tracker, deadline_at, exposed, prove=prove)
        except VerifierError:
            raise  # errors of our own keep their one line and exit code
        except Exception as error:  # the crash rule; KeyboardInterrupt (SIGTERM too) stays an interrupt
            crash.note_crash(
                report, error, tracker.current, dumping=True, verifying=prove, sandbox=config.verify.sandbox
            )
            return _finish(  # no retention: nothing is deleted after a crash
                report, config, repository, history, past, single_file=False, quick=False, step=tracker,
                deadline_at=deadline_at, extra=exposed, crashed=True,
            )  # fmt: skip


def _run(
    report: Report,
    config: Config,
    repository: Repository,
    history: History,
    past: Past,
    step: Step,
    deadline_at: float,
    exposed: list[CheckResult],
    *,
    prove: bool,
) -> Report:
    """The body of `run`: see there. Returns the report."""
    with Deadline(config.run_timeout) as deadline:
        if prove and streamed.applies(config):
            _dump_and_restore(report, config, repository, step)
        else:
            source = _dump(report, config, repository, step("snapshot and dump"))
            if prove and report.manifest is not None:
                backup = backup_from_file(repository.path / report.manifest.dump_path)
                _verify(report, backup, config, source, quick=False, step=step)
    deadline.blame(report)
    record_run(history, report, finished=False)  # the night's facts, durably, before anything is deleted
    step("retention")
    pruned = apply_retention(report, config, repository, history, now=datetime.now(UTC))
    offsite_results: list[CheckResult] = []
    if config.offsite:  # a step only where off-site copies are configured
        step("offsite")
        verified = set() if history.unreadable else history.verified_backups() | _this_run_verified(report)
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
        report, config, repository, history, past, single_file=False, quick=False, step=step, pruned=pruned,
        extra=offsite_results + exposed, deadline_at=deadline_at,
    )  # fmt: skip


def _this_run_verified(report: Report) -> set[str]:
    return {report.backup_name} if report.backup_name and report.verification_passed else set()


def _dump_and_restore(report: Report, config: Config, repository: Repository, step: Step) -> None:
    """Steps 2-5 with the restore reading along with the dump (see `streamed`), recorded in the report."""
    meter = step("snapshot and dump")
    with Proof.while_dumping(config, meter) as proof:  # the restore's rows show in the dump's step
        source = _dump(report, config, repository, meter, tap_for=proof.tap_for)
        if proof.sandbox_seconds is not None:
            report.timings["sandbox"] = proof.sandbox_seconds
        if report.manifest is None:
            return
        backup = backup_from_file(repository.path / report.manifest.dump_path)
        restored_along = proof.restoring_along  # else the proof restores the stored file and meets the error
        _verify(report, backup, config, source, quick=False, step=step, proof=proof)
        if not restored_along:
            return
        closing = time.monotonic()
    report.timings["teardown"] = round(time.monotonic() - closing, 3)


def _dump(
    report: Report, config: Config, repository: Repository, meter: Meter | None, tap_for: TapFactory | None = None
) -> Source | None:
    """Step 2-3 (its step started by the caller, `meter` its meter): snapshot and dump, recorded in the
    report. Returns the source, or None when it could not be resolved. `tap_for` gives a restore
    reading along (see `streamed`)."""
    source: Source | None = None
    started = time.monotonic()
    try:
        source = resolve_source(config.source)
        report.source = source.description
        manifest = take_backup(source, config.dump, config.postgres, repository, meter, config.verify, tap_for)
        report.dump = DumpOutcome(
            ok=True,
            duration_seconds=round(time.monotonic() - started, 3),
            manifest=manifest,
            warnings=list(manifest.notes),
        )
        report.manifest = manifest
        report.backup_name = manifest.name
    except VerifierError as error:
        logger.error("dump failed: %s", error)
        report.dump = DumpOutcome(ok=False, duration_seconds=round(time.monotonic() - started, 3), error=str(error))
        _note_could_not_run(report, error)
    report.timings["dump"] = report.dump.duration_seconds
    return source


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
    with RepositoryLock(repository.lock_path), contextlib.ExitStack() as fetched:
        command = Command.of_check(backup_file=backup_file is not None, quick=quick, offsite=offsite is not None)
        report = new_report(config, command)
        tracker = StepTracker(step)
        single_file = backup_file is not None or offsite is not None
        history, past = History(repository.history_path), Past()
        deadline_at = time.monotonic() + config.run_timeout  # Zabbix included
        try:
            history = open_history(report, repository)
            past = recent_runs(history)  # read before this run writes its own row
            return _check(
                report, config, repository, history, past, fetched, tracker, deadline_at, backup_file, quick, offsite,
                exposed,
            )  # fmt: skip
        except VerifierError:
            raise  # BackupNotFound and the like: exit codes of their own, before any check ran
        except Exception as error:  # the crash rule; KeyboardInterrupt (SIGTERM too) stays an interrupt
            crash.note_crash(
                report, error, tracker.current, dumping=False, verifying=not quick, sandbox=config.verify.sandbox
            )
            return _finish(
                report, config, repository, history, past, single_file=single_file, quick=quick, step=tracker,
                deadline_at=deadline_at, extra=exposed, crashed=True,
            )  # fmt: skip


def _check(
    report: Report,
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
        report.backup_name = backup.name
        report.manifest = backup.manifest
        source = None
        unreachable: str | None = None
        with Deadline(config.run_timeout) as deadline:
            if not quick:
                try:
                    source = resolve_source(config.source)
                    report.source = source.description
                except VerifierError as error:
                    logger.warning("production not reachable for comparison: %s", error)
                    unreachable = str(error)
            _verify(report, backup, config, source, quick=quick, step=step)
        deadline.blame(report)
        if report.verification is not None and unreachable and report.verification.production_error is None:
            report.verification.production_error = unreachable
    return _finish(
        report, config, repository, history, past, single_file=backup_file is not None or offsite is not None,
        quick=quick, step=step, extra=offsite_results + exposed, deadline_at=deadline_at,
    )  # fmt: skip


def _verify(
    report: Report,
    backup: Backup,
    config: Config,
    source: Source | None,
    *,
    quick: bool,
    step: Step,
    proof: Proof | None = None,
) -> None:
    """Steps 3-4: the integrity of `backup`'s files, then (unless `quick`) its proof: in `proof` when
    the caller holds one (the restore that read along with the dump), else in a proof of its own.
    Recorded in the report."""
    step("integrity")
    try:
        report.integrity = check_integrity(backup, config, read_through=quick)
    except VerifierError as error:
        _note_could_not_run(report, error)
        return
    report.timings["integrity"] = report.integrity.seconds
    if quick or backup.problem is not None:  # a backup whose manifest cannot be trusted is not restored
        return
    try:
        with contextlib.ExitStack() as owned:
            proof = proof or owned.enter_context(Proof(config))
            report.verification = proof.prove(backup, source, step)
    except VerifierError as error:
        report.verification = Verification(
            backup_name=backup.name,
            exact=backup.manifest is not None,
            restored=False,
            sandbox=config.verify.sandbox,
            error=str(error),
        )
        _note_could_not_run(report, error)
    report.timings["restore"] = report.verification.restore_seconds
    report.timings["compare"] = report.verification.compare_seconds


def _finish(
    report: Report,
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
    part is attempted even when another fails. Returns the report."""
    step("checks")
    backups: list[Backup] = []
    last_success: datetime | None = None
    with crash.survived("the checks", crashed):
        backups = repository.backups()  # after retention: what the checks, Zabbix and the HTML report describe
        context = CheckContext(
            config=config,
            now=datetime.now(UTC),
            command=report.command,
            backups=backups,
            single_file=single_file,
            quick=quick,
            dump=report.dump,
            integrity=report.integrity,
            verification=report.verification,
            **past.as_fields(),
            retention=pruned[0] if pruned else None,
            retention_skipped=pruned[1] if pruned and pruned[0] is None else None,
        )
        last_success = context.last_successful_verification
        report.results = run_checks(context) + (extra or [])
    record_run(history, report, finished=False)  # the history row never waits for Zabbix
    if config.zabbix is not None:
        step("zabbix")
        with crash.survived("the Zabbix push", crashed):
            report.results.append(
                push_report(
                    config.zabbix,
                    report,
                    repository,
                    database=_database(report, config),
                    backups=backups,
                    last_success=last_success,
                    deadline=max(deadline_at, time.monotonic() + config.zabbix.timeout),
                )
            )
    report.finished_at = datetime.now(UTC)
    step("report")
    with crash.survived("the HTML report and e-mail", crashed):
        report.results += report_delivery.deliver_html_and_email(
            report, config, repository, history, retention_summary=pruned[1] if pruned else None, backups=backups
        )
    with crash.survived("the JSON report", crashed):
        report_delivery.write_report_file(report.to_dict(), repository.reports_dir / f"{report.run_id}.json")
    record_run(history, report, finished=True)
    return report


def _database(report: Report, config: Config) -> str:
    """Returns the database name the per-table Zabbix items carry."""
    return report.manifest.source.dbname if report.manifest else config.source.dbname or report.source


def _note_could_not_run(report: Report, error: VerifierError) -> None:
    if error.could_not_run:
        report.could_not_run = str(error)
