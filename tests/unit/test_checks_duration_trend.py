"""duration_trend on plain data: did this run's dump or restore take much longer than the median of the
last runs (`checks.trends`: 3x the median of 7, never below 30 s)? test_trends.py reads the same runs
from a real history; here they are plain `past_run`s, newest first."""

from __future__ import annotations

from pg_backup_verifier_checks.duration_trend import check

from tests.support.check_context import context_with, dumped, failed_dump, past_run, verification
from verifier.report import Status

NIGHTS = [past_run(day, dump_seconds=100.0, verify_seconds=60.0) for day in range(1, 6)]


def test_usual_durations_are_ok_and_compared_with_the_median() -> None:
    result = check(
        context_with(dump=dumped(110.0), verification=verification(restore_seconds=66.0), recent_runs=NIGHTS)
    )
    assert result is not None and result.status is Status.OK
    assert result.summary == "dump 1m 50s (1.1x the median 1m 40s), restore 1m 06s (1.1x the median 1m 00s)"
    assert result.metrics == {
        "dump_seconds": 110.0,
        "dump_median_seconds": 100.0,
        "restore_seconds": 66.0,
        "restore_median_seconds": 60.0,
    }


def test_a_restore_much_slower_than_usual_is_a_warning() -> None:
    slow = verification(restore_seconds=200.0, compare_seconds=40.0)  # the restore step: restore and compare
    result = check(context_with(dump=dumped(100.0), verification=slow, recent_runs=NIGHTS))
    assert result is not None and result.status is Status.WARNING
    assert result.summary == "restore took 4m 00s, 4.0x the median 1m 00s of the last 5 runs (limit 3x)"
    assert result.metrics == {
        "dump_seconds": 100.0,
        "dump_median_seconds": 100.0,
        "restore_seconds": 240.0,
        "restore_median_seconds": 60.0,
    }


def test_failed_runs_are_not_part_of_the_median() -> None:
    runs = [past_run(1, dump_seconds=5.0, dump_ok=False), past_run(2, dump_seconds=4.0, dump_ok=False), *NIGHTS]
    result = check(context_with(dump=dumped(100.0), recent_runs=runs))
    assert result is not None and result.status is Status.OK
    assert result.summary == "dump 1m 40s (1.0x the median 1m 40s)"


def test_nothing_measured_or_too_few_runs_to_compare_with_says_nothing() -> None:
    assert check(context_with(recent_runs=NIGHTS)) is None
    assert check(context_with(dump=failed_dump("connection refused"), recent_runs=NIGHTS)) is None
    assert check(context_with(dump=dumped(900.0), recent_runs=NIGHTS[:2])) is None
