"""`verifier daemon` and `verifier systemd install`: the agent as a service. Parsing and output only;
the work is in `verifier.daemon` (schedule, systemd units, logs)."""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from datetime import timedelta
from pathlib import Path

from verifier.cli.repository import remove_partials
from verifier.config import DEFAULT_PATH, load_config
from verifier.config_exposure import config_exposures
from verifier.daemon import logs as daemon_logging
from verifier.daemon import systemd
from verifier.daemon.schedule import Daemon, Stopped
from verifier.errors import SystemdError
from verifier.pipeline import commands as steps
from verifier.pipeline.night import last_night_started, run_night
from verifier.pipeline.selftest_rotation import weekly_selftest
from verifier.report import Command
from verifier.repository.backups import Repository
from verifier.repository.databases import Databases
from verifier.repository.history import History
from verifier.zabbix.push import send_heartbeat

logger = logging.getLogger(__name__)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser) -> None:
    """Adds daemon and systemd to the `verifier` command."""
    daemon = commands.add_parser(
        "daemon", parents=[common], help="run `verifier run` every night on the schedule (foreground)",
        description="Runs the nightly job at schedule.at in schedule.timezone (plus a random delay), catches "
        "up a night the machine was off, sends the Zabbix heartbeat in between; SIGTERM/SIGINT stop it cleanly.",
    )  # fmt: skip
    daemon.add_argument("--log-file", type=Path, help="also log to this file, rotated at 10 MiB (5 kept)")
    daemon.add_argument(
        "--heartbeat-interval", type=int, default=900, metavar="SECONDS", help="between runs (default 900)"
    )
    daemon.set_defaults(handler=daemon_command)

    units = commands.add_parser(
        "systemd", help="install the systemd service and timer",
        description="Writes the systemd service and timer that run `verifier run` every night.",
    )  # fmt: skip
    units_commands = units.add_subparsers(title="systemd commands", metavar="COMMAND", required=True)
    install = units_commands.add_parser(
        "install", parents=[common], help="write (and enable) pg-backup-verifier.service and .timer",
        description="Writes a hardened oneshot service running `verifier run` and a timer at schedule.at "
        "in schedule.timezone with RandomizedDelaySec and Persistent=true, then enables the timer.",
    )  # fmt: skip
    install.add_argument("--user", help="run the service as this account instead of root")
    install.add_argument("--dry-run", action="store_true", help="print the units, write nothing")
    install.add_argument("--unit-dir", type=Path, default=systemd.SYSTEM_UNIT_DIR, help="default %(default)s")
    install.add_argument("--no-enable", action="store_true", help="write the files only")
    install.set_defaults(handler=systemd_install_command)


def daemon_command(arguments: argparse.Namespace) -> int:
    """Runs the daemon until SIGTERM/SIGINT. Returns 0. Raises ConfigError for a bad config or log file."""
    config = load_config(arguments.config)
    daemon_logging.configure(log_file=arguments.log_file, level=logging.DEBUG if arguments.debug else logging.INFO)
    history = History(Repository(config.repository.path).history_path)

    def job() -> int:
        # re-read the config each night, so an edit needs no restart (the schedule itself does)
        current = load_config(arguments.config)
        try:
            exposures = config_exposures(arguments.config or DEFAULT_PATH)
            step = lambda name: logger.info("step: %s", name)  # noqa: E731
            if current.source.several:  # every database of the server, one night
                exit_code = run_night(current, step=step, exposures=exposures).exit_code if current.dump.enabled else 0
                if current.physical is not None:
                    physical = steps.check_physical(
                        current, step=step, exposures=exposures, command=Command.RUN_PHYSICAL
                    )
                    exit_code = max(exit_code, physical.exit_code)
            else:
                reports = steps.run_nightly(current, step=step, exposures=exposures)
                exit_code = max(report.exit_code for report in reports)
        except Stopped:
            remove_partials(Repository(current.repository.path))
            if current.source.several:
                databases = Databases(current.repository.path)
                for name in databases.held():
                    remove_partials(databases.repository(name))
            raise
        weekly_selftest(current)  # schedule.selftest: weekly, after the night's run
        return exit_code

    daemon = Daemon(
        schedule=config.schedule,
        job=job,
        last_run_started=(lambda: last_night_started(config))
        if config.source.several
        else lambda: history.last_started(Command.RUN if config.dump.enabled else Command.RUN_PHYSICAL),
        heartbeat=(lambda: send_heartbeat(config.zabbix)) if config.zabbix is not None else None,
        heartbeat_interval=timedelta(seconds=max(arguments.heartbeat_interval, 1)),
    )
    with daemon.signals_handled():
        return daemon.serve()


def systemd_install_command(arguments: argparse.Namespace) -> int:
    """Prints (--dry-run) or installs the units. Returns 0. Raises ConfigError, SystemdError."""
    config_path = (arguments.config or DEFAULT_PATH).resolve()
    config = load_config(config_path)
    units = systemd.render(
        config.schedule, config.repository, config.verify, config_path=config_path, user=arguments.user
    )
    for warning in systemd.hidden_from_service(
        {
            "the config": config_path,
            "repository.path": config.repository.path,
            "postgres.bin_dir": config.postgres.bin_dir,
            "verify.temp_dir": config.verify.temp_dir,
            "verify.template_dir": config.verify.template_dir,
        }
    ):
        print(f"warning: {warning}", file=sys.stderr)
    if arguments.dry_run:
        for name, content in units.files().items():
            print(f"# {arguments.unit_dir / name}\n{content}")
        return 0
    _prepare_repository(Repository(config.repository.path), arguments.user)
    for path in systemd.install(units, unit_dir=arguments.unit_dir, enable=not arguments.no_enable):
        print(f"wrote {path}")
    return 0


def _prepare_repository(repository: Repository, user: str | None) -> None:
    """Creates the repository (ReadWritePaths= must exist when the service starts), owned by `user`.

    Raises SystemdError when it cannot be created or handed over.
    """
    try:
        repository.ensure()
        if user:
            for path in (repository.path, repository.reports_dir, repository.state_dir):
                shutil.chown(path, user=user)
    except (OSError, LookupError) as error:
        raise SystemdError(f"cannot prepare the repository {repository.path} for {user or 'root'}: {error}") from None
