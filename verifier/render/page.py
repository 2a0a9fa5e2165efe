"""What the nightly integrity report shows, besides the run itself: the backups and the recent runs.

The HTML and text renderers take a `ReportPage`; building one needs the repository and the history,
rendering one needs nothing but this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo

from verifier.report import Report, Status, TableComparison, Verification


@dataclass(frozen=True)
class BackupRow:
    """One backup of the repository as the report lists it."""

    name: str
    created_at: datetime
    size_bytes: int
    format: str
    legacy: bool
    verification: Status | None = None
    verified_at: datetime | None = None
    problem: str | None = None  # why its manifest cannot be trusted: what was verified is no longer what lies here

    @property
    def verification_label(self) -> str:
        """Returns "verified", "FAILED", "warning", "not verified" or "untrusted: <why>"."""
        if self.problem is not None:
            return "untrusted: " + self.problem.split(":", 1)[0]
        if self.verification is None:
            return "not verified"
        return {Status.OK: "verified", Status.WARNING: "verified (warning)"}.get(self.verification, "FAILED")


@dataclass(frozen=True)
class RunPoint:
    """One past run, for the charts: when, how it ended, the backup's size and the durations."""

    started_at: datetime
    status: Status
    backup_bytes: int | None = None
    dump_seconds: float | None = None
    verify_seconds: float | None = None


@dataclass(frozen=True)
class ReportPage:
    """Everything the nightly report shows."""

    report: Report
    backups: Sequence[BackupRow] = ()
    runs: Sequence[RunPoint] = ()
    timezone: tzinfo = UTC
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    retention_summary: str | None = None

    def local(self, moment: datetime | None) -> str:
        """Returns `moment` as "YYYY-mm-dd HH:MM TZ" in the report's time zone ("—" for None)."""
        if moment is None:
            return "—"
        return moment.astimezone(self.timezone).strftime("%Y-%m-%d %H:%M %Z")

    def verdict(self) -> str:
        """Returns one sentence a manager can read: is last night's backup good?"""
        report = self.report
        verification = report.verification
        status = report.status
        if report.dump is not None and not report.dump.ok:
            return f"Last night's backup FAILED: {report.dump.error or 'the dump did not complete'}."
        if verification is not None and not verification.restored:
            return f"The backup could not be restored: {verification.error or 'restore failed'}."
        if verification is not None and verification.restored:
            tables = len(verification.tables)
            rows = sum(table.restored_rows or 0 for table in verification.tables)
            wrong, drifted = _wrong_and_drifted(verification)
            how = "exactly matches the snapshot" if verification.exact else "was compared with production now"
            if wrong:
                return (
                    f"The backup {verification.backup_name} restored, but {len(wrong)} of {tables} "
                    "tables do not match: see the highlighted rows."
                )
            sentence = f"The backup {verification.backup_name} restores and {how}: {tables} tables, {rows:,} rows."
            if drifted:
                have = "tables have" if len(drifted) > 1 else "table has"
                sentence += f" {len(drifted)} {have} changed in production since."
            if status is not Status.OK:
                sentence += " " + (_status_causes(report) or "Some checks need attention.")
            return sentence
        causes = _status_causes(report)
        return {
            Status.OK: "All checks passed.",
            Status.WARNING: causes or "Some checks need attention.",
            Status.CRITICAL: "A check failed: the backups need attention now." + (f" {causes}" if causes else ""),
            Status.UNKNOWN: "Some checks could not be answered." + (f" {causes}" if causes else ""),
        }[status]


def _status_causes(report: Report) -> str:
    """Returns the sentence naming the checks that set the report's status ("WARNING from backup_count:
    2 backups, fewer than 3."), or "" when no check result did."""
    worst = [result for result in report.every_result if result.status is report.status]
    if not worst:
        return ""
    names = ", ".join(result.name for result in worst)
    return f"{report.status.name} from {names}: {worst[0].summary.rstrip('.')}."


def _wrong_and_drifted(verification: Verification) -> tuple[list[TableComparison], list[TableComparison]]:
    """Returns (tables the restore got wrong, tables that only moved in production since the backup)."""
    if verification.exact:
        return verification.mismatched_tables, verification.drifted_tables
    drifted = [table for table in verification.tables if table.status is Status.WARNING]
    return verification.mismatched_tables, drifted
