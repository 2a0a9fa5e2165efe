"""The one module that speaks to the Docker engine (through the Docker SDK).

What it gives the pipeline:
- the **source** in a container (`resolve_container_source`): the container found by name or by
  its compose labels, credentials and database name read from its environment (`POSTGRES_*` and
  the `*_FILE` variants, read through the engine), and a `DockerExecutor` that runs `pg_dump`
  inside it, so the dump tool always matches the server;
- the **docker sandbox** (`open_docker_sandbox`): a throwaway container of the production image on
  a private internal network, only the dump bind-mounted read-only at its own path, removed on exit;
  sandboxes left by a killed run are found by label and removed first;
- `doctor_facts` for `verifier doctor`: what was found, where credentials came from, never values.

Snapshot consistency when the port is not published (the common compose case): the agent opens
its snapshot session from the host to the container's address on its network (a container's
address is reachable from the host over the network's bridge), with the credentials from the
container's environment; `pg_dump --snapshot` runs inside the container over the unix socket.
A `source.host`/`source.port` in the config (a published port) takes precedence.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import queue
import re
import secrets
import signal
import socket
import tarfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
import psycopg
import requests.exceptions
from docker.models.containers import Container
from docker.utils import socket as docker_socket

from verifier.config import Config, DockerSourceConfig, SourceConfig
from verifier.errors import DockerUnavailable, SandboxError, SourceUnreachable, VerifierError
from verifier.postgres.connection import PRODUCTION_OPTIONS, ConnectionParams, Source
from verifier.postgres.restore import create_restore_database
from verifier.process import Executor
from verifier.repository.backups import Backup

logger = logging.getLogger(__name__)

SANDBOX_LABEL = "pg-backup-verifier.sandbox"
REPOSITORY_LABEL = "pg-backup-verifier.repository"
COMPOSE_PROJECT = "com.docker.compose.project"
COMPOSE_SERVICE = "com.docker.compose.service"
COMPOSE_ONEOFF = "com.docker.compose.oneoff"
DEFAULT_PORT = 5432
SECRET_FILE_MAX_BYTES = 64 * 1024
EXIT_CODE_WAIT_SECONDS = 30.0
KILLED_WAIT_SECONDS = 5.0
QUEUED_CHUNKS = 16
STDERR_KEEP_BYTES = 1024 * 1024
RESTORED_DATABASE = "restored"
SANDBOX_SUPERUSER = "postgres"
SANDBOX_START_SECONDS = 120.0
# The sandbox's data may be lost at any time: speed over durability, as in the local sandbox.
SANDBOX_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "autovacuum": "off",
    "max_wal_size": "4GB",
    "jit": "off",
}


class ContainerError(VerifierError):
    """The configured container cannot be used: not found, ambiguous, or unreadable (exit 3)."""


class ContainerNotRunning(SourceUnreachable):
    """The production container exists but is stopped: the source is down (exit 2)."""


def connect(docker_host: str | None = None, *, setting: str = "source.docker.docker_host") -> docker.DockerClient:
    """Returns a client connected to the engine at `docker_host` (default: DOCKER_HOST or the local socket).

    Raises DockerUnavailable with one line naming the engine, the reason, and `setting` to change.
    """
    where = docker_host or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    try:
        client = docker.DockerClient(base_url=docker_host) if docker_host else docker.from_env()
        client.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException) as error:
        raise DockerUnavailable(
            f"Docker engine at {where} is not reachable ({_reason(error)}): start it, or set {setting}"
        ) from None
    return client


def find_container(client: docker.DockerClient, selector: DockerSourceConfig) -> Container:
    """Returns the one running container named by `selector` (a name, or compose project + service).

    Raises ContainerError listing the candidates when none or several match, ContainerNotRunning
    when it is stopped, DockerUnavailable when the engine stops answering.
    """
    with _engine_errors():
        if selector.container:
            try:
                container = client.containers.get(selector.container)
            except docker.errors.NotFound:
                names = sorted(c.name for c in client.containers.list(all=True))
                raise ContainerError(
                    f"source.docker.container: no container named {selector.container!r}; "
                    f"containers here: {_listing(names)}"
                ) from None
        else:
            container = _find_compose_service(client, str(selector.compose_project), str(selector.service))
    if container.status != "running":
        raise ContainerNotRunning(
            f"container {container.name} is {container.status}, not running: start it (docker start {container.name})"
        )
    return container


@dataclass(frozen=True)
class Credentials:
    """How to log in to the container's server, and where each part came from (for humans)."""

    user: str
    password: str | None = field(repr=False)
    dbname: str
    port: int
    origins: Mapping[str, str]

    def origin_text(self) -> str:
        """Returns e.g. 'user from container env POSTGRES_USER, password from …' (never values)."""
        return ", ".join(f"{part} from {origin}" for part, origin in self.origins.items())


