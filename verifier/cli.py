"""Command line: argument parsing, output and exit codes only; the work is in `pipeline`.

Exit codes: 0 all OK · 1 a check WARNING · 2 a check CRITICAL · 3 could not run — always with one
line that says what to fix. Tracebacks only with --debug.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

from verifier import __version__, daemon_logging, pipeline
from verifier.config import DEFAULT_PATH, Config, dump_effective, load_config
from verifier.errors import VerifierError
from verifier.progress import Step
from verifier.render import console as console_renderer
from verifier.render import progress as progress_renderer
from verifier.report import Report

logger = logging.getLogger("verifier")
Handler = Callable[[argparse.Namespace], int]

DESCRIPTION = """\
Proves that a PostgreSQL backup restores and holds exactly what production held:
`verifier run` every night (snapshot + dump, restore into a throwaway cluster,
compare every table with the snapshot, retention, report, Zabbix), `verifier
check` for the newest backup now, `verifier demo` to see it work.

Exit codes: 0 OK, 1 warning, 2 critical (stale, failed, mismatch), 3 could not
run (also a usage error).
"""


class CommandParser(argparse.ArgumentParser):
    """argparse with the exit codes of DESIGN.md: a usage error (unknown command or option, a bad
    value, a missing file argument) is one line pointing at `--help`, and exit 3 — never 2, which
    means CRITICAL. Subcommand parsers are of this class too (argparse creates them from it)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.set_defaults(command_parser=self)  # the innermost command's parser wins: it names the command

    def error(self, message: str) -> NoReturn:
        """Prints `PROG: message (see `PROG --help`)` on stderr and exits 3."""
        self.exit(3, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def existing_path(text: str) -> Path:
    """Returns `text` as a path. Raises argparse.ArgumentTypeError (a usage error) when nothing is there."""
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"no such file: {text}")
    return path


