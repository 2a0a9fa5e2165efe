"""The sandbox account's reach, checked before the night's work: PostgreSQL programs (postgres.bin_dir),
the sandbox's directory (verify.temp_dir) or the repository's state (the pristine cluster template) in a
directory the sandbox account `pgbv-sandbox` cannot enter — programs in root's home, a venv there — is
one line naming the directory and the fix, exit 3, for `run` and `check`; `doctor` reports it (issue
22.1: today `[Errno 13] Permission denied: '…/bin/postgres'`, a traceback, exit 1)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import verifier
from tests.integration.conftest import SourceDatabase
from tests.support.cli_config import write_config
from verifier.repository.backups import Repository
from verifier.repository.history import History

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="the sandbox runs as verify.run_as only when the agent is root"
)
DEBIAN_BIN = Path("/usr/lib/postgresql")


@pytest.fixture
def root_home() -> Iterator[Path]:
    """Yields a directory only root can enter (like /root), in the system's temporary directory (the
    test's own tmp_path lies under pytest's 0700 directory, which would be named instead)."""
    private = Path(tempfile.mkdtemp(prefix="root-home-"))
    private.chmod(0o700)
    try:
        yield private
    finally:
        shutil.rmtree(private)


def _programs_in(private: Path) -> Path:
    """Returns a bin_dir inside `private` (like /root/pg/bin): links to this host's PostgreSQL programs."""
    installed = max(DEBIAN_BIN.glob("*/bin"), key=lambda path: int(path.parent.name))
    bin_dir = private / "pg" / "bin"
    bin_dir.mkdir(parents=True)
    for program in installed.iterdir():
        (bin_dir / program.name).symlink_to(program)
    return bin_dir


def _the_line(completed: subprocess.CompletedProcess[str], setting: str, blocked: Path) -> str:
    """Returns why the run could not run (from its JSON report): that the account cannot reach `setting`,
    naming the directory `blocked` and the fix."""
    shown = completed.stdout + completed.stderr
    assert "Traceback" not in shown and "Errno 13" not in shown, shown
    line = str(json.loads(completed.stdout)["could_not_run"])
    assert "\n" not in line
    assert f"cannot reach {setting}" in line and "pgbv-sandbox" in line, line
    assert f"cannot enter {blocked} " in line, line
    assert f"setfacl -m u:pgbv-sandbox:x {blocked}" in line
    return line


@pytest.mark.parametrize("command", [("run",), ("check",)], ids=" ".join)
def test_programs_the_sandbox_account_cannot_reach_are_one_line_and_exit_3(
    source_db: SourceDatabase, tmp_path: Path, root_home: Path, command: tuple[str, ...]
) -> None:
    bin_dir = _programs_in(root_home)
    repository = tmp_path / "repo"
    if command == ("check",):  # a backup to check, made with the reachable programs
        assert verifier("run", "--config", write_config(tmp_path / "good.yaml", source_db, repository)).returncode == 0
    config = write_config(tmp_path / "config.yaml", source_db, repository, postgres={"bin_dir": str(bin_dir)})
    completed = verifier(*command, "--config", config, "--json")
    assert completed.returncode == 3, completed.stdout + completed.stderr
    line = _the_line(completed, "postgres.bin_dir", root_home)
    assert f"postgres.bin_dir {bin_dir}:" in line
    assert "verified after the dump instead" not in completed.stderr  # it could not be: nothing promises it
    newest = History(Repository(repository).history_path).runs(limit=1)  # the night is recorded, not lost
    assert newest and newest[0].command == command[0], newest


def test_a_sandbox_directory_the_account_cannot_enter_is_one_line_and_exit_3(
    source_db: SourceDatabase, tmp_path: Path, root_home: Path
) -> None:
    config = write_config(tmp_path / "config.yaml", source_db, tmp_path / "repo", verify={"temp_dir": str(root_home)})
    completed = verifier("run", "--config", config, "--json")
    assert completed.returncode == 3, completed.stdout + completed.stderr
    _the_line(completed, "verify.temp_dir", root_home)
    assert list(root_home.iterdir()) == []


def test_doctor_reports_programs_the_sandbox_account_cannot_reach(
    source_db: SourceDatabase, tmp_path: Path, root_home: Path
) -> None:
    bin_dir = _programs_in(root_home)
    config = write_config(tmp_path / "config.yaml", source_db, tmp_path / "repo", postgres={"bin_dir": str(bin_dir)})
    completed = verifier("doctor", "--config", config)
    assert completed.returncode == 3, completed.stdout + completed.stderr
    reach = [line for line in completed.stdout.splitlines() if line.startswith("programs reach")]
    assert len(reach) == 1, completed.stdout
    assert f"cannot enter {root_home} " in reach[0], reach[0]


def test_the_archive_check_does_not_claim_a_read_through_when_the_sandbox_did_not_start(
    source_db: SourceDatabase, tmp_path: Path, root_home: Path
) -> None:
    """Issue 22.4: `archive` said OK "checksums match the manifest; the restore reads it to the end" while
    nothing had read it (the sandbox could not start) and the JSON said read_through false."""
    repository = tmp_path / "repo"
    assert verifier("run", "--config", write_config(tmp_path / "good.yaml", source_db, repository)).returncode == 0
    config = write_config(tmp_path / "config.yaml", source_db, repository, verify={"temp_dir": str(root_home)})
    completed = verifier("check", "--config", config, "--json")
    report = json.loads(completed.stdout)
    (archive,) = [result for result in report["results"] if result["name"] == "archive"]
    assert "reads it to the end" not in archive["summary"] and "reads to the end" not in archive["summary"]
    assert "checksums match the manifest" in archive["summary"]
    assert "not read to the end" in archive["summary"], archive["summary"]
