"""size_trend on plain data: did the newest backup shrink a lot compared with the previous one? What
test_trends.py already shows (the limit, other formats) is not repeated here."""

from __future__ import annotations

from pathlib import Path

from pg_backup_verifier_checks.size_trend import check

from tests.support.check_context import backup, context_with
from verifier.report import Status

MIB = 1 << 20


def test_a_backup_about_the_size_of_the_previous_one_is_ok(tmp_path: Path) -> None:
    backups = [backup(tmp_path, 2, 50 * MIB, {}), backup(tmp_path, 1, 80 * MIB, {}), backup(tmp_path, 0, 84 * MIB, {})]
    result = check(context_with(backups=backups))
    assert result is not None and result.status is Status.OK
    assert (
        result.summary == "size +5.0% vs the previous backup (84.0 MiB now, 80.0 MiB in eatfit24_2026-11-25_00-40-00Z)"
    )
    assert result.metrics == {"size_bytes": 84 * MIB, "previous_size_bytes": 80 * MIB, "change_percent": 5.0}


def test_a_backup_much_smaller_than_the_previous_one_is_a_warning(tmp_path: Path) -> None:
    result = check(context_with(backups=[backup(tmp_path, 1, 80 * MIB, {}), backup(tmp_path, 0, 20 * MIB, {})]))
    assert result is not None and result.status is Status.WARNING
    assert result.summary == "backup is 75% smaller than the previous one (limit 50%)"
    assert result.details == (
        "20.0 MiB now, 80.0 MiB in eatfit24_2026-11-25_00-40-00Z: was a table truncated or dropped?",
    )
    assert result.metrics == {"size_bytes": 20 * MIB, "previous_size_bytes": 80 * MIB, "change_percent": -75.0}


def test_backups_of_two_formats_are_not_compared(tmp_path: Path) -> None:
    plain = backup(tmp_path, 1, 80 * MIB, None, fmt="plain")
    result = check(context_with(backups=[plain, backup(tmp_path, 0, 10 * MIB, {})]))
    assert result is not None and result.status is Status.OK
    assert result.summary == ("not compared: eatfit24_2026-11-26_00-40-00Z is custom, the previous backup plain")
    assert result.metrics == {"size_bytes": 10 * MIB, "previous_size_bytes": 80 * MIB}


def test_nothing_to_compare_with_says_nothing(tmp_path: Path) -> None:
    assert check(context_with(backups=[backup(tmp_path, 0, 10 * MIB, {})])) is None
    assert check(context_with(backups=[backup(tmp_path, 1, 0, {}), backup(tmp_path, 0, 10 * MIB, {})])) is None
