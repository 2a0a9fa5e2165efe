"""`verifier docker doctor`: what the agent finds for a container source. Parsing and output only.

`register(commands, common)` adds the group to the main parser (see `verifier/cli.py`); the facts
come from `verifier.docker.container.doctor_facts`, which never returns a secret's value.
"""

from __future__ import annotations

import argparse

from verifier.config import load_config
from verifier.errors import ConfigError


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    """Adds `docker doctor` to the main parser's `commands`."""
    group = commands.add_parser(
        "docker",
        help="Docker: what the agent finds for source.docker",
        description="Shows what the agent finds for a source in a Docker container.",
    )
    docker_commands = group.add_subparsers(title="docker commands", metavar="COMMAND", required=True)
    doctor = docker_commands.add_parser(
        "doctor",
        parents=[common],
        help="show the container, image, server version and where credentials come from",
        description="Finds the source.docker container (by name or compose labels) and prints the engine, "
        "container, image, PostgreSQL version, the address the agent connects to, and where the user, password "
        "and database name come from (never their values). Exit 0 when the container is usable, else 2/3.",
    )
    doctor.set_defaults(handler=doctor_command)


def doctor_command(arguments: argparse.Namespace) -> int:
    """Prints the facts, one `name: value` per line. Returns 0. Raises ConfigError without source.docker,
    DockerUnavailable, ContainerError, ContainerNotRunning."""
    config = load_config(arguments.config)
    if config.source.docker is None:
        raise ConfigError("source.docker is not configured: `verifier docker doctor` inspects a container source")
    from verifier.docker import container  # the Docker SDK is imported only when a container is configured

    facts = container.doctor_facts(config.source)
    width = max(len(name) for name in facts)
    for name, value in facts.items():
        print(f"{name + ':':<{width + 1}} {value}")
    return 0
