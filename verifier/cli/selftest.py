"""`verifier selftest`: parsing and output only; the damage and the verdict come from `verifier.pipeline.selftest`."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from verifier.cli.backup import add_db_option, only_database
from verifier.config import load_config
from verifier.errors import ConfigError
from verifier.pipeline import commands as steps
from verifier.pipeline.selftest import SelfTest, report_selftest, run_physical_selftest, run_selftest
from verifier.pipeline.selftest_rotation import selftest_of_database
from verifier.report import Command


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    """Adds `selftest` to the main parser's `commands`."""
    selftest = commands.add_parser(
        "selftest",
        parents=[common],
        help="prove the alarm fires: restore the newest backup, damage it, fail unless every damage is caught",
        description="Restores the newest backup, damages the restored copy (deletes a row, changes one value, "
        "resets a sequence, drops an index, removes a large object, empties a materialized view, makes a constraint "
        "NOT VALID, marks an index invalid, changes a database setting), runs the comparison and fails (exit 2) unless "
        "every damage was named. "
        "With source.databases it tests one database: the one --db names, else the one whose last self-test is "
        "oldest (never tested first), among those with a backup. "
        "--demo does it on the demo's sample database instead of the configured repository.",
    )
    selftest.add_argument("--demo", action="store_true", help="take a backup of the demo database and test with it")
    selftest.add_argument(
        "--physical", action="store_true", help="test with the newest physical backup (physical:) instead"
    )
    selftest.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    add_db_option(selftest, "the database to test (with source.databases; default: the one tested longest ago)")
    selftest.set_defaults(handler=selftest_command)


def selftest_command(arguments: argparse.Namespace) -> int:
    """Prints one line per damage. Returns 0 when every damage was caught, 2 when not. Raises
    ConfigError, BackupNotFound, and the errors of a restore that cannot run (exit 3)."""
    if arguments.demo:
        outcome = _on_demo()
    else:
        config = load_config(arguments.config)
        dbname = only_database(arguments, config)
        if arguments.physical and config.physical is None:
            raise ConfigError("no physical: section in the config: name the pgBackRest stanza there")
        if config.source.several:  # one database's newest backup, in its subdirectory
            if arguments.physical and dbname is None:
                arguments.command_parser.error("--physical with source.databases: name the database with --db NAME")
            outcome = selftest_of_database(config, dbname, physical=arguments.physical)
        else:
            outcome = run_physical_selftest(config) if arguments.physical else run_selftest(config)
        report_selftest(config, outcome)  # recorded for the daemon's weekly schedule, pushed to Zabbix
    result = outcome.result()
    if arguments.json:
        json.dump(
            {"status": result.status.name, "summary": result.summary, "details": list(result.details)}, sys.stdout
        )
        print()
    else:
        print(f"{result.status.name}: {result.summary}")
        for line in result.details:
            print(f"  {line}")
    return 0 if outcome.passed else 2


def _on_demo() -> SelfTest:
    """Returns the self-test of a fresh backup of the demo database (removed afterwards)."""
    from verifier.demo import demo_config, production_database

    workdir = Path(tempfile.mkdtemp(prefix="pg-backup-verifier-selftest-"))
    try:
        with production_database("postgres") as cluster:
            config = demo_config(cluster, workdir / "repository", "custom")
            report = steps.run(config, command=Command.DEMO)
            if not report.verification_passed:
                print(f"verifier: the demo backup itself did not verify (exit {report.exit_code})", file=sys.stderr)
            return run_selftest(config)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
