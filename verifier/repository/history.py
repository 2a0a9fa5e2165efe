"""The run history: one row per run in a SQLite file in the repository's state directory.

Checks read it for what a single run cannot know (when the last successful verification was, the
last dump's status); the daemon for catch-up; `verifier history` for people.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from verifier.report import Command, Report

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    command TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    status TEXT NOT NULL,
    exit_code INTEGER NOT NULL,
    backup_name TEXT,
    dump_ok INTEGER,
    dump_seconds REAL,
    verify_ok INTEGER,
    verify_seconds REAL,
    size_bytes INTEGER,
    report_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_started ON runs (started_at);
"""


# what the row of a run that never reached its end says (killed, or the machine went down)
UNFINISHED = "the run did not finish (killed, or the machine stopped): what it recorded before is kept"

# `check --backup FILE` reports on that file only: it never counts as a verification of the source's backups
# the runs that speak of the repository's logical backups: not a file named on the command line, nor a
# physical proof (a pgBackRest backup proven says nothing of the dumps: it must not silence their alarms)
_OF_THE_REPOSITORY = "command NOT IN ({})".format(
    ", ".join(f"'{command}'" for command in (Command.CHECK_FILE, Command.CHECK_PHYSICAL, Command.RUN_PHYSICAL))
)


@dataclass(frozen=True)
class RunRecord:
    """One past run as the history keeps it."""

    run_id: str
    command: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    exit_code: int
    backup_name: str | None
    dump_ok: bool | None
    dump_seconds: float | None
    verify_ok: bool | None
    verify_seconds: float | None
    size_bytes: int | None

    def report(self, history: History) -> dict[str, object]:
        """Returns the full JSON report of this run."""
        return history.report_of(self.run_id)