def read_credentials(container: Container, overrides: SourceConfig) -> Credentials:
    """Returns the credentials the container's entrypoint set up, overridden by the config's values.

    Defaults follow the official image: user `postgres`, database named like the user.
    Raises ContainerError when a `*_FILE` cannot be read through the engine.
    """
    environment = container_environment(container)
    origins: dict[str, str] = {}

    def pick(part: str, configured: str | None, variable: str, default: str | None) -> str | None:
        if configured:
            origins[part] = f"config source.{part}"
            return configured
        if environment.get(variable):
            origins[part] = f"container env {variable}"
            return environment[variable]
        file_variable = f"{variable}_FILE"
        if environment.get(file_variable):
            path = environment[file_variable]
            origins[part] = f"container file {path} ({file_variable})"
            return read_container_file(container, path).rstrip("\n")
        origins[part] = "image default" if default is not None else "not set"
        return default

    password = overrides.password.get_secret_value() if overrides.password else None
    user = pick("user", overrides.user, "POSTGRES_USER", "postgres") or "postgres"
    secret = pick("password", password, "POSTGRES_PASSWORD", None)
    dbname = pick("dbname", overrides.dbname, "POSTGRES_DB", user) or user
    port_text = environment.get("PGPORT", "")
    port = int(port_text) if port_text.isdigit() else DEFAULT_PORT
    return Credentials(user=user, password=secret, dbname=dbname, port=port, origins=origins)


def container_environment(container: Container) -> dict[str, str]:
    """Returns the container's configured environment as a mapping."""
    pairs = (entry.partition("=") for entry in container.attrs["Config"].get("Env") or [])
    return {name: value for name, _, value in pairs}


def read_container_file(container: Container, path: str) -> str:
    """Returns the text of a file as the container sees it (secrets mounts included), via the engine.

    Raises ContainerError when it does not exist, is not a regular file or is too large.
    """
    try:
        stream, stat = container.get_archive(path)
        if stat.get("size", 0) > SECRET_FILE_MAX_BYTES:
            raise ContainerError(f"{path} in container {container.name} is larger than a secret should be")
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
            member = archive.next()
            extracted = archive.extractfile(member) if member is not None and member.isfile() else None
            if extracted is None:
                raise ContainerError(f"{path} in container {container.name} is not a regular file")
            return extracted.read().decode("utf-8")
    except docker.errors.NotFound:
        raise ContainerError(f"{path} does not exist in container {container.name}") from None
    except (docker.errors.APIError, tarfile.TarError, UnicodeDecodeError) as error:
        raise ContainerError(f"cannot read {path} in container {container.name}: {_reason(error)}") from None


def container_address(client: docker.DockerClient, container: Container) -> str:
    """Returns the address the agent reaches the container's server at, without a published port.

    A host-network container is at 127.0.0.1. When the agent itself runs in a container, a network
    both share is preferred. Raises ContainerError when the container has no address.
    """
    if container.attrs["HostConfig"].get("NetworkMode") == "host":
        return "127.0.0.1"
    networks: dict[str, Any] = container.attrs["NetworkSettings"].get("Networks") or {}
    addresses = {name: settings["IPAddress"] for name, settings in networks.items() if settings.get("IPAddress")}
    if not addresses:
        raise ContainerError(
            f"container {container.name} has no IP address: publish its port and set source.host and source.port"
        )
    own = own_container(client)
    if own is not None:
        shared = sorted(set(addresses) & set(own.attrs["NetworkSettings"].get("Networks") or {}))
        if shared:
            return str(addresses[shared[0]])
    return str(addresses[sorted(addresses)[0]])


