"""backup_count on plain data: at least `checks.min_count` backups (3 by default), each with a manifest
that can be trusted. The singular and the sizes' units are in test_wording.py."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from pg_backup_verifier_checks.backup_count import check

from tests.support.check_context import backup, context_with
from verifier.report import Status


def test_enough_backups_are_ok_and_a_legacy_one_is_counted_apart(tmp_path: Path) -> None:
    backups = [backup(tmp_path, 2, 1 << 20, None), backup(tmp_path, 1, 2 << 20, {"t": 1}), backup(tmp_path, 0, 0, {})]
    result = check(context_with(backups=backups))
    assert result is not None and result.status is Status.OK
    assert result.summary == "3 backups (1 without manifest), 3.0 MiB"
    assert result.metrics == {"count": 3, "total_bytes": 3 << 20}


def test_fewer_than_the_minimum_is_a_warning() -> None:
    result = check(context_with())
    assert result is not None and result.status is Status.WARNING
    assert result.summary == "0 backups, fewer than 3"
    assert result.metrics == {"count": 0, "total_bytes": 0}


def test_a_manifest_that_cannot_be_trusted_is_a_warning_naming_each(tmp_path: Path) -> None:
    good = [backup(tmp_path, days, 100, {"t": 1}) for days in (3, 2)]
    missing = replace(backup(tmp_path, 1, 100, None), problem="manifest missing")
    unreadable = replace(backup(tmp_path, 0, 100, None), problem="manifest unreadable: not JSON")
    result = check(context_with(backups=[*good, missing, unreadable]))
    assert result is not None and result.status is Status.WARNING
    assert result.summary == "4 backups, 2 of them untrusted: eatfit24_2026-11-25_00-40-00Z: manifest missing"
    assert result.details == ("eatfit24_2026-11-26_00-40-00Z: manifest unreadable: not JSON",)
    assert result.metrics == {"count": 4, "total_bytes": 400}


def test_a_single_backup_file_is_not_a_repository_to_count(tmp_path: Path) -> None:
    assert check(context_with(backups=[backup(tmp_path, 0, 100, None)], single_file=True)) is None