class History:
    """The SQLite run history at `path` (created on first write)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.unreadable: str | None = None  # set by probe(): then every read is empty and record() raises

    def probe(self) -> str | None:
        """Returns why the history cannot be read (then reads return nothing), or None when it can."""
        if not self.path.exists():
            return None
        try:
            with self._connect() as connection:
                connection.execute("SELECT count(*) FROM runs").fetchone()
        except (OSError, sqlite3.Error) as error:
            self.unreadable = (
                f"the run history {self.path} is unreadable ({error}); move it aside and the next run starts a new one"
            )
        return self.unreadable

    def record(self, report: Report, *, finished: bool = True) -> None:
        """Stores a run, replacing the row an earlier call wrote for it. With `finished` False the row is
        written as a run still going (status UNKNOWN, exit 3, no finish time: what a run killed before its
        end leaves), with everything the run knows so far — its dump and its verification — so that a
        verification is on record before retention deletes anything. Raises sqlite3.Error / OSError."""
        verification = report.verification
        verify_ok = None if verification is None else report.verification_passed
        dump = report.dump
        if self.unreadable:
            raise sqlite3.DatabaseError(self.unreadable)
        with self._connect() as connection:
            connection.execute(
                "INSERT OR REPLACE INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    report.run_id,
                    report.command,
                    report.started_at.isoformat(),
                    report.finished_at.isoformat() if report.finished_at and finished else None,
                    report.status.name if finished else "UNKNOWN",
                    report.exit_code if finished else 3,
                    report.backup_name,
                    None if dump is None else int(dump.ok),
                    None if dump is None else dump.duration_seconds,
                    None if verify_ok is None else int(verify_ok),
                    None if verification is None else verification.duration_seconds,
                    report.manifest.size_bytes if report.manifest else None,
                    json.dumps(_report_json(report, finished)),
                ),
            )

    def runs(self, limit: int | None = None) -> list[RunRecord]:
        """Returns past runs, newest first (at most `limit`)."""
        if self.unreadable or not self.path.exists():
            return []
        query = "SELECT * FROM runs ORDER BY started_at DESC" + (" LIMIT ?" if limit else "")
        with self._connect() as connection:
            rows = connection.execute(query, (limit,) if limit else ()).fetchall()
        return [_record(row) for row in rows]

    def last_successful_verification(self) -> datetime | None:
        """Returns when the newest run that verified one of the repository's backups successfully
        finished, or None (`check --backup` of a file never counts)."""
        return self._latest_time(f"verify_ok = 1 AND {_OF_THE_REPOSITORY}")

    def last_dump(self) -> RunRecord | None:
        """Returns the newest run that attempted a dump, or None."""
        records = self._select("dump_ok IS NOT NULL", 1)
        return records[0] if records else None

    def last_started(self, command: str = "run") -> datetime | None:
        """Returns when the newest run of `command` started (the daemon's catch-up), or None."""
        records = self._select_command(command, 1)
        return records[0].started_at if records else None

    def verifications(self) -> dict[str, RunRecord]:
        """Returns, per backup name, the newest run that verified it (restored and compared)."""
        newest: dict[str, RunRecord] = {}
        for record in reversed(
            self._select(f"verify_ok IS NOT NULL AND backup_name IS NOT NULL AND {_OF_THE_REPOSITORY}", -1)
        ):
            if record.backup_name is not None:
                newest[record.backup_name] = record
        return newest

    def physical_proofs(self) -> list[tuple[RunRecord, str | None]]:
        """Returns the runs that proved a physical backup (`check --physical`, the nightly run's physical
        part), newest first, each with the label of the backup it restored or failed to restore (None when
        it chose none: the instant or the backup tool failed first, or a report stored before labels)."""
        if self.unreadable or not self.path.exists():
            return []
        physical = ", ".join(f"'{command}'" for command in (Command.CHECK_PHYSICAL, Command.RUN_PHYSICAL))
        with self._connect() as connection:
            rows = connection.execute(
                "SELECT *, json_extract(report_json, '$.verification.physical.label') FROM runs "
                f"WHERE command IN ({physical}) ORDER BY started_at DESC"
            ).fetchall()
        return [(_record(row[:-1]), str(row[-1]) if row[-1] else None) for row in rows]

    def verified_backups(self) -> set[str]:
        """Returns the names of the backups whose newest verification passed (what retention protects)."""
        return {name for name, record in self.verifications().items() if record.verify_ok}

    def check_metrics(self, check: str, limit: int) -> list[tuple[datetime, dict[str, object]]]:
        """Returns (start, metrics) of check `check` in the newest `limit` runs that reported it, newest first."""
        if self.unreadable or not self.path.exists():
            return []
        with self._connect() as connection:
            rows = connection.execute(
                "SELECT r.started_at, json_extract(e.value, '$.metrics') FROM runs r, "
                "json_each(r.report_json, '$.results') e WHERE json_extract(e.value, '$.name') = ? "
                "ORDER BY r.started_at DESC LIMIT ?",
                (check, limit),
            ).fetchall()
        return [(datetime.fromisoformat(str(started)), dict(json.loads(metrics or "{}"))) for started, metrics in rows]

    def _select_command(self, command: str, limit: int) -> list[RunRecord]:
        if self.unreadable or not self.path.exists():
            return []
        with self._connect() as connection:
            rows = connection.execute(
                "SELECT * FROM runs WHERE command = ? ORDER BY started_at DESC LIMIT ?", (command, limit)
            ).fetchall()
        return [_record(row) for row in rows]

    def report_of(self, run_id: str) -> dict[str, object]:
        """Returns the stored JSON report of `run_id`. Raises KeyError when unknown."""
        with self._connect() as connection:
            row = connection.execute("SELECT report_json FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            raise KeyError(run_id)
        return dict(json.loads(row[0]))

    def _latest_time(self, condition: str) -> datetime | None:
        records = self._select(condition, 1)
        if not records:
            return None
        return records[0].finished_at or records[0].started_at

    def _select(self, condition: str, limit: int) -> list[RunRecord]:
        if self.unreadable or not self.path.exists():
            return []
        with self._connect() as connection:
            rows = connection.execute(
                f"SELECT * FROM runs WHERE {condition} ORDER BY started_at DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [_record(row) for row in rows]

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with closing(sqlite3.connect(self.path)) as connection:
            # EXTRA: FULL plus a sync of the directory after the journal is unlinked, which is what makes a
            # commit durable in DELETE journal mode: the night's verification is on disk before retention
            connection.execute("PRAGMA synchronous = EXTRA")
            connection.executescript(_SCHEMA)
            with connection:
                yield connection


def _report_json(report: Report, finished: bool) -> dict[str, object]:
    data = report.to_dict()
    if not finished:
        data.update(status="UNKNOWN", exit_code=3, finished_at=None)
        data["could_not_run"] = data["could_not_run"] or UNFINISHED
    return data


def _record(row: tuple[object, ...]) -> RunRecord:
    (
        run_id,
        command,
        started,
        finished,
        status,
        exit_code,
        backup,
        dump_ok,
        dump_seconds,
        verify_ok,
        verify_seconds,
        size,
        _report,
    ) = row
    return RunRecord(
        run_id=str(run_id),
        command=str(command),
        started_at=datetime.fromisoformat(str(started)),
        finished_at=datetime.fromisoformat(str(finished)) if finished else None,
        status=str(status),
        exit_code=int(exit_code),  # type: ignore[call-overload]
        backup_name=str(backup) if backup else None,
        dump_ok=None if dump_ok is None else bool(dump_ok),
        dump_seconds=None if dump_seconds is None else float(dump_seconds),  # type: ignore[arg-type]
        verify_ok=None if verify_ok is None else bool(verify_ok),
        verify_seconds=None if verify_seconds is None else float(verify_seconds),  # type: ignore[arg-type]
        size_bytes=None if size is None else int(size),  # type: ignore[call-overload]
    )
