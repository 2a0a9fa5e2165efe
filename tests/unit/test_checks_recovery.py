"""recovery on plain data: the RTO (this run's restore) and the RPO (the age of the newest verified
backup's snapshot), each with its trend. test_recovery.py reads the runs from a real history; here they
are plain `past_run`s (newest first) and `recovery_trend` the metrics of past `recovery` results."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from pg_backup_verifier_checks.recovery import check

from tests.support.check_context import NOW, backup, context_with, past_run, table, verification
from verifier.report import Status

DAY = 86400


def test_a_backup_verified_by_this_run_gives_the_rto_and_a_fresh_rpo(tmp_path: Path) -> None:
    tonight = backup(tmp_path, 0.25, 1000, {"users": 1})
    result = check(context_with(backups=[tonight], verification=verification(backup_name=tonight.name)))
    assert result is not None and result.status is Status.OK
    assert result.summary == (
        "RTO 1m 03s (restore of eatfit24_2026-11-25_18-40-00Z); RPO 6h 00m (snapshot of eatfit24_2026-11-25_18-40-00Z)"
    )
    assert result.details == ()
    assert result.metrics == {"rto_seconds": 63.0, "rpo_seconds": 6 * 3600}


def test_without_a_restore_in_this_run_the_rpo_comes_from_the_runs_before(tmp_path: Path) -> None:
    verified, unverified = backup(tmp_path, 1, 1000, {"users": 1}), backup(tmp_path, 0.25, 1000, {"users": 1})
    runs = [past_run(1, verify_seconds=60.0, backup_name=verified.name)]
    result = check(context_with(backups=[verified, unverified], recent_runs=runs))
    assert result is not None and result.status is Status.OK
    assert result.summary == "RPO 24h 00m (snapshot of eatfit24_2026-11-25_00-40-00Z)"
    assert result.metrics == {"rpo_seconds": DAY}


def test_an_rpo_over_the_maximum_age_is_a_warning(tmp_path: Path) -> None:
    old = backup(tmp_path, 2, 1000, {"users": 1})
    result = check(context_with(backups=[old], recent_runs=[past_run(2, verify_seconds=60.0, backup_name=old.name)]))
    assert result is not None and result.status is Status.WARNING
    assert result.summary == "RPO 48h 00m (snapshot of eatfit24_2026-11-24_00-40-00Z), over 36 h"
    assert result.metrics == {"rpo_seconds": 2 * DAY}


def test_only_the_newest_verdict_of_each_backup_and_only_the_repositorys_runs_count(tmp_path: Path) -> None:
    older, newer = backup(tmp_path, 2, 1000, {"users": 1}), backup(tmp_path, 1, 1000, {"users": 1})
    runs = [
        past_run(0.5, verify_seconds=60.0, backup_name=newer.name, command="check --backup"),  # a file, not the repo
        past_run(1, verify_seconds=60.0, verify_ok=False, backup_name=newer.name),  # re-verified: now it fails
        past_run(1.5, verify_seconds=60.0, backup_name=newer.name),
        past_run(2, verify_seconds=60.0, backup_name=older.name),
    ]
    result = check(context_with(backups=[older, newer], recent_runs=runs))
    assert result is not None
    assert result.summary == "RPO 48h 00m (snapshot of eatfit24_2026-11-24_00-40-00Z), over 36 h"


def test_no_verified_backup_is_a_warning_with_the_rto_of_a_restore_that_failed_its_proof(tmp_path: Path) -> None:
    tonight = backup(tmp_path, 0.25, 1000, {"users": 1})
    short = table("users", 1, restored=0, status=Status.CRITICAL, note="restored 0 rows, the snapshot had 1")
    failed = verification(short, backup_name=tonight.name)
    result = check(context_with(backups=[tonight], verification=failed))
    assert result is not None and result.status is Status.WARNING
    assert result.summary == (
        "RTO 1m 03s (restore of eatfit24_2026-11-25_18-40-00Z); "
        "RPO unknown: no backup in the repository has been verified"
    )
    assert result.metrics == {"rto_seconds": 63.0}


def test_the_trend_lines_give_min_median_max_and_the_last_ten_values_oldest_first(tmp_path: Path) -> None:
    tonight = backup(tmp_path, 0.25, 1000, {"users": 1})
    # twelve earlier nights, newest first as the history gives them: RTO 51 s yesterday ... 62 s twelve days ago
    trend = [(NOW - timedelta(days=day), {"rto_seconds": 50.0 + day, "rpo_seconds": 3600}) for day in range(1, 13)]
    ctx = context_with(backups=[tonight], verification=verification(backup_name=tonight.name), recovery_trend=trend)
    result = check(ctx)
    assert result is not None and result.status is Status.OK
    assert result.details == (
        "RTO over the last 13 runs: min 51.0 s, median 57.0 s, max 1m 03s; "
        "59.0 s → 58.0 s → 57.0 s → 56.0 s → 55.0 s → 54.0 s → 53.0 s → 52.0 s → 51.0 s → 1m 03s (last 10)",
        "RPO over the last 13 runs: min 1h 00m, median 1h 00m, max 6h 00m; "
        "1h 00m → 1h 00m → 1h 00m → 1h 00m → 1h 00m → 1h 00m → 1h 00m → 1h 00m → 1h 00m → 6h 00m (last 10)",
    )


def test_a_single_backup_file_says_nothing(tmp_path: Path) -> None:
    assert check(context_with(backups=[backup(tmp_path, 0, 1000, None)], single_file=True)) is None
