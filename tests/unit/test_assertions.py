"""User assertions (`verify.assertions`): validated at load with the YAML path named, expectations
compared as text or as numbers, one check result per assertion, never the verdict."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from checks import assertions as assertion_check
from verifier.check_registry import CheckContext, run_checks
from verifier.config import parse_config
from verifier.config_assertions import parse_expectation
from verifier.errors import ConfigError
from verifier.report import AssertionOutcome, Report, Status, Verification, report_from_dict

SOURCE = "source: {dbname: shop}\n"


def problems_of(assertions_yaml: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(SOURCE + "verify:\n  assertions:\n" + assertions_yaml, environment={})
    return str(caught.value)


def test_assertions_load_with_numbers_and_booleans_as_postgresqls_text_forms() -> None:
    config = parse_config(
        SOURCE + "verify:\n  assertions:\n"
        "    - {name: plans, sql: 'SELECT count(*) FROM plans;', expect: '>= 3'}\n"
        "    - {name: admin-exists, sql: 'WITH a AS (SELECT 1) SELECT true', expect: true, timeout: 5s}\n"
        "    - {name: three, sql: 'select 3', expect: 3}\n",
        environment={},
    )
    plans, admin, three = config.verify.assertions
    assert (plans.sql, plans.expect, plans.timeout) == ("SELECT count(*) FROM plans", ">= 3", 60.0)
    assert (admin.expect, admin.timeout) == ("t", 5.0)
    assert three.expect == "3"


def test_a_bad_expect_names_its_yaml_path() -> None:
    message = problems_of("    - {name: plans, sql: 'SELECT 1', expect: '>= three'}\n")
    assert "verify.assertions[0].expect:" in message and "'three' is not a number" in message
    assert "\n" not in message


def test_sql_must_be_one_select() -> None:
    message = problems_of(
        "    - {name: a, sql: 'DELETE FROM plans', expect: '0'}\n"
        "    - {name: b, sql: 'SELECT 1; DROP TABLE plans', expect: '1'}\n"
    )
    assert "verify.assertions[0].sql: expected one SELECT" in message
    assert "verify.assertions[1].sql: expected one statement" in message


def test_names_are_labels_and_unique() -> None:
    assert "verify.assertions[0].name" in problems_of("    - {name: 'two words', sql: 'SELECT 1', expect: '1'}\n")
    message = problems_of(
        "    - {name: plans, sql: 'SELECT 1', expect: '1'}\n    - {name: plans, sql: 'SELECT 2', expect: '2'}\n"
    )
    assert "verify.assertions" in message and "plans used more than once" in message


@pytest.mark.parametrize(
    ("expect", "got", "holds"),
    [
        ("3", "3", True),
        ("3", "3.0", False),  # text: exactly what PostgreSQL shows
        ("t", "t", True),
        (">= 3", "3", True),
        (">= 3", "2", False),
        ("= 0", "0.00", True),  # numbers: numeric(10,2) 0.00 is 0
        ("< 100", "99.5", True),
        ("<> 0", "0", False),
        ("> 0", "abc", False),
        ("= 0", None, False),  # NULL meets no expectation
    ],
)
def test_expectations_compare_as_text_or_numbers(expect: str, got: str | None, holds: bool) -> None:
    assert parse_expectation(expect).holds(got) is holds


def context_with(outcomes: list[AssertionOutcome]) -> CheckContext:
    config = parse_config(SOURCE, environment={})
    verification = Verification(backup_name="b", exact=True, restored=True, sandbox="local", assertions=outcomes)
    return CheckContext(
        config=config, now=datetime.now(UTC), command="check", backups=[], single_file=False, quick=False,
        dump=None, integrity=None, verification=verification,
    )  # fmt: skip


def test_each_assertion_is_its_own_result_naming_got_and_expected() -> None:
    context = context_with(
        [
            AssertionOutcome("plans", passed=True, expected=">= 3", got="4"),
            AssertionOutcome("no_orphans", passed=False, expected="= 0", got="2"),
            AssertionOutcome("slow", passed=False, expected="t", got=None, error="ran longer than its timeout"),
        ]
    )
    results = {result.name: result for result in run_checks(context)}
    assert results["assertion plans"].status is Status.OK
    assert results["assertion no_orphans"].status is Status.CRITICAL
    assert "got '2', expected '= 0'" in results["assertion no_orphans"].summary
    assert results["assertion slow"].status is Status.CRITICAL
    assert "ran longer than its timeout" in results["assertion slow"].summary


def test_no_assertions_give_no_results() -> None:
    assert assertion_check.check(context_with([])) == []


def test_a_failed_assertion_is_not_the_verdict_and_survives_the_stored_report() -> None:
    report = Report(run_id="r", command="check", source="s", started_at=datetime.now(UTC))
    report.verification = context_with([AssertionOutcome("x", passed=False, expected="1", got="2")]).verification
    assert report.verification_passed
    loaded = report_from_dict(report.to_dict())
    assert loaded.verification is not None
    assert loaded.verification.assertions == [AssertionOutcome("x", passed=False, expected="1", got="2")]
