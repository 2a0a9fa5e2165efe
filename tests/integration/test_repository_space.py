"""The repository's space is the dump's (issue 21.7): the sandbox's pristine initdb (39 MiB for PostgreSQL
15) is kept in the agent's cache, not in the repository's state/, and a disk that cannot take the dump says
what is using it. The repository lives on a small tmpfs the test mounts (needs root, as CI runs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.conftest import SourceDatabase
from tests.support.mounts import small_disk
from verifier.pipeline import commands
from verifier.report import Status
from verifier.sandbox import SANDBOX_TEMPLATES, template_root

pytestmark = pytest.mark.integration

# incompressible rows: ~16 KiB of random-looking bytes per row
BLOBS = (
    "CREATE TABLE blobs AS SELECT g, decode(string_agg(md5(g::text || x::text), ''), 'hex') AS data "
    "FROM generate_series(1, {rows}) g, generate_series(1, 1000) x GROUP BY g"
)


def test_a_repository_with_room_for_the_dump_but_not_the_template_verifies(
    source_db: SourceDatabase, tmp_path: Path
) -> None:
    source_db.execute(BLOBS.format(rows=1600))  # a ~25 MiB dump: fits in 60 MiB, not beside a 39 MiB template
    with small_disk(tmp_path / "small", "60m") as disk:
        config = source_db.config(disk / "repo")
        report = commands.run(config)
        dump = next(result for result in report.results if result.name == "dump")
        assert report.exit_code == 0 and report.verification_passed, dump.summary
        assert not (disk / "repo" / "state" / SANDBOX_TEMPLATES).exists()
        assert template_root(config.verify, disk / "repo").is_dir()  # kept in the agent's cache instead


def test_a_disk_that_cannot_take_the_dump_says_what_is_using_it(source_db: SourceDatabase, tmp_path: Path) -> None:
    source_db.execute(BLOBS.format(rows=600))  # a ~9 MiB dump
    with small_disk(tmp_path / "small", "20m") as disk:
        (disk / "repo" / "old-exports").mkdir(parents=True)
        (disk / "repo" / "old-exports" / "2025.tar").write_bytes(b"\0" * 15 * 1048576)
        report = commands.run(source_db.config(disk / "repo"))
        dump = next(result for result in report.results if result.name == "dump")
        assert dump.status is Status.CRITICAL and report.exit_code == 2
        assert "No space left on device after" in dump.summary and "\n" not in dump.summary
        assert "using it: old-exports/ 15.0 MiB" in dump.summary, dump.summary
