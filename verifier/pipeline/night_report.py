"""What a night of several databases did (`night.run_night`, `night.check_night`): each database's
part — its report, or why it has none — and the night's summary, one line per database, its JSON and
its exit code, the worst of its databases'."""

from __future__ import annotations

import textwrap
from dataclasses import asdict, dataclass, field
from datetime import datetime, tzinfo
from typing import Any, Literal

from verifier.errors import COULD_NOT_RUN
from verifier.report import CheckResult, Report, Status
from verifier.repository.backups import Backup
from verifier.units import format_age, plural

_FIRST_NAMED = ("dump", "archive", "restore", "row_counts", "schema", "contents")  # the cause, not its echo
SUMMARY_WIDTH = 80  # a terminal's, a journal's: a database's why is wrapped under it in 3 lines at most
NAME_WIDTH = 16  # the names' column: a longer name lengthens its own line, not every line
_INDENT = "    "
Why = Literal["ran", "failed", "vanished", "left out"]


@dataclass(frozen=True)
class DatabaseNight:
    """One database's part of the night: its report (None when its run could not start), why it could
    not (`problem`, with `exit_code`), its newest backup afterwards, and for a database the night did
    not run (`why` "vanished": no longer on the server, "left out": no longer chosen by the config)."""

    name: str
    why: Why
    report: Report | None = None
    newest: Backup | None = None
    backups: int = 0
    problem: str | None = None
    problem_exit_code: int = 2

    @property
    def exit_code(self) -> int:
        """Returns this database's exit code: its report's, a vanished one's WARNING, a problem's own."""
        if self.report is not None:
            return self.report.exit_code
        if self.problem is not None:
            return self.problem_exit_code
        return Status.WARNING.exit_code

    @property
    def verdict(self) -> str:
        """Returns the one word the summary line ends with."""
        if self.why in ("vanished", "left out"):
            return "WARNING: no longer on the server" if self.why == "vanished" else "WARNING: no longer chosen"
        if self.report is None:
            return "FAILED"
        if self.report.could_not_run:
            return "COULD NOT RUN"
        report = self.report
        if report.verification is not None:
            done = "verified" if report.verification_passed else "NOT VERIFIED"
        elif report.dump is not None:  # verifier dump
            done = "dumped" if report.dump.ok else "DUMP FAILED"
        elif report.integrity is not None:  # verifier check --quick
            done = "checksums match" if report.integrity.ok else "DAMAGED"
        else:
            done = "nothing checked"
        return f"{done}, {report.status.name}"

    @property
    def line(self) -> str:
        """Returns the database's one line: the problem that kept it from running, or what the report says."""
        if self.problem is not None:
            return self.problem
        if self.why == "vanished":
            return f"{self.backups} backup(s) kept under retention until they expire"
        if self.why == "left out":
            return f"excluded by source.databases/exclude; {self.backups} backup(s) kept under retention"
        report = self.report
        if report is None:
            return ""
        if report.could_not_run:
            return report.could_not_run
        failing = sorted(
            (result for result in report.every_result if result.status > Status.OK),
            key=lambda result: (-result.status, result.name not in _FIRST_NAMED),
        )  # the worst first, and among the worst the dump and the proof before what follows from them
        return f"{failing[0].name}: {failing[0].summary}" if failing else ""


@dataclass(frozen=True)
class Night:
    """What one night of several databases did."""

    run_id: str
    started_at: datetime
    finished_at: datetime
    databases: list[DatabaseNight]
    sandbox_starts: int = 0
    globals_path: str | None = None
    notes: list[str] = field(default_factory=list)
    could_not_run: str | None = None  # the server could not be listed, the night could not start
    could_not_run_exit_code: int = COULD_NOT_RUN
    deliveries: list[CheckResult] = field(default_factory=list)  # the night's push to Zabbix

    @property
    def exit_code(self) -> int:
        """Returns the worst exit code of the night's databases (and of a night that could not run)."""
        codes = [database.exit_code for database in self.databases]
        if self.could_not_run is not None:
            codes.append(self.could_not_run_exit_code)
        if self.notes:
            codes.append(Status.WARNING.exit_code)
        codes += [delivery.status.exit_code for delivery in self.deliveries]
        return max(codes, default=0)

    def summary_lines(self, zone: tzinfo) -> list[str]:
        """Returns the night's opening lines: one per database (name, newest backup, its age, verdict),
        each not-OK one followed by why, indented; then the notes."""
        width = min(max((len(database.name) for database in self.databases), default=8), NAME_WIDTH)
        lines = []
        if self.could_not_run is not None:
            lines.append(f"could not run: {self.could_not_run}")
        for database in self.databases:
            newest = database.newest
            when = newest.created_at.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z") if newest else "no backup"
            age = format_age(self.finished_at - newest.created_at) if newest else "—"
            lines.append(f"{database.name:<{width}}  {when:<20}  {age:>7}  {database.verdict}")
            if database.exit_code and database.line:
                lines += textwrap.wrap(database.line, SUMMARY_WIDTH, initial_indent=_INDENT,
                                       subsequent_indent=_INDENT, max_lines=3, placeholder=" …")  # fmt: skip
        for note in self.notes:
            lines += textwrap.wrap(f"WARNING: {note}", SUMMARY_WIDTH, subsequent_indent=_INDENT)
        for delivery in self.deliveries:
            lines += textwrap.wrap(f"{delivery.status.name}: {delivery.name}: {delivery.summary}", SUMMARY_WIDTH,
                                   subsequent_indent=_INDENT)  # fmt: skip
        starts = self.sandbox_starts
        sandbox = f"; the sandbox started {starts} {plural(starts, 'time')}" if starts else ""
        count = len(self.databases)
        lines.append(f"{count} {plural(count, 'database')}{sandbox}; exit {self.exit_code}")
        return lines

    def to_dict(self) -> dict[str, Any]:
        """Returns the night as JSON-ready data: a summary per database and each database's report."""
        return {
            "run_id": self.run_id,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
            "exit_code": self.exit_code,
            "could_not_run": self.could_not_run,
            "sandbox_starts": self.sandbox_starts,
            "globals": self.globals_path,
            "notes": self.notes,
            "deliveries": [asdict(delivery) for delivery in self.deliveries],
            "databases": [
                {
                    "name": database.name,
                    "state": database.why,
                    "verdict": database.verdict,
                    "exit_code": database.exit_code,
                    "line": database.line,
                    "newest_backup": database.newest.name if database.newest else None,
                    "newest_backup_at": database.newest.created_at.isoformat() if database.newest else None,
                    "backups": database.backups,
                    "run_id": database.report.run_id if database.report else None,
                    "report": database.report.to_dict() if database.report else None,
                }
                for database in self.databases
            ],
        }
