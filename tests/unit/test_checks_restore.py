"""restore on plain data: did the backup restore into the sandbox without errors? The issues are what
`parse_pg_restore_errors` makes of pg_restore's stderr (tests/unit/test_restore_parsing.py)."""

from __future__ import annotations

from pg_backup_verifier_checks.restore import check

from tests.support.check_context import context_with, verification
from verifier.report import RestoreIssue, Status

TABLE = RestoreIssue("TABLE orders", 'relation "orders" already exists', 217)
ITS_DATA = RestoreIssue("TABLE DATA orders", 'relation "public.orders" does not exist', 3001, "TABLE orders")
ITS_KEY = RestoreIssue("CONSTRAINT orders orders_pkey", 'relation "public.orders" does not exist', 3010, "TABLE orders")
OTHER = RestoreIssue("INDEX meals_day ON public.meals", 'column "day" does not exist', 3020)
NEEDS_A_FOREIGN_SERVER = RestoreIssue(
    "MATERIALIZED VIEW DATA public.rates", 'could not connect to server "billing"', 3050
)  # the materialized_views check names it; the backup is not at fault


def test_a_clean_restore_is_ok_with_its_sandbox_and_duration() -> None:
    result = check(context_with(verification=verification(restore_seconds=63.0)))
    assert result is not None and result.status is Status.OK
    assert result.summary == "restored into local in 1m 03s"
    assert result.details == ()
    assert result.metrics == {"seconds": 63.0}


def test_a_refresh_that_needs_a_server_outside_the_sandbox_is_not_a_failure() -> None:
    result = check(context_with(verification=verification(restore_issues=[NEEDS_A_FOREIGN_SERVER])))
    assert result is not None and result.status is Status.OK
    assert result.summary == (
        "restored into local in 1m 03s (1 materialized view(s) need a server outside the sandbox)"
    )


def test_one_failed_object_is_critical_naming_it() -> None:
    result = check(context_with(verification=verification(restore_issues=[TABLE, NEEDS_A_FOREIGN_SERVER])))
    assert result is not None and result.status is Status.CRITICAL
    assert result.summary == 'restore failed in TABLE orders (TOC 217): relation "orders" already exists'
    assert result.metrics == {"seconds": 63.0, "failed_objects": 1}


def test_failures_that_follow_from_an_earlier_one_are_grouped_under_it() -> None:
    restored = verification(restored=False, restore_issues=[TABLE, ITS_DATA, ITS_KEY, OTHER])
    result = check(context_with(verification=restored))
    assert result is not None and result.status is Status.CRITICAL
    assert result.summary == (
        '4 objects failed to restore (2 causes), first TABLE orders (TOC 217): relation "orders" already exists'
    )
    assert result.details == (
        'TABLE orders (TOC 217): relation "orders" already exists',
        '  ↳ TABLE DATA orders (TOC 3001): relation "public.orders" does not exist',
        '  ↳ CONSTRAINT orders orders_pkey (TOC 3010): relation "public.orders" does not exist',
        'INDEX meals_day ON public.meals (TOC 3020): column "day" does not exist',
    )
    assert result.metrics == {"seconds": 63.0, "failed_objects": 4}


def test_a_restore_that_could_not_start_is_critical_with_its_reason() -> None:
    failed = verification(restored=False, restore_seconds=0.0, error="sandbox disk full (2.0 GiB free)")
    result = check(context_with(verification=failed))
    assert result is not None and result.status is Status.CRITICAL
    assert result.summary == "restore not possible: sandbox disk full (2.0 GiB free)"
    assert result.metrics == {"seconds": 0.0}


def test_no_restore_under_quick_says_nothing() -> None:
    assert check(context_with()) is None


def test_an_error_after_the_restore_is_critical_even_when_only_a_view_needing_a_foreign_server_failed() -> None:
    """Bug: the verification ended with an error (here the run's deadline, during the compare), the verdict
    fails ("restore"), yet the restore check said OK because its only issue was an unverifiable REFRESH:
    every check OK, exit 0, for a backup that was not verified."""
    ended = verification(restore_issues=[NEEDS_A_FOREIGN_SERVER], error="the run exceeded its deadline of 4h 00m")
    result = check(context_with(verification=ended))
    assert result is not None and result.status is Status.CRITICAL
    assert "the run exceeded its deadline of 4h 00m" in result.summary
