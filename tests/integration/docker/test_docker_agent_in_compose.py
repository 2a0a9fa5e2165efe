"""The agent itself in a container next to the database, as deploy/docker-compose.yml runs it: the
engine socket mounted, the repository at the same path inside and outside, the compose project's
network shared with `db`. The agent must find `db`, dump inside it, and prove the dump in a
sandbox without a network, reached through a socket directory it makes under the repository (the
one path the engine sees, found through the agent container's own mounts; deep enough here that the
socket's path exceeds a unix socket address, so the agent connects through a short alias).

The agent container runs this checkout's venv (mounted read-only at the same paths) on the test
image, which carries Debian's python3 for exactly this purpose.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

import verifier
from tests.integration.docker.conftest import TEST_NETWORK
from tests.support.dockerd import PrivateDockerd
from verifier.docker.engine import SANDBOX_LABEL
from verifier.repository.backups import Repository

pytestmark = pytest.mark.docker

CONFIG = """\
source:
  docker: {compose_project: eatfit24, service: db}
verify: {sandbox: docker}
repository: {path: REPOSITORY}
checks: {min_count: 1}
"""


def same_path_mounts(*paths: Path) -> dict[str, dict[str, str]]:
    """Returns read-only bind mounts of `paths` at the same place, skipping ones below another."""
    chosen: list[Path] = []
    for path in sorted({p.resolve() for p in paths}, key=lambda p: len(p.parts)):
        if not any(path.is_relative_to(parent) for parent in chosen):
            chosen.append(path)
    return {str(path): {"bind": str(path), "mode": "ro"} for path in chosen}


def test_agent_in_a_compose_container_verifies_the_db_service(
    dockerd: PrivateDockerd,
    docker_client: Any,
    postgres_image_tag: str,
    production_container: Any,
    tmp_path: Path,
) -> None:
    repository = tmp_path / "repository"
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG.replace("REPOSITORY", str(repository)))
    checkout = Path(verifier.__file__).resolve().parents[1]
    interpreter_roots = [Path(sys.prefix)]
    if not Path(sys.base_prefix).resolve().is_relative_to("/usr"):
        interpreter_roots.append(Path(sys.base_prefix))  # e.g. pyenv; Debian's python3 is in the image
    volumes = {
        **same_path_mounts(checkout, *interpreter_roots),
        str(dockerd.socket): {"bind": "/var/run/docker.sock", "mode": "ro"},
        str(tmp_path): {"bind": str(tmp_path), "mode": "rw"},
    }
    agent = docker_client.containers.run(
        postgres_image_tag,
        entrypoint=[str(Path(sys.prefix) / "bin" / "verifier")],
        command=["run", "--config", str(config)],
        detach=True,
        network=TEST_NETWORK,
        labels={"com.docker.compose.project": "eatfit24", "com.docker.compose.service": "backup-verifier"},
        environment={"NO_COLOR": "1"},
        volumes=volumes,
    )
    try:
        status = agent.wait(timeout=300)
        output = agent.logs().decode(errors="replace")
    finally:
        agent.remove(force=True)

    assert status["StatusCode"] == 0, output
    assert "restored into docker container pg-backup-verifier-sandbox-" in output
    assert "s3cret" not in output
    backups = Repository(repository).backups()
    assert len(backups) == 1 and backups[0].manifest is not None
    assert backups[0].manifest.counts_by_table()[("public", "meals")] == 5000
    label = {"label": SANDBOX_LABEL}
    assert docker_client.containers.list(all=True, filters=label) == []
    assert docker_client.networks.list(filters=label) == []
