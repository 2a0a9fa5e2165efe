"""What the steps of a run hand back, and the one place a `Report` is assembled from them.

Each step returns a frozen outcome; `Outcomes` keeps the ones that finished (so a run that crashes
half-way still reports what it did), and `build_report` makes the report from them. Nothing writes
into a report afterwards: what used to be rewritten later (the deadline's blame, a crash, the
delivery results) is an input of `build_report`.

A report's `results` are the checks' (with the off-site step's and the exposures'): the one set every
target shows. Its `deliveries` are what delivering it did (the Zabbix push, the e-mail), in the order
they happened: each target shows the deliveries made before it was rendered (Zabbix none, the HTML
file and the e-mail the Zabbix push, the console and the JSON file all of them).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from verifier.config import Config
from verifier.manifest import Manifest
from verifier.report import CheckResult, Command, DumpOutcome, Integrity, Report, Verification

TIMING_ORDER = ("dump", "sandbox", "integrity", "restore", "compare", "teardown")


@dataclass(frozen=True)
class RunStart:
    """A run as it starts: its id, command, what it is of and when."""

    run_id: str
    command: str
    source: str  # the config's label of the source until production is resolved
    started_at: datetime
    disabled_checks: tuple[str, ...] = ()


@dataclass(frozen=True)
class Dumped:
    """Steps 2-3: the dump's outcome and the could-not-run line of an error that kept it from running."""

    outcome: DumpOutcome
    could_not_run: str | None = None

    @property
    def manifest(self) -> Manifest | None:
        """Returns the manifest the dump wrote (None when it failed)."""
        return self.outcome.manifest


@dataclass(frozen=True)
class Checked:
    """Step 3 for one backup: its files' integrity (None when it could not be checked), and the
    could-not-run line of an error that kept it from being checked."""

    integrity: Integrity | None
    could_not_run: str | None = None


@dataclass(frozen=True)
class Proven:
    """Step 4 for one backup: its verification (restored and compared, or why not), and the
    could-not-run line of an error that kept it from running. The verification, a builder filled
    inside the step, is not changed after the step returned it."""

    verification: Verification
    could_not_run: str | None = None


@dataclass(frozen=True)
class Crashed:
    """An unexpected exception (see `crash`): its one line and traceback, and whether it cut short the
    dump (`dumping`) or the verification (`verifying`, `sandbox` the configured kind)."""

    line: str
    traceback: str
    dumping: bool
    verifying: bool
    sandbox: str


@dataclass
class Outcomes:
    """The outcomes of the steps that finished so far in one run, in the order the report needs them.
    Each step's outcome is set once, by the step's caller."""

    start: RunStart
    history_problem: str | None = None  # the history cannot be read: could not run
    dumped: Dumped | None = None
    backup: tuple[str, Manifest | None] | None = None  # the backup checked (name, manifest), by `check`
    source: str | None = None  # production's description, once resolved (set as soon as it is)
    checked: Checked | None = None
    proven: Proven | None = None
    step_timings: dict[str, float] = field(default_factory=dict)  # the sandbox's start, its teardown
    timed_out: str | None = None  # the deadline's message when it ended a step
    crashed: Crashed | None = None

    @property
    def backup_name(self) -> str | None:
        """Returns the name of the backup this run made or checked (None: none)."""
        if self.backup is not None:
            return self.backup[0]
        dumped = self.dumped
        return dumped.manifest.name if dumped is not None and dumped.manifest is not None else None

    @property
    def manifest(self) -> Manifest | None:
        """Returns the manifest of the backup this run made or checked."""
        if self.backup is not None:
            return self.backup[1]
        return self.dumped.manifest if self.dumped is not None else None


def start_run(config: Config, command: Command) -> RunStart:
    """Returns the start of a run of `command` now, its id made of the time and 4 random hex digits."""
    started = datetime.now(UTC)
    run_id = f"{started.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(2)}"
    label = config.source.dbname or ""
    if config.source.docker is not None:
        docker = config.source.docker
        where = docker.container or f"{docker.compose_project}/{docker.service}"
        label = f"container {where}" + (f", database {label}" if label else "")
    elif config.source.host:
        label = f"{config.source.host}:{config.source.port}/{label}"
    return RunStart(run_id, str(command), label, started, tuple(config.checks.disabled))


def build_report(
    outcomes: Outcomes,
    *,
    results: Sequence[CheckResult] = (),
    deliveries: Sequence[CheckResult] = (),
    finished_at: datetime | None = None,
) -> Report:
    """Returns the report of the run so far: its steps' `outcomes`, the checks' `results` and the
    `deliveries` made. The deadline's blame goes to the step it ended (the verification, else a failed
    dump); a crash is the run's could-not-run line and fails the dump or verification it cut short."""
    start, dumped, checked, proven = outcomes.start, outcomes.dumped, outcomes.checked, outcomes.proven
    crashed = outcomes.crashed
    dump = dumped.outcome if dumped is not None else None
    integrity = checked.integrity if checked is not None else None
    verification = proven.verification if proven is not None else None
    if outcomes.timed_out is not None:
        if verification is not None:
            verification = replace(verification, error=outcomes.timed_out)
        elif dump is not None and not dump.ok:
            dump = replace(dump, error=outcomes.timed_out)
    could_not_run = next(
        (
            line
            for line in (
                crashed.line if crashed is not None else None,
                proven.could_not_run if proven is not None else None,
                checked.could_not_run if checked is not None else None,
                dumped.could_not_run if dumped is not None else None,
                outcomes.history_problem,
            )
            if line is not None
        ),
        None,
    )
    backup_name, manifest = outcomes.backup_name, outcomes.manifest
    if crashed is not None:
        if crashed.dumping and dump is None:
            dump = DumpOutcome(ok=False, duration_seconds=0.0, error=crashed.line)
        if crashed.verifying and verification is None and backup_name is not None:
            verification = Verification(
                backup_name=backup_name,
                exact=manifest is not None,
                restored=False,
                sandbox=crashed.sandbox,
                error=crashed.line,
            )
    timings = dict(outcomes.step_timings)
    if dumped is not None:
        timings["dump"] = dumped.outcome.duration_seconds
    if integrity is not None:
        timings["integrity"] = integrity.seconds
    if proven is not None:
        timings["restore"] = proven.verification.restore_seconds
        timings["compare"] = proven.verification.compare_seconds
    return Report(
        run_id=start.run_id,
        command=start.command,
        source=outcomes.source or start.source,
        started_at=start.started_at,
        finished_at=finished_at,
        results=list(results),
        deliveries=list(deliveries),
        manifest=manifest,
        dump=dump,
        verification=verification,
        integrity=integrity,
        backup_name=backup_name,
        could_not_run=could_not_run,
        timings={name: timings[name] for name in TIMING_ORDER if name in timings},
        disabled_checks=list(start.disabled_checks),
        traceback=crashed.traceback if crashed is not None else None,
    )
