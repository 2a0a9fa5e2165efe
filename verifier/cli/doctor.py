"""`verifier doctor`: what a hostile dump could reach from the sandbox; `--fix` creates the account.

Parsing and output only; the facts come from `verifier.sandbox.isolation`. Without a config file (as when
install.sh runs it) only the default sandbox account is looked at.
"""

from __future__ import annotations

import argparse
import sys

from verifier.config import DEFAULT_PATH, PostgresConfig, RepositoryConfig, VerifyConfig, load_config
from verifier.sandbox.account import create_account
from verifier.sandbox.isolation import Fact, sandbox_facts, secret_files_named
from verifier.sandbox.reach import reach_facts


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    """Adds `doctor` to the main parser's `commands`."""
    doctor = commands.add_parser(
        "doctor",
        parents=[common],
        help="what a dump could reach from the sandbox (account, groups, readable files); --fix creates the account",
        description="Prints the sandbox account, its groups, and whether it can read the repository, production's "
        "data directory (when production runs here) or a secret file the config names, and whether it can run the "
        "PostgreSQL programs and enter the directories the sandbox needs. Exit 0 when nothing is exposed, 2 when "
        "something is, 3 when the sandbox cannot run (its account cannot reach a program or directory). --fix "
        "creates the sandbox account (useradd --system, no home, nologin).",
    )
    doctor.add_argument("--fix", action="store_true", help="create the sandbox account when it is missing")
    doctor.set_defaults(handler=doctor_command)


def doctor_command(arguments: argparse.Namespace) -> int:
    """Prints the facts, one `name: value` per line. Returns 0, 2 when something is exposed, 3 when the
    sandbox cannot run.
    Raises ConfigError for an invalid config, SandboxError when --fix cannot create the account."""
    if arguments.config is None and not DEFAULT_PATH.exists():
        print(f"# no config at {DEFAULT_PATH}: the default sandbox account only", file=sys.stderr)
        verify, repository, source, secrets = VerifyConfig(), RepositoryConfig().path, None, []
        bin_dir = PostgresConfig().bin_dir
    else:
        config = load_config(arguments.config)
        verify, repository, source = config.verify, config.repository.path, config.source
        secrets = secret_files_named(arguments.config or DEFAULT_PATH)
        bin_dir = config.postgres.bin_dir
    if arguments.fix and create_account(verify.run_as):
        print(f"created the sandbox account {verify.run_as}", file=sys.stderr)
    facts = sandbox_facts(verify, repository, source, secrets) + reach_facts(verify, bin_dir)
    width = max(len(fact.name) for fact in facts)
    for fact in facts:
        print(f"{fact.name + ':':<{width + 1}} {fact.value}")
    return _exit_code(facts)


def _exit_code(facts: list[Fact]) -> int:
    """Returns 3 when something keeps the sandbox from running (every run would fail), else 2 when
    something is exposed, else 0."""
    if any(fact.blocking for fact in facts):
        return 3
    return 2 if any(fact.exposed for fact in facts) else 0
