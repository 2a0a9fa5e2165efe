"""Check results and the report of one run: what every renderer and target consumes.

Checks return `CheckResult`s and never print; renderers (console, JSON, HTML) and targets
(Zabbix) decide how to show them, as Barman does.
"""

from __future__ import annotations

import enum
from collections.abc import Collection
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import Any, TypeVar

from verifier.errors import COULD_NOT_RUN
from verifier.findings import Findings, findings_from_legacy, legacy_fields
from verifier.manifest import Manifest
from verifier.names import qualified


class Status(enum.IntEnum):
    """A check's verdict; the order is the severity, so `max()` gives the worst."""

    OK = 0
    WARNING = 1
    UNKNOWN = 2
    CRITICAL = 3

    @property
    def exit_code(self) -> int:
        """Returns the process exit code for this status: OK 0, WARNING 1, CRITICAL/UNKNOWN 2."""
        return {Status.OK: 0, Status.WARNING: 1}.get(self, 2)


class Command(enum.StrEnum):
    """What a report is of: the command that made it, as `Report.command` and the history name it."""

    RUN = "run"  # the nightly job: dump and verify
    DUMP = "dump"  # `verifier dump`: a backup without verifying it
    DEMO = "demo"
    CHECK = "check"  # verify the newest backup of the repository
    CHECK_QUICK = "check --quick"  # its files and readability only, no restore
    CHECK_FILE = "check --backup"  # one file named on the command line: says nothing of the repository
    CHECK_OFFSITE = "check --offsite"  # the newest off-site copy
    CHECK_PHYSICAL = "check --physical"  # the newest physical backup recovered to an instant of production
    RUN_PHYSICAL = "run --physical"  # the same, as the nightly run's part (beside the logical dump, or alone)
    PRUNE = "prune"

    @property
    def physical(self) -> bool:
        """Returns True for a physical proof's report (`check --physical`, the nightly run's physical part)."""
        return self in (Command.CHECK_PHYSICAL, Command.RUN_PHYSICAL)

    @classmethod
    def of_check(cls, *, backup_file: bool, quick: bool, offsite: bool) -> Command:
        """Returns the command `verifier check` runs as with these options."""
        if offsite:
            return cls.CHECK_OFFSITE
        return cls.CHECK_FILE if backup_file else cls.CHECK_QUICK if quick else cls.CHECK


Metric = int | float | str


@dataclass(frozen=True)
class CheckResult:
    """The answer to one question about the backups, e.g. 'is the newest backup younger than 36 h?'."""

    name: str
    status: Status
    summary: str
    details: tuple[str, ...] = ()
    metrics: dict[str, Metric] = field(default_factory=dict)


@dataclass(frozen=True)
class TableComparison:
    """One table's row counts: in the dump's snapshot, in the restored copy, in production now."""

    schema: str
    table: str
    snapshot_rows: int | None
    restored_rows: int | None
    production_rows: int | None
    status: Status
    note: str = ""
    drifted: bool = False  # production moved beyond the drift tolerance since the backup (never the verdict)
    drift_note: str = ""

    @property
    def qualified_name(self) -> str:
        """Returns `schema.table` for display, each part quoted as PostgreSQL's quote_ident quotes it."""
        return qualified(self.schema, self.table)

    @property
    def difference(self) -> int | None:
        """Returns restored minus the reference (snapshot, else production), or None if either is unknown."""
        reference = self.snapshot_rows if self.snapshot_rows is not None else self.production_rows
        if reference is None or self.restored_rows is None:
            return None
        return self.restored_rows - reference


@dataclass(frozen=True)
class RestoreIssue:
    """One error the restore reported, attributed to the object being restored when known."""

    object: str
    message: str
    toc_entry: int | None = None  # pg_restore's TOC entry, when it named one
    caused_by: str | None = None  # the earlier failed object this failure follows from


@dataclass(frozen=True)
class AssertionOutcome:
    """One user assertion (`verify.assertions`) run on the restored copy: what it expected and what it got."""

    name: str
    passed: bool
    expected: str
    got: str | None  # the value's text form; None for NULL or when the query failed
    error: str | None = None  # why the query gave no value (an error, the timeout, not one row of one column)
    seconds: float = 0.0


@dataclass(frozen=True)
class PhysicalRestore:
    """What a physical proof restored, or tried to (`Verification.restored` says): the backup tool's backup
    (`label`, e.g. '20261207-122737F', and its `kind`: full, diff or incr), the instant it was recovered to
    (`target`: exact, restore-point or latest as `physical.target` asked; recovery stopped before `lsn`),
    and the repository's WAL window: the archived segments `wal_oldest` to `wal_newest`, recoverable from
    the oldest backup's end (`recoverable_from`) to the newest segment's arrival (`recoverable_to`), each
    None when the repository did not say."""

    label: str
    kind: str
    target: str
    lsn: str
    wal_oldest: str | None = None
    wal_newest: str | None = None
    recoverable_from: datetime | None = None
    recoverable_to: datetime | None = None


