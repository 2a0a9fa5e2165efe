"""backup_age on plain data: is the newest backup, and the newest successful verification, younger than
`checks.max_age_hours` (36 h by default)? One test per answer the check can give."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from pg_backup_verifier_checks.backup_age import check

from tests.support.check_context import NOW, backup, config, context_with, verification
from verifier.report import Status
from verifier.repository.backups import Backup

VERIFIED_NOW = int(NOW.timestamp())


def taken(tmp_path: Path, hours_ago: int) -> Backup:
    """Returns a backup with a manifest, taken `hours_ago` before NOW (negative: dated in the future)."""
    return backup(tmp_path, hours_ago / 24, size=1000, counts={"users": 1})


def test_a_fresh_backup_verified_in_this_run_is_ok(tmp_path: Path) -> None:
    backups = [taken(tmp_path, 30), taken(tmp_path, 6)]
    result = check(context_with(backups=backups, verification=verification()))
    assert result is not None and result.status is Status.OK
    assert result.summary == "newest backup 6h00m old, verified just now"
    assert result.metrics == {"age_seconds": 6 * 3600, "last_verified": VERIFIED_NOW}


def test_a_failed_verification_falls_back_on_the_last_successful_one(tmp_path: Path) -> None:
    failed = verification(restored=False, error="pg_restore failed")
    earlier = NOW - timedelta(hours=3)
    ctx = context_with(backups=[taken(tmp_path, 6)], verification=failed, last_successful_verification=earlier)
    result = check(ctx)
    assert result is not None and result.status is Status.OK
    assert result.summary == "newest backup 6h00m old, verified 3h00m ago"
    assert result.metrics == {"age_seconds": 6 * 3600, "last_verified": int(earlier.timestamp())}


def test_an_empty_repository_is_critical() -> None:
    result = check(context_with())
    assert result is not None and result.status is Status.CRITICAL
    assert result.summary == "no backup in /var/backups/pg-backup-verifier"
    assert result.metrics == {}


def test_backups_dated_in_the_future_do_not_count_as_fresh(tmp_path: Path) -> None:
    result = check(context_with(backups=[taken(tmp_path, -48)]))
    assert result is not None and result.status is Status.CRITICAL
    assert result.summary == (
        "no backup in /var/backups/pg-backup-verifier; 1 dated in the future (a wrong clock?), not counted"
    )


def test_a_newest_backup_older_than_the_limit_is_critical(tmp_path: Path) -> None:
    old = taken(tmp_path, 42)
    result = check(context_with(backups=[old], verification=verification()))
    assert result is not None and result.status is Status.CRITICAL
    assert result.summary == "newest backup eatfit24_2026-11-24_06-40-00Z is 42h00m old (limit 36h00m)"
    assert result.metrics == {"age_seconds": 42 * 3600, "last_verified": VERIFIED_NOW}
    lenient = check(context_with(cfg=config("checks: {max_age_hours: 48}"), backups=[old], verification=verification()))
    assert lenient is not None and lenient.status is Status.OK


def test_a_backup_never_verified_is_critical(tmp_path: Path) -> None:
    result = check(context_with(backups=[taken(tmp_path, 6)]))
    assert result is not None and result.status is Status.CRITICAL
    assert result.summary == "no backup has ever been verified"
    assert result.metrics == {"age_seconds": 6 * 3600}


def test_a_last_verification_older_than_the_limit_is_critical(tmp_path: Path) -> None:
    ctx = context_with(backups=[taken(tmp_path, 6)], last_successful_verification=NOW - timedelta(days=2))
    result = check(ctx)
    assert result is not None and result.status is Status.CRITICAL
    assert result.summary == "no successful verification for 48h00m (limit 36h00m)"
    assert result.metrics["last_verified"] == int((NOW - timedelta(days=2)).timestamp())


def test_a_backup_from_the_future_beside_a_fresh_one_is_a_warning(tmp_path: Path) -> None:
    backups = [taken(tmp_path, 6), taken(tmp_path, -48)]
    result = check(context_with(backups=backups, verification=verification()))
    assert result is not None and result.status is Status.WARNING
    assert result.summary == (
        "backup eatfit24_2026-11-28_00-40-00Z is dated 48h00m in the future (a wrong clock?) "
        "and is not counted as fresh"
    )
    assert result.metrics == {"age_seconds": 6 * 3600, "last_verified": VERIFIED_NOW}


def test_a_problem_and_a_future_backup_are_both_named_and_critical(tmp_path: Path) -> None:
    backups = [taken(tmp_path, 6), taken(tmp_path, -48)]
    result = check(context_with(backups=backups))
    assert result is not None and result.status is Status.CRITICAL
    assert result.summary == (
        "no backup has ever been verified; backup eatfit24_2026-11-28_00-40-00Z is dated 48h00m in the future "
        "(a wrong clock?) and is not counted as fresh"
    )


def test_a_single_backup_file_has_no_age_to_check(tmp_path: Path) -> None:
    assert check(context_with(backups=[taken(tmp_path, 72)], single_file=True)) is None


def test_a_backup_a_few_minutes_ahead_of_the_clock_is_zero_seconds_old(tmp_path: Path) -> None:
    """Bug: a newest backup dated within the 5-minute tolerance ahead of the clock (another host's clock)
    was "newest backup from the future old"; its age is counted as 0, as the metric already does."""
    ahead = backup(tmp_path, -2 / 1440, size=1000, counts={"users": 1})  # two minutes ahead
    result = check(context_with(backups=[ahead], verification=verification()))
    assert result is not None and result.status is Status.OK
    assert result.summary == "newest backup 0s old, verified just now"
    assert result.metrics == {"age_seconds": 0, "last_verified": VERIFIED_NOW}
