"""row_counts on plain data: every restored table holds exactly the rows the snapshot counted (or, for a
backup without manifest, is within the drift tolerance of production now). The notes are the ones
verifier/pipeline/compare.py writes (tested in test_compare.py)."""

from __future__ import annotations

from pg_backup_verifier_checks.row_counts import check

from tests.support.check_context import context_with, table, verification
from verifier.report import Status, TableComparison

NO_MANIFEST = (
    "exact comparison impossible: this backup has no manifest, so it was compared with production's current counts"
)


def legacy_table(
    name: str, restored: int, production: int, status: Status = Status.OK, note: str = ""
) -> TableComparison:
    """Returns a table of a backup without manifest: no snapshot count, compared with production now."""
    return TableComparison("public", name, None, restored, production, status, note)


def test_tables_matching_the_snapshot_are_ok() -> None:
    result = check(context_with(verification=verification(table("meals", 1_204_331), table("users", 18_220))))
    assert result is not None and result.status is Status.OK
    assert result.summary == "all 2 tables match the snapshot exactly"
    assert result.details == ()
    assert result.metrics == {"tables": 2, "mismatched": 0}


def test_a_backup_without_manifest_within_tolerance_is_ok_and_says_it_was_not_exact() -> None:
    restored = verification(legacy_table("meals", 1_200, 1_210), legacy_table("users", 18, 18), exact=False)
    result = check(context_with(verification=restored))
    assert result is not None and result.status is Status.OK
    assert result.summary == "all 2 tables within tolerance of production now (no exact comparison)"
    assert result.details == (NO_MANIFEST,)


def test_one_table_differing_from_the_snapshot_is_critical_naming_it() -> None:
    short = table("orders", 10, restored=9, status=Status.CRITICAL, note="restored 9 rows, the snapshot had 10")
    result = check(context_with(verification=verification(table("meals", 5), short)))
    assert result is not None and result.status is Status.CRITICAL
    assert result.summary == "public.orders: restored 9 rows, the snapshot had 10"
    assert result.details == ("public.orders: restored 9 rows, the snapshot had 10",)
    assert result.metrics == {"tables": 2, "mismatched": 1}


def test_several_tables_differing_are_critical_and_counted() -> None:
    short = table("orders", 10, restored=9, status=Status.CRITICAL, note="restored 9 rows, the snapshot had 10")
    gone = table("users", 3, restored=None, status=Status.CRITICAL, note="missing after the restore")
    result = check(context_with(verification=verification(table("meals", 5), short, gone)))
    assert result is not None and result.status is Status.CRITICAL
    assert result.summary == "2 of 3 tables differ from the snapshot: public.orders, public.users"
    assert result.details == (
        "public.orders: restored 9 rows, the snapshot had 10",
        "public.users: missing after the restore",
    )
    assert result.metrics == {"tables": 3, "mismatched": 2}


def test_a_table_empty_in_a_backup_without_manifest_is_critical() -> None:
    empty = legacy_table("orders", 0, 120, Status.CRITICAL, "empty in the backup, production has 120 rows")
    result = check(context_with(verification=verification(empty, legacy_table("meals", 9, 9), exact=False)))
    assert result is not None and result.status is Status.CRITICAL
    assert result.summary == "public.orders: empty in the backup, production has 120 rows"
    assert result.details == ("public.orders: empty in the backup, production has 120 rows", NO_MANIFEST)


def test_differences_beyond_the_tolerance_without_manifest_are_a_warning() -> None:
    grown = legacy_table(
        "meals", 1_000, 1_500, Status.WARNING, "the backup has 1,000 rows, production now 1,500 (+50.0%)"
    )
    dropped = legacy_table("coupons", 9, 9, Status.WARNING, "in the backup, but no longer in production")
    result = check(context_with(verification=verification(grown, dropped, legacy_table("users", 5, 5), exact=False)))
    assert result is not None and result.status is Status.WARNING
    assert result.summary == "2 tables differ from production now beyond the tolerance: public.meals, public.coupons"
    assert result.details == (
        "public.meals: the backup has 1,000 rows, production now 1,500 (+50.0%)",
        "public.coupons: in the backup, but no longer in production",
        NO_MANIFEST,
    )
    assert result.metrics == {"tables": 3, "mismatched": 0}


def test_nothing_restored_or_nothing_counted_says_nothing() -> None:
    assert check(context_with()) is None
    assert check(context_with(verification=verification(restored=False, error="pg_restore failed"))) is None


def test_one_table_beyond_the_tolerance_is_named_in_the_singular() -> None:
    """Bug: "1 table differ from production now beyond the tolerance"."""
    grown = legacy_table(
        "meals", 1_000, 1_500, Status.WARNING, "the backup has 1,000 rows, production now 1,500 (+50.0%)"
    )
    result = check(context_with(verification=verification(grown, exact=False)))
    assert result is not None and result.status is Status.WARNING
    assert result.summary == "1 table differs from production now beyond the tolerance: public.meals"
