"""A night of several databases (`source.databases`): every database of the server from one agent.

Under the repository root's one lock: the server's databases are listed and chosen (`databases`,
`exclude`), the roles are read once (`pg_dumpall --globals-only` into `globals/`), and each database
in turn gets a whole `run` of its own in its own subdirectory (snapshot, dump, manifest, exact proof,
history, retention, checks, report) — all of them restored into the night's one sandbox
(`SharedSandbox`). A database that fails is named and the others go on; `run_timeout` bounds the
night (each database gets what is left of it). A database the repository holds but the server no
longer has (or the config no longer names) keeps its backups under retention and is a named WARNING.
"""

from __future__ import annotations

import contextlib
import fnmatch
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from verifier.config import Config
from verifier.errors import RepositoryError, SourceUnreachable, VerifierError
from verifier.pipeline import report_delivery
from verifier.pipeline.commands import check_locked, run_locked
from verifier.pipeline.exposure import exposure_results
from verifier.pipeline.night_delivery import deliver_night
from verifier.pipeline.night_report import DatabaseNight, Night, Why
from verifier.pipeline.night_zabbix import night_zabbix
from verifier.pipeline.opening import ensure_repository, open_repository
from verifier.pipeline.pruning import apply_retention
from verifier.pipeline.source import resolve_source
from verifier.postgres import binaries, catalog
from verifier.postgres.backup.dump_globals import dump_globals
from verifier.postgres.connection import Source
from verifier.process import LocalExecutor
from verifier.progress import Step
from verifier.report import Command, Report
from verifier.repository.backups import Repository, newest_backup
from verifier.repository.databases import Databases
from verifier.repository.exposure import found_open
from verifier.repository.history import History
from verifier.repository.lock import RepositoryLock
from verifier.sandbox.shared import SharedSandbox

logger = logging.getLogger(__name__)

ALWAYS_LEFT_OUT = ("postgres",)  # with `databases: all`, unless named in a list


def choose_databases(
    on_server: Sequence[str], wanted: Literal["all"] | Sequence[str], exclude: Sequence[str]
) -> list[str]:
    """Returns the databases a night backs up, in name order: `wanted` ("all": every database on the
    server but `postgres`; a list: those names, also `postgres`, and a name not on the server too —
    its run then fails, named) less those matching an `exclude` name or shell pattern."""
    if wanted == "all":
        chosen = [name for name in on_server if name not in ALWAYS_LEFT_OUT]
    else:
        chosen = list(dict.fromkeys(wanted))
    return sorted(name for name in chosen if not any(fnmatch.fnmatchcase(name, pattern) for pattern in exclude))


def database_config(config: Config, dbname: str, repository: Path, *, seconds_left: float) -> Config:
    """Returns the config of one database's run: `source.dbname` set, its own repository, the roles not
    dumped again beside it (the night reads them once), no e-mail of its own (the night sends one:
    `night_delivery`), no Zabbix of its own (one push per night: a discovery value replaces the rule's
    whole list) and what is left of the night's `run_timeout`."""
    source = config.source.model_copy(update={"dbname": dbname, "databases": None, "exclude": []})
    return config.model_copy(
        update={
            "source": source,
            "repository": config.repository.model_copy(update={"path": repository}),
            "dump": config.dump.model_copy(update={"globals": False}),
            "report": config.report.model_copy(update={"email": None}),
            "run_timeout": max(seconds_left, 1.0),
            "zabbix": None,  # the night pushes once, every database together (`night_zabbix`)
        }
    )


def night_id(started_at: datetime) -> str:
    """Returns a night's id, made as a run's: its start (UTC) and 4 random hex digits."""
    return f"{started_at.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(2)}"


