"""A directory-format dump (dump.format: directory) off-site: it travels as one encrypted tar stream, is
read back, and `check --offsite` restores it with the full comparison once the local copy is gone.
Real sshd + rsync, real GPG, real PostgreSQL."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.integration.conftest import SourceDatabase
from tests.integration.offsite.conftest import GpgKeys, SshServer, offsite_config, rsync_target
from verifier.pipeline import commands
from verifier.report import Status
from verifier.repository.backups import Repository

pytestmark = pytest.mark.integration


def test_directory_dump_uploads_as_one_object_and_restores_from_the_copy(
    source_db: SourceDatabase, ssh_server: SshServer, gpg_keys: GpgKeys, tmp_path: Path
) -> None:
    target = rsync_target(ssh_server)
    config = offsite_config(source_db, tmp_path / "repo", [target], gpg_keys, dump={"format": "directory"})
    report = commands.run(config)
    result = next(result for result in report.results if result.name == "offsite vault")
    assert report.verification_passed and result.status is Status.OK, result.summary
    backup = Repository(tmp_path / "repo").newest()
    assert backup is not None and backup.dump_path.is_dir()
    remote = Path(target["url"].split(str(ssh_server.port), 1)[1])
    assert f"{report.backup_name}.dir.tar.gpg" in {path.name for path in remote.iterdir()}

    shutil.rmtree(backup.dump_path)  # the disaster: only the off-site copy is left
    drill = commands.check(config, offsite="vault")
    assert next(result for result in drill.results if result.name == "offsite vault").status is Status.OK
    assert drill.verification is not None and drill.verification_passed and drill.verification.exact
    assert len(drill.verification.tables) >= 10
    assert all(table.difference == 0 for table in drill.verification.tables)
    assert not [path for path in (tmp_path / "repo" / "state").glob("offsite-*") if path.is_dir()]
