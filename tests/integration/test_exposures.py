"""A repository found writable by others is a WARNING naming it and what inside the agent did not write,
not a silent chmod (issue 21.8). Real PostgreSQL, the whole run."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

from tests.integration.conftest import SourceDatabase
from tests.support.requirements import need
from verifier.pipeline import commands
from verifier.report import Status
from verifier.repository.exposure import open_repository_warning

pytestmark = pytest.mark.integration


def test_a_world_writable_repository_is_a_warning_naming_what_was_planted(
    source_db: SourceDatabase, tmp_path: Path
) -> None:
    need(os.geteuid() == 0, "root (to plant a file as another user)")
    repository = tmp_path / "repo"
    repository.mkdir()
    repository.chmod(0o777)
    planted = repository / "app_2026-01-01_00-00-00Z.json"
    planted.write_text("{}")
    nobody = pwd.getpwnam("nobody")
    os.chown(planted, nobody.pw_uid, nobody.pw_gid)

    report = commands.run(source_db.config(repository))

    exposure = next(result for result in report.results if result.name == "exposure")
    assert exposure.status is Status.WARNING and report.exit_code == 1, exposure
    assert f"repository {repository} was writable by everyone (mode 0777), now 0700" in exposure.summary
    assert "not written by the agent: app_2026-01-01_00-00-00Z.json" in exposure.summary
    assert repository.stat().st_mode & 0o777 == 0o700
    assert report.verification_passed  # the backup itself is fine: the warning is about the directory

    again = commands.run(source_db.config(repository))  # tightened now: no warning the next night
    assert not [result for result in again.results if result.name == "exposure"]


def test_a_repository_only_its_owner_writes_is_silent(tmp_path: Path) -> None:
    (tmp_path / "state").mkdir()
    assert open_repository_warning(tmp_path, 0o40755) is None
    warning = open_repository_warning(tmp_path, 0o40770)
    assert warning is not None and "writable by its group (mode 0770)" in warning
    assert "nothing inside belongs to another user" in warning