def run_night(
    config: Config,
    *,
    step: Step = lambda _: None,
    command: Command = Command.RUN,
    prove: bool = True,
    exposures: Sequence[str] = (),
) -> Night:
    """Backs up and proves every chosen database of the server in turn (see the module). Returns the
    night. Raises LockHeld and RepositoryError (exit 3) when the night cannot start at all."""
    started_at = datetime.now(UTC)
    ends_at = time.monotonic() + config.run_timeout
    run_id = night_id(started_at)
    exposed = exposure_results([*exposures, *found_open(config.repository.path)])  # before it is tightened
    databases = Databases(config.repository.path)
    ensure_repository(databases.root)
    with RepositoryLock(databases.root.lock_path):
        parts: list[DatabaseNight] = []
        notes = _root_notes(databases.root)
        globals_path: str | None = None
        starts = 0
        try:
            source, on_server, major = _list_databases(resolve_source(config.source), config.source.databases)
        except VerifierError as error:
            logger.error("%s", error)
            night = _unrun(databases, config, run_id, started_at, notes, str(error), error.exit_code)
            return _write_summary(config, databases, night)
        chosen = choose_databases(on_server, config.source.databases or "all", config.source.exclude)
        logger.info("databases: %s", ", ".join(chosen) or "none")
        if not chosen:
            notes.append(
                f"no database to back up: source.databases and exclude leave none of the server's "
                f"({', '.join(on_server) or 'none'})"
            )
        if config.dump.globals:
            globals_path = _dump_roles(config, source, major, databases, started_at, notes)
        sharing = prove and config.verify.sandbox == "local"
        night_sandbox = SharedSandbox(config.verify, config.postgres, config.repository.path) if sharing else None
        with night_sandbox or contextlib.nullcontext() as shared:
            for name in chosen:

                def run_one(derived: Config, opened: Repository, name: str = name) -> Report:
                    return run_locked(
                        derived, opened, step=lambda text: step(f"{name}: {text}"), command=command, prove=prove,
                        exposed=exposed, shared=shared,
                    )  # fmt: skip

                parts.append(_one_database(config, databases, name, ends_at, run_one))
            starts = shared.starts if shared is not None else 0
        parts += _not_run(config, databases, chosen, on_server)
        databases.prune_globals()
        night = Night(run_id, started_at, datetime.now(UTC), parts, starts, globals_path, notes)
        night = night_zabbix(config, databases, night, ends_at)
        return _write_summary(config, databases, night)


def check_night(
    config: Config,
    *,
    dbname: str | None = None,
    backup_file: Path | None = None,
    quick: bool = False,
    offsite: str | None = None,
    step: Step = lambda _: None,
    exposures: Sequence[str] = (),
) -> Night:
    """`verifier check` for several databases: the newest backup of each database the repository holds
    (or of `dbname` alone, `--db`) proven in turn, in one sandbox. `backup_file` and `offsite` need
    `dbname` (the record goes into its subdirectory). Returns the night. Raises RepositoryError (the
    repository or `dbname` missing), LockHeld."""
    started_at = datetime.now(UTC)
    ends_at = time.monotonic() + config.run_timeout
    run_id = night_id(started_at)
    if dbname is None and (backup_file is not None or offsite is not None):
        option = "--backup" if backup_file is not None else "--offsite"
        raise RepositoryError(f"{option} with source.databases: name the database it belongs to with --db NAME")
    exposed = exposure_results([*exposures, *found_open(config.repository.path)])
    databases = Databases(config.repository.path)
    databases.root.must_exist()
    names = databases.chosen(dbname)
    parts: list[DatabaseNight] = []
    with RepositoryLock(databases.root.lock_path):
        sharing = not quick and config.verify.sandbox == "local"
        night_sandbox = SharedSandbox(config.verify, config.postgres, config.repository.path) if sharing else None
        with night_sandbox or contextlib.nullcontext() as shared:
            for name in names:

                def check_one(derived: Config, opened: Repository, name: str = name) -> Report:
                    return check_locked(
                        derived, opened, backup_file=backup_file, quick=quick, offsite=offsite,
                        step=lambda text: step(f"{name}: {text}"), exposed=exposed, shared=shared,
                    )  # fmt: skip

                parts.append(_one_database(config, databases, name, ends_at, check_one, create=False))
            starts = shared.starts if shared is not None else 0
        night = night_zabbix(config, databases, Night(run_id, started_at, datetime.now(UTC), parts, starts), ends_at)
        return _write_summary(config, databases, night)


def last_night_started(config: Config) -> datetime | None:
    """Returns when the newest run of any database of the repository started (the daemon's catch-up),
    or None when none ran yet."""
    databases = Databases(config.repository.path)
    starts = [History(databases.repository(name).history_path).last_started("run") for name in databases.held()]
    return max((start for start in starts if start is not None), default=None)


def _one_database(
    config: Config,
    databases: Databases,
    name: str,
    ends_at: float,
    work: Callable[[Config, Repository], Report],
    *,
    create: bool = True,
) -> DatabaseNight:
    """Runs `work` (a run or a check) for one database in its subdirectory (created when `create`), with
    what is left of the night's time. Returns its part of the night; an error that kept its run from
    starting is its named problem, never the night's end."""
    seconds_left = ends_at - time.monotonic()
    if seconds_left <= 0:
        return DatabaseNight(name, "failed", problem="run_timeout reached before its turn: not done tonight")
    repository = databases.repository(name)
    derived = database_config(config, name, repository.path, seconds_left=seconds_left)
    logger.info("database %s: %s", name, repository.path)
    try:
        report = work(derived, open_repository(derived, create=create))
    except VerifierError as error:
        logger.error("database %s: %s", name, error)
        return DatabaseNight(name, "failed", problem=str(error), problem_exit_code=error.exit_code)
    backups = repository.backups()
    return DatabaseNight(name, "ran", report, newest_backup(backups, datetime.now(UTC)), len(backups))