def own_container(client: docker.DockerClient) -> Container | None:
    """Returns the container the agent runs in, or None when it runs on the host."""
    if not Path("/.dockerenv").exists():
        return None
    with contextlib.suppress(docker.errors.DockerException):
        return client.containers.get(socket.gethostname())
    return None


def resolve_container_source(config: SourceConfig) -> Source:
    """Returns the source for `source.docker`: connection from the host, pg_dump inside the container.

    Raises DockerUnavailable, ContainerError, ContainerNotRunning.
    """
    assert config.docker is not None
    client = connect(config.docker.docker_host)
    container = find_container(client, config.docker)
    credentials = read_credentials(container, config)
    host = config.host or container_address(client, container)
    port = config.port if "port" in config.model_fields_set else credentials.port
    params = ConnectionParams(
        dbname=credentials.dbname,
        host=host,
        port=port,
        user=credentials.user,
        password=credentials.password,
        sslmode=config.sslmode,
        connect_timeout=config.connect_timeout,
        options=PRODUCTION_OPTIONS,
    )
    image = str(container.attrs["Config"].get("Image") or container.image.id)
    return Source(
        params=params,
        executor=DockerExecutor(client, container.id, container.name, server_port=credentials.port),
        description=f"container {container.name} ({image}), {params.label}",
        credentials_from=credentials.origin_text(),
        image=str(container.image.id),
    )


def doctor_facts(config: SourceConfig) -> dict[str, str]:
    """Returns what `verifier docker doctor` shows about a container source: engine, container, image,
    server version, where each credential came from. Never a secret's value.

    Raises DockerUnavailable, ContainerError, ContainerNotRunning.
    """
    assert config.docker is not None
    client = connect(config.docker.docker_host)
    container = find_container(client, config.docker)
    credentials = read_credentials(container, config)
    with _engine_errors():
        engine = client.version()
    executor = DockerExecutor(client, container.id, container.name, server_port=credentials.port)
    server_version = executor.output(["postgres", "--version"]).strip() or "unknown (postgres --version failed)"
    facts = {
        "docker engine": f"{engine.get('Version', '?')} (API {engine.get('ApiVersion', '?')})",
        "container": f"{container.name} ({container.short_id}), {container.status}",
        "image": f"{container.attrs['Config'].get('Image')} ({container.image.short_id})",
        "server": server_version,
        "address": f"{config.host or container_address(client, container)}:{credentials.port}",
    }
    compose = container.labels.get(COMPOSE_PROJECT)
    if compose:
        facts["compose"] = f"project {compose}, service {container.labels.get(COMPOSE_SERVICE, '?')}"
    facts.update({f"{part} from": origin for part, origin in credentials.origins.items()})
    return facts


