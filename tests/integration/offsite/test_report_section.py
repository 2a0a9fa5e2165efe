"""The nightly report's off-site section from a real run with a real target (sshd + rsync, real GPG and
PostgreSQL): the HTML file in reports/ names the target, the newest copy, its upload and proof."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.conftest import SourceDatabase
from tests.integration.offsite.conftest import GpgKeys, SshServer, offsite_config, rsync_target
from tests.support.html_rows import table_rows
from verifier.pipeline import commands

pytestmark = pytest.mark.integration


def test_the_html_report_of_a_run_shows_the_copy_it_uploaded_and_read_back(
    source_db: SourceDatabase, ssh_server: SshServer, gpg_keys: GpgKeys, tmp_path: Path
) -> None:
    config = offsite_config(source_db, tmp_path / "repo", [rsync_target(ssh_server)], gpg_keys)
    first = commands.run(config)
    report = commands.run(config)
    assert report.verification_passed

    [row] = table_rows((tmp_path / "repo" / "reports" / f"{report.run_id}.html").read_text(), "offsite")
    assert row.startswith(f"vault OK {report.backup_name} 0h 0m "), row
    assert "(uploaded)" in row and row.endswith("read back intact 2"), row

    drill = commands.check(config, offsite="vault")
    [row] = table_rows((tmp_path / "repo" / "reports" / f"{drill.run_id}.html").read_text(), "offsite")
    assert row.startswith(f"vault OK {report.backup_name} "), row
    assert row.endswith("read back intact 2") and first.backup_name not in row, row
