"""Fixtures for the Docker tests: a private dockerd, the locally built PostgreSQL image, and a
'production' container laid out like a compose service (`eatfit24-db-1`, project `eatfit24`,
service `db`) on a network the suite creates, its port not published.

Everything runs against the real engine; the daemon, its containers, networks and directories are
removed at the end of the session.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from deploy import build_image
from tests.support import postgres_image
from tests.support.dockerd import PrivateDockerd, dockerd_available
from tests.support.requirements import need

logger = logging.getLogger(__name__)

PRODUCTION_USER = "eatfit24"
PRODUCTION_PASSWORD = "s3cret-Production-pw"
PRODUCTION_DB = "eatfit24"
COMPOSE_PROJECT = "eatfit24"
COMPOSE_SERVICE = "db"
TEST_NETWORK = "pgbv-test-eatfit24_default"

SEED_SQL = """
CREATE TABLE meals (id bigserial PRIMARY KEY, name text NOT NULL, kcal integer);
CREATE TABLE users (id bigserial PRIMARY KEY, email text UNIQUE);
CREATE SCHEMA billing;
CREATE TABLE billing.invoices (id bigserial PRIMARY KEY, user_id bigint, amount numeric(10,2));
INSERT INTO meals (name, kcal) SELECT 'meal ' || g, g % 900 FROM generate_series(1, 5000) AS g;
INSERT INTO users (email) SELECT 'user' || g || '@example.org' FROM generate_series(1, 300) AS g;
INSERT INTO billing.invoices (user_id, amount) SELECT g % 300, g * 1.5 FROM generate_series(1, 1200) AS g;
"""


@pytest.fixture(scope="session")
def dockerd() -> Iterator[PrivateDockerd]:
    """A private Docker daemon for the whole session, stopped and removed at the end."""
    need(dockerd_available(), "the Docker engine (dockerd, as root; dev/install-docker installs it)")
    with PrivateDockerd() as daemon:
        yield daemon


@pytest.fixture(scope="session")
def docker_client(dockerd: PrivateDockerd) -> Iterator[Any]:
    """An SDK client connected to the private daemon."""
    client = dockerd.client()
    yield client
    client.close()


@pytest.fixture(scope="session")
def postgres_image_tag(docker_client: Any) -> str:
    """The PostgreSQL 15 test image, built from debootstrap on first use and cached as a tarball."""
    need(shutil.which("debootstrap") is not None, "debootstrap (dev/install-docker installs it)")
    started = time.monotonic()
    tag = postgres_image.ensure_image(docker_client)
    logger.info("test image ready in %.1f s", time.monotonic() - started)
    return tag


def build_agent_image(dockerd: PrivateDockerd) -> subprocess.CompletedProcess[str]:
    """Runs `deploy/build-image` into the private engine (DOCKER_HOST), its root filesystems cached beside
    the PostgreSQL image's. Returns the finished process (stdout: the tag; stderr: what it did)."""
    return subprocess.run(
        [str(Path(build_image.__file__).with_name("build-image")), "--cache-dir", str(postgres_image.CACHE_DIR)],
        env={**os.environ, "DOCKER_HOST": dockerd.url},
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture(scope="session")
def agent_image_tag(dockerd: PrivateDockerd) -> str:
    """The agent's own image, built the way a machine without a registry builds it (`deploy/build-image`)."""
    for program in ("debootstrap", "docker"):
        need(shutil.which(program) is not None, f"{program} (dev/install-docker installs it)")
    started = time.monotonic()
    completed = build_agent_image(dockerd)
    assert completed.returncode == 0, completed.stderr
    logger.info("agent image ready in %.1f s: %s", time.monotonic() - started, completed.stderr.strip())
    return completed.stdout.strip()


@pytest.fixture(scope="session")
def test_network(docker_client: Any) -> Any:
    """A bridge network like compose's `<project>_default`: containers on it are reachable from the host."""
    return docker_client.networks.create(TEST_NETWORK, driver="bridge")


def wait_ready(container: Any, timeout: float = 60.0) -> None:
    """Waits until the container's final server answers on TCP (not the entrypoint's set-up server)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        container.reload()
        if container.status != "running":
            raise AssertionError(f"container {container.name} is {container.status}: {container.logs()[-2000:]!r}")
        exit_code, _ = container.exec_run(["pg_isready", "--quiet", "--host=127.0.0.1"])
        if exit_code == 0:
            check_unix_socket(container)
            return
        time.sleep(0.2)
    raise AssertionError(f"container {container.name} not ready: {container.logs()[-2000:]!r}")


def check_unix_socket(container: Any) -> None:
    """Asserts that a program started with `docker exec` reaches the ready server over its unix socket.

    The agent runs pg_dump and psql in the container that way (`DockerExecutor`), so a missing socket
    fails every dump with `connection to server on socket "/var/run/postgresql/.s.PGSQL.5432" failed`.
    Raises AssertionError saying which of the two known causes it is: `docker exec` landing outside
    the container's filesystem (the engine runs in a plain chroot: runc's exec enters the mount
    namespace's root, which a chroot does not change), or a server that made no socket (its log).
    """
    exit_code, _ = container.exec_run(["pg_isready", "--quiet"])
    if exit_code == 0:
        return
    in_image, _ = container.exec_run(["test", "-x", postgres_image.ENTRYPOINT_PATH])
    if in_image != 0:
        raise AssertionError(
            f"`docker exec` in {container.name} runs outside the container's filesystem "
            f"({postgres_image.ENTRYPOINT_PATH} is not there), so pg_dump cannot find the server's unix socket: "
            "dockerd runs in a chroot, and runc's exec enters the mount namespace's root, not the chroot's. "
            "Run the suite on a machine, VM or container, or enter the chroot with pivot_root in its own "
            "mount namespace (systemd-nspawn, or dev/enter-bare-debian), not with chroot"
        )
    raise AssertionError(
        f"the server in {container.name} answers on TCP but has no unix socket in /var/run/postgresql: "
        f"{container.logs()[-2000:]!r}"
    )


def address_of(container: Any) -> str:
    """Returns the container's address on the test network."""
    container.reload()
    return str(container.attrs["NetworkSettings"]["Networks"][TEST_NETWORK]["IPAddress"])


@pytest.fixture(scope="session")
def start_postgres(docker_client: Any, postgres_image_tag: str, test_network: Any) -> Iterator[Callable[..., Any]]:
    """Returns a function that starts a PostgreSQL container on the test network and waits for it.

    Every container it starts is removed at the end of the session (and may be removed earlier).
    """
    started: list[Any] = []

    def start(
        name: str | None = None, *, environment: dict[str, str], labels: dict[str, str] | None = None, **options: Any
    ) -> Any:
        container = docker_client.containers.run(
            postgres_image_tag,
            name=name or f"pgbv-test-{uuid.uuid4().hex[:8]}",
            detach=True,
            environment=environment,
            labels=labels or {},
            network=TEST_NETWORK,
            **options,
        )
        started.append(container)
        wait_ready(container)
        return container

    yield start
    for container in started:
        with contextlib.suppress(Exception):
            container.remove(force=True, v=True)


@pytest.fixture(scope="session")
def production_container(start_postgres: Callable[..., Any]) -> Any:
    """The 'production' database as a compose service: labelled, credentials in its env, port unpublished."""
    container = start_postgres(
        "eatfit24-db-1",
        environment={
            "POSTGRES_USER": PRODUCTION_USER,
            "POSTGRES_PASSWORD": PRODUCTION_PASSWORD,
            "POSTGRES_DB": PRODUCTION_DB,
        },
        labels={
            "com.docker.compose.project": COMPOSE_PROJECT,
            "com.docker.compose.service": COMPOSE_SERVICE,
            "com.docker.compose.oneoff": "False",
        },
    )
    with psycopg.connect(
        host=address_of(container), user=PRODUCTION_USER, password=PRODUCTION_PASSWORD, dbname=PRODUCTION_DB
    ) as connection:
        connection.execute(SEED_SQL)
    return container


@pytest.fixture
def secret_dir(tmp_path: Path) -> Path:
    """A directory for secret files bind-mounted into containers (world-readable for the container's user)."""
    tmp_path.chmod(0o755)
    return tmp_path


@pytest.fixture
def engine_over_tcp(dockerd: PrivateDockerd) -> Iterator[str]:
    """The private engine reached as a remote one would be: `tcp://127.0.0.1:PORT`, a forwarder in this
    process relaying each connection to the engine's unix socket. Returns that URL."""
    listener = socket.create_server(("127.0.0.1", 0))
    stopping = threading.Event()

    def pipe(source: socket.socket, target: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                target.sendall(data)
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)  # a half-close (docker exec's end of stdin) passes through

    def relay(client: socket.socket) -> None:
        with client, socket.socket(socket.AF_UNIX) as engine:
            engine.connect(str(dockerd.socket))
            back = threading.Thread(target=pipe, args=(engine, client), daemon=True)
            back.start()
            pipe(client, engine)
            back.join()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stopping.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            threading.Thread(target=relay, args=(client,), daemon=True).start()

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    yield f"tcp://127.0.0.1:{listener.getsockname()[1]}"
    stopping.set()
    server.join(timeout=5)
    listener.close()