class DockerProgram:
    """A program running inside a container through `docker exec` (the low-level API).

    A reader thread demultiplexes the attach stream: stdout goes to a bounded queue (so a slow
    consumer slows the program down instead of filling memory), stderr to a capped buffer. The
    exit code comes from `exec_inspect`, which `exec_run(stream=True)` would lose.
    """

    def __init__(self, client: docker.DockerClient, exec_id: str, argv: Sequence[str], *, stream_stdout: bool) -> None:
        self._client = client
        self._exec_id = exec_id
        self._argv = list(argv)
        self._stream_stdout = stream_stdout
        attached = client.api.exec_start(exec_id, socket=True)
        self._socket: socket.socket = getattr(attached, "_sock", attached)
        self._socket.settimeout(None)  # a dump may be silent for a long time (waiting on a lock)
        self._attached = attached
        self._chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=QUEUED_CHUNKS)
        self._stderr = bytearray()
        self._discard = threading.Event()
        self._killed = threading.Event()
        self._reader = threading.Thread(target=self._pump, name=f"docker-exec-{argv[0]}", daemon=True)
        self._reader.start()

    def stdout_chunks(self) -> Iterator[bytes]:
        """Yields stdout in chunks (as the engine frames them) until EOF."""
        while (chunk := self._chunks.get()) is not None:
            yield chunk

    def write_stdin(self, data: bytes) -> None:
        """Writes `data` to the program's stdin. Raises BrokenPipeError when it stopped reading."""
        try:
            self._socket.sendall(data)
        except (ConnectionResetError, BrokenPipeError, OSError) as error:
            raise BrokenPipeError(str(error)) from None

    def close_stdin(self) -> None:
        """Signals end of input (half-closes the attach connection; the engine closes stdin)."""
        with contextlib.suppress(OSError):
            self._socket.shutdown(socket.SHUT_WR)

    def wait(self) -> int:
        """Waits until the output ends and the engine reports the exit code; returns it (-1 if unknown).

        Unread stdout is discarded. Raises DockerUnavailable when the engine stops answering.
        """
        self._discard_unread()
        self._reader.join()
        # A killed program whose process we could not signal may run on: do not wait long for it.
        patience = KILLED_WAIT_SECONDS if self._killed.is_set() else EXIT_CODE_WAIT_SECONDS
        deadline = time.monotonic() + patience
        while True:
            with _engine_errors():
                state = self._client.api.exec_inspect(self._exec_id)
            if not state.get("Running") or time.monotonic() > deadline:
                code = state.get("ExitCode")
                return int(code) if code is not None else -1
            time.sleep(0.05)

    def stderr_text(self) -> str:
        """Returns what the program wrote to stderr (the last 1 MiB)."""
        return self._stderr.decode("utf-8", errors="replace")

    def kill(self) -> None:
        """Stops the program: signals it when its process is visible from here, and drops the stream.

        The engine has no exec-kill call. When the agent shares the host's process namespace, the
        exec's host pid is signalled (after checking it still runs our argv); otherwise closing the
        attach connection makes the program fail on its next write. Safe after it exited.
        """
        self._killed.set()
        with contextlib.suppress(docker.errors.DockerException, requests.exceptions.RequestException):
            state = self._client.api.exec_inspect(self._exec_id)
            pid = int(state.get("Pid") or 0)
            if state.get("Running") and pid > 0 and self._is_ours(pid):
                os.kill(pid, signal.SIGTERM)
        with contextlib.suppress(OSError):
            self._socket.shutdown(socket.SHUT_RDWR)
        self._discard_unread()

    def _pump(self) -> None:
        try:
            for stream, data in docker_socket.frames_iter(self._socket, tty=False):
                if stream == docker_socket.STDOUT and self._stream_stdout:
                    self._deliver(data)
                else:
                    self._stderr.extend(data)
                    del self._stderr[:-STDERR_KEEP_BYTES]
        except OSError as error:
            if not self._killed.is_set():
                self._stderr.extend(f"\n(docker exec stream broke: {error})".encode())
        finally:
            with contextlib.suppress(OSError):
                self._attached.close()
            self._deliver(None)

    def _deliver(self, chunk: bytes | None) -> None:
        """Queues a stdout chunk (None: the end), waiting for room unless stdout is being discarded."""
        while True:
            if chunk is not None and self._discard.is_set():
                return
            try:
                self._chunks.put(chunk, timeout=0.1)
                return
            except queue.Full:
                if self._discard.is_set():
                    self._discard_unread()

    def _discard_unread(self) -> None:
        """Drops queued stdout; the end marker stays for a consumer still iterating."""
        self._discard.set()
        with contextlib.suppress(queue.Empty):
            while True:
                if self._chunks.get_nowait() is None:
                    self._chunks.put(None)
                    return

    def _is_ours(self, pid: int) -> bool:
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
        return [part.decode(errors="replace") for part in command if part] == self._argv


class DockerExecutor:
    """Runs PostgreSQL programs inside one container with `docker exec`.

    Programs reach the container's server over its own unix socket: PGHOST from the caller (the
    address the agent uses from outside) is dropped and PGPORT set to the server's port inside.
    """

    shares_filesystem = False

    def __init__(
        self, client: docker.DockerClient, container_id: str, name: str, *, server_port: int = DEFAULT_PORT
    ) -> None:
        self.client = client
        self.container_id = container_id
        self.name = name
        self.server_port = server_port

    def start(
        self,
        argv: Sequence[str],
        *,
        environment: Mapping[str, str],
        stdin: bool = False,
        stdout: bool = True,
    ) -> DockerProgram:
        """Starts `argv` in the container. Returns the running program.

        Raises DockerUnavailable when the engine does not answer, ContainerNotRunning when the
        container stopped.
        """
        inside = {key: value for key, value in environment.items() if key != "PGHOST"}
        inside["PGPORT"] = str(self.server_port)
        inside.setdefault("LC_MESSAGES", "C")
        with _engine_errors():
            try:
                created = self.client.api.exec_create(
                    self.container_id, list(argv), stdin=stdin, stdout=True, stderr=True, environment=inside
                )
            except docker.errors.APIError as error:
                if error.status_code == 409:
                    raise ContainerNotRunning(f"container {self.name} is not running: {_reason(error)}") from None
                raise
            logger.debug("docker exec in %s: %s", self.name, " ".join(argv))
            return DockerProgram(self.client, created["Id"], argv, stream_stdout=stdout)

    def output(self, argv: Sequence[str], environment: Mapping[str, str] | None = None) -> str:
        """Runs `argv` to completion and returns its stdout ('' when it failed)."""
        program = self.start(argv, environment=environment or {})
        text = b"".join(program.stdout_chunks()).decode("utf-8", errors="replace")
        return text if program.wait() == 0 else ""


