"""A full disk during the dump: one precise line, exit 2, no partial file, older backups untouched.

The repository lives on a small tmpfs the test mounts (needs root, as CI runs)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import SourceDatabase
from tests.support.mounts import small_disk as mounted
from verifier.pipeline import commands
from verifier.report import Status
from verifier.repository.backups import Repository


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB filesystem, unmounted afterwards."""
    with mounted(tmp_path / "small") as mount_point:
        yield mount_point


def test_full_disk_fails_the_dump_in_one_line_and_keeps_the_older_backup(
    source_db: SourceDatabase, small_disk: Path
) -> None:
    config = source_db.config(small_disk / "repo")
    assert commands.run(config).exit_code == 0
    good = Repository(small_disk / "repo").newest()
    assert good is not None and good.manifest is not None
    good_bytes = good.dump_path.read_bytes()

    # incompressible rows, several times the free space
    source_db.execute(
        "CREATE TABLE blobs AS SELECT g, decode(string_agg(md5(g::text || x::text), ''), 'hex') AS data "
        "FROM generate_series(1, 2000) g, generate_series(1, 200) x GROUP BY g"
    )
    report = commands.run(config)
    dump = next(r for r in report.results if r.name == "dump")
    assert dump.status is Status.CRITICAL
    assert "No space left on device" in dump.summary and "\n" not in dump.summary
    assert report.exit_code == 2
    assert list((small_disk / "repo").glob("*.partial")) == []
    assert good.dump_path.read_bytes() == good_bytes
    assert [b.name for b in Repository(small_disk / "repo").backups()] == [good.name]
