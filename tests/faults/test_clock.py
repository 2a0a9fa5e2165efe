"""Faults of time: a backup dated in the future, the clock jumping back, and several failed nights in a row
(a fake clock moves the nights; the dumps, restores and comparisons are real)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.faults.conftest import Fault, config, first_backup, result, spooled
from tests.integration.conftest import SourceDatabase
from tests.support.dumps import delete_rows_after_restore
from verifier.pipeline import commands, verify
from verifier.postgres.backup import dump
from verifier.report import Status
from verifier.repository.backups import Repository
from verifier.zabbix import keys


class FakeClock(datetime):
    """`datetime` whose now() is `current`: the nights pass in a second."""

    current = datetime(2026, 3, 1, 3, 30, tzinfo=UTC)

    @classmethod
    def now(cls, tz: Any = None) -> FakeClock:  # type: ignore[override]
        return cls.current.astimezone(tz) if tz else cls.current  # type: ignore[return-value]


def test_18_backup_dated_in_the_future(source_db: SourceDatabase, tmp_path: Path, fault: Fault) -> None:
    repository = tmp_path / "repo"
    configured = first_backup(source_db, repository)
    newest = Repository(repository).newest()
    assert newest is not None and newest.manifest_path is not None
    manifest = json.loads(newest.manifest_path.read_text())
    manifest["created_at"] = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    newest.manifest_path.write_text(json.dumps(manifest))
    fault.inject("a backup dated in the future")
    fault.protect(repository)
    report = commands.check(configured, quick=True)
    age = result(report, "backup_age")
    assert age.status is not Status.OK and "future" in age.summary, age.summary


def test_18_clock_jumps_back(
    source_db: SourceDatabase, tmp_path: Path, fault: Fault, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The night after a backup, the clock is set back a day: the next run keeps every backup (none is
    'older than keep_days' by the wrong clock), says which one is dated in the future, and verifies its own."""
    repository = tmp_path / "repo"
    monkeypatch.setattr(dump, "datetime", FakeClock)
    monkeypatch.setattr(commands, "datetime", FakeClock)
    FakeClock.current = datetime(2026, 3, 1, 3, 30, tzinfo=UTC)
    configured = config(source_db, repository, retention={"keep_days": 0, "keep_min": 1})
    assert commands.run(configured).verification_passed
    fault.protect(repository)
    FakeClock.current -= timedelta(days=1)
    fault.inject("the clock jumps back a day")
    report = commands.run(configured)
    assert report.verification_passed
    retention = result(report, "retention")
    assert retention.status is Status.WARNING and "dated in the future" in retention.summary, retention.summary
    assert len(Repository(repository).backups()) == 2
    assert spooled(repository, keys.VERIFY_STATUS)[-1] == "1"


def test_20_several_failed_nights_in_a_row(
    source_db: SourceDatabase, tmp_path: Path, fault: Fault, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two good nights, then five whose verification fails (rows deleted from the restored copy by the
    test hook): the good backups stay, because failed ones do not count toward keep_min."""
    repository = tmp_path / "repo"
    monkeypatch.setattr(dump, "datetime", FakeClock)
    monkeypatch.setattr(commands, "datetime", FakeClock)
    FakeClock.current = datetime(2026, 3, 1, 3, 30, tzinfo=UTC)
    configured = config(source_db, repository, retention={"keep_days": 2, "keep_min": 3})
    good = []
    for _ in range(2):
        report = commands.run(configured)
        assert report.verification_passed and report.backup_name
        good.append(report.backup_name)
        FakeClock.current += timedelta(days=1)
    fault.protect(repository)
    monkeypatch.setattr(verify, "compare_restored", delete_rows_after_restore("ONLY public.cities"))
    for night in range(5):
        fault.inject(f"failed night {night + 1} of 5")
        report = commands.run(configured)
        assert report.exit_code == 2 and not report.verification_passed
        assert spooled(repository, keys.VERIFY_STATUS)[-1] == "0"
        names = {backup.name for backup in Repository(repository).backups()}
        assert set(good) <= names, f"night {night + 1}: a verified backup was deleted"
        FakeClock.current += timedelta(days=1)
    assert len(Repository(repository).backups()) < 7, "retention deleted none of the old failed backups"