def remove_orphans(client: docker.DockerClient, repository: Path) -> int:
    """Removes sandbox containers and networks a killed run of this repository left. Returns how many
    containers were removed. Runs under the repository lock, so no live run of it can own them.
    """
    selector = [SANDBOX_LABEL, f"{REPOSITORY_LABEL}={repository}"]
    removed = 0
    with _engine_errors():
        for container in client.containers.list(all=True, filters={"label": selector}):
            logger.warning("removing sandbox container %s left by an interrupted run", container.name)
            container.remove(force=True, v=True)
            removed += 1
        for network in client.networks.list(filters={"label": selector}):
            with contextlib.suppress(docker.errors.NotFound):
                network.remove()
    return removed


@contextlib.contextmanager
def open_docker_sandbox(config: Config, backup: Backup, source: Source | None) -> Iterator[DockerSandbox]:
    """Yields a ready docker sandbox for `backup` and removes it on exit.

    The image is `verify.docker.image`, else the production container's image. Raises
    DockerUnavailable, SandboxError.
    """
    docker_host = source_docker_host(config)
    image = config.verify.docker.image or (source.image if source is not None else None)
    if not image:
        raise SandboxError("verify.docker: name an image (verify.docker.image), or use a source.docker container")
    client = connect(docker_host, setting="source.docker.docker_host" if docker_host else "DOCKER_HOST")
    repository = config.repository.path.resolve()
    remove_orphans(client, repository)
    sandbox = DockerSandbox(client, image, backup, repository=repository, network=config.verify.docker.network)
    with sandbox:
        yield sandbox


def source_docker_host(config: Config) -> str | None:
    """Returns the engine URL the config names (the source's), or None for the default."""
    return config.source.docker.docker_host if config.source.docker is not None else None