def main(argv: list[str] | None = None) -> int:
    """Runs the command line. Returns the exit code (also used as the process status)."""
    parser = build_parser()
    arguments, unrecognized = parser.parse_known_args(argv)
    if unrecognized:
        arguments.command_parser.error(f"unrecognized arguments: {' '.join(unrecognized)}")
    _configure_logging(arguments)
    os.umask(0o077)
    try:
        with _terminate_as_interrupt():
            return int(arguments.handler(arguments))
    except VerifierError as error:
        if arguments.debug:
            logger.exception("error")
        print(f"verifier: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("verifier: interrupted; the sandbox and partial files were removed", file=sys.stderr)
        return 3


def build_parser() -> argparse.ArgumentParser:
    """Returns the parser for every subcommand."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        type=Path,
        metavar="PATH",
        default=argparse.SUPPRESS,
        help=f"config file ({DEFAULT_PATH})",
    )
    common.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks and debug logging"
    )
    common.add_argument(
        "--verbose",
        "-v",
        action="store_true",
        default=argparse.SUPPRESS,
        help="log every step on stderr, also on a terminal",
    )

    parser: argparse.ArgumentParser = CommandParser(
        prog="verifier", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"pg-backup-verifier {__version__}")
    parser.add_argument("--config", type=Path, metavar="PATH", default=None, help=f"config file ({DEFAULT_PATH})")
    parser.add_argument("--debug", action="store_true", default=False, help="show tracebacks and debug logging")
    parser.add_argument("--verbose", "-v", action="store_true", default=False, help="log every step on stderr")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    run = commands.add_parser(
        "run",
        parents=[common],
        help="take a backup, prove it, apply retention, report",
        description="The nightly job: snapshot + dump, restore and compare, retention, report.",
    )
    _add_output_options(run)
    run.set_defaults(handler=_run)

    dump = commands.add_parser(
        "dump",
        parents=[common],
        help="take a backup (snapshot, dump, manifest) without verifying",
        description="Snapshot, row counts and schema fingerprint, pg_dump --snapshot, manifest.",
    )
    _add_output_options(dump)
    dump.set_defaults(handler=_dump)

    check = commands.add_parser(
        "check",
        parents=[common],
        help="verify the newest backup (or --backup FILE) now",
        description="Verify an existing backup: checksums, readable to the end, restore, compare. "
        "A file without manifest (e.g. a cron'd pg_dump | gzip) is compared with production now.",
    )
    check.add_argument(
        "--backup", type=existing_path, metavar="FILE", help="verify this dump file instead of the repository's newest"
    )
    check.add_argument("--quick", action="store_true", help="no restore: age, count, checksum, readable end to end")
    check.add_argument("--offsite", nargs="?", const="", metavar="TARGET", help="prove (and drill) the off-site copy")
    _add_output_options(check)
    check.set_defaults(handler=_check)

    demo = commands.add_parser(
        "demo",
        parents=[common],
        help="run the whole loop on a sample database that keeps changing",
        description="Starts a throwaway 'production' PostgreSQL with a 27-table sample database, keeps a writer "
        "inserting during the dump, then dumps, restores, compares and reports. Needs no config.",
    )
    demo.add_argument("--keep", action="store_true", help="keep the demo repository (backup, manifest, reports)")
    demo.add_argument("--format", choices=("custom", "directory", "plain"), default="custom", help="dump format")
    demo.add_argument("--run-as", default="postgres", help="unprivileged user for the clusters when run as root")
    _add_output_options(demo)
    demo.set_defaults(handler=_demo)

    config = commands.add_parser(
        "config",
        help="validate or show the configuration",
        description="Validate the configuration file, or print a commented sample to start one from.",
    )
    config_commands = config.add_subparsers(title="config commands", metavar="COMMAND", required=True)
    config_check = config_commands.add_parser(
        "check",
        parents=[common],
        help="validate and print the effective config (secrets masked)",
        description="Reads the config file, names every problem with its YAML path (exit 3), or prints the "
        "effective configuration with every default filled in and secrets masked.",
    )
    config_check.set_defaults(handler=_config_check)
    config_example = config_commands.add_parser(
        "example",
        parents=[common],
        help="print a commented sample config",
        description="Prints a commented sample configuration on stdout.",
    )
    config_example.set_defaults(handler=_config_example)

    for register in _extensions():
        register(commands, common)
    return parser


def _extensions() -> list[
    Callable[[argparse._SubParsersAction[argparse.ArgumentParser], argparse.ArgumentParser], None]
]:
    """Returns the register functions of the command groups that live beside their adapters.

    Each is `register(commands, common)`: it adds its subparsers to `commands` (passing
    `parents=[common]` so that --config/--debug/--verbose work after the command too) and sets
    `handler=` to a function taking the parsed arguments and returning the exit code.
    """
    from verifier.docker_cli import register as docker_commands
    from verifier.offsite.cli import register as offsite_commands
    from verifier.ops_cli import register as operations_commands
    from verifier.security_cli import register as security_commands
    from verifier.selftest_cli import register as selftest_commands
    from verifier.zabbix.cli import register as zabbix_commands

    return [
        zabbix_commands,
        operations_commands,
        docker_commands,
        security_commands,
        selftest_commands,
        offsite_commands,
    ]


def _add_output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    parser.add_argument("--all-tables", action="store_true", help="list every table, also when there are many")


def _run(arguments: argparse.Namespace) -> int:
    config = _load(arguments)
    with _progress(arguments) as step:
        report = pipeline.run(config, step=step)
    return _show(report, arguments)


def _dump(arguments: argparse.Namespace) -> int:
    config = _load(arguments)
    with _progress(arguments) as step:
        report = pipeline.run(config, step=step, command="dump", verify=False)
    return _show(report, arguments)


def _check(arguments: argparse.Namespace) -> int:
    config = _load(arguments)
    with _progress(arguments) as step:
        report = pipeline.check(
            config, backup_file=arguments.backup, quick=arguments.quick, step=step, offsite=arguments.offsite
        )
    return _show(report, arguments)


def _demo(arguments: argparse.Namespace) -> int:
    from verifier.demo import run_demo

    def announce(message: str) -> None:
        print(f"demo: {message}", file=sys.stderr)

    with _progress(arguments) as step:
        report = run_demo(
            keep=arguments.keep, dump_format=arguments.format, run_as=arguments.run_as, step=step, announce=announce
        )
    return _show(report, arguments)


def _config_check(arguments: argparse.Namespace) -> int:
    config = _load(arguments)
    print(f"# {arguments.config or DEFAULT_PATH}: valid", file=sys.stderr)
    print(dump_effective(config), end="")
    return 0


def _config_example(arguments: argparse.Namespace) -> int:
    from importlib import resources

    print(resources.files("verifier").joinpath("config.example.yaml").read_text(), end="")
    return 0


def _load(arguments: argparse.Namespace) -> Config:
    return load_config(arguments.config)


def _show(report: Report, arguments: argparse.Namespace) -> int:
    if arguments.json:
        json.dump(report.to_dict(), sys.stdout, indent=2)
        print()
    else:
        console_renderer.render(report, console_renderer.make_console(), all_tables=arguments.all_tables)
    return report.exit_code


@contextlib.contextmanager
def _progress(arguments: argparse.Namespace) -> Iterator[Step]:
    """Yields the step callback: live progress on a terminal, timestamped start/end lines otherwise."""
    if not sys.stderr.isatty() or arguments.verbose or arguments.debug:
        with progress_renderer.log_progress() as lines:
            yield lines
        return
    with progress_renderer.terminal_progress(sys.stderr) as live:
        yield live


@contextlib.contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """Turns SIGTERM into KeyboardInterrupt so every `finally` (sandbox teardown, partial files) runs."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _configure_logging(arguments: argparse.Namespace) -> None:
    verbose = arguments.verbose or arguments.debug or not sys.stderr.isatty()
    level = logging.DEBUG if arguments.debug else (logging.INFO if verbose else logging.WARNING)
    daemon_logging.configure(level=level)
    for noisy in ("urllib3", "docker", "psycopg"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # zabbix_utils logs a failed connection at ERROR; the zabbix result already says it, in one line
    logging.getLogger("zabbix_utils").setLevel(logging.CRITICAL)


if __name__ == "__main__":
    sys.exit(main())
