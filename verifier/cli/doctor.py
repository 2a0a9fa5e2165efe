"""`verifier doctor`: what a hostile dump could reach from the sandbox; `--fix` creates the account.

Parsing and output only; the facts come from `verifier.sandbox.isolation`. Without a config file (as when
install.sh runs it) only the default sandbox account is looked at.
"""

from __future__ import annotations

import argparse
import sys

from verifier.config import DEFAULT_PATH, RepositoryConfig, VerifyConfig, load_config
from verifier.sandbox.account import create_account
from verifier.sandbox.isolation import Fact, sandbox_facts, secret_files_named
from verifier.sandbox.network import network_facts


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    """Adds `doctor` to the main parser's `commands`."""
    doctor = commands.add_parser(
        "doctor",
        parents=[common],
        help="what a dump could reach from the sandbox (account, groups, readable files, network); --fix creates "
        "the account",
        description="Prints the sandbox account, its groups, whether it can read the repository, production's "
        "data directory (when production runs here) or a secret file the config names, and whether it can reach "
        "the network (tried: a TCP port and a unix socket). Exit 0 when nothing is exposed, 2 when something is."
        " --fix creates the sandbox account (useradd --system, no home, nologin).",
    )
    doctor.add_argument("--fix", action="store_true", help="create the sandbox account when it is missing")
    doctor.set_defaults(handler=doctor_command)


def doctor_command(arguments: argparse.Namespace) -> int:
    """Prints the facts, one `name: value` per line. Returns 0, or 2 when something is exposed.
    Raises ConfigError for an invalid config, SandboxError when --fix cannot create the account."""
    if arguments.config is None and not DEFAULT_PATH.exists():
        print(f"# no config at {DEFAULT_PATH}: the default sandbox account only", file=sys.stderr)
        verify, repository, source, secrets = VerifyConfig(), RepositoryConfig().path, None, []
    else:
        config = load_config(arguments.config)
        verify, repository, source = config.verify, config.repository.path, config.source
        secrets = secret_files_named(arguments.config or DEFAULT_PATH)
    if arguments.fix and create_account(verify.run_as):
        print(f"created the sandbox account {verify.run_as}", file=sys.stderr)
    facts = sandbox_facts(verify, repository, source, secrets) + _network_section(verify)
    width = max(len(fact.name) for fact in facts)
    for fact in facts:
        print(f"{fact.name + ':':<{width + 1}} {fact.value}")
    return 2 if any(fact.exposed for fact in facts) else 0


def _network_section(verify: VerifyConfig) -> list[Fact]:
    """Returns whether the sandbox can reach the network (tried for the local sandbox; see sandbox/network)."""
    return network_facts(verify)
