"""The `verifier` command as a user with a compose stack runs it: the few-line config from
docs/docker.md, the engine reached through DOCKER_HOST, and the engine down.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import docker.errors
import pytest

from tests.support.dockerd import PrivateDockerd
from verifier.docker.engine import SANDBOX_LABEL
from verifier.repository.backups import Repository

pytestmark = pytest.mark.docker

COMPOSE_CONFIG = """\
source:
  docker: {compose_project: eatfit24, service: db}
verify: {sandbox: docker}
repository: {path: REPOSITORY}
checks: {min_count: 1}
"""


def verifier_command(*arguments: str, docker_host: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    executable = shutil.which("verifier", path=str(Path(sys.executable).parent))
    assert executable is not None, "the verifier console script is installed in the venv"
    environment = {**os.environ, "DOCKER_HOST": docker_host, "NO_COLOR": "1"}
    return subprocess.run(
        [executable, *arguments], capture_output=True, text=True, env=environment, timeout=timeout, check=False
    )


def test_run_with_the_compose_config_dumps_in_the_container_and_proves_it_in_a_sandbox(
    dockerd: PrivateDockerd, docker_client: Any, production_container: Any, tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(COMPOSE_CONFIG.replace("REPOSITORY", str(tmp_path / "repository")))

    completed = verifier_command("run", "--config", str(config), "--json", docker_host=dockerd.url)

    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "s3cret" not in completed.stdout + completed.stderr
    assert "docker container pg-backup-verifier-sandbox-" in completed.stdout
    backups = Repository(tmp_path / "repository").backups()
    assert len(backups) == 1 and backups[0].manifest is not None
    assert backups[0].manifest.counts_by_table()[("public", "meals")] == 5000
    assert docker_client.containers.list(all=True, filters={"label": SANDBOX_LABEL}) == []


def test_engine_down_exits_3_with_one_line_saying_so(dockerd: PrivateDockerd, tmp_path: Path) -> None:
    """A second private engine, started and stopped: it needs the Docker engine like the session's `dockerd`."""
    engine = PrivateDockerd()
    engine.start()
    engine.stop()
    config = tmp_path / "config.yaml"
    config.write_text(COMPOSE_CONFIG.replace("REPOSITORY", str(tmp_path / "repository")))

    completed = verifier_command("run", "--config", str(config), docker_host=engine.url)

    assert completed.returncode == 3
    output = completed.stdout + completed.stderr
    lines = [line for line in output.splitlines() if "Docker engine" in line]
    assert lines, output
    assert f"Docker engine at {engine.url} is not reachable (no engine socket there)" in " ".join(output.split())


def test_doctor_shows_what_it_found_and_where_credentials_come_from(
    dockerd: PrivateDockerd, production_container: Any, tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(COMPOSE_CONFIG.replace("REPOSITORY", str(tmp_path / "repository")))

    completed = verifier_command("docker", "doctor", "--config", str(config), docker_host=dockerd.url)

    assert completed.returncode == 0, completed.stderr
    lines = dict(line.split(":", 1) for line in completed.stdout.splitlines())
    facts = {name.strip(): value.strip() for name, value in lines.items()}
    assert facts["container"].startswith("eatfit24-db-1 (")
    assert facts["image"].startswith("pg-backup-verifier-test/postgres:15 ")
    assert facts["server"].startswith("postgres (PostgreSQL) 15.")
    assert facts["compose"] == "project eatfit24, service db"
    assert facts["user from"] == "container env POSTGRES_USER"
    assert facts["password from"] == "container env POSTGRES_PASSWORD"
    assert "s3cret" not in completed.stdout + completed.stderr


def test_wrong_database_name_fails_the_run_with_the_servers_message(
    dockerd: PrivateDockerd, production_container: Any, tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        COMPOSE_CONFIG.replace("REPOSITORY", str(tmp_path / "repository")).replace(
            "source:\n", "source:\n  dbname: nope\n"
        )
    )

    completed = verifier_command("run", "--config", str(config), docker_host=dockerd.url)

    assert completed.returncode == 2
    assert 'database "nope" does not exist' in " ".join((completed.stdout + completed.stderr).split())
    assert not list((tmp_path / "repository").glob("nope*"))


def test_sigterm_during_the_restore_removes_the_sandbox(
    dockerd: PrivateDockerd, docker_client: Any, production_container: Any, tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(COMPOSE_CONFIG.replace("REPOSITORY", str(tmp_path / "repository")))
    slow = tmp_path / "slow.sql"
    slow.write_text(  # shaped like pg_dump's plain output (header): anything else is refused unrestored
        "--\n-- PostgreSQL database dump\n--\n\nCREATE TABLE restored_first (n integer);\nSELECT pg_sleep(600);\n"
    )
    executable = shutil.which("verifier", path=str(Path(sys.executable).parent))
    assert executable is not None
    run = subprocess.Popen(
        [executable, "check", "--config", str(config), "--backup", str(slow)],
        env={**os.environ, "DOCKER_HOST": dockerd.url, "NO_COLOR": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        sandbox = wait_for_restore_in_sandbox(docker_client)
        run.send_signal(signal.SIGTERM)
        _, stderr = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()

    assert run.returncode == 3, stderr
    assert "interrupted" in stderr
    label = {"label": SANDBOX_LABEL}
    assert docker_client.containers.list(all=True, filters=label) == [], f"{sandbox} left behind"
    assert docker_client.networks.list(filters=label) == []


def wait_for_restore_in_sandbox(docker_client: Any, limit: float = 120.0) -> str:
    """Waits until a sandbox container runs psql (the restore is under way). Returns its name."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        for container in docker_client.containers.list(filters={"label": SANDBOX_LABEL}):
            with contextlib.suppress(docker.errors.APIError):
                processes = container.top(ps_args="-eo pid,args")["Processes"]
                if any(process[-1].startswith("psql") for process in processes):
                    return str(container.name)
        time.sleep(0.2)
    raise AssertionError("no sandbox started restoring")
