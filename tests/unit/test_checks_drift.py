"""drift on plain data: has production moved on since the backup? Information for the operator (a
WARNING only with `verify.drift.warn`), never the verdict."""

from __future__ import annotations

from pg_backup_verifier_checks.drift import check

from tests.support.check_context import config, context_with, table, verification
from verifier.report import Status

MEALS_GREW = "production now has 1,500 rows, 500 more than the backup's 1,000"
USERS_EMPTIED = "production now has 0 rows, 18 fewer than the backup's 18"
MEALS = table("meals", 1_000, production_rows=1_500, drifted=True, drift_note=MEALS_GREW)
USERS = table("users", 18, production_rows=0, drifted=True, drift_note=USERS_EMPTIED)


def test_production_within_the_tolerance_is_ok_and_says_how_it_was_measured() -> None:
    within = verification(table("meals", 1_000, production_rows=1_001), production_compared=True)
    exact = check(context_with(verification=within))
    assert exact is not None and exact.status is Status.OK
    assert exact.summary == "production is within the drift tolerance of the backup (exact recount)"
    assert exact.details == ()
    assert exact.metrics == {"tables": 0}
    estimated = check(context_with(verification=verification(production_compared=True, production_estimated=True)))
    assert estimated is not None
    assert estimated.summary == (
        "production is within the drift tolerance of the backup (statistics, small tables recounted)"
    )


def test_tables_that_drifted_are_named_but_stay_ok_by_default() -> None:
    result = check(context_with(verification=verification(MEALS, table("coupons", 5), USERS, production_compared=True)))
    assert result is not None and result.status is Status.OK
    assert result.summary == (
        "production has moved beyond the tolerance in 2 tables since the backup (exact recount): "
        "public.meals, public.users"
    )
    assert result.details == (
        f"public.meals: {MEALS_GREW}",
        f"public.users: {USERS_EMPTIED}",
    )
    assert result.metrics == {"tables": 2}


def test_drift_is_a_warning_when_the_user_asks_for_one() -> None:
    warned = config("verify: {drift: {warn: true}}")
    result = check(context_with(cfg=warned, verification=verification(MEALS, production_compared=True)))
    assert result is not None and result.status is Status.WARNING
    assert result.summary == (
        "production has moved beyond the tolerance in 1 table since the backup (exact recount): public.meals"
    )
    assert result.metrics == {"tables": 1}


def test_production_that_could_not_be_read_is_a_warning_with_the_reason() -> None:
    unread = verification(table("meals", 1_000), production_error="connection refused by db.internal:5432")
    result = check(context_with(verification=unread))
    assert result is not None and result.status is Status.WARNING
    assert result.summary == "production not compared: connection refused by db.internal:5432"
    assert result.metrics == {}


def test_no_drift_without_a_restored_snapshot_or_a_production_to_compare_with() -> None:
    assert check(context_with()) is None
    assert check(context_with(verification=verification(restored=False, production_compared=True))) is None
    assert check(context_with(verification=verification(exact=False, production_compared=True))) is None  # row_counts
    assert check(context_with(verification=verification(table("meals", 1_000)))) is None  # no production configured
