"""The history row written during a run (issue 21 point 4): durable, and marked unfinished until the end."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from verifier.pipeline.opening import recent_runs
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


def test_a_physical_proof_is_not_the_logical_backups_last_successful_verification(tmp_path: Path) -> None:
    """A pgBackRest backup proven at 04:00 says nothing of the logical dumps: the stale-verification alarm
    (backup_age, pgbackup.verify.last_success) must not be silenced by it."""
    history = History(tmp_path / "history.sqlite")
    logical = verified_report()
    logical.finished_at = datetime(2026, 12, 7, 3, 31, tzinfo=UTC)
    history.record(logical)
    physical = Report(
        run_id="20261207T040000Z-ef01",
        command="check --physical",
        source="eatfit24",
        started_at=datetime(2026, 12, 7, 4, 0, tzinfo=UTC),
        backup_name="20261207-020001F@0/5060B98",
        verification=Verification("20261207-020001F@0/5060B98", exact=True, restored=True, sandbox="physical"),
    )
    physical.finished_at = datetime(2026, 12, 7, 4, 1, tzinfo=UTC)
    history.record(physical)
    assert history.last_successful_verification() == logical.finished_at
    assert history.verified_backups() == {"eatfit24_2026-12-07_03-30-00Z"}


def test_the_checks_trends_read_runs_of_their_own_kind_of_proof(tmp_path: Path) -> None:
    """duration_trend and its kin compare a restore with restores of its kind: a pgBackRest recovery of
    25 s among dumps restored in 2 s would otherwise read as a slowdown (and the other way round)."""
    history = History(tmp_path / "history.sqlite")
    logical = verified_report()
    logical.finished_at = datetime(2026, 12, 7, 3, 31, tzinfo=UTC)
    history.record(logical)
    physical = Report(
        run_id="20261207T040000Z-ef01", command="run --physical", source="eatfit24",
        started_at=datetime(2026, 12, 7, 4, 0, tzinfo=UTC), backup_name="20261207-020001F@0/5060B98",
    )  # fmt: skip
    history.record(physical)
    assert [run.run_id for run in recent_runs(history).recent_runs] == [logical.run_id]
    assert [run.run_id for run in recent_runs(history, physical=True).recent_runs] == [physical.run_id]
