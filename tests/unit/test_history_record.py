"""The history row written during a run (issue 21 point 4): durable, and marked unfinished until the end."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from verifier.report import CheckResult, Report, Status, Verification
from verifier.repository.history import UNFINISHED, History


def verified_report() -> Report:
    return Report(
        run_id="20261207T033000Z-abcd",
        command="run",
        source="eatfit24",
        started_at=datetime(2026, 12, 7, 3, 30, tzinfo=UTC),
        backup_name="eatfit24_2026-12-07_03-30-00Z",
        verification=Verification("eatfit24_2026-12-07_03-30-00Z", exact=True, restored=True, sandbox="local"),
    )


def test_an_unfinished_row_holds_the_verification_and_says_the_run_did_not_finish(tmp_path: Path) -> None:
    history = History(tmp_path / "history.sqlite")
    report = verified_report()
    history.record(report, finished=False)
    [row] = history.runs()
    assert row.verify_ok is True and row.status == "UNKNOWN" and row.exit_code == 3 and row.finished_at is None
    assert history.verified_backups() == {"eatfit24_2026-12-07_03-30-00Z"}
    assert history.report_of(report.run_id)["could_not_run"] == UNFINISHED
    report.results = [CheckResult("restore", Status.OK, "restored")]
    report.finished_at = datetime(2026, 12, 7, 3, 31, tzinfo=UTC)
    history.record(report)
    [row] = history.runs()
    assert row.status == "OK" and row.exit_code == 0 and row.finished_at == report.finished_at
    assert json.loads(json.dumps(history.report_of(report.run_id)))["could_not_run"] is None


def test_commits_sync_the_directory_too(tmp_path: Path) -> None:
    """synchronous=EXTRA: in DELETE journal mode a commit is durable only once the directory that held
    the unlinked journal is synced."""
    history = History(tmp_path / "history.sqlite")
    with history._connect() as connection:
        assert connection.execute("PRAGMA synchronous").fetchone() == (3,)
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("delete",)
