"""The production database in a container: found by name or compose labels, credentials from its
environment or `*_FILE` secrets, programs run inside it with streamed output and real exit codes.

All against a real Docker engine (a private dockerd) and real PostgreSQL containers.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.docker.conftest import (
    COMPOSE_PROJECT,
    COMPOSE_SERVICE,
    PRODUCTION_DB,
    PRODUCTION_PASSWORD,
    PRODUCTION_USER,
    address_of,
)
from tests.support.dockerd import PrivateDockerd
from verifier.config import DockerSourceConfig, SourceConfig
from verifier.docker.container import doctor_facts, read_container_file
from verifier.docker.engine import connect, find_container
from verifier.errors import ContainerError, ContainerNotRunning, DockerUnavailable
from verifier.pipeline.source import resolve_container_source

pytestmark = pytest.mark.docker


def source_config(dockerd: PrivateDockerd, **docker_options: str) -> SourceConfig:
    return SourceConfig(docker=DockerSourceConfig(docker_host=dockerd.url, **docker_options))


def test_found_by_name_and_by_compose_labels(dockerd: PrivateDockerd, production_container: Any) -> None:
    client = connect(dockerd.url)
    by_name = find_container(client, DockerSourceConfig(container="eatfit24-db-1"))
    by_labels = find_container(client, DockerSourceConfig(compose_project=COMPOSE_PROJECT, service=COMPOSE_SERVICE))
    assert by_name.id == by_labels.id == production_container.id


def test_unknown_name_lists_the_containers_there(dockerd: PrivateDockerd, production_container: Any) -> None:
    client = connect(dockerd.url)
    with pytest.raises(ContainerError) as raised:
        find_container(client, DockerSourceConfig(container="eatfit24-db"))
    message = str(raised.value)
    assert "no container named 'eatfit24-db'" in message
    assert "eatfit24-db-1" in message
    assert raised.value.exit_code == 3
    assert "\n" not in message


def test_unknown_compose_service_lists_the_services_there(dockerd: PrivateDockerd, production_container: Any) -> None:
    client = connect(dockerd.url)
    with pytest.raises(ContainerError) as raised:
        find_container(client, DockerSourceConfig(compose_project=COMPOSE_PROJECT, service="postgres"))
    assert "eatfit24/db" in str(raised.value)


def test_two_containers_of_one_service_are_named_not_guessed(
    dockerd: PrivateDockerd, docker_client: Any, postgres_image_tag: str
) -> None:
    labels = {"com.docker.compose.project": "shop", "com.docker.compose.service": "db"}
    one_off = {**labels, "com.docker.compose.oneoff": "True"}
    created = [
        docker_client.containers.create(postgres_image_tag, name=name, labels=container_labels)
        for name, container_labels in (("shop-db-1", labels), ("shop-db-2", labels), ("shop-db-run-1", one_off))
    ]
    try:
        client = connect(dockerd.url)
        with pytest.raises(ContainerError) as raised:
            find_container(client, DockerSourceConfig(compose_project="shop", service="db"))
        message = str(raised.value)
        assert "2 containers" in message
        assert "shop-db-1 (created)" in message and "shop-db-2 (created)" in message
        assert "shop-db-run-1" not in message
        assert "source.docker.container" in message
    finally:
        for container in created:
            container.remove(force=True, v=True)


def test_stopped_container_is_an_error_not_a_hang(dockerd: PrivateDockerd, start_postgres: Any) -> None:
    container = start_postgres("stopped-db", environment={"POSTGRES_PASSWORD": "x"})
    container.stop(timeout=10)
    try:
        with pytest.raises(ContainerNotRunning) as raised:
            resolve_container_source(source_config(dockerd, container="stopped-db"))
        assert "stopped-db is exited" in str(raised.value)
        assert "docker start stopped-db" in str(raised.value)
        assert raised.value.exit_code == 2
    finally:
        container.remove(force=True, v=True)


def test_credentials_from_the_container_environment(dockerd: PrivateDockerd, production_container: Any) -> None:
    source = resolve_container_source(source_config(dockerd, container="eatfit24-db-1"))
    params = source.params
    assert (params.user, params.password, params.dbname) == (PRODUCTION_USER, PRODUCTION_PASSWORD, PRODUCTION_DB)
    assert params.host == address_of(production_container)
    assert "user from container env POSTGRES_USER" in source.credentials_from
    assert "password from container env POSTGRES_PASSWORD" in source.credentials_from
    assert PRODUCTION_PASSWORD not in source.credentials_from + source.description + repr(source)
    with params.connect() as connection:
        assert connection.execute("SELECT count(*) FROM meals").fetchone() == (5000,)


def test_credentials_from_secret_files_read_through_the_container(
    dockerd: PrivateDockerd, start_postgres: Any, secret_dir: Path
) -> None:
    (secret_dir / "pg_user").write_text("shopkeeper\n")
    (secret_dir / "pg_password").write_text("from-a-secret-file\n")
    for secret in secret_dir.iterdir():
        secret.chmod(0o644)
    container = start_postgres(
        "secrets-db",
        environment={
            "POSTGRES_USER_FILE": "/run/secrets/pg_user",
            "POSTGRES_PASSWORD_FILE": "/run/secrets/pg_password",
            "POSTGRES_DB": "shop",
        },
        volumes={str(secret_dir): {"bind": "/run/secrets", "mode": "ro"}},
    )
    try:
        source = resolve_container_source(source_config(dockerd, container="secrets-db"))
        assert (source.params.user, source.params.password, source.params.dbname) == (
            "shopkeeper",
            "from-a-secret-file",
            "shop",
        )
        assert "password from container file /run/secrets/pg_password (POSTGRES_PASSWORD_FILE)" in (
            source.credentials_from
        )
        with source.params.connect() as connection:
            assert connection.execute("SELECT current_user").fetchone() == ("shopkeeper",)
    finally:
        container.remove(force=True, v=True)


def test_config_overrides_the_container_environment(dockerd: PrivateDockerd, production_container: Any) -> None:
    config = SourceConfig(
        dbname="postgres", docker=DockerSourceConfig(docker_host=dockerd.url, container="eatfit24-db-1")
    )
    source = resolve_container_source(config)
    assert source.params.dbname == "postgres"
    assert "dbname from config source.dbname" in source.credentials_from
    with source.params.connect() as connection:
        assert connection.execute("SELECT current_database()").fetchone() == ("postgres",)


def test_dump_inside_the_container_streams_and_reports_the_exit_code(
    dockerd: PrivateDockerd, production_container: Any, tmp_path: Path, postgres_installation: Any
) -> None:
    source = resolve_container_source(source_config(dockerd, container="eatfit24-db-1"))
    assert source.executor is not None
    program = source.executor.start(
        ["pg_dump", "--no-password", "--format=custom"], environment=source.params.libpq_environment()
    )
    archive = tmp_path / "eatfit24.dump"
    with archive.open("wb") as target:
        for chunk in program.stdout_chunks():
            target.write(chunk)
    assert program.wait() == 0, program.stderr_text()
    listing = subprocess.run(
        [str(postgres_installation.program("pg_restore")), "--list", str(archive)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "TABLE DATA public meals" in listing
    assert "TABLE DATA billing invoices" in listing


def test_dump_of_a_missing_database_fails_with_pg_dumps_message(
    dockerd: PrivateDockerd, production_container: Any
) -> None:
    config = SourceConfig(dbname="nope", docker=DockerSourceConfig(docker_host=dockerd.url, container="eatfit24-db-1"))
    source = resolve_container_source(config)
    assert source.executor is not None
    program = source.executor.start(
        ["pg_dump", "--no-password", "--format=custom"], environment=source.params.libpq_environment()
    )
    output = b"".join(program.stdout_chunks())
    assert program.wait() == 1
    assert output == b""
    assert 'database "nope" does not exist' in program.stderr_text()


def test_plain_sql_streamed_into_psql_inside_the_container(dockerd: PrivateDockerd, production_container: Any) -> None:
    source = resolve_container_source(source_config(dockerd, container="eatfit24-db-1"))
    assert source.executor is not None
    program = source.executor.start(
        ["psql", "--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1", "--file=-"],
        environment=source.params.libpq_environment(),
        stdin=True,
        stdout=False,
    )
    program.write_stdin(b"CREATE TABLE streamed (n integer);\n")
    for start in range(0, 20_000, 1000):
        rows = "".join(f"{n}\n" for n in range(start, start + 1000))
        program.write_stdin(f"COPY streamed FROM stdin;\n{rows}\\.\n".encode())
    program.close_stdin()
    assert program.wait() == 0, program.stderr_text()
    try:
        with source.params.connect() as connection:
            assert connection.execute("SELECT count(*), sum(n) FROM streamed").fetchone() == (20_000, 199_990_000)
    finally:
        with source.params.connect() as connection:
            connection.execute("DROP TABLE streamed")


def test_psql_error_inside_the_container_is_reported(dockerd: PrivateDockerd, production_container: Any) -> None:
    source = resolve_container_source(source_config(dockerd, container="eatfit24-db-1"))
    assert source.executor is not None
    program = source.executor.start(
        ["psql", "--no-psqlrc", "--set=ON_ERROR_STOP=1", "--file=-"],
        environment=source.params.libpq_environment(),
        stdin=True,
        stdout=False,
    )
    program.write_stdin(b"SELECT 1;\nSELECT * FROM no_such_table;\n")
    program.close_stdin()
    assert program.wait() == 3
    assert 'relation "no_such_table" does not exist' in program.stderr_text()


def test_doctor_facts_name_sources_never_values(dockerd: PrivateDockerd, production_container: Any) -> None:
    facts = doctor_facts(source_config(dockerd, compose_project=COMPOSE_PROJECT, service="db"))
    assert facts["container"].startswith("eatfit24-db-1 ")
    assert facts["server"].startswith("postgres (PostgreSQL) 15.")
    assert facts["compose"] == "project eatfit24, service db"
    assert facts["password from"] == "container env POSTGRES_PASSWORD"
    assert PRODUCTION_PASSWORD not in " ".join(facts.values())


def test_engine_down_is_one_line_and_exit_3(dockerd: PrivateDockerd) -> None:
    engine = PrivateDockerd()
    engine.start()
    engine.stop()
    config = SourceConfig(docker=DockerSourceConfig(docker_host=engine.url, container="eatfit24-db-1"))
    with pytest.raises(DockerUnavailable) as raised:
        resolve_container_source(config)
    message = str(raised.value)
    assert raised.value.exit_code == 3
    assert "\n" not in message
    assert message.startswith(f"Docker engine at {engine.url} is not reachable")


def test_secret_file_missing_in_the_container_is_named(dockerd: PrivateDockerd, production_container: Any) -> None:
    with pytest.raises(ContainerError) as raised:
        read_container_file(production_container, "/run/secrets/pg_password")
    assert str(raised.value) == "/run/secrets/pg_password does not exist in container eatfit24-db-1"


def test_killing_a_program_stops_it_inside_the_container(dockerd: PrivateDockerd, production_container: Any) -> None:
    source = resolve_container_source(source_config(dockerd, container="eatfit24-db-1"))
    assert source.executor is not None
    program = source.executor.start(
        ["psql", "--no-psqlrc", "--command=SELECT 1", "--command=SELECT pg_sleep(600)"],
        environment=source.params.libpq_environment(),
    )
    assert next(program.stdout_chunks()).strip().startswith(b"?column?")
    program.kill()
    assert program.wait() != 0
    assert list(program.stdout_chunks()) == []
    top = production_container.top(ps_args="-eo pid,args")
    assert not [process for process in top["Processes"] if process[-1].startswith("psql")], top


def test_a_program_in_the_container_says_when_its_output_started(
    dockerd: PrivateDockerd, production_container: Any
) -> None:
    """pg_dump writes nothing before it has read the whole schema, then blocks on its unread stream: the
    watch over its start ends at its first byte. In a container there is no local pipe to look at, and
    with a large schema every such night waited out lock_wait_timeout + 30 s; the program says it now."""
    source = resolve_container_source(source_config(dockerd, container="eatfit24-db-1"))
    assert source.executor is not None
    environment = source.params.libpq_environment()
    silent = source.executor.start(["psql", "--no-psqlrc", "--command=SELECT pg_sleep(600)"], environment=environment)
    talking = source.executor.start(
        ["psql", "--no-psqlrc", "--command=SELECT 1", "--command=SELECT pg_sleep(600)"], environment=environment
    )
    try:
        deadline = time.monotonic() + 60
        while not talking.output_started() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert talking.output_started()
        assert not silent.output_started()
        assert next(talking.stdout_chunks()).strip().startswith(b"?column?")  # nothing was taken from the stream
    finally:
        for program in (silent, talking):
            program.kill()
            program.wait()
