"""`verifier zabbix …`: send-test, template, setup. Argument parsing and output only.

`register(commands, common)` adds the group to the main parser (see `verifier/cli/main.py`).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from verifier.config import Config, load_config
from verifier.errors import ConfigError
from verifier.zabbix import keys
from verifier.zabbix.export import TEMPLATE_FILE_NAME, render_template
from verifier.zabbix.sender import UnreachableError, ZabbixSender, destination
from verifier.zabbix.setup import (
    DEFAULT_HOST_GROUP,
    PASSWORD_VARIABLE,
    TOKEN_VARIABLE,
    credentials,
    setup,
)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    """Adds `zabbix send-test`, `zabbix template` and `zabbix setup` to the main parser's `commands`."""
    zabbix = commands.add_parser(
        "zabbix", help="Zabbix: test delivery, print the template, set up a host",
        description="Tests delivery to the configured Zabbix server, prints the bundled template, or sets up "
        "the host through the Zabbix API.",
    )  # fmt: skip
    group = zabbix.add_subparsers(title="zabbix commands", metavar="COMMAND", required=True)

    send_test = group.add_parser(
        "send-test", parents=[common], help="send a heartbeat and print what Zabbix processed",
        description="Sends pgbackup.heartbeat to the configured Zabbix server and prints processed/failed. "
        "Exit 0 processed, 1 refused (template not imported or host not linked), 2 unreachable.",
    )  # fmt: skip
    send_test.set_defaults(handler=send_test_command)

    template = group.add_parser(
        "template", parents=[common], help="print the Zabbix 6.0 template (YAML)",
        description="Prints the bundled template, generated from the item keys the agent sends.",
    )  # fmt: skip
    template.add_argument("--output", type=Path, help=f"write it to this file (e.g. {TEMPLATE_FILE_NAME})")
    template.set_defaults(handler=template_command)

    setup_parser = group.add_parser(
        "setup", parents=[common], help="import the template, create/update the host, link it, set macros",
        description=f"Uses the Zabbix API (6.0 or newer). Authenticates with an API token from ${TOKEN_VARIABLE} "
        f"or --token-file, or with --user and a password from ${PASSWORD_VARIABLE} or --password-file. "
        "Secrets are never taken from the command line. Safe to run again.",
    )  # fmt: skip
    setup_parser.add_argument("--url", required=True, help="frontend URL, e.g. https://zabbix.example.com/")
    setup_parser.add_argument("--token", action="store_true", help=f"authenticate with a token (${TOKEN_VARIABLE})")
    setup_parser.add_argument("--token-file", type=Path, help="file holding the API token")
    setup_parser.add_argument("--user", help=f"authenticate as this user (password in ${PASSWORD_VARIABLE})")
    setup_parser.add_argument("--password-file", type=Path, help="file holding the user's password")
    setup_parser.add_argument("--group", default=DEFAULT_HOST_GROUP, help="host group of a new host")
    setup_parser.add_argument("--insecure", action="store_true", help="do not verify the server's TLS certificate")
    setup_parser.set_defaults(handler=setup_command)


def send_test_command(arguments: argparse.Namespace) -> int:
    """Sends one heartbeat. Returns 0 processed, 1 refused, 2 unreachable. Raises ConfigError."""
    config = _config(arguments)
    assert config.zabbix is not None
    target = destination(config.zabbix)
    now = time.time()
    try:
        processed = ZabbixSender(target).send(
            target.host, keys.HEARTBEAT, str(int(now)), int(now), int((now % 1) * 1e9)
        )
    except UnreachableError as error:
        print(f"zabbix {target.describe()}: unreachable: {error}")
        return 2
    print(f"zabbix {target.describe()} host {target.host}: processed {int(processed)}, failed {int(not processed)}")
    if not processed:
        print(
            f"Zabbix refused {keys.HEARTBEAT}: import the template / link the host "
            f"(`verifier zabbix setup --url URL`), then wait for the server's configuration cache update"
        )
        return 1
    return 0


def template_command(arguments: argparse.Namespace) -> int:
    """Prints or writes the template. Returns 0. Raises ConfigError when the file cannot be written."""
    text = render_template()
    if arguments.output is None:
        sys.stdout.write(text)
        return 0
    try:
        arguments.output.write_text(text, encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"--output {arguments.output}: {error.strerror}") from None
    print(f"template written to {arguments.output}")
    return 0


def setup_command(arguments: argparse.Namespace) -> int:
    """Runs the API setup and prints what changed. Returns 0. Raises ConfigError, ZabbixSetupError."""
    config = _config(arguments)
    secrets = credentials(user=arguments.user, token_file=arguments.token_file, password_file=arguments.password_file)
    outcome = setup(
        arguments.url, secrets, config.zabbix, config.checks, logical=config.dump.enabled, group=arguments.group,
        verify_tls=not arguments.insecure,
    )  # fmt: skip
    for change in outcome.changes:
        print(change)
    if not outcome.changes:
        print(f"host {outcome.host}: template, link and macros already in place")
    print(
        f"host {outcome.host} is ready; Zabbix accepts its values after the server's next configuration cache "
        "update (CacheUpdateFrequency, 60 s by default). Test with `verifier zabbix send-test`."
    )
    return 0


def _config(arguments: argparse.Namespace) -> Config:
    config = load_config(getattr(arguments, "config", None))
    if config.zabbix is None:
        raise ConfigError("zabbix: section missing: add `zabbix: {server: ..., host: ...}` to the config")
    return config