@dataclass
class Verification:
    """What proving one backup found. `exact` is False for backups without a manifest (legacy)."""

    backup_name: str
    exact: bool
    restored: bool
    sandbox: str  # where it was restored: the opened sandbox's description, else the configured kind
    tables: list[TableComparison] = field(default_factory=list)
    restore_issues: list[RestoreIssue] = field(default_factory=list)
    error: str | None = None
    notes: list[str] = field(default_factory=list)
    restore_seconds: float = 0.0
    compare_seconds: float = 0.0
    restored_bytes: int | None = None
    production_compared: bool = False
    production_error: str | None = None  # why production now could not be compared (drift unknown)
    production_estimated: bool = False  # production now from the statistics, not an exact recount
    assertions: list[AssertionOutcome] = field(default_factory=list)  # the user's rules: never the verdict
    # what each proof check's evidence found (schema, contents, sequences, large_objects, ...), by check name
    findings: dict[str, Findings] = field(default_factory=dict)
    # a physical backup recovered to an instant (`verifier check --physical`): the instant as
    # `Instant.describe` says it, e.g. "LSN 0/41203C0 (exact)"; None for a logical dump
    instant: str | None = None
    # a physical proof: what the backup tool's repository held, in seconds (full_age, backup_age, archive_lag,
    # window; see pipeline/physical_proof.inventory_measures), each only where known
    inventory: dict[str, int] = field(default_factory=dict)
    # a physical proof that chose a backup: which one (restored, or the one that failed), and the WAL window
    physical: PhysicalRestore | None = None

    def finding(self, name: str) -> Findings:
        """Returns the findings of the check `name`; empty ones (not stored) when it found nothing."""
        return self.findings.get(name) or Findings()

    def findings_of(self, name: str) -> Findings:
        """Returns the findings of the check `name` to record into, stored first when there are none yet."""
        return self.findings.setdefault(name, Findings())

    @property
    def mismatched_tables(self) -> list[TableComparison]:
        """Returns the tables that fail the verdict (CRITICAL); drift never counts here."""
        return [table for table in self.tables if table.status is Status.CRITICAL]

    @property
    def drifted_tables(self) -> list[TableComparison]:
        """Returns the tables production has moved beyond the drift tolerance since the backup."""
        return [table for table in self.tables if table.drifted]

    @property
    def duration_seconds(self) -> float:
        """Returns restore plus compare time."""
        return self.restore_seconds + self.compare_seconds


@dataclass(frozen=True)
class Integrity:
    """Whether a backup's files match their manifest and read to the end. No problems: intact."""

    backup_name: str
    checksummed: bool
    problems: list[str]
    seconds: float
    read_through: bool = True

    @property
    def ok(self) -> bool:
        """Returns True when no problem was found."""
        return not self.problems


@dataclass(frozen=True)
class DumpOutcome:
    """What the dump step did: the manifest on success, the one-line error on failure."""

    ok: bool
    duration_seconds: float
    manifest: Manifest | None = None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class Report:
    """One run: its checks' results, the backup's manifest, the verification, timings. The pipeline
    assembles it from its steps' outcomes (`pipeline.outcomes.build_report`) and never changes it.

    `results` are the checks' (the off-site step's and the exposures' too): every target shows them.
    `deliveries` are what delivering the report did (the Zabbix push, the e-mail), shown after the
    results by the targets rendered after them; they count in the status and exit code like results,
    and the JSON file lists them in `results` after the checks' (as it always did)."""

    run_id: str
    command: str
    source: str
    started_at: datetime
    finished_at: datetime | None = None
    results: list[CheckResult] = field(default_factory=list)
    deliveries: list[CheckResult] = field(default_factory=list)
    manifest: Manifest | None = None
    dump: DumpOutcome | None = None
    verification: Verification | None = None
    integrity: Integrity | None = None
    backup_name: str | None = None
    could_not_run: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    disabled_checks: list[str] = field(default_factory=list)  # `checks.disabled`: no part of the verdict
    traceback: str | None = None  # an unexpected error's traceback (the crash rule: could_not_run says it)

    @property
    def every_result(self) -> list[CheckResult]:
        """Returns the results, then the deliveries: what a target shows as the run's checks."""
        return [*self.results, *self.deliveries]

    @property
    def status(self) -> Status:
        """Returns the worst status among the results and deliveries (OK when there are none)."""
        return max((result.status for result in self.every_result), default=Status.OK)

    @property
    def verification_passed(self) -> bool:
        """Returns True when this run restored its backup, every table matched and the files were intact.

        The one rule behind the history's `verify_ok`, Zabbix's `pgbackup.verify.status`, the HTML
        report and the retention's "newest verified backup".
        """
        return verification_passed(self.verification, self.integrity, self.disabled_checks)

    @property
    def exit_code(self) -> int:
        """Returns the exit code docs/ARCHITECTURE.md "Exit codes" assigns: 3 when a step could not run, else
        the worst status's."""
        return COULD_NOT_RUN if self.could_not_run else self.status.exit_code

    def to_dict(self) -> dict[str, Any]:
        """Returns a JSON-ready dictionary of the whole report."""
        data = asdict(self)
        data["results"] += data.pop("deliveries")
        data["status"] = self.status.name
        data["exit_code"] = self.exit_code
        data["manifest"] = self.manifest.model_dump(mode="json") if self.manifest else None
        if self.dump is not None:
            data["dump"]["manifest"] = None
        if self.verification is not None:  # the fields reports had before findings, for whoever reads them
            data["verification"].update(legacy_fields(self.verification.findings))
        jsonable: dict[str, Any] = _jsonable(data)
        return jsonable


