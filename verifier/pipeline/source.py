"""The production database as the config names it, resolved into a `Source` (directly or in a container)."""

from __future__ import annotations

from verifier.config import SourceConfig
from verifier.postgres.connection import PRODUCTION_OPTIONS, ConnectionParams, Source

MAINTENANCE_DATABASE = "postgres"  # where the server's databases are listed from (source.databases)


def resolve_source(config: SourceConfig) -> Source:
    """Returns the source named by the config. Raises SourceUnreachable / DockerUnavailable / ConfigError."""
    if config.docker is not None:
        return resolve_container_source(config)
    assert config.dbname is not None or config.several  # the config validator requires one without docker
    params = ConnectionParams(
        dbname=config.dbname or MAINTENANCE_DATABASE,
        host=config.host,
        port=config.port,
        user=config.user,
        password=config.password.get_secret_value() if config.password else None,
        sslmode=config.sslmode,
        connect_timeout=config.connect_timeout,
        options=PRODUCTION_OPTIONS,
    )
    source_of_password = "config" if config.password else "pgpass/peer/environment"
    return Source(params=params, executor=None, description=params.label, credentials_from=source_of_password)


def resolve_container_source(config: SourceConfig) -> Source:
    """Returns the source for `source.docker`: connection from the host, pg_dump inside the container.

    Raises DockerUnavailable, ContainerError, ContainerNotRunning.
    """
    # the Docker SDK is imported only when a container is configured
    from verifier.docker.container import read_credentials
    from verifier.docker.engine import connect, container_address, find_container
    from verifier.docker.exec import DockerExecutor

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
