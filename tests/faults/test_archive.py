"""Faults of the backup itself: truncated, flipped bytes, a manifest edited or deleted, a restore error
in one object, and the negative control (rows deleted from the restored copy): each is CRITICAL, named
in one line, and `verify.status` 0 reaches the spool."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import verifier
from tests.faults.conftest import (
    Fault,
    config,
    config_file,
    first_backup,
    json_report,
    json_result,
    result,
    spooled,
)
from tests.integration.conftest import SourceDatabase
from tests.support.dumps import delete_rows_after_restore, flip_bytes, legacy_dump
from verifier.pipeline import commands, verify
from verifier.postgres.binaries import Installation
from verifier.report import Status
from verifier.repository.backups import Backup, Repository
from verifier.zabbix import keys


def two_backups(source_db: SourceDatabase, repository: Path) -> tuple[Backup, Backup]:
    """Returns (older, newest): two good backups; the fault goes into the newest."""
    source_db.execute("INSERT INTO cities SELECT md5(g::text), g FROM generate_series(1, 40000) g")
    first_backup(source_db, repository)
    first_backup(source_db, repository)
    older, newest = Repository(repository).backups()
    return older, newest


def check_json(tmp_path: Path, source_db: SourceDatabase, repository: Path, fault: Fault) -> dict[str, Any]:
    completed = verifier("check", "--config", config_file(tmp_path / "c.yaml", source_db, repository), "--json")
    fault.output(completed.stdout, completed.stderr)
    assert completed.returncode == 2, completed.stdout + completed.stderr
    return json_report(completed)


def test_06_truncated_dump(source_db: SourceDatabase, tmp_path: Path, fault: Fault) -> None:
    repository = tmp_path / "repo"
    _, newest = two_backups(source_db, repository)
    size = newest.dump_path.stat().st_size
    os.truncate(newest.dump_path, size // 2)
    fault.inject("a truncated dump")
    fault.protect(repository)
    report = check_json(tmp_path, source_db, repository, fault)
    archive = json_result(report, "archive")
    assert archive["status"] == "CRITICAL"
    assert f"size {size // 2} bytes, manifest says {size} (truncated)" in archive["summary"]
    assert json_result(report, "restore")["status"] == "CRITICAL"
    assert spooled(repository, keys.VERIFY_STATUS)[-1] == "0"


def test_07_flipped_bytes_named_by_byte_range_before_any_restore(
    source_db: SourceDatabase, tmp_path: Path, fault: Fault, caplog: pytest.LogCaptureFixture
) -> None:
    repository = tmp_path / "repo"
    _, newest = two_backups(source_db, repository)
    middle = newest.dump_path.stat().st_size // 2
    flip_bytes(newest.dump_path, middle)
    fault.inject("flipped bytes")
    fault.protect(repository)
    caplog.clear()
    report = commands.check(config(source_db, repository))
    archive = result(report, "archive")
    assert archive.status is Status.CRITICAL and "\n" not in archive.summary
    chunk = 1024 * 1024
    start = middle // chunk * chunk
    assert f"damaged byte range(s) {start}-" in archive.summary, archive.summary
    messages = [record.getMessage() for record in caplog.records]
    named = next(index for index, text in enumerate(messages) if "damaged byte range" in text)
    restore = next(index for index, text in enumerate(messages) if "pg_restore --no-password --dbname" in text)
    assert named < restore, "the damaged range was not named before the restore started"
    assert report.exit_code == 2
    assert spooled(repository, keys.VERIFY_STATUS)[-1] == "0"


def test_08_manifest_edited(source_db: SourceDatabase, tmp_path: Path, fault: Fault) -> None:
    repository = tmp_path / "repo"
    _, newest = two_backups(source_db, repository)
    assert newest.manifest_path is not None
    manifest = json.loads(newest.manifest_path.read_text())
    edited = next(count for count in manifest["row_counts"] if count["table"] == "cities")
    edited["rows"] += 1
    newest.manifest_path.write_text(json.dumps(manifest))
    fault.inject("a manifest edited")
    fault.protect(repository)
    report = check_json(tmp_path, source_db, repository, fault)
    row_counts = json_result(report, "row_counts")
    assert row_counts["status"] == "CRITICAL"
    assert "public.cities" in row_counts["summary"], row_counts["summary"]
    assert spooled(repository, keys.VERIFY_STATUS)[-1] == "0"


def test_08_manifest_deleted(source_db: SourceDatabase, tmp_path: Path, fault: Fault) -> None:
    repository = tmp_path / "repo"
    _, newest = two_backups(source_db, repository)
    assert newest.manifest_path is not None
    newest.manifest_path.unlink()
    fault.inject("a manifest deleted")
    fault.protect(repository)
    report = check_json(tmp_path, source_db, repository, fault)
    critical = [found for found in report["results"] if found["status"] == "CRITICAL"]
    assert any("manifest missing" in found["summary"] for found in critical), report["results"]


def test_09_restore_error_in_one_object_is_named(
    source_db: SourceDatabase, tmp_path: Path, fault: Fault, postgres_installation: Installation
) -> None:
    repository = tmp_path / "repo"
    first_backup(source_db, repository)
    fault.protect(repository)
    text = legacy_dump(source_db, postgres_installation, tmp_path / "plain.sql.gz").decode()
    broken = text.replace("CREATE TABLE public.moods (", "CREATE TABLE public.moods (oops no_such_type,")
    assert broken != text
    (tmp_path / "broken.sql").write_text(broken)
    fault.inject("a restore error in one object")
    completed = verifier(
        "check", "--config", config_file(tmp_path / "c.yaml", source_db, repository), "--backup",
        tmp_path / "broken.sql", "--json",
    )  # fmt: skip
    fault.output(completed.stdout, completed.stderr)
    assert completed.returncode == 2
    restore = json_result(json_report(completed), "restore")
    assert restore["status"] == "CRITICAL"
    assert "TABLE public.moods (line" in restore["summary"]
    assert 'type "no_such_type" does not exist' in restore["summary"]
    # a file handed to `check --backup` says nothing of the source's backups: the report is pushed,
    # the source's verification status is not
    assert spooled(repository, keys.VERIFY_STATUS) == ["1"]
    assert "CRITICAL: check --backup" in spooled(repository, keys.REPORT)[-1]


def test_24_negative_control_rows_deleted_from_the_restored_copy(
    source_db: SourceDatabase, tmp_path: Path, fault: Fault, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The test hook is a wrapper around the real restore (monkeypatched in this process): the restore and
    the comparison are the product's, only the deletion is the test's."""
    repository = tmp_path / "repo"
    configured = first_backup(source_db, repository)
    fault.protect(repository)
    monkeypatch.setattr(verify, "compare_restored", delete_rows_after_restore("ONLY public.cities"))
    fault.inject("negative control: rows deleted from the restored copy")
    report = commands.run(configured)
    row_counts = result(report, "row_counts")
    assert row_counts.status is Status.CRITICAL and "\n" not in row_counts.summary
    assert "public.cities" in row_counts.summary, row_counts.summary
    assert not report.verification_passed
    assert report.exit_code == 2
    assert spooled(repository, keys.VERIFY_STATUS)[-1] == "0"
    assert spooled(repository, keys.VERIFY_MISMATCHED_TABLES)[-1] == "1"
