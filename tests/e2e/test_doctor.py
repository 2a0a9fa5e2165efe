"""`verifier doctor`: what a dump could reach from the sandbox, and `--fix` creating the account."""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.e2e.conftest import verifier
from tests.integration.conftest import SourceDatabase
from tests.support.cli_config import write_config as write_test_config
from verifier.config import DEFAULT_ACCOUNT

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox account is used when the agent runs as root")


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A directory whose parent anyone may traverse, so that only its own modes decide."""
    directory = Path(tempfile.mkdtemp(prefix="pgbv-doctor-"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def write_config(workdir: Path, source_db: SourceDatabase, run_as: str, password_file: Path) -> Path:
    config = workdir / "config.yaml"
    data = {
        "source": {
            "host": source_db.cluster.host,
            "port": source_db.cluster.port,
            "dbname": source_db.dbname,
            "user": "postgres",
            "password": f"file:{password_file}",
        },
        "repository": {"path": str(workdir / "repo")},
        "verify": {"run_as": run_as},
    }
    config.write_text(yaml.safe_dump(data))
    return config


def test_doctor_names_what_the_sandbox_could_read(workdir: Path, source_db: SourceDatabase) -> None:
    repository = workdir / "repo"
    repository.mkdir(mode=0o700)
    password_file = workdir / "pg_password"
    password_file.write_text("not-a-real-password\n")
    password_file.chmod(0o600)
    config = write_config(workdir, source_db, DEFAULT_ACCOUNT, password_file)

    completed = verifier("doctor", "--config", config)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert f"sandbox account:           {DEFAULT_ACCOUNT} (uid" in completed.stdout
    assert f"repository:                {repository}: not readable" in completed.stdout
    assert f"production data directory: {source_db.cluster.data_dir}: not readable" in completed.stdout
    assert f"secret file:               {password_file}: not readable" in completed.stdout
    assert "not-a-real-password" not in completed.stdout + completed.stderr

    password_file.chmod(0o644)  # a careless mode: the sandbox could read the source's password
    completed = verifier("doctor", "--config", config)
    assert completed.returncode == 2
    assert f"{password_file}: READABLE by the sandbox" in completed.stdout


def test_doctor_fix_creates_a_missing_account_and_refuses_postgres(workdir: Path, source_db: SourceDatabase) -> None:
    account = f"pgbv-t{secrets.token_hex(3)}"
    password_file = workdir / "pg_password"
    password_file.write_text("x\n")
    password_file.chmod(0o600)
    try:
        config = write_config(workdir, source_db, account, password_file)
        completed = verifier("doctor", "--config", config)
        assert completed.returncode == 2
        assert f"verify.run_as: user {account!r} does not exist" in completed.stdout

        completed = verifier("doctor", "--config", config, "--fix")
        assert completed.returncode == 0, completed.stdout + completed.stderr
        assert f"created the sandbox account {account}" in completed.stderr
        entry = pwd.getpwnam(account)
        assert entry.pw_shell == "/usr/sbin/nologin" and not Path(entry.pw_dir).exists()
        assert f"sandbox groups:            {account}\n" in completed.stdout
    finally:
        subprocess.run(["userdel", account], capture_output=True, check=False)

    completed = verifier("doctor", "--config", write_config(workdir, source_db, "postgres", password_file))
    assert completed.returncode == 2
    assert "verify.run_as: 'postgres' is privileged" in completed.stdout


def test_doctor_says_unknown_where_the_server_does_not_name_its_data_directory(
    source_db: SourceDatabase, tmp_path: Path
) -> None:
    """Issue 22.5: with a non-superuser source role the server does not say its data directory; doctor
    printed Debian's stock /var/lib/postgresql as production's, "READABLE by the sandbox", exit 2."""
    role = f"owner_{source_db.dbname}"
    source_db.execute(f"CREATE ROLE {role} LOGIN")
    try:
        config = write_test_config(tmp_path / "config.yaml", source_db, tmp_path / "repo")
        text = config.read_text().replace("user: postgres", f"user: {role}")
        config.write_text(text)
        completed = verifier("doctor", "--config", config)
    finally:
        source_db.execute(f"DROP ROLE {role}")
    lines = [line for line in completed.stdout.splitlines() if line.startswith("production data directory")]
    assert lines, completed.stdout
    assert "unknown" in lines[0], lines[0]
    assert all("a guess" in line for line in lines[1:]), lines
    assert not any(line.split(":", 1)[1].strip().startswith("/var/lib/postgresql:") for line in lines), lines