def _not_run(config: Config, databases: Databases, chosen: list[str], on_server: list[str]) -> list[DatabaseNight]:
    """Returns the databases the repository holds that this night did not run, each a WARNING, after
    applying retention to their backups (keep_min of them always stay)."""
    result: list[DatabaseNight] = []
    now = datetime.now(UTC)
    for name in databases.held():
        if name in chosen:
            continue
        repository = databases.repository(name)
        derived = database_config(config, name, repository.path, seconds_left=config.run_timeout)
        history = History(repository.history_path)
        history.probe()  # unreadable: retention deletes nothing
        apply_retention(derived, repository, history, verified_now=None, now=now)
        backups = repository.backups()
        why: Why = "left out" if name in on_server else "vanished"
        logger.warning(
            "database %s: %s; %d backup(s) kept",
            name,
            "no longer on the server" if why == "vanished" else "no longer chosen",
            len(backups),
        )
        result.append(DatabaseNight(name, why, None, newest_backup(backups, now), len(backups)))
    return result


def _unrun(
    databases: Databases, config: Config, run_id: str, started_at: datetime, notes: list[str], line: str, code: int
) -> Night:
    """Returns a night that could not list the server: every database held is shown as it stands."""
    now = datetime.now(UTC)
    held = [
        DatabaseNight(name, "failed", None, newest_backup(backups, now), len(backups), problem="not backed up: " + line,
                      problem_exit_code=code)
        for name in databases.held()
        for backups in [databases.repository(name).backups()]
    ]  # fmt: skip
    return Night(run_id, started_at, now, held, 0, None, notes, could_not_run=line, could_not_run_exit_code=code)


def _root_notes(root: Repository) -> list[str]:
    """Returns a WARNING line when the root still holds a single database's backups (source.dbname
    used it before): they are left as they are, neither proven nor pruned by the nights of several."""
    held = root.backups()
    if not held:
        return []
    return [
        f"{len(held)} backup(s) of the single-database form lie at the root of {root.path}: left untouched (not "
        "proven, not pruned); move or delete them yourself"
    ]


def _list_databases(source: Source, named: Sequence[str] | str | None) -> tuple[Source, list[str], int]:
    """Returns the source as it was reached, the server's databases that accept connections (no
    templates) and its major version. The list is read in the maintenance database, or where the
    server refuses that database by name (pg_hba.conf, dropped), in a database the config `named`, or
    template1. Raises SourceUnreachable (the first refusal)."""
    candidates = [source.params.dbname, *(named if isinstance(named, list) else []), "template1"]
    refused: SourceUnreachable | None = None
    for dbname in dict.fromkeys(candidates):
        candidate = replace(source, params=replace(source.params, dbname=dbname))
        try:
            with candidate.params.connect() as connection:
                return candidate, catalog.list_databases(connection), connection.info.server_version // 10000
        except SourceUnreachable as error:
            refused = refused or error
            if f'database "{dbname}"' not in str(error):  # the server itself is out of reach: no other try
                break
    assert refused is not None
    raise refused


def _dump_roles(
    config: Config, source: Source, major: int, databases: Databases, at: datetime, notes: list[str]
) -> str | None:
    """Reads the server's roles and tablespaces once for the night into `globals/`. Returns the file's
    path (None when they could not be read: a note says why; the proofs create roles from each manifest)."""
    path = databases.globals_path(at)
    try:
        executor = source.executor or LocalExecutor(
            binaries.choose(("pg_dumpall",), configured_dir=config.postgres.bin_dir, minimum_major=major,
                            prefer_major=major, purpose="reading the roles")
        )  # fmt: skip
        path.parent.mkdir(mode=0o700, exist_ok=True)
        entry, warning, _ = dump_globals(executor, source, path)
    except (VerifierError, OSError) as error:
        entry, warning = None, f"roles not saved: {error}"
    if warning:
        notes.append(warning)
    return str(path) if entry is not None else None


def _write_summary(config: Config, databases: Databases, night: Night) -> Night:
    """Delivers the night (its HTML report, its one e-mail: `night_delivery`) and writes its summary to the
    root's `reports/<run>.json`, keeping the newest `report.keep`. Returns the night as delivered."""
    night = deliver_night(config, databases, night)
    reports = databases.root.reports_dir
    with contextlib.suppress(OSError):
        report_delivery.write_report_file(night.to_dict(), reports / f"{night.run_id}.json")
        report_delivery.prune_reports(reports, keep=config.report.keep)
    return night
