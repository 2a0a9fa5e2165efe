"""The agent's own image (built by deploy/build-image from Debian packages) next to the database, as
deploy/docker-compose.yml runs it with deploy/docker-compose.config.yaml: the image's non-root account
with the engine socket's group, the socket mounted, the repository bind-mounted at the same path inside
and outside, the compose project's network shared with `db`. The agent must find `db`, dump inside it,
and prove the dump in a sandbox without a network, reached through a socket directory it makes under
the repository (the one path the engine sees, found through the agent container's own mounts; deep
enough here that the socket's path exceeds a unix socket address, so the agent connects through a
short alias).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy import build_image
from tests.integration.docker.conftest import TEST_NETWORK, build_agent_image
from tests.support.dockerd import PrivateDockerd
from verifier.config import parse_config
from verifier.docker.engine import SANDBOX_LABEL
from verifier.repository.backups import Repository

pytestmark = pytest.mark.docker

DEPLOY = Path(build_image.__file__).parent


def compose_service() -> dict[str, Any]:
    """Returns the backup-verifier service of deploy/docker-compose.yml."""
    return dict(yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())["services"]["backup-verifier"])


def example_config(repository: Path) -> str:
    """Returns deploy/docker-compose.config.yaml with the repository moved to `repository` (the test's
    own directory, at the same path inside and outside as the example's) and one backup enough."""
    config = yaml.safe_load((DEPLOY / "docker-compose.config.yaml").read_text())
    config["repository"]["path"] = str(repository)
    config["checks"] = {"min_count": 1}
    return yaml.safe_dump(config)


def test_the_compose_example_mounts_the_repository_at_the_same_path() -> None:
    example = parse_config((DEPLOY / "docker-compose.config.yaml").read_text(), environment={})
    service = compose_service()
    repository = str(example.repository.path)
    assert f"{repository}:{repository}" in service["volumes"]
    assert "/var/run/docker.sock:/var/run/docker.sock:ro" in service["volumes"]
    assert service["image"] == build_image.IMAGE
    assert service["command"] == ["daemon", "--config", build_image.CONFIG]
    assert service["group_add"]


def test_the_agents_image_verifies_the_db_service_from_a_compose_container(
    dockerd: PrivateDockerd,
    docker_client: Any,
    agent_image_tag: str,
    production_container: Any,
    tmp_path: Path,
) -> None:
    image = docker_client.images.get(agent_image_tag)
    assert image.attrs["Config"]["User"] == f"{build_image.USER_ID}:{build_image.USER_ID}"
    tmp_path.chmod(0o755)  # the agent's account reads its config here
    repository = tmp_path / "repository"
    repository.mkdir()
    os.chown(repository, build_image.USER_ID, build_image.USER_ID)  # as the compose example's `install -d`
    config = tmp_path / "config.yaml"
    config.write_text(example_config(repository))
    config.chmod(0o644)
    agent = docker_client.containers.run(
        agent_image_tag,
        command=["run", "--config", str(config)],
        detach=True,
        network=TEST_NETWORK,
        labels={"com.docker.compose.project": "eatfit24", "com.docker.compose.service": "backup-verifier"},
        environment={"NO_COLOR": "1"},
        group_add=[str(dockerd.socket.stat().st_gid)],
        volumes={
            str(dockerd.socket): {"bind": "/var/run/docker.sock", "mode": "ro"},
            str(tmp_path): {"bind": str(tmp_path), "mode": "rw"},
        },
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
    assert backups[0].dump_path.stat().st_uid == build_image.USER_ID
    label = {"label": SANDBOX_LABEL}
    assert docker_client.containers.list(all=True, filters=label) == []
    assert docker_client.networks.list(filters=label) == []


def test_building_the_image_again_changes_nothing(
    dockerd: PrivateDockerd, docker_client: Any, agent_image_tag: str
) -> None:
    """The recipe's hash is on the image: a second build-image of the same checkout leaves it alone."""
    before = docker_client.images.get(agent_image_tag).id

    completed = build_agent_image(dockerd)

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == f"{agent_image_tag}\n"
    assert completed.stderr.startswith(f"build-image: {agent_image_tag} is up to date (recipe ")
    assert docker_client.images.get(agent_image_tag).id == before