class DockerSandbox:
    """A throwaway PostgreSQL container of the production image, with one database to restore into.

    It runs on a private internal network (or the one `verify.docker.network` names), publishes no
    port, and has a random superuser password; the agent counts rows over the container's address,
    pg_restore/psql run inside it over its unix socket. Only the dump itself (file, or directory of a
    directory-format dump) is bind-mounted, read-only at the same path, so archive paths need no
    translation and nothing else of the repository is in reach. Labels carry the
    run id and the repository, so a killed run's leftovers are found and removed next time.
    """

    kind = "docker"
    dbname = RESTORED_DATABASE

    def __init__(
        self, client: docker.DockerClient, image: str, backup: Backup, *, repository: Path, network: str | None = None
    ) -> None:
        self.client = client
        self.image = image
        self.backup = backup
        self.run_id = secrets.token_hex(6)
        self.labels = {SANDBOX_LABEL: self.run_id, REPOSITORY_LABEL: str(repository)}
        self.configured_network = network
        self.name = f"pg-backup-verifier-sandbox-{self.run_id}"
        self._password = secrets.token_urlsafe(24)
        self._network: Any = None
        self._container: Container | None = None
        self._joined: Container | None = None
        self.address = ""
        self._inside = DockerExecutor(client, "", self.name)
        self.executor: Executor = self._inside
        self.server_version = ""

    def __enter__(self) -> DockerSandbox:
        try:
            self._start()
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.remove()

    def restore_environment(self) -> dict[str, str]:
        """Returns PG* variables for pg_restore/psql inside the sandbox (unix socket, superuser)."""
        return {"PGUSER": SANDBOX_SUPERUSER, "PGDATABASE": self.dbname, "PGPASSWORD": self._password}

    def archive_path(self, backup: Backup) -> str:
        """Returns the dump's path inside the sandbox: the same as on the host (bind mount)."""
        return str(backup.dump_path.resolve())

    def connect(self) -> psycopg.Connection[tuple[object, ...]]:
        """Returns an autocommit connection to the restored database. Raises SourceUnreachable."""
        return self._params(self.dbname).connect()

    def describe(self) -> str:
        """Returns e.g. 'docker container pg-backup-verifier-sandbox-… (postgres:15, PostgreSQL 15.20)'."""
        return f"docker container {self.name} ({self.image_label()}, {self.server_version or 'PostgreSQL'})"

    def image_label(self) -> str:
        """Returns the image's first tag, or its short id."""
        with contextlib.suppress(docker.errors.DockerException):
            image = self.client.images.get(self.image)
            return str(image.tags[0]) if image.tags else str(image.short_id)
        return self.image

    def remove(self) -> None:
        """Removes the container (with its anonymous volumes) and the private network. Never raises."""
        try:
            if self._container is not None:
                self._container.remove(force=True, v=True)
                self._container = None
            if self._network is not None:
                if self._joined is not None:
                    with contextlib.suppress(docker.errors.DockerException):
                        self._network.disconnect(self._joined, force=True)
                    self._joined = None
                if self.configured_network is None:
                    self._network.remove()
                self._network = None
        except (docker.errors.DockerException, requests.exceptions.RequestException) as error:
            logger.error("could not remove sandbox %s (the next run removes it): %s", self.name, _reason(error))

    def _start(self) -> None:
        started = time.monotonic()
        with _engine_errors():
            try:
                self.client.images.get(self.image)
            except docker.errors.ImageNotFound:
                raise SandboxError(
                    f"verify.docker: image {self.image} is not on this engine: pull it (docker pull {self.image})"
                ) from None
            if self.configured_network:
                try:
                    self._network = self.client.networks.get(self.configured_network)
                except docker.errors.NotFound:
                    raise SandboxError(f"verify.docker.network: no network {self.configured_network!r}") from None
                if not self._network.attrs.get("Internal"):
                    network, self._network = self._network, None  # not ours: remove() must leave it alone
                    raise SandboxError(
                        f"verify.docker.network: {network.name!r} is not internal, so code in a dump could reach "
                        f"production through it: name a network made with `docker network create --internal`"
                    )
            else:
                self._network = self.client.networks.create(
                    self.name, driver="bridge", internal=True, labels=self.labels
                )
            # the one dump (a file, or a directory-format dump's directory), never the repository:
            # it also holds the roles file with password hashes and every other backup
            mount = str(self.backup.dump_path.resolve())
            settings = [arg for key, value in SANDBOX_SETTINGS.items() for arg in ("-c", f"{key}={value}")]
            self._container = self.client.containers.run(
                self.image,
                command=["postgres", *settings],
                name=self.name,
                detach=True,
                labels=self.labels,
                network=self._network.name,
                environment={
                    "POSTGRES_USER": SANDBOX_SUPERUSER,
                    "POSTGRES_PASSWORD": self._password,
                    "POSTGRES_DB": SANDBOX_SUPERUSER,
                },
                volumes={mount: {"bind": mount, "mode": "ro"}},
            )
            self._inside = DockerExecutor(self.client, self._container.id, self.name)
            self.executor = self._inside
            own = own_container(self.client)
            if own is not None:
                self._network.connect(own)
                self._joined = own
            self._wait_until_ready()
            self._container.reload()
            networks = self._container.attrs["NetworkSettings"]["Networks"]
            self.address = str(networks[self._network.name]["IPAddress"])
        self._create_database()
        logger.info("docker sandbox %s ready in %.1f s", self.name, time.monotonic() - started)

    def _wait_until_ready(self) -> None:
        """Waits until the final server answers on TCP (the entrypoint's set-up server does not).

        Raises SandboxError with the container's last log lines when it exits or never answers.
        """
        assert self._container is not None
        deadline = time.monotonic() + SANDBOX_START_SECONDS
        probe = ["pg_isready", "--quiet", "--host=127.0.0.1", f"--port={DEFAULT_PORT}"]
        while time.monotonic() < deadline:
            self._container.reload()
            if self._container.status in ("exited", "dead"):
                raise SandboxError(f"sandbox container exited while starting: {self._log_tail()}")
            with contextlib.suppress(ContainerNotRunning):
                program = self._inside.start(probe, environment={}, stdout=False)
                if program.wait() == 0:
                    version = self._inside.output(["postgres", "--version"])
                    found = re.search(r"\(PostgreSQL\) (\S+)", version)
                    self.server_version = f"PostgreSQL {found.group(1)}" if found else version.strip()
                    return
            time.sleep(0.2)
        raise SandboxError(f"sandbox container not ready after {SANDBOX_START_SECONDS:.0f} s: {self._log_tail()}")

    def _create_database(self) -> None:
        manifest = self.backup.manifest
        try:
            with self._params(SANDBOX_SUPERUSER).connect() as connection:
                create_restore_database(connection, self.dbname, manifest.source if manifest else None)
        except psycopg.Error as error:
            raise SandboxError(f"cannot create the sandbox database: {' '.join(str(error).split())}") from None

    def _params(self, dbname: str) -> ConnectionParams:
        return ConnectionParams(
            dbname=dbname, host=self.address, port=DEFAULT_PORT, user=SANDBOX_SUPERUSER, password=self._password
        )

    def _log_tail(self) -> str:
        assert self._container is not None
        with contextlib.suppress(docker.errors.DockerException):
            lines = self._container.logs(tail=5).decode(errors="replace").splitlines()
            return " | ".join(line.strip() for line in lines if line.strip()) or "(no output)"
        return "(logs unavailable)"


