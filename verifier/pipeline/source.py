"""The production database as the config names it, resolved into a `Source` (directly or in a container)."""

from __future__ import annotations

from verifier.config import SourceConfig
from verifier.postgres.connection import PRODUCTION_OPTIONS, ConnectionParams, Source


def resolve_source(config: SourceConfig) -> Source:
    """Returns the source named by the config. Raises SourceUnreachable / DockerUnavailable / ConfigError."""
    if config.docker is not None:
        from verifier import docker  # the Docker SDK is imported only when a container is configured

        return docker.resolve_container_source(config)
    assert config.dbname is not None  # the config validator requires it without docker
    params = ConnectionParams(
        dbname=config.dbname,
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
