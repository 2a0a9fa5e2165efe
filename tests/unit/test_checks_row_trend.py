"""row_trend on plain data: did a table lose many rows between the two newest backups with a manifest?
The tolerances (20 % and 10 rows by default) and a vanished table are in test_trends.py."""

from __future__ import annotations

from pathlib import Path

from pg_backup_verifier_checks.row_trend import check

from tests.support.check_context import backup, config, context_with
from verifier.report import Status


def test_tables_that_grew_or_lost_little_are_ok(tmp_path: Path) -> None:
    before = backup(tmp_path, 1, 1, {"meals": 1_000, "users": 100, "tiny": 8})
    after = backup(tmp_path, 0, 1, {"meals": 1_200, "users": 81, "tiny": 0, "new": 3})
    result = check(context_with(backups=[before, after]))
    assert result is not None and result.status is Status.OK
    assert result.summary == "no table lost more than 20% of its rows since eatfit24_2026-11-25_00-40-00Z"
    assert result.details == ()
    assert result.metrics == {"tables_compared": 3, "tables_dropped": 0}


def test_tables_that_lost_rows_are_a_warning_biggest_loss_first(tmp_path: Path) -> None:
    before = backup(tmp_path, 1, 1, {"meals": 1_000, "users": 100, "orders": 50})
    after = backup(tmp_path, 0, 1, {"meals": 500, "users": 10, "orders": 50})
    result = check(context_with(backups=[before, after]))
    assert result is not None and result.status is Status.WARNING
    assert result.summary == (
        "2 table(s) lost more than 20% of their rows since eatfit24_2026-11-25_00-40-00Z: public.users, public.meals"
    )
    assert result.details == ("public.users: 100 → 10 rows (-90%)", "public.meals: 1,000 → 500 rows (-50%)")
    assert result.metrics == {"tables_compared": 3, "tables_dropped": 2}


def test_the_summary_names_ten_tables_and_counts_the_others(tmp_path: Path) -> None:
    names = [f"t{number:02d}" for number in range(12)]
    before = backup(tmp_path, 1, 1, dict.fromkeys(names, 100))
    after = backup(tmp_path, 0, 1, dict.fromkeys(names, 0))
    result = check(context_with(backups=[before, after]))
    assert result is not None and result.status is Status.WARNING
    assert result.summary == (
        "12 table(s) lost more than 20% of their rows since eatfit24_2026-11-25_00-40-00Z: public.t00, public.t01, "
        "public.t02, public.t03, public.t04, public.t05, public.t06, public.t07, public.t08, public.t09 and 2 more"
    )
    assert len(result.details) == 12


def test_fewer_than_two_backups_with_a_manifest_or_a_single_file_say_nothing(tmp_path: Path) -> None:
    with_counts, legacy = backup(tmp_path, 1, 1, {"meals": 1_000}), backup(tmp_path, 0, 1, None)
    assert check(context_with(backups=[with_counts, legacy])) is None
    emptied = backup(tmp_path, 0, 1, {"meals": 0})
    assert check(context_with(backups=[with_counts, emptied], single_file=True)) is None


def test_an_empty_table_that_vanished_lost_no_rows_even_with_no_minimum(tmp_path: Path) -> None:
    before = backup(tmp_path, 1, 1, {"meals": 1_000, "scratch": 0})
    after = backup(tmp_path, 0, 1, {"meals": 1_000})
    result = check(context_with(cfg=config("checks: {trends: {row_drop_min_rows: 0}}"), backups=[before, after]))
    assert result is not None and result.status is Status.OK, result
    assert result.summary == "no table lost more than 20% of its rows since eatfit24_2026-11-25_00-40-00Z"
