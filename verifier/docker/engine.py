"""The Docker engine: the SDK client, containers found by name or compose labels, throwaway containers
without a network (or on a private one), the engine's view of the agent's paths, orphans a killed run
left, and one-line reasons for engine errors."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests.exceptions
from docker.models.containers import Container

from verifier.config import DockerSourceConfig
from verifier.errors import ContainerError, ContainerNotRunning, DockerUnavailable, SandboxError, one_line

logger = logging.getLogger(__name__)

Client = docker.DockerClient  # for callers outside docker/, which never import the SDK themselves

SANDBOX_LABEL = "pg-backup-verifier.sandbox"

REPOSITORY_LABEL = "pg-backup-verifier.repository"

COMPOSE_PROJECT = "com.docker.compose.project"

COMPOSE_SERVICE = "com.docker.compose.service"

COMPOSE_ONEOFF = "com.docker.compose.oneoff"

STOP_SECONDS = 5  # a throwaway container's grace before it is killed


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
            f"Docker engine at {where} is not reachable ({reason(error)}): start it, or set {setting}"
        ) from None
    return client


def find_container(client: docker.DockerClient, selector: DockerSourceConfig) -> Container:
    """Returns the one running container named by `selector` (a name, or compose project + service).

    Raises ContainerError listing the candidates when none or several match, ContainerNotRunning
    when it is stopped, DockerUnavailable when the engine stops answering.
    """
    with engine_errors():
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


def engine_path(client: docker.DockerClient, path: Path) -> str | None:
    """Returns the path the engine knows the agent's `path` by, for a bind mount; None when the engine
    cannot see it.

    A remote engine (tcp://, ssh://) sees none of this host's directories. When the agent runs in a
    container of that engine, a path is visible only under one of that container's bind mounts
    (translated to the mount's source); otherwise the path is taken as the engine's own (the caller
    checks what the container made of it).
    """
    if not is_local_engine(client):
        return None
    own = own_container(client)
    if own is None:
        return str(path)
    absolute = path.resolve()
    binds = [mount for mount in own.attrs.get("Mounts") or [] if mount.get("Type") == "bind"]
    for mount in sorted(binds, key=lambda mount: len(str(mount.get("Destination", ""))), reverse=True):
        destination = Path(str(mount.get("Destination", "")))
        if destination.is_absolute() and absolute.is_relative_to(destination):
            return str(Path(str(mount["Source"])) / absolute.relative_to(destination))
    return None


def is_local_engine(client: docker.DockerClient) -> bool:
    """Returns whether the client reaches its engine through a unix socket (so the engine runs on this
    host, or on the host of the container the agent runs in)."""
    return str(client.api.base_url) == "http+docker://localhost"


def remove_orphans(client: docker.DockerClient, repository: Path) -> list[str]:
    """Removes sandbox containers and networks a killed run of this repository left. Returns the engine's
    paths of the directories those containers had mounted writable (the caller made them, and removes
    them). Runs under the repository lock, so no live run of it can own them.
    """
    selector = [SANDBOX_LABEL, f"{REPOSITORY_LABEL}={repository}"]
    writable: list[str] = []
    with engine_errors():
        for container in client.containers.list(all=True, filters={"label": selector}):
            logger.warning("removing sandbox container %s left by an interrupted run", container.name)
            mounts = container.attrs.get("Mounts") or []
            writable += [str(m["Source"]) for m in mounts if m.get("Type") == "bind" and m.get("RW")]
            container.remove(force=True, v=True)
        for network in client.networks.list(filters={"label": selector}):
            with contextlib.suppress(docker.errors.NotFound):
                network.remove()
    return writable


class ThrowawayContainer:
    """A labelled container of `image` publishing no port, with one path bind-mounted read-only. With a
    writable mount it has no network at all (`network_mode: none`: the loopback interface only), and is
    reached through that mount; else it sits on a private internal network (or the internal one
    `network` names), removed with it.

    Labels carry a run id and the repository, so a killed run's leftovers are found by `remove_orphans`.
    """

    def __init__(self, client: docker.DockerClient, image: str, *, repository: Path, network: str | None) -> None:
        self.client = client
        self.image = image
        self.run_id = secrets.token_hex(6)
        self.labels = {SANDBOX_LABEL: self.run_id, REPOSITORY_LABEL: str(repository)}
        self.configured_network = network
        self.name = f"pg-backup-verifier-sandbox-{self.run_id}"
        self._network: Any = None
        self._container: Container | None = None
        self._joined: Container | None = None
        self._writable = False

    def start(
        self,
        *,
        command: list[str],
        environment: dict[str, str],
        read_only_mount: str,
        writable_mount: tuple[str, str] | None = None,
    ) -> str:
        """Starts the container. Returns its id. With `writable_mount` (the engine's path of a host
        directory, the path inside) the container has no network; without it, it joins a private
        internal network (and the agent's own container joins that network too).

        Raises SandboxError when the image or the named network is missing, or the network is not internal.
        """
        try:
            self.client.images.get(self.image)
        except docker.errors.ImageNotFound:
            raise SandboxError(
                f"verify.docker: image {self.image} is not on this engine: pull it (docker pull {self.image})"
            ) from None
        volumes = {read_only_mount: {"bind": read_only_mount, "mode": "ro"}}
        if writable_mount is not None:
            self._writable = True
            source, inside = writable_mount
            volumes[source] = {"bind": inside, "mode": "rw"}
            return self._run(command, environment, volumes, network_mode="none")
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
            self._network = self.client.networks.create(self.name, driver="bridge", internal=True, labels=self.labels)
        container_id = self._run(command, environment, volumes, network=self._network.name)
        own = own_container(self.client)
        if own is not None:
            self._network.connect(own)
            self._joined = own
        return container_id

    def _run(
        self, command: list[str], environment: dict[str, str], volumes: dict[str, dict[str, str]], **network: str
    ) -> str:
        """Runs the labelled container detached with `network` (network_mode= or network=). Returns its id."""
        self._container = self.client.containers.run(
            self.image,
            command=command,
            name=self.name,
            detach=True,
            labels=self.labels,
            environment=environment,
            volumes=volumes,
            **network,
        )
        return str(self._container.id)

    def status(self) -> str:
        """Returns the container's current status ('running', 'exited', …)."""
        assert self._container is not None
        self._container.reload()
        return str(self._container.status)

    def address(self) -> str:
        """Returns the container's address on its network."""
        assert self._container is not None
        self._container.reload()
        networks = self._container.attrs["NetworkSettings"]["Networks"]
        return str(networks[self._network.name]["IPAddress"])

    def log_tail(self) -> str:
        """Returns the container's last log lines on one line."""
        assert self._container is not None
        with contextlib.suppress(docker.errors.DockerException):
            lines = self._container.logs(tail=5).decode(errors="replace").splitlines()
            return " | ".join(line.strip() for line in lines if line.strip()) or "(no output)"
        return "(logs unavailable)"

    def image_label(self) -> str:
        """Returns the image's first tag, or its short id."""
        with contextlib.suppress(docker.errors.DockerException):
            image = self.client.images.get(self.image)
            return str(image.tags[0]) if image.tags else str(image.short_id)
        return self.image

    def remove(self) -> None:
        """Removes the container (with its anonymous volumes) and the private network. Never raises.

        A container with a writable mount is stopped first (its stop signal, a few seconds at most),
        so what it keeps there (a server's socket and lock files) is removed by its own processes,
        whatever owner and mode they gave the directory.
        """
        try:
            if self._container is not None and self._writable:
                with contextlib.suppress(docker.errors.DockerException, requests.exceptions.RequestException):
                    self._container.stop(timeout=STOP_SECONDS)
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
            logger.error("could not remove sandbox %s (the next run removes it): %s", self.name, reason(error))


@contextlib.contextmanager
def engine_errors() -> Iterator[None]:
    """Turns the engine going away mid-run into DockerUnavailable (one line)."""
    try:
        yield
    except requests.exceptions.ConnectionError as error:
        raise DockerUnavailable(f"Docker engine stopped answering ({reason(error)})") from None


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


def reason(error: BaseException) -> str:
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
    text = one_line(error)
    if any(isinstance(e, FileNotFoundError) for e in chain) or "No such file or directory" in text:
        return "no engine socket there"
    if any(isinstance(e, PermissionError) for e in chain) or "Permission denied" in text:
        return "permission denied: run as root or add the agent's user to the docker group"
    if any(isinstance(e, ConnectionRefusedError) for e in chain) or "Connection refused" in text:
        return "connection refused"
    explanation = getattr(error, "explanation", None)
    return " ".join(str(explanation or text).split())[:300] or type(error).__name__
