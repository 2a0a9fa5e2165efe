"""assertions on plain data: one result per user assertion (`verify.assertions`) run on the restored
copy, named `assertion NAME`. Loading and comparing expectations are in test_assertions.py."""

from __future__ import annotations

from pg_backup_verifier_checks.assertions import check

from tests.support.check_context import context_with, verification
from verifier.report import AssertionOutcome, Status


def results_of(*outcomes: AssertionOutcome) -> dict[str, tuple[Status, str, dict[str, int | float | str]]]:
    results = check(context_with(verification=verification(assertions=list(outcomes))))
    return {result.name: (result.status, result.summary, result.metrics) for result in results}


def test_an_assertion_that_holds_is_ok_with_what_it_got() -> None:
    assert results_of(AssertionOutcome("plans", passed=True, expected=">= 3", got="4", seconds=0.02)) == {
        "assertion plans": (
            Status.OK,
            "holds on the restored copy: got '4' (expected '>= 3')",
            {"assertion": "plans", "seconds": 0.02},
        )
    }


def test_an_assertion_that_fails_is_critical_with_what_it_got_and_expected() -> None:
    results = results_of(
        AssertionOutcome("no_orphans", passed=False, expected="= 0", got="2", seconds=0.1),
        AssertionOutcome("admin_exists", passed=False, expected="t", got=None),
    )
    assert results == {
        "assertion no_orphans": (
            Status.CRITICAL,
            "failed on the restored copy: got '2', expected '= 0'",
            {"assertion": "no_orphans", "seconds": 0.1},
        ),
        "assertion admin_exists": (
            Status.CRITICAL,
            "failed on the restored copy: got NULL, expected 't'",
            {"assertion": "admin_exists", "seconds": 0.0},
        ),
    }


def test_an_assertion_whose_query_failed_is_critical_with_the_reason() -> None:
    failed = AssertionOutcome(
        "slow", passed=False, expected="t", got=None, error="ran longer than its timeout (5 s)", seconds=5.0
    )
    assert results_of(failed) == {
        "assertion slow": (
            Status.CRITICAL,
            "failed on the restored copy: ran longer than its timeout (5 s) (expected 't')",
            {"assertion": "slow", "seconds": 5.0},
        )
    }


def test_no_assertion_or_no_restore_gives_no_result() -> None:
    assert results_of() == {}
    assert check(context_with()) == []
