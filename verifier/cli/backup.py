"""`verifier run`, `dump`, `check`, `demo` and `config`: the backup commands. Parsing and output only;
the work is in `verifier.pipeline.commands` (and `verifier.demo`)."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path

from verifier.config import DEFAULT_PATH, Config, dump_effective, load_config
from verifier.config_exposure import config_exposures
from verifier.pipeline import commands as steps
from verifier.pipeline.night import check_night, run_night
from verifier.pipeline.night_report import Night
from verifier.progress import Step
from verifier.render import console as console_renderer
from verifier.render import progress as progress_renderer
from verifier.report import Command, Report


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    """Adds run, dump, check, demo and config to the `verifier` command."""
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
    check.add_argument(
        "--physical",
        action="store_true",
        help="prove the newest physical backup (physical:) at an instant of production",
    )
    add_db_option(check)
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


def existing_path(text: str) -> Path:
    """Returns `text` as a path. Raises argparse.ArgumentTypeError (a usage error) when nothing is there."""
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"no such file: {text}")
    return path


def _add_output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    parser.add_argument("--all-tables", action="store_true", help="list every table, also when there are many")


def _run(arguments: argparse.Namespace) -> int:
    """The logical night (unless dump.enabled is false), then the physical proof where physical: is set.
    Returns the worse exit code of the two."""
    config = _load(arguments)
    if config.source.several:
        exit_code = _night(config, arguments, Command.RUN, prove=True) if config.dump.enabled else 0
        if config.physical is None:
            return exit_code
        with _progress(arguments) as step:
            report = steps.check_physical(
                config, step=step, exposures=_exposures(arguments), command=Command.RUN_PHYSICAL
            )
        return max(exit_code, _show(report, arguments))
    with _progress(arguments) as step:
        reports = steps.run_nightly(config, step=step, exposures=_exposures(arguments))
    if arguments.json and len(reports) > 1:  # one JSON document: the logical report, then the physical
        json.dump([report.to_dict() for report in reports], sys.stdout, indent=2)
        print()
        return max(report.exit_code for report in reports)
    return max(_show(report, arguments) for report in reports)


def _dump(arguments: argparse.Namespace) -> int:
    config = _load(arguments)
    if config.source.several:
        return _night(config, arguments, Command.DUMP, prove=False)
    with _progress(arguments) as step:
        report = steps.run(config, step=step, command=Command.DUMP, prove=False, exposures=_exposures(arguments))
    return _show(report, arguments)


def _night(config: Config, arguments: argparse.Namespace, command: Command, *, prove: bool) -> int:
    """Runs every chosen database (`source.databases`) and shows the night. Returns its exit code."""
    with _progress(arguments) as step:
        night = run_night(config, step=step, command=command, prove=prove, exposures=_exposures(arguments))
    return _show_night(night, config, arguments)


def _show_night(night: Night, config: Config, arguments: argparse.Namespace) -> int:
    """Prints the night: its lines, one per database, then the report of each database not OK (or the
    whole night as JSON). Returns its exit code."""
    if arguments.json:
        json.dump(night.to_dict(), sys.stdout, indent=2)
        print()
        return night.exit_code
    console = console_renderer.make_console()
    for line in night.summary_lines(config.schedule.display_zone):
        console.print(line, markup=False)
    for database in night.databases:
        if database.report is not None and database.report.exit_code:
            console.print(f"\n── {database.name} ──", markup=False)
            console_renderer.render(database.report, console, all_tables=arguments.all_tables)
    return night.exit_code


def add_db_option(
    parser: argparse.ArgumentParser, text: str = "only this database (with source.databases; default: every database)"
) -> None:
    """Adds `--db NAME`: one database of a config with source.databases, described by `text`."""
    parser.add_argument("--db", metavar="NAME", help=text)


def only_database(arguments: argparse.Namespace, config: Config) -> str | None:
    """Returns the database `--db` names (None: every one). A `--db` other than the one database of a
    single-database config is a usage error (exit 3)."""
    name: str | None = arguments.db
    if name is not None and not config.source.several and name != config.source.dbname:
        arguments.command_parser.error(
            f"--db {name}: this config backs up one database ({config.source.dbname or 'the container'}'s)"
        )
    return name


def _check(arguments: argparse.Namespace) -> int:
    config = _load(arguments)
    if arguments.physical:
        with _progress(arguments) as step:
            report = steps.check_physical(config, step=step, exposures=_exposures(arguments))
        return _show(report, arguments)
    dbname = only_database(arguments, config)
    if config.source.several:
        with _progress(arguments) as step:
            night = check_night(
                config, dbname=dbname, backup_file=arguments.backup, quick=arguments.quick, offsite=arguments.offsite,
                step=step, exposures=_exposures(arguments),
            )  # fmt: skip
        return _show_night(night, config, arguments)
    with _progress(arguments) as step:
        report = steps.check(
            config, backup_file=arguments.backup, quick=arguments.quick, step=step, offsite=arguments.offsite,
            exposures=_exposures(arguments),
        )  # fmt: skip
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
    warnings = _exposures(arguments)
    for warning in warnings:
        print(f"WARNING: {warning}", file=sys.stderr)
    return 1 if warnings else 0


def _exposures(arguments: argparse.Namespace) -> list[str]:
    """Returns the config file's exposures (readable by others with a secret inline)."""
    return config_exposures(arguments.config or DEFAULT_PATH)


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
