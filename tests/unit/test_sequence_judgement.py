"""Judging restored sequences: the backup is judged against the snapshot, production's own sequence
behind its column is a warning about production (issue 20, point 3). Pure functions, no server."""

from __future__ import annotations

from pg_backup_verifier_checks.sequences import check

from tests.support.check_context import NOW, config
from verifier.check_registry import CheckContext
from verifier.postgres.evidence.sequences import BehindColumn, SequenceState, judge_with_production, judge_with_snapshot
from verifier.report import Status, Verification

USERS_SEQUENCE = SequenceState("public", "users_id_seq", 1, 1, ("public", "users"), "id")
PRODUCTION_LINE = (
    "production's sequence public.users_id_seq gives 1 while public.users.id holds 2: inserts fail there too"
)


def test_a_sequence_restored_as_the_snapshot_held_it_behind_its_column_is_productions_problem() -> None:
    findings = judge_with_snapshot({"public.users_id_seq": 1}, [USERS_SEQUENCE], [BehindColumn(USERS_SEQUENCE, 2)])
    assert findings.problems == []
    assert findings.warnings == [PRODUCTION_LINE]


def test_a_sequence_restored_behind_the_snapshot_fails_the_backup() -> None:
    findings = judge_with_snapshot({"public.users_id_seq": 3}, [USERS_SEQUENCE], [BehindColumn(USERS_SEQUENCE, 2)])
    assert findings.warnings == []
    assert findings.problems == [
        "sequence public.users_id_seq restarts at 1, the snapshot's next value was 3",
        "inserts into public.users would fail after a recovery: sequence public.users_id_seq gives 1, "
        "public.users.id already holds 2",
    ]


def test_a_descending_sequence_is_judged_in_its_direction() -> None:
    descending = SequenceState("public", "down_seq", -5, -1, ("public", "down"), "id")
    findings = judge_with_snapshot({"public.down_seq": -5}, [descending], [BehindColumn(descending, -7)])
    assert findings.problems == [] and len(findings.warnings) == 1
    findings = judge_with_snapshot({"public.down_seq": -9}, [descending], [BehindColumn(descending, -7)])
    assert findings.warnings == [] and "restarts at -5" in findings.problems[0]


def test_a_legacy_dump_behind_its_column_while_production_is_ahead_is_damaged() -> None:
    production = SequenceState("public", "users_id_seq", 3, 1, ("public", "users"), "id")
    findings = judge_with_production(
        [BehindColumn(USERS_SEQUENCE, 2)], {"public.users_id_seq": production}, {"public.users_id_seq": 2}
    )
    assert findings.warnings == []
    assert findings.problems == [
        "inserts into public.users would fail after a recovery: sequence public.users_id_seq gives 1, "
        "public.users.id already holds 2 (production's sequence gives 3)"
    ]


def test_a_legacy_dump_of_a_production_behind_its_column_names_production() -> None:
    findings = judge_with_production(
        [BehindColumn(USERS_SEQUENCE, 2)], {"public.users_id_seq": USERS_SEQUENCE}, {"public.users_id_seq": 2}
    )
    assert findings.problems == [] and findings.warnings == [PRODUCTION_LINE]


def test_names_that_need_quotes_are_quoted_in_the_lines() -> None:
    odd = SequenceState("app.orders", "Archive_id_seq", 1, 1, ("app.orders", "Archive"), "order")
    findings = judge_with_snapshot({'"app.orders"."Archive_id_seq"': 1}, [odd], [BehindColumn(odd, 9)])
    assert findings.warnings == [
        """production's sequence "app.orders"."Archive_id_seq" gives 1 while "app.orders"."Archive"."order" """
        "holds 9: inserts fail there too"
    ]


def test_the_check_warns_about_production_and_fails_only_for_the_backup() -> None:
    verification = Verification("b", exact=True, restored=True, sandbox="local")
    verification.findings_of("sequences").compared = 1
    verification.findings_of("sequences").warnings = [PRODUCTION_LINE]
    result = check(context_with(verification))
    assert result is not None and result.status is Status.WARNING and result.summary == PRODUCTION_LINE
    verification.findings_of("sequences").problems = [
        "sequence public.users_id_seq restarts at 1, the snapshot's next value was 3"
    ]
    result = check(context_with(verification))
    assert result is not None and result.status is Status.CRITICAL
    assert result.details[-1] == PRODUCTION_LINE


def context_with(verification: Verification) -> CheckContext:
    return CheckContext(config(), NOW, "run", [], False, False, None, None, verification)
