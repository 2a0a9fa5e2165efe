"""`verifier prune` and `verifier list` on a 20-backup repository, through the real command line.

The repository is files on disk (dumps + manifests written by the product's Manifest.write, a
cron'd legacy dump, a foreign file, a backup dated in the future); no database is needed.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.support.sample_report import sample_manifest
from verifier.cli.main import main
from verifier.manifest import FileEntry
from verifier.repository.backups import Repository


def write_backup(repository: Path, created: datetime, size: int = 4096) -> str:
    """Writes `<name>.dump` and its manifest as the agent does; returns the name."""
    name = f"eatfit24_{created.strftime('%Y-%m-%d_%H-%M-%SZ')}"
    (repository / f"{name}.dump").write_bytes(b"\0" * size)
    manifest = sample_manifest(name).model_copy(
        update={
            "created_at": created,
            "completed_at": created + timedelta(seconds=40),
            "files": [FileEntry(path=f"{name}.dump", size=size, sha256="0" * 64, chunk_size=1 << 24)],
        }
    )
    manifest.write(repository / f"{name}.json")
    return name


@pytest.fixture
def twenty(tmp_path: Path) -> tuple[Path, list[str]]:
    """A repository with 20 nightly backups (newest 2 h ago), a foreign file, and its config."""
    repository = tmp_path / "repo"
    Repository(repository).ensure()
    now = datetime.now(UTC)
    names = [write_backup(repository, now - timedelta(days=age, hours=2)) for age in range(20)]
    (repository / "README.txt").write_text("backups of eatfit24; ask Ivan before deleting")
    config = tmp_path / "config.yaml"
    config.write_text(
        "source: {dbname: eatfit24}\n"
        f"repository: {{path: {repository}}}\n"
        "retention: {keep_days: 14, keep_min: 3}\n"
        "schedule: {timezone: Europe/Moscow}\n"
    )
    return config, names


def test_prune_dry_run_prints_what_14_days_keep_3_removes(
    twenty: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    config, names = twenty
    repository = config.parent / "repo"

    def files() -> list[str]:
        return sorted(path.name for path in repository.iterdir() if path.is_file() and path.name != ".lock")

    before = files()

    assert main(["prune", "--dry-run", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    print(out)

    deleted = [line.split()[1] for line in out.splitlines() if line.startswith("DELETE")]
    assert deleted == names[14:]  # ages 14..19 days, oldest last
    kept = [line.split()[1] for line in out.splitlines() if line.startswith("keep ")]
    assert kept == names[:14]
    assert "retention 14 days, keep_min 3: keep 14, delete 6" in out
    assert "dry run: would delete 6 backups, kept 14" in out
    assert files() == before  # nothing touched


def test_prune_deletes_manifest_and_dump_together_and_never_a_foreign_file(
    twenty: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    config, names = twenty
    repository = config.parent / "repo"
    assert main(["prune", "--config", str(config)]) == 0
    assert "deleted 6 backups, kept 14" in capsys.readouterr().out
    left = {path.name for path in repository.iterdir()}
    for name in names[14:]:
        assert f"{name}.dump" not in left and f"{name}.json" not in left
    for name in names[:14]:
        assert f"{name}.dump" in left and f"{name}.json" in left
    assert "README.txt" in left
    assert len(Repository(repository).backups()) == 14


def test_prune_keeps_and_reports_a_backup_from_the_future(
    twenty: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    config, _ = twenty
    repository = config.parent / "repo"
    future = write_backup(repository, datetime.now(UTC) + timedelta(days=30))
    code = main(["prune", "--json", "--config", str(config)])
    plan = json.loads(capsys.readouterr().out)
    assert code == 1  # WARNING: check the clock
    decision = next(d for d in plan["decisions"] if d["name"] == future)
    assert decision["action"] == "keep" and decision["future"] is True
    assert "dated in the future" in plan["result"]["summary"]
    assert (repository / f"{future}.dump").exists()


def test_legacy_cron_dump_is_listed_and_pruned_by_age(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repository = tmp_path / "repo"
    Repository(repository).ensure()
    old = repository / "eatfit24_2026-01-01.sql.gz"
    old.write_bytes(b"\x1f\x8b")
    month_ago = (datetime.now(UTC) - timedelta(days=30)).timestamp()
    os.utime(old, (month_ago, month_ago))
    newest = write_backup(repository, datetime.now(UTC) - timedelta(hours=1))
    config = tmp_path / "config.yaml"
    config.write_text(f"source: {{dbname: eatfit24}}\nrepository: {{path: {repository}}}\nretention: {{keep_min: 1}}\n")

    assert main(["list", "--config", str(config)]) == 0
    listing = capsys.readouterr().out
    assert "eatfit24_2026-01-01 (no manifest)" in listing and newest in listing
    assert "not verified" in listing

    assert main(["prune", "--config", str(config)]) == 0
    assert not old.exists()
    assert [backup.name for backup in Repository(repository).backups()] == [newest]


def test_prune_refuses_while_a_run_holds_the_lock(
    twenty: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    from verifier.repository.lock import RepositoryLock

    config, _ = twenty
    with RepositoryLock(Repository(config.parent / "repo").lock_path):
        assert main(["prune", "--config", str(config)]) == 3
    assert "holds the lock" in capsys.readouterr().err
