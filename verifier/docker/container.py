"""What a container source tells about itself: the credentials its entrypoint set up (environment,
`*_FILE` secrets) and the facts `verifier docker doctor` shows — where each value came from, never a secret."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass, field

import docker
import docker.errors
from docker.models.containers import Container

from verifier.config import SourceConfig
from verifier.docker.engine import (
    COMPOSE_PROJECT,
    COMPOSE_SERVICE,
    connect,
    container_address,
    engine_errors,
    find_container,
    reason,
)
from verifier.docker.exec import DEFAULT_PORT, DockerExecutor
from verifier.errors import ContainerError

SECRET_FILE_MAX_BYTES = 64 * 1024


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
        raise ContainerError(f"cannot read {path} in container {container.name}: {reason(error)}") from None


def doctor_facts(config: SourceConfig) -> dict[str, str]:
    """Returns what `verifier docker doctor` shows about a container source: engine, container, image,
    server version, where each credential came from. Never a secret's value.

    Raises DockerUnavailable, ContainerError, ContainerNotRunning.
    """
    assert config.docker is not None
    client = connect(config.docker.docker_host)
    container = find_container(client, config.docker)
    credentials = read_credentials(container, config)
    with engine_errors():
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
