"""Faults of the disks: full while dumping, full in the sandbox, fsync and rename raising EIO; and what is
fsynced at all (a crash must not lose a backup the run said it saved)."""

from __future__ import annotations

import errno
import os
import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.faults.conftest import Fault, config, first_backup, result, spooled
from tests.integration.conftest import SourceDatabase
from tests.support.mounts import small_disk
from verifier.pipeline import commands
from verifier.report import Status
from verifier.repository.backups import Repository
from verifier.zabbix import delivery, keys
from verifier.zabbix.spool import Spool, SpooledValue

INCOMPRESSIBLE = (
    "CREATE TABLE blobs AS SELECT g, decode(string_agg(md5(g::text || x::text), ''), 'hex') AS data "
    "FROM generate_series(1, {rows}) g, generate_series(1, 200) x GROUP BY g"
)


def test_04_disk_full_while_dumping(source_db: SourceDatabase, tmp_path: Path, fault: Fault) -> None:
    with small_disk(tmp_path / "small", "4m") as disk:
        repository = disk / "repo"
        configured = first_backup(source_db, repository, zabbix=None)
        fault.protect(repository)
        try:
            source_db.execute(INCOMPRESSIBLE.format(rows=2000))
            fault.inject("disk full while dumping")
            report = commands.run(configured)
            assert list(repository.glob("*.partial")) == []
        finally:
            fault.release(repository)  # checked here: the disk goes away with the block
    dump = result(report, "dump")
    assert dump.status is Status.CRITICAL and "\n" not in dump.summary
    assert "No space left on device after " in dump.summary and " free in " in dump.summary, dump.summary
    assert report.exit_code == 2


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_05_disk_full_in_the_sandbox(source_db: SourceDatabase, tmp_path: Path, fault: Fault) -> None:
    source_db.execute(
        "CREATE TABLE wide AS SELECT g, md5(g::text) || md5((-g)::text) AS data FROM generate_series(1, 700000) g"
    )
    repository = tmp_path / "repo"
    first_backup(source_db, repository)
    fault.protect(repository)
    mount_point = Path(tempfile.gettempdir()) / f"sd-{secrets.token_hex(3)}"  # the sandbox account reaches it
    with small_disk(mount_point, "4m") as disk:
        os.chmod(disk, 0o755)
        fault.inject("a sandbox disk smaller than the backup")
        report = commands.check(config(source_db, repository, verify={"temp_dir": str(disk)}))
        assert list(disk.iterdir()) == []
    restore = result(report, "restore")
    assert "the sandbox would run out of disk space" in restore.summary and "free in" in restore.summary, restore
    assert report.exit_code == 3
    with small_disk(mount_point, "90m") as disk:
        os.chmod(disk, 0o755)
        fault.inject("disk full in the sandbox")
        report = commands.check(config(source_db, repository, verify={"temp_dir": str(disk)}))
        assert list(disk.iterdir()) == []
    restore = result(report, "restore")
    assert restore.status is Status.CRITICAL and "\n" not in restore.summary
    assert "the sandbox ran out of disk space" in restore.summary and "free" in restore.summary, restore.summary
    assert report.exit_code == 3, "a full sandbox disk is the machine's problem (could not run), not the backup's"
    assert "ran out of disk space" in (report.could_not_run or "")
    assert spooled(repository, keys.VERIFY_STATUS)[-1] == "0"


def failing_on(target: Callable[[str], bool], real: Callable[..., Any]) -> Callable[..., Any]:
    """Returns `real` (os.fsync or Path.rename) raising EIO when its first argument's path matches."""

    def call(first: Any, *rest: Any) -> Any:
        path = os.readlink(f"/proc/self/fd/{first}") if isinstance(first, int) else str(first)
        if target(path):
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return real(first, *rest)

    return call


@pytest.mark.parametrize("operation", ["fsync", "rename"])
def test_19_fsync_or_rename_raising_eio(
    source_db: SourceDatabase, tmp_path: Path, fault: Fault, operation: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EIO is injected with a monkeypatch on os.fsync / Path.rename in this process (a failing disk cannot
    be had on demand), for the dump's partial file only."""
    repository = tmp_path / "repo"
    configured = first_backup(source_db, repository)
    fault.protect(repository)
    before = [backup.name for backup in Repository(repository).backups()]
    if operation == "fsync":
        monkeypatch.setattr(os, "fsync", failing_on(lambda path: path.endswith(".dump.zst.partial"), os.fsync))
    else:
        monkeypatch.setattr(Path, "rename", failing_on(lambda path: path.endswith(".dump.zst.partial"), Path.rename))
    fault.inject(f"{operation} raising EIO")
    report = commands.run(configured)
    monkeypatch.undo()
    dump = result(report, "dump")
    assert dump.status is Status.CRITICAL and "\n" not in dump.summary
    assert "Input/output error" in dump.summary, dump.summary
    assert report.exit_code == 2 and not report.verification_passed
    assert [backup.name for backup in Repository(repository).backups()] == before
    assert spooled(repository, keys.DUMP_STATUS)[-1] == "0"


def test_19_what_is_fsynced(
    source_db: SourceDatabase, tmp_path: Path, fault: Fault, monkeypatch: pytest.MonkeyPatch
) -> None:
    """os.fsync is wrapped in this process to record what it makes durable: the directory-format dump's
    files and directory, the repository, the spool and its directory, the Zabbix state and its directory."""
    repository = tmp_path / "repo"
    synced: list[str] = []
    real_fsync = os.fsync

    def recording(descriptor: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{descriptor}"))
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", recording)
    fault.inject("a crash right after the run (what was fsynced survives)")
    report = commands.run(config(source_db, repository, dump={"format": "directory"}))
    known = repository / "state" / "zabbix-discovered.json"
    delivery._save_known(known, {"pgbackup.table.rows[x]"})  # written only when Zabbix answered
    Spool(repository / "state" / "extra-spool.jsonl", 10).save([SpooledValue("h", "k", "v", 1)], 0)
    monkeypatch.undo()
    fault.watch(repository)
    assert report.manifest is not None and report.manifest.format == "directory"
    dump_dir = str(repository / report.manifest.dump_path)
    missing = [
        path
        for path in (
            dump_dir,
            *(f"{dump_dir}/{entry.path.split('/', 1)[1]}" for entry in report.manifest.files if "/" in entry.path),
            str(repository),
            str(repository / report.manifest.dump_path).removesuffix(".dir") + ".json",
            str(repository / "state" / "zabbix-spool.jsonl"),
            str(repository / "state"),
            str(known),
        )
        if not {path, path + ".partial", path.replace(dump_dir, dump_dir + ".partial")} & set(synced)
    ]
    assert missing == [], f"never fsynced: {missing}"
