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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from deploy import build_image
from tests.integration.docker.conftest import (
    COMPOSE_PROJECT,
    COMPOSE_SERVICE,
    PRODUCTION_DB,
    TEST_NETWORK,
    address_of,
    build_agent_image,
)
from tests.support.dockerd import PrivateDockerd
from verifier.config import parse_config
from verifier.docker.engine import SANDBOX_LABEL
from verifier.repository.databases import Databases

pytestmark = pytest.mark.docker

DEPLOY = Path(build_image.__file__).parent


def compose_service() -> dict[str, Any]:
    """Returns the backup-verifier service of deploy/docker-compose.yml."""
    return dict(yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())["services"]["backup-verifier"])


def example_config(repository: Path, project: str = COMPOSE_PROJECT) -> str:
    """Returns deploy/docker-compose.config.yaml with the repository moved to `repository` (the test's
    own directory, at the same path inside and outside as the example's), the compose project `project`
    and one backup enough."""
    config = yaml.safe_load((DEPLOY / "docker-compose.config.yaml").read_text())
    config["repository"]["path"] = str(repository)
    config["source"]["docker"]["compose_project"] = project
    config["checks"] = {"min_count": 1}
    return yaml.safe_dump(config)


def run_agent(
    docker_client: Any, dockerd: PrivateDockerd, image: str, directory: Path, project: str
) -> tuple[int, str]:
    """Runs `verifier run` once in the agent's image as the compose example runs it, beside the compose
    project `project`'s `db`, with the example config and its repository under `directory`. Returns the
    exit code and the output."""
    directory.chmod(0o755)  # the agent's account reads its config here
    repository = directory / "repository"
    repository.mkdir()
    os.chown(repository, build_image.USER_ID, build_image.USER_ID)  # as the compose example's `install -d`
    config = directory / "config.yaml"
    config.write_text(example_config(repository, project))
    config.chmod(0o644)
    agent = docker_client.containers.run(
        image,
        command=["run", "--config", str(config)],
        detach=True,
        network=TEST_NETWORK,
        labels={"com.docker.compose.project": project, "com.docker.compose.service": "backup-verifier"},
        environment={"NO_COLOR": "1"},
        group_add=[str(dockerd.socket.stat().st_gid)],
        volumes={
            str(dockerd.socket): {"bind": "/var/run/docker.sock", "mode": "ro"},
            str(directory): {"bind": str(directory), "mode": "rw"},
        },
    )
    try:
        status = agent.wait(timeout=600)
        return int(status["StatusCode"]), agent.logs().decode(errors="replace")
    finally:
        agent.remove(force=True)


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

    status, output = run_agent(docker_client, dockerd, agent_image_tag, tmp_path, COMPOSE_PROJECT)

    assert status == 0, output
    eatfit24 = Databases(tmp_path / "repository").repository(PRODUCTION_DB)
    (report,) = eatfit24.reports_dir.glob("*.json")  # the database's own report: the night shows its line
    assert "restored into docker container pg-backup-verifier-sandbox-" in report.read_text()
    assert "s3cret" not in output
    backups = eatfit24.backups()  # `databases: all`: in its subdirectory
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


SHOP_PASSWORD = "s3cret-Shop-pw"


def test_one_run_in_the_agents_image_verifies_every_database_of_the_db_container(
    dockerd: PrivateDockerd,
    docker_client: Any,
    agent_image_tag: str,
    start_postgres: Callable[..., Any],
    tmp_path: Path,
) -> None:
    """The compose example's `databases: all` on a `db` holding two databases: the docker source lists them
    through the container's own credentials (POSTGRES_USER/PASSWORD from its environment), and one run
    proves both, each in its subdirectory; `postgres` and the templates are left out."""
    shop = start_postgres(  # its own compose project: test_docker_source's "shop" may run beside it
        "mall-db-1",
        environment={"POSTGRES_USER": "shop", "POSTGRES_PASSWORD": SHOP_PASSWORD, "POSTGRES_DB": "shop"},
        labels={
            "com.docker.compose.project": "mall",
            "com.docker.compose.service": COMPOSE_SERVICE,
            "com.docker.compose.oneoff": "False",
        },
    )
    server = {"host": address_of(shop), "user": "shop", "password": SHOP_PASSWORD}
    with psycopg.connect(**server, dbname="shop", autocommit=True) as connection:
        connection.execute("CREATE TABLE carts (id int PRIMARY KEY)")
        connection.execute("INSERT INTO carts SELECT generate_series(1, 70)")
        connection.execute("CREATE DATABASE billing")
    with psycopg.connect(**server, dbname="billing") as connection:
        connection.execute(
            "CREATE TABLE invoices (id int PRIMARY KEY); INSERT INTO invoices SELECT generate_series(1, 40)"
        )

    status, output = run_agent(docker_client, dockerd, agent_image_tag, tmp_path, "mall")

    assert status == 0, output
    assert "s3cret" not in output
    databases = Databases(tmp_path / "repository")
    assert databases.held() == ["billing", "shop"]
    counts = {}
    for name in databases.held():
        (backup,) = databases.repository(name).backups()
        assert backup.manifest is not None and backup.manifest.source.dbname == name
        counts.update(backup.manifest.counts_by_table())
    assert counts == {("public", "carts"): 70, ("public", "invoices"): 40}
    lines = output.splitlines()
    assert any(line.startswith("billing ") and line.endswith("verified, OK") for line in lines), output
    assert any(line.startswith("shop ") and line.endswith("verified, OK") for line in lines), output
    (page,) = (tmp_path / "repository" / "reports").glob("*.html")  # the night's one page
    assert "billing" in page.read_text() and "shop" in page.read_text()
