"""A config file every user can read that holds a secret inline is a WARNING from `config check`, `doctor`
and `run`, with the fix (issue 21.8): the sandbox account, under which a dump's code runs, could read it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import verifier
from tests.integration.conftest import SourceDatabase


def write_config(path: Path, source_db: SourceDatabase, password: str, mode: int) -> Path:
    data = {
        "source": {
            "host": source_db.cluster.host,
            "port": source_db.cluster.port,
            "dbname": source_db.dbname,
            "user": "postgres",
            "password": password,
        },
        "repository": {"path": str(path.parent / "repo")},
        "checks": {"min_count": 1},
    }
    path.write_text(yaml.safe_dump(data))
    path.chmod(mode)
    return path


def test_config_check_warns_about_an_inline_password_others_can_read(source_db: SourceDatabase, tmp_path: Path) -> None:
    config = write_config(tmp_path / "config.yaml", source_db, "hunter2-inline", 0o644)
    completed = verifier("config", "check", "--config", config)
    assert completed.returncode == 1, completed.stderr
    assert (
        f"WARNING: config file {config} is readable by every user (mode 0644) and holds source.password inline: "
        f"`chmod 600 {config}`, or give the secret as file:/path" in completed.stderr
    )
    assert "hunter2-inline" not in completed.stdout + completed.stderr


@pytest.mark.parametrize("password, mode", [("hunter2-inline", 0o600), ("${PGBV_NO_SUCH_VARIABLE:-}", 0o644)])
def test_config_check_is_silent_when_the_file_is_private_or_the_secret_is_not_inline(
    source_db: SourceDatabase, tmp_path: Path, password: str, mode: int
) -> None:
    config = write_config(tmp_path / "config.yaml", source_db, password, mode)
    completed = verifier("config", "check", "--config", config)
    assert completed.returncode == 0 and "WARNING" not in completed.stderr, completed.stderr


def test_doctor_and_run_warn_about_it_too(source_db: SourceDatabase, tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    config = write_config(tmp_path / "config.yaml", source_db, "hunter2-inline", 0o644)
    if os.geteuid() == 0:
        doctor = verifier("doctor", "--config", config)
        assert doctor.returncode == 2, doctor.stdout + doctor.stderr
        assert "config file:" in doctor.stdout and "chmod 600" in doctor.stdout
    run = verifier("run", "--config", config, "--json")
    assert run.returncode == 1, run.stdout[-2000:] + run.stderr[-2000:]
    report = json.loads(run.stdout)
    exposure = next(result for result in report["results"] if result["name"] == "exposure")
    assert exposure["status"] == "WARNING" and "holds source.password inline" in exposure["summary"]
    assert "hunter2-inline" not in run.stdout + run.stderr
