"""dump on plain data: this run's dump (summary, information, metrics), or for `verifier check` the last
one the history recorded. Failed and roles-not-saved dumps are also in test_dump_check.py."""

from __future__ import annotations

from pg_backup_verifier_checks.dump import check

from tests.support.check_context import context_with, dumped, failed_dump, past_run
from verifier.report import Status

SUMMARY = "eatfit24_2026-11-26_00-32-00Z.dump: 46.1 MiB in 41.2 s, 3 tables counted in snapshot 00000003-0000001B-1"


def test_a_complete_dump_is_ok_with_its_size_and_duration() -> None:
    result = check(context_with(dump=dumped(41.2)))
    assert result is not None and result.status is Status.OK
    assert result.summary == SUMMARY
    assert result.details == ()
    assert result.metrics == {"ok": 1, "seconds": 41.2, "size_bytes": 48_312_000}


def test_roles_saved_without_passwords_and_unlogged_rows_from_a_standby_are_information_not_warnings() -> None:
    dump = dumped(41.2, roles_without_passwords=True, unlogged_not_dumped=["public.sessions"])
    result = check(context_with(dump=dump))
    assert result is not None and result.status is Status.OK
    assert result.summary == SUMMARY + "; roles saved without passwords (not a superuser)"
    assert result.details == (
        "dumped from a standby: the rows of unlogged tables are not in the backup (public.sessions)",
    )


def test_what_the_backup_lacks_is_a_warning_with_the_metrics_of_a_dump_that_worked() -> None:
    result = check(context_with(dump=dumped(41.2, warnings=["roles not saved (pg_dumpall --globals-only): denied"])))
    assert result is not None and result.status is Status.WARNING
    assert result.summary == SUMMARY
    assert result.metrics == {"ok": 1, "seconds": 41.2, "size_bytes": 48_312_000}


def test_a_failed_dump_is_critical_with_its_warnings_as_details() -> None:
    result = check(context_with(dump=failed_dump("cannot connect to db.internal:5432", 3.0, warnings=["retried"])))
    assert result is not None and result.status is Status.CRITICAL
    assert result.summary == "dump failed: cannot connect to db.internal:5432"
    assert result.details == ("retried",)
    assert result.metrics == {"ok": 0, "seconds": 3.0}


def test_without_a_dump_in_this_run_the_last_recorded_one_answers() -> None:
    succeeded = check(context_with(last_dump=past_run(1, dump_seconds=40.0)))
    assert succeeded is not None and succeeded.status is Status.OK
    assert succeeded.summary == "last dump at 2026-11-25T00:40+00:00 succeeded"
    assert succeeded.metrics == {"ok": 1}
    failed = check(context_with(last_dump=past_run(1, dump_seconds=2.0, dump_ok=False)))
    assert failed is not None and failed.status is Status.CRITICAL
    assert failed.summary == "last dump at 2026-11-25T00:40+00:00 failed (see `verifier history`)"
    assert failed.metrics == {"ok": 0}


def test_no_dump_ever_or_a_single_backup_file_says_nothing() -> None:
    assert check(context_with()) is None
    assert check(context_with(single_file=True, last_dump=past_run(1, dump_seconds=40.0))) is None
