"""Command line: argument parsing, output and exit codes only; the work is in `pipeline`.

Exit codes: 0 all OK · 1 a check WARNING · 2 a check CRITICAL · 3 could not run — always with one
line that says what to fix. Tracebacks only with --debug. An exception nobody expected is exit 3 too
(the pipeline records it in its report first; see `pipeline.crash`), never 0 or 1.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

from verifier import __version__
from verifier.cli.pipe import quiet_when_the_reader_leaves
from verifier.config import DEFAULT_PATH
from verifier.daemon import logs as daemon_logging
from verifier.errors import COULD_NOT_RUN, VerifierError, one_line

logger = logging.getLogger(__name__)

DESCRIPTION = """\
Proves that a PostgreSQL backup restores and holds exactly what production held:
`verifier run` every night (snapshot + dump, restore into a throwaway cluster,
compare every table with the snapshot, retention, report, Zabbix), `verifier
check` for the newest backup now, `verifier demo` to see it work.

Exit codes: 0 OK, 1 warning, 2 critical (stale, failed, mismatch), 3 could not
run (also a usage error).
"""


class CommandParser(argparse.ArgumentParser):
    """argparse with the exit codes of docs/ARCHITECTURE.md "Exit codes": a usage error (unknown command or
    option, a bad value, a missing file argument) is one line pointing at `--help`, and exit 3 — never 2,
    which means CRITICAL. Subcommand parsers are of this class too (argparse creates them from it)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.set_defaults(command_parser=self)  # the innermost command's parser wins: it names the command

    def error(self, message: str) -> NoReturn:
        """Prints `PROG: message (see `PROG --help`)` on stderr and exits 3."""
        self.exit(COULD_NOT_RUN, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def main(argv: list[str] | None = None) -> int:
    """Runs the command line. Returns the exit code (also used as the process status)."""
    parser = build_parser()
    arguments, unrecognized = parser.parse_known_args(argv)
    if unrecognized:
        arguments.command_parser.error(f"unrecognized arguments: {' '.join(unrecognized)}")
    _configure_logging(arguments)
    os.umask(0o077)
    try:
        with _terminate_as_interrupt(), quiet_when_the_reader_leaves():
            return int(arguments.handler(arguments))
    except VerifierError as error:
        if arguments.debug:
            logger.exception("error")
        print(f"verifier: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("verifier: interrupted; the sandbox and partial files were removed", file=sys.stderr)
        return COULD_NOT_RUN
    except Exception as error:  # the crash rule: never exit 0 or 1 (a scheduler counts 1 as success)
        logger.debug("traceback of the unexpected error", exc_info=error)
        if arguments.debug:
            logger.exception("unexpected error")
        print(
            f"verifier: unexpected error: {type(error).__name__}: {one_line(error)} "
            "(a bug in the agent; run with --debug for the traceback)",
            file=sys.stderr,
        )
        return COULD_NOT_RUN


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

    for register in _extensions():
        register(commands, common)
    return parser


def _extensions() -> list[
    Callable[[argparse._SubParsersAction[argparse.ArgumentParser], argparse.ArgumentParser], None]
]:
    """Returns the register functions of the command groups, in the order `verifier --help` lists them.

    Each is `register(commands, common)`: it adds its subparsers to `commands` (passing
    `parents=[common]` so that --config/--debug/--verbose work after the command too) and sets
    `handler=` to a function taking the parsed arguments and returning the exit code.
    """
    from verifier.cli import backup, docker, doctor, offsite, repository, selftest, service, zabbix

    return [
        backup.register,
        zabbix.register,
        service.register,
        repository.register,
        docker.register,
        doctor.register,
        selftest.register,
        offsite.register,
    ]


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
