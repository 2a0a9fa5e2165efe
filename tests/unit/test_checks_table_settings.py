"""The tables' own settings on plain data: the comparison's lines and the check's answers (no database)."""

from __future__ import annotations

from pg_backup_verifier_checks import table_settings as check

from tests.support.check_context import judged, proof_context, restored
from verifier.findings import Findings
from verifier.postgres.evidence.table_settings import differences
from verifier.report import Status, Verification

SNAPSHOT = {"table public.orders": "with (fillfactor=70); replica identity full", "table public.items": "with (x=1)"}


def test_the_same_settings_differ_in_nothing() -> None:
    assert differences(SNAPSHOT, dict(SNAPSHOT)) == []


def test_a_lost_changed_or_new_setting_is_one_line_naming_the_table() -> None:
    restored_settings = {"table public.orders": "with (fillfactor=70)", "table public.new": "with (fillfactor=37)"}
    assert differences(SNAPSHOT, restored_settings) == [
        "table public.items: restored with no settings of its own, expected 'with (x=1)'",
        "table public.new: restored with 'with (fillfactor=37)', expected no settings of its own",
        "table public.orders: restored with 'with (fillfactor=70)', expected "
        "'with (fillfactor=70); replica identity full'",
    ]


def test_settings_restored() -> None:
    found = Findings(compared=2)
    assert judged(check.check(proof_context(restored(table_settings=found)))) == (
        Status.OK,
        "the 2 tables' own settings restored as in the snapshot",
    )


def test_settings_differ_from_the_snapshot() -> None:
    lines = ["table public.orders: restored with no settings of its own, expected 'with (fillfactor=70)'"]
    result = check.check(proof_context(restored(table_settings=Findings(lines, compared=1))))
    assert judged(result) == (Status.CRITICAL, f"1 table differs in settings from the snapshot: {lines[0]}")
    assert result is not None and result.metrics == {"differing": 1}


def test_without_a_manifest_a_difference_from_production_is_a_warning() -> None:
    lines = ["table public.orders: restored with 'with (fillfactor=70)', expected no settings of its own"]
    found = Findings(lines, compared=1, verdict=False)
    result = check.check(proof_context(restored(exact=False, table_settings=found)))
    assert judged(result) == (Status.WARNING, f"1 table differs in settings from production now: {lines[0]}")


def test_an_older_manifest_says_why_nothing_was_compared() -> None:
    found = Findings(not_compared="the backup was made by an older version of the agent")
    assert judged(check.check(proof_context(restored(table_settings=found)))) == (
        Status.OK,
        "table settings not compared: the backup was made by an older version of the agent",
    )


def test_no_table_with_settings_of_its_own_says_nothing() -> None:
    assert check.check(proof_context(restored(table_settings=Findings()))) is None


def test_nothing_restored_says_nothing() -> None:
    failed = Verification("b", exact=True, restored=False, sandbox="local", error="pg_restore failed")
    assert check.check(proof_context(failed)) is None
