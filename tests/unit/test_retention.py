"""Retention on a fake repository: real files in a temp directory, chosen timestamps, foreign files."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pg_backup_verifier_checks import retention as retention_check

from verifier.check_registry import CheckContext, run_checks
from verifier.config import Config, RetentionConfig
from verifier.render.retention import plan_table
from verifier.report import Status
from verifier.repository import retention

NOW = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)


@dataclass(frozen=True)
class FakeBackup:
    """A backup as the repository lists it: a dump file and its manifest on disk."""

    name: str
    dump_path: Path
    manifest_path: Path | None
    created_at: datetime
    size_bytes: int

    @property
    def paths(self) -> list[Path]:
        return [self.dump_path, *([self.manifest_path] if self.manifest_path else [])]


def make_backup(root: Path, created_at: datetime, *, manifest: bool = True, size: int = 1000) -> FakeBackup:
    """Creates `<name>.dump` (+ `<name>.json`) in `root` and returns it as the repository would list it."""
    name = "eatfit24-" + created_at.strftime("%Y%m%dT%H%M%SZ")
    dump = root / f"{name}.dump"
    dump.write_bytes(b"x" * size)
    manifest_path = None
    if manifest:
        manifest_path = root / f"{name}.json"
        manifest_path.write_text(json.dumps({"name": name}) + "\n")
    return FakeBackup(name, dump, manifest_path, created_at, size)


def nightly(root: Path, count: int, *, manifest: bool = True) -> list[FakeBackup]:
    """Creates `count` nightly backups at 03:30 UTC, the newest this morning."""
    return [
        make_backup(root, NOW.replace(hour=3, minute=30) - timedelta(days=age), manifest=manifest)
        for age in range(count)
    ]


def test_twenty_nightly_backups_with_14_days_keep_3(tmp_path: Path) -> None:
    backups = nightly(tmp_path, 20)
    foreign = tmp_path / "notes.txt"
    foreign.write_text("not a backup")
    policy = RetentionConfig(keep_days=14, keep_min=3)

    result = retention.plan(backups, policy, now=NOW, verified={b.name for b in backups})
    print(plan_table(result))

    # ages 0..13 days are younger than 14 days; 14..19 are deleted
    assert [d.name for d in result.to_delete] == [b.name for b in backups[14:]]
    assert len(result.kept) == 14
    assert result.freed_bytes == 6 * 1000
    assert "keep 14, delete 6" in result.summary()
    table = plan_table(result)
    assert table.count("DELETE") == 6
    assert "older than 14 days" in table

    outcome = retention.apply(result, tmp_path)
    assert outcome.deleted == [b.name for b in backups[14:]]
    remaining = sorted(path.name for path in tmp_path.iterdir())
    assert len(remaining) == 14 * 2 + 1
    assert "notes.txt" in remaining
    for backup in backups[14:]:
        assert not backup.dump_path.exists()
        assert backup.manifest_path is not None and not backup.manifest_path.exists()
    assert retention_check.result(result, outcome).status is Status.OK


def test_dry_run_deletes_nothing(tmp_path: Path) -> None:
    backups = nightly(tmp_path, 20)
    result = retention.plan(backups, RetentionConfig(keep_days=14, keep_min=3), now=NOW)
    outcome = retention.apply(result, tmp_path, dry_run=True)
    assert outcome.deleted == []
    assert len(list(tmp_path.iterdir())) == 40
    assert retention_check.result(result, outcome).summary.startswith("would delete 6 backups")


def test_keep_min_survives_a_long_outage(tmp_path: Path) -> None:
    # the agent was down for a month: every backup is older than keep_days
    backups = [make_backup(tmp_path, NOW - timedelta(days=30 + age)) for age in range(5)]
    result = retention.plan(backups, RetentionConfig(keep_days=14, keep_min=3), now=NOW)
    assert [d.name for d in result.kept] == [b.name for b in backups[:3]]
    assert all("keep_min" in " ".join(d.reasons) for d in result.kept)


def test_newest_verified_backup_is_never_deleted(tmp_path: Path) -> None:
    backups = [make_backup(tmp_path, NOW - timedelta(days=20 + age)) for age in range(6)]
    verified = {backups[4].name}  # the three newest failed verification
    result = retention.plan(backups, RetentionConfig(keep_days=14, keep_min=3), now=NOW, verified=verified)
    kept = [d.name for d in result.kept]
    assert kept == [backups[0].name, backups[1].name, backups[2].name, backups[4].name]
    decision = next(d for d in result.decisions if d.name == backups[4].name)
    assert decision.reasons == ("newest verified backup",)


def test_backup_from_the_future_is_kept_reported_and_does_not_count_for_keep_min(tmp_path: Path) -> None:
    skewed = make_backup(tmp_path, NOW + timedelta(days=3))
    old = [make_backup(tmp_path, NOW - timedelta(days=30 + age)) for age in range(4)]
    result = retention.plan([skewed, *old], RetentionConfig(keep_days=14, keep_min=2), now=NOW)

    assert [d.name for d in result.from_the_future] == [skewed.name]
    assert [d.name for d in result.kept] == [skewed.name, old[0].name, old[1].name]
    assert "in the future" in plan_table(result)
    check = retention_check.result(result, retention.apply(result, tmp_path))
    assert check.status is Status.WARNING
    assert "dated in the future" in check.summary
    assert skewed.dump_path.exists()


def test_small_skew_within_tolerance_is_not_the_future(tmp_path: Path) -> None:
    backup = make_backup(tmp_path, NOW + timedelta(minutes=2))
    result = retention.plan([backup], RetentionConfig(), now=NOW)
    assert result.from_the_future == []


def test_grandfather_father_son(tmp_path: Path) -> None:
    # one backup a day for 120 days; keep 3 days, plus 7 daily, 4 weekly, 3 monthly
    backups = nightly(tmp_path, 120)
    policy = RetentionConfig(keep_days=3, keep_min=1, keep_daily=7, keep_weekly=4, keep_monthly=3)
    result = retention.plan(backups, policy, now=NOW)
    kept = {d.name for d in result.kept}

    def on(day: str) -> str:
        return f"eatfit24-{day}T033000Z"

    # NOW is Thursday 2026-11-26: daily = 20..26 Nov; weekly = this week's newest (26th) and the Sundays
    # 22nd, 15th, 8th; monthly = 26 Nov, 31 Oct, 30 Sep
    expected = {on(f"202611{day:02d}") for day in range(20, 27)} | {on("20261115"), on("20261108")}
    expected |= {on("20261031"), on("20260930")}
    assert kept == expected
    reasons = " ".join(" ".join(d.reasons) for d in result.kept)
    assert "keep_weekly: newest of 2026-W" in reasons
    assert "keep_monthly: newest of 2026-10" in reasons


def test_calendar_days_follow_the_configured_time_zone(tmp_path: Path) -> None:
    # 22:30 and 23:30 UTC on the same UTC day are on two different days in Moscow (UTC+3)
    first = make_backup(tmp_path, datetime(2026, 11, 20, 20, 30, tzinfo=UTC))
    second = make_backup(tmp_path, datetime(2026, 11, 20, 21, 30, tzinfo=UTC))
    policy = RetentionConfig(keep_days=0, keep_min=1, keep_daily=2)
    in_utc = retention.plan([first, second], policy, now=NOW)
    in_moscow = retention.plan([first, second], policy, now=NOW, timezone=ZoneInfo("Europe/Moscow"))
    assert len(in_utc.kept) == 1
    assert len(in_moscow.kept) == 2


def test_legacy_backup_without_manifest_is_deleted_alone(tmp_path: Path) -> None:
    backups = nightly(tmp_path, 5, manifest=False)
    result = retention.plan(backups, RetentionConfig(keep_days=2, keep_min=1), now=NOW)
    outcome = retention.apply(result, tmp_path)
    assert len(outcome.deleted) == 3
    assert len(list(tmp_path.iterdir())) == 2


def test_directory_format_backup_is_removed_whole(tmp_path: Path) -> None:
    name = "eatfit24-20261001T033000Z"
    directory = tmp_path / f"{name}.dir"
    directory.mkdir()
    (directory / "toc.dat").write_bytes(b"toc")
    (directory / "3001.dat.gz").write_bytes(b"data")
    manifest = tmp_path / f"{name}.json"
    manifest.write_text("{}")
    backup = FakeBackup(name, directory, manifest, datetime(2026, 10, 1, 3, 30, tzinfo=UTC), 7)
    newest = make_backup(tmp_path, NOW)
    result = retention.plan([newest, backup], RetentionConfig(keep_days=14, keep_min=1), now=NOW)
    assert retention.apply(result, tmp_path).deleted == [name]
    assert not directory.exists() and not manifest.exists()


def test_foreign_paths_are_refused_even_when_a_plan_names_them(tmp_path: Path) -> None:
    repository = tmp_path / "repo"
    repository.mkdir()
    outside = tmp_path / "precious.sql.gz"
    outside.write_text("somebody else's")
    link = repository / "eatfit24-20260101T000000Z.dump"
    link.symlink_to(outside)
    newest = make_backup(repository, NOW)
    wrong = [
        FakeBackup("eatfit24-20260101T000000Z", link, None, NOW - timedelta(days=300), 1),
        FakeBackup("eatfit24-20260102T000000Z", outside, None, NOW - timedelta(days=299), 1),
        FakeBackup("eatfit24-20260103T000000Z", repository / "notes.txt", None, NOW - timedelta(days=298), 1),
    ]
    (repository / "notes.txt").write_text("mine")
    result = retention.plan([newest, *wrong], RetentionConfig(keep_days=14, keep_min=1), now=NOW)
    assert len(result.to_delete) == 3

    outcome = retention.apply(result, repository)
    assert outcome.deleted == []
    assert len(outcome.refused) == 3
    assert outside.read_text() == "somebody else's"
    assert link.is_symlink()
    assert (repository / "notes.txt").exists()
    assert retention_check.result(result, outcome).status is Status.WARNING


def test_naive_now_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="aware"):
        retention.plan([], RetentionConfig(), now=datetime(2026, 1, 1))


def test_empty_repository_plans_nothing() -> None:
    result = retention.plan([], RetentionConfig(), now=NOW)
    assert result.decisions == ()
    assert "keep 0, delete 0" in plan_table(result)


def test_checks_disabled_switches_off_retentions_result_too(tmp_path: Path) -> None:
    """Retention's result is a check like the others: registered, and silenced by checks.disabled."""
    result = retention.plan(nightly(tmp_path, 20), RetentionConfig(keep_days=14, keep_min=3), now=NOW)
    outcome = retention.apply(result, tmp_path, dry_run=True)

    def results(disabled: list[str]) -> list[str]:
        config = Config.model_validate({"source": {"dbname": "app"}, "checks": {"disabled": disabled}})
        context = CheckContext(
            config=config, now=NOW, command="run", backups=[], single_file=False, quick=False, dump=None,
            integrity=None, verification=None, retention=(result, outcome),
        )  # fmt: skip
        return [check_result.name for check_result in run_checks(context)]

    assert results([])[-1] == "retention"
    assert "retention" not in results(["retention"])