@contextlib.contextmanager
def _engine_errors() -> Iterator[None]:
    """Turns the engine going away mid-run into DockerUnavailable (one line)."""
    try:
        yield
    except requests.exceptions.ConnectionError as error:
        raise DockerUnavailable(f"Docker engine stopped answering ({_reason(error)})") from None


def _find_compose_service(client: docker.DockerClient, project: str, service: str) -> Container:
    labels = [f"{COMPOSE_PROJECT}={project}", f"{COMPOSE_SERVICE}={service}"]
    matches = [
        container
        for container in client.containers.list(all=True, filters={"label": labels})
        if container.labels.get(COMPOSE_ONEOFF, "False") != "True"
    ]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        services = sorted(
            {
                f"{c.labels[COMPOSE_PROJECT]}/{c.labels.get(COMPOSE_SERVICE, '?')}"
                for c in client.containers.list(all=True, filters={"label": COMPOSE_PROJECT})
            }
        )
        raise ContainerError(
            f"source.docker: no container of compose project {project!r} service {service!r}; "
            f"compose services here (project/service): {_listing(services)}"
        )
    names = sorted(f"{c.name} ({c.status})" for c in matches)
    raise ContainerError(
        f"source.docker: {len(matches)} containers of compose project {project!r} service {service!r}: "
        f"{', '.join(names)}; name one with source.docker.container"
    )


def _listing(names: Sequence[str]) -> str:
    if not names:
        return "none"
    shown = ", ".join(names[:10])
    return shown + (f" and {len(names) - 10} more" if len(names) > 10 else "")


def _reason(error: BaseException) -> str:
    """Returns the shortest honest reason for an engine error."""
    chain: list[BaseException] = []
    pending: list[Any] = [error]
    while pending and len(chain) < 20:  # causes, contexts, and exceptions requests wraps in its args
        current = pending.pop()
        if isinstance(current, tuple):
            pending.extend(current)
        elif isinstance(current, BaseException) and current not in chain:
            chain.append(current)
            pending.extend([current.__cause__, current.__context__, *current.args])
    text = " ".join(str(error).split())
    if any(isinstance(e, FileNotFoundError) for e in chain) or "No such file or directory" in text:
        return "no engine socket there"
    if any(isinstance(e, PermissionError) for e in chain) or "Permission denied" in text:
        return "permission denied: run as root or add the agent's user to the docker group"
    if any(isinstance(e, ConnectionRefusedError) for e in chain) or "Connection refused" in text:
        return "connection refused"
    explanation = getattr(error, "explanation", None)
    return " ".join(str(explanation or text).split())[:300] or type(error).__name__
