"""`verifier doctor`: what a hostile dump could reach from the sandbox; `--fix` creates the account.

Parsing and output only; the facts come from `verifier.sandbox.isolation`. Without a config file (as when
install.sh runs it) only the default sandbox account is looked at.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from verifier.config import DEFAULT_PATH, Config, PostgresConfig, RepositoryConfig, VerifyConfig, load_config
from verifier.config_exposure import config_exposures
from verifier.errors import COULD_NOT_RUN
from verifier.pipeline.programs import programs_plan
from verifier.sandbox.account import create_account
from verifier.sandbox.isolation import Fact, sandbox_facts, secret_files_named
from verifier.sandbox.network import network_facts
from verifier.sandbox.reach import reach_facts


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    """Adds `doctor` to the main parser's `commands`."""
    doctor = commands.add_parser(
        "doctor",
        parents=[common],
        help="what a dump could reach from the sandbox (account, groups, readable files, network); --fix creates "
        "the account",
        description="Prints the sandbox account, its groups, whether it can read the repository, production's "
        "data directory (when production runs here) or a secret file the config names, whether it can reach "
        "the network (tried: a TCP port and a unix socket), and whether it can run the PostgreSQL programs and "
        "enter the directories the sandbox needs; with a config, the source's version and the programs that will "
        "dump it and run its sandbox. Exit 0 when nothing is exposed, 2 when something is, 3 when the sandbox "
        "cannot run (its account cannot reach a program or directory, or a program of the needed version is "
        "missing). --fix creates the sandbox account (useradd --system, no home, nologin).",
    )
    doctor.add_argument("--fix", action="store_true", help="create the sandbox account when it is missing")
    doctor.set_defaults(handler=doctor_command)


def doctor_command(arguments: argparse.Namespace) -> int:
    """Prints the facts, one `name: value` per line, then (with a config) the source's version and the programs
    that will dump it and run its sandbox. Returns 0, 2 when something is exposed, 3 when the sandbox cannot run
    or a program is missing.
    Raises ConfigError for an invalid config, SandboxError when --fix cannot create the account."""
    if arguments.config is None and not DEFAULT_PATH.exists():
        print(f"# no config at {DEFAULT_PATH}: the default sandbox account only", file=sys.stderr)
        verify, repository, source, secrets = VerifyConfig(), RepositoryConfig().path, None, []
        config: Config | None = None
        bin_dir = PostgresConfig().bin_dir
    else:
        config_path = arguments.config or DEFAULT_PATH
        config = load_config(config_path)
        verify, repository, source = config.verify, config.repository.path, config.source
        secrets = secret_files_named(config_path)
        bin_dir = config.postgres.bin_dir
    if arguments.fix and create_account(verify.run_as):
        print(f"created the sandbox account {verify.run_as}", file=sys.stderr)
    docker_host = source.docker.docker_host if source is not None and source.docker is not None else None
    facts = sandbox_facts(verify, repository, source, secrets) + reach_facts(verify, bin_dir)
    facts += network_facts(verify, docker_host)
    facts += _config_file_facts(config_path) if config is not None else []
    programs = programs_plan(config) if config is not None else []
    lines = [(fact.name, fact.value) for fact in facts] + [(fact.name, fact.value) for fact in programs]
    width = max(len(name) for name, _ in lines)
    for name, value in lines:
        print(f"{name + ':':<{width + 1}} {value}")
    if any(fact.missing for fact in programs):
        return COULD_NOT_RUN  # the night could not run: a program of the needed major is missing
    return _exit_code(facts)


def _exit_code(facts: list[Fact]) -> int:
    """Returns 3 when something keeps the sandbox from running (every run would fail), else 2 when
    something is exposed, else 0."""
    if any(fact.blocking for fact in facts):
        return COULD_NOT_RUN
    return 2 if any(fact.exposed for fact in facts) else 0


def _config_file_facts(config_path: Path) -> list[Fact]:
    """Returns an exposed fact when the config file is readable by others and holds a secret inline."""
    return [Fact("config file", warning, exposed=True) for warning in config_exposures(config_path)]
