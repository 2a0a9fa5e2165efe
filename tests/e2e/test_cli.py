"""The `verifier` command as a user runs it: demo, run, check, legacy check, config check."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import yaml

from tests.e2e.conftest import VERIFIER, verifier
from tests.integration.conftest import SourceDatabase
from tests.support.cli_config import write_config
from tests.support.dumps import legacy_dump
from verifier.postgres.binaries import Installation
from verifier.repository.backups import Repository


def test_demo_proves_every_table_while_production_changes(postgres_installation: Installation) -> None:
    """The demo starts its own clusters: it needs PostgreSQL (and so is not in the fast tier)."""
    completed = verifier("demo")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "all 27 tables match the snapshot exactly" in completed.stdout
    assert re.search(r"OK\s+drift\s+production ", completed.stdout)  # production moved on: information only
    assert "Traceback" not in completed.stderr


def test_run_then_check_then_json(source_db: SourceDatabase, tmp_path: Path) -> None:
    config = write_config(tmp_path / "config.yaml", source_db, tmp_path / "repo")
    run = verifier("run", "--config", config)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "match the snapshot exactly" in run.stdout
    assert "unused-secret" not in run.stdout + run.stderr
    check = verifier("check", "--config", config, "--json")
    assert check.returncode == 0, check.stdout + check.stderr
    assert '"status": "OK"' in check.stdout
    reports = list((tmp_path / "repo" / "reports").glob("*.json"))
    assert len(reports) == 2
    for path in (tmp_path / "repo").rglob("*"):  # manifests, reports, HTML, history, spool
        if path.is_file():
            assert b"unused-secret" not in path.read_bytes(), f"the password reached {path}"


def test_damaged_backup_exits_2_and_names_the_byte_range(source_db: SourceDatabase, tmp_path: Path) -> None:
    source_db.execute("INSERT INTO cities SELECT md5(g::text), g FROM generate_series(1, 30000) g")
    config = write_config(tmp_path / "config.yaml", source_db, tmp_path / "repo")
    assert verifier("run", "--config", config).returncode == 0
    backup = Repository(tmp_path / "repo").newest()
    assert backup is not None
    with backup.dump_path.open("r+b") as handle:
        handle.seek(backup.dump_path.stat().st_size // 3)
        handle.write(b"\x00" * 64)
    check = verifier("check", "--config", config)
    assert check.returncode == 2
    assert "damaged byte range(s)" in check.stdout
    assert "Traceback" not in check.stdout + check.stderr


def test_check_a_legacy_cron_dump(
    source_db: SourceDatabase, tmp_path: Path, postgres_installation: Installation
) -> None:
    legacy = tmp_path / "eatfit24_2025-12-23_20-44-19.sql.gz"
    legacy_dump(source_db, postgres_installation, legacy)
    config = write_config(tmp_path / "config.yaml", source_db, tmp_path / "repo")
    check = verifier("check", "--config", config, "--backup", legacy)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "no exact comparison" in check.stdout


def test_broken_config_names_every_yaml_path(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("source:\n  port: 54x2\n  dbname: app\ndump:\n  formatt: plain\n")
    completed = verifier("config", "check", "--config", config)
    assert completed.returncode == 3
    assert 'source.port: expected an integer, got "54x2"' in completed.stderr
    assert "dump.formatt: unknown key (did you mean 'format'?)" in completed.stderr
    assert "Traceback" not in completed.stderr


def test_config_check_masks_secrets(source_db: SourceDatabase, tmp_path: Path) -> None:
    config = write_config(tmp_path / "config.yaml", source_db, tmp_path / "repo")
    completed = subprocess.run(
        [str(VERIFIER), "config", "check", "--config", str(config)],
        capture_output=True,
        text=True,
        env={**os.environ, "E2E_PASSWORD": "hunter2"},
        check=False,
    )
    assert completed.returncode == 0
    assert "hunter2" not in completed.stdout + completed.stderr
    assert "**********" in completed.stdout


def test_unreachable_database_is_one_line_and_exit_2(tmp_path: Path, source_db: SourceDatabase) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "source": {"host": "127.0.0.1", "port": 1, "dbname": "app", "connect_timeout": 2},
                "repository": {"path": str(tmp_path / "repo")},
            }
        )
    )
    completed = verifier("run", "--config", config)
    assert completed.returncode == 2
    assert "cannot connect to 127.0.0.1:1/app" in completed.stdout
    assert "Traceback" not in completed.stdout + completed.stderr


def test_missing_config_file_is_exit_3_with_a_hint(tmp_path: Path) -> None:
    completed = verifier("check", "--config", tmp_path / "nope.yaml")
    assert completed.returncode == 3
    assert completed.stderr.strip().splitlines()[-1].startswith("verifier: config file")
