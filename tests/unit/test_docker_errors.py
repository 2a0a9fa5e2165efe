"""How engine failures read to a user: one line, the reason a person can act on, exit 3.

These shapes (socket permission denied for a non-root agent, the engine vanishing between two
calls) cannot be produced on demand by the real engine the integration tests run as root, so the
exceptions are built here the way the Docker SDK and requests raise them.
"""

from __future__ import annotations

import pytest
import requests.exceptions
from docker.errors import DockerException

from verifier.docker import engine
from verifier.errors import DockerUnavailable


def sdk_error(cause: BaseException) -> DockerException:
    """Returns a DockerException chained to `cause`, as the SDK raises while fetching the API version."""
    try:
        try:
            raise requests.exceptions.ConnectionError(("Connection aborted.", cause))
        except requests.exceptions.ConnectionError as error:
            raise DockerException(f"Error while fetching server API version: {error}") from error
    except DockerException as raised:
        return raised


@pytest.mark.parametrize(
    ("cause", "reason"),
    [
        (
            PermissionError(13, "Permission denied"),
            "permission denied: run as root or add the agent's user to the docker group",
        ),
        (FileNotFoundError(2, "No such file or directory"), "no engine socket there"),
        (ConnectionRefusedError(111, "Connection refused"), "connection refused"),
    ],
)
def test_engine_errors_are_reduced_to_the_reason(cause: BaseException, reason: str) -> None:
    assert engine.reason(sdk_error(cause)) == reason


def test_unknown_engine_error_keeps_its_own_words_on_one_line() -> None:
    error = DockerException("Error while fetching server API version:\n  something   odd")
    assert engine.reason(error) == "Error while fetching server API version: something odd"


def test_engine_vanishing_mid_run_is_docker_unavailable() -> None:
    with pytest.raises(DockerUnavailable) as raised, engine.engine_errors():
        raise requests.exceptions.ConnectionError(("Connection aborted.", FileNotFoundError(2, "No such file")))
    assert raised.value.exit_code == 3
    assert str(raised.value) == "Docker engine stopped answering (no engine socket there)"
