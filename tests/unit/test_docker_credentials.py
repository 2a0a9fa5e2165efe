"""Which credentials the agent takes from a container, and what it tells the user about them.

The container here is a stand-in holding only `attrs["Config"]["Env"]`, the one thing
`read_credentials` reads when no `*_FILE` is involved; the real engine (env and `*_FILE`) is
covered by tests/integration/docker.
"""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from verifier.config import DockerSourceConfig, SourceConfig
from verifier.docker.container import read_credentials


class EnvOnlyContainer:
    """Stand-in for docker.models.containers.Container: just a name and its configured environment."""

    def __init__(self, *environment: str) -> None:
        self.name = "db"
        self.attrs: dict[str, Any] = {"Config": {"Env": list(environment)}}


def overrides(**values: Any) -> SourceConfig:
    return SourceConfig(docker=DockerSourceConfig(container="db"), **values)


def test_official_image_defaults_when_only_the_password_is_set() -> None:
    container = EnvOnlyContainer("POSTGRES_PASSWORD=pw", "PATH=/usr/bin")
    credentials = read_credentials(container, overrides())  # type: ignore[arg-type]
    assert (credentials.user, credentials.password, credentials.dbname, credentials.port) == (
        "postgres",
        "pw",
        "postgres",
        5432,
    )
    assert credentials.origins == {
        "user": "image default",
        "password": "container env POSTGRES_PASSWORD",
        "dbname": "image default",
    }


def test_database_defaults_to_the_user_and_pgport_is_honoured() -> None:
    container = EnvOnlyContainer("POSTGRES_USER=eatfit24", "POSTGRES_PASSWORD=pw", "PGPORT=6543")
    credentials = read_credentials(container, overrides())  # type: ignore[arg-type]
    assert (credentials.user, credentials.dbname, credentials.port) == ("eatfit24", "eatfit24", 6543)


def test_config_wins_and_says_so_without_values() -> None:
    container = EnvOnlyContainer("POSTGRES_USER=eatfit24", "POSTGRES_PASSWORD=from-env", "POSTGRES_DB=eatfit24")
    credentials = read_credentials(
        container,  # type: ignore[arg-type]
        overrides(user="readonly", password=SecretStr("from-config"), dbname="reports"),
    )
    assert (credentials.user, credentials.password, credentials.dbname) == ("readonly", "from-config", "reports")
    text = credentials.origin_text()
    assert (
        text == "user from config source.user, password from config source.password, dbname from config source.dbname"
    )
    assert "from-config" not in text + repr(credentials)


def test_no_password_anywhere_is_reported_as_not_set() -> None:
    credentials = read_credentials(
        EnvOnlyContainer("POSTGRES_HOST_AUTH_METHOD=trust"),
        overrides(),  # type: ignore[arg-type]
    )
    assert credentials.password is None
    assert credentials.origins["password"] == "not set"
