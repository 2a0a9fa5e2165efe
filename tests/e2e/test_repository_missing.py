"""A repository path that does not exist (a typo in repository.path) is never created by a command
that only reads: it says the repository does not exist, exit 3 (the config points at nothing: the
agent could not run, like a missing config file — not a CRITICAL about backups that may exist
elsewhere). `verifier run` creates a missing repository and says so in one line (issue 22.7)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import verifier
from tests.integration.conftest import SourceDatabase
from tests.support.cli_config import write_config


def _config_without_source(path: Path, repository: Path) -> Path:
    """Returns a config whose source nobody listens on: a read-only command must fail before it matters."""
    data = {
        "source": {"host": "127.0.0.1", "port": 9, "dbname": "app", "user": "app"},
        "repository": {"path": str(repository)},
    }
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    "command",
    [("check", "--quick"), ("check",), ("list",), ("history",), ("report",), ("prune", "--dry-run")],
    ids=lambda command: " ".join(command),
)
def test_a_read_only_command_does_not_create_a_missing_repository(tmp_path: Path, command: tuple[str, ...]) -> None:
    repository = tmp_path / "var" / "backups" / "pg-backup-verifer"  # the typo'd path, parents missing too
    config = _config_without_source(tmp_path / "config.yaml", repository)
    completed = verifier(*command, "--config", config)
    assert not (tmp_path / "var").exists(), f"{' '.join(command)} created {repository}"
    assert completed.returncode == 3, completed
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1, completed.stderr
    assert f"repository {repository} does not exist" in lines[0]
    assert "repository.path" in lines[0]
    assert "Traceback" not in completed.stderr + completed.stdout


def test_run_creates_a_missing_repository_and_says_so(source_db: SourceDatabase, tmp_path: Path) -> None:
    repository = tmp_path / "new" / "repo"
    config = write_config(tmp_path / "config.yaml", source_db, repository)
    completed = verifier("run", "--config", config)
    assert completed.returncode == 0, completed.stderr
    assert repository.is_dir()
    told = [line for line in completed.stderr.splitlines() if f"created the repository {repository}" in line]
    assert len(told) == 1, completed.stderr
    # the second night finds it: nothing said
    again = verifier("run", "--config", config)
    assert "created the repository" not in again.stderr