def verification_passed(
    verification: Verification | None, integrity: Integrity | None, disabled: Collection[str] = ()
) -> bool:
    """Returns True when the verdict is "the backup is good": it restored without error and no enabled
    proof check found a failure (see `verdict_failures`). Drift (production now) never takes part."""
    return not verdict_failures(verification, integrity, disabled)


def verdict_failures(
    verification: Verification | None, integrity: Integrity | None, disabled: Collection[str] = ()
) -> list[str]:
    """Returns the proof checks that fail the verdict ("restore" also when nothing was restored), empty
    when the backup is good: the one rule behind the history's `verify_ok`, `pgbackup.verify.status`,
    `last_success`, the HTML report, `list` and retention's "newest verified backup".

    A check named in `disabled` (`checks.disabled`) takes no part: it neither fails the verdict nor
    hides another's failure. The restore itself cannot be switched off: without a restored copy nothing
    was proven.
    """
    if verification is None or not verification.restored or verification.error:
        return ["restore"]
    found = {
        "archive": integrity is not None and not integrity.ok,
        "row_counts": bool(verification.mismatched_tables),  # a report stored before row counts had findings
        **{name: findings.failed for name, findings in verification.findings.items()},
    }
    return [name for name, failed in found.items() if failed and name not in disabled]


def _jsonable(value: Any) -> Any:
    if isinstance(value, Status):
        return value.name
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return value


# Reading a stored report back: the JSON that `Report.to_dict()` wrote (history, reports/). Unknown keys
# are ignored and missing ones take their defaults, so reports written by older versions still load.
_T = TypeVar("_T")


def report_from_dict(data: dict[str, Any]) -> Report:
    """Returns the report stored as `data`: its `results` (the checks' and the deliveries', one list in
    the file) all as results. Raises ValueError when a required field is missing or invalid."""
    try:
        verification = data.get("verification")
        integrity = data.get("integrity")
        dump = data.get("dump")
        manifest = data.get("manifest")
        return Report(
            run_id=str(data["run_id"]),
            command=str(data["command"]),
            source=str(data["source"]),
            started_at=datetime.fromisoformat(data["started_at"]),
            finished_at=datetime.fromisoformat(data["finished_at"]) if data.get("finished_at") else None,
            results=[_result(item) for item in data.get("results", [])],
            manifest=Manifest.model_validate(manifest) if manifest else None,
            dump=_known(DumpOutcome, {**dump, "manifest": None}) if dump else None,
            verification=_verification(verification) if verification else None,
            integrity=_known(Integrity, integrity) if integrity else None,
            backup_name=data.get("backup_name"),
            could_not_run=data.get("could_not_run"),
            timings={str(step): float(seconds) for step, seconds in (data.get("timings") or {}).items()},
            disabled_checks=[str(name) for name in data.get("disabled_checks") or []],
            traceback=data.get("traceback"),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"stored report is not readable: {error}") from None


def _result(item: dict[str, Any]) -> CheckResult:
    return CheckResult(
        name=str(item["name"]),
        status=Status[item["status"]],
        summary=str(item["summary"]),
        details=tuple(item.get("details") or ()),
        metrics=dict(item.get("metrics") or {}),
    )


def _verification(data: dict[str, Any]) -> Verification:
    tables = [_known(TableComparison, {**table, "status": Status[table["status"]]}) for table in data.get("tables", [])]
    issues = [_known(RestoreIssue, issue) for issue in data.get("restore_issues", [])]
    assertions = [_known(AssertionOutcome, outcome) for outcome in data.get("assertions", [])]
    stored = data.get("findings")
    findings = (
        {str(name): _known(Findings, item) for name, item in stored.items()}
        if isinstance(stored, dict)
        else findings_from_legacy(data)  # a report stored before findings: its old fields
    )
    physical = data.get("physical")
    return _known(
        Verification,
        {
            **data,
            "tables": tables,
            "restore_issues": issues,
            "assertions": assertions,
            "findings": findings,
            "physical": _physical_restore(physical) if isinstance(physical, dict) else None,
        },
    )


def _physical_restore(data: dict[str, Any]) -> PhysicalRestore:
    moments = {
        key: datetime.fromisoformat(data[key]) if data.get(key) else None
        for key in ("recoverable_from", "recoverable_to")
    }
    return _known(PhysicalRestore, {**data, **moments})


def _known(cls: type[_T], data: dict[str, Any]) -> _T:
    names = {field.name for field in fields(cls)}  # type: ignore[arg-type]
    return cls(**{key: value for key, value in data.items() if key in names})
