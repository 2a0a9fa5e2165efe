"""With `source.databases`, which database the self-test takes: the one never tested (in name order), else
the one whose last self-test is oldest, among those holding a backup with a manifest; a self-test that
failed counts as the database's turn, so one that cannot be tested does not hold up the others. The
backups are files written as the agent writes them (a manifest beside a dump), no PostgreSQL needed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.support.sample_report import sample_manifest
from verifier.config import parse_config
from verifier.errors import BackupNotFound
from verifier.pipeline.selftest import STATE_FILE, SelfTest, report_selftest, selftest_due
from verifier.pipeline.selftest_rotation import next_in_rotation
from verifier.repository.databases import Databases

NOW = datetime(2026, 12, 7, 3, 40, tzinfo=UTC)


def hold_backup(databases: Databases, dbname: str) -> None:
    repository = databases.repository(dbname)
    repository.ensure()
    name = f"{dbname}_2026-12-07_03-30-00Z"
    manifest = sample_manifest(name)
    (repository.path / f"{name}.json").write_text(manifest.model_dump_json())
    (repository.path / manifest.dump_path).write_bytes(b"PGDMP")


def test_the_never_tested_then_the_longest_ago_tested_and_never_one_without_a_backup(tmp_path: Path) -> None:
    config = parse_config(
        f"source: {{databases: all}}\nrepository: {{path: {tmp_path}}}\nschedule: {{selftest: weekly}}\n"
    )
    databases = Databases(tmp_path)
    with pytest.raises(BackupNotFound, match=f"no database in {tmp_path} holds a backup with a manifest"):
        next_in_rotation(databases)
    for dbname in ("shop", "app"):
        hold_backup(databases, dbname)
    databases.repository("aaa_new").ensure()  # no backup yet
    assert next_in_rotation(databases) == ("app", "never self-tested")

    report_selftest(config, SelfTest("b", error="restore failed", database="app", finished_at=NOW))
    assert next_in_rotation(databases) == ("shop", "never self-tested")  # a failed self-test was app's turn
    assert not selftest_due(config, NOW + timedelta(days=6))  # the host's record: one self-test a week

    report_selftest(config, SelfTest("b", database="shop", finished_at=NOW + timedelta(days=7)))
    assert next_in_rotation(databases) == ("app", "last self-tested 2026-12-07 03:40 UTC")
    assert (databases.repository("shop").state_dir / STATE_FILE).exists()
    assert not (databases.repository("aaa_new").state_dir / STATE_FILE).exists()
