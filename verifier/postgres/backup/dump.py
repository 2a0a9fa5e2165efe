"""The snapshot and the dump: one REPEATABLE READ transaction exports a snapshot, every kind of evidence
is read in it (`evidence.read_in_snapshot`: the manifest's sections), and `pg_dump --snapshot` dumps exactly
that state.

The exporting transaction stays open until pg_dump exits: with `-j`, pg_dump's workers import
the snapshot late and fail with `invalid snapshot identifier` if it was closed early. Counting
runs while pg_dump streams, on the snapshot session plus `jobs - 1` joined connections.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import psycopg

from verifier import __version__
from verifier.archive.files import fsync_directory, hash_existing
from verifier.config import DumpConfig, PostgresConfig, VerifyConfig
from verifier.errors import DumpFailed, SourceUnreachable
from verifier.manifest import FileEntry, Manifest, SourceInfo
from verifier.postgres import binaries, catalog, evidence
from verifier.postgres.backup import dump_locks
from verifier.postgres.backup.dump_errors import explain, one_line_text, pg_dump_error, pg_warned
from verifier.postgres.backup.dump_globals import dump_globals
from verifier.postgres.backup.dump_stream import Compression, Streamer, agent_compresses
from verifier.postgres.connection import Source
from verifier.postgres.evidence import database_properties, database_sql
from verifier.postgres.evidence.kind import ProductionSnapshot
from verifier.postgres.instant import Instant, SlotInstants
from verifier.postgres.snapshot import ServerInfo, server_info
from verifier.process import Executor, LocalExecutor, RunningProgram
from verifier.progress import Meter
from verifier.repository.backups import PARTIAL_SUFFIX, Repository

logger = logging.getLogger(__name__)


class Tap(Protocol):
    """Takes the archive's stream as pg_dump writes it (a restore reading along)."""

    def __call__(self, chunk: bytes) -> None:
        """Takes the next chunk (blocks while the taker is busy)."""

    def wait_until_flowing(self, timeout: float) -> bool:
        """Returns True once the tap takes the stream (or gave up on it), False after `timeout` seconds.
        The counting in the snapshot waits for it, so that it does not compete with the tap's start."""


TapFactory = Callable[[SourceInfo, list[str]], Tap | None]
"""Given the source's facts and role names, returns a tap for the archive's stream, or None."""


def pg_dump_argv(
    dump_format: str,
    snapshot_id: str,
    *,
    jobs: int,
    compression: int | None,
    output: Path | None,
    lock_wait_timeout: float = 600.0,
) -> list[str]:
    """Returns pg_dump's argv (connection details travel in the environment, never here)."""
    argv = [
        "pg_dump",
        "--no-password",
        f"--snapshot={snapshot_id}",
        f"--lock-wait-timeout={max(1, int(lock_wait_timeout * 1000))}",
    ]
    argv.append(
        {"custom": "--format=custom", "directory": "--format=directory", "plain": "--format=plain"}[dump_format]
    )
    if dump_format == "directory":
        argv += [f"--jobs={jobs}", f"--file={output}"]
    if compression is not None and dump_format != "plain":
        argv.append(f"--compress={compression}")
    return argv


def take_backup(
    source: Source,
    dump_config: DumpConfig,
    postgres: PostgresConfig,
    repository: Repository,
    meter: Meter | None = None,
    verify: VerifyConfig | None = None,
    tap_for: TapFactory | None = None,
    instants: SlotInstants | None = None,
) -> Manifest:
    """Dumps the source into the repository and writes the manifest last. Returns the manifest.
    `meter` hears of the bytes written and the tables counted. `verify` says how the content
    checksums are taken in the snapshot (its defaults when None). `tap_for`, for a custom archive, is
    asked just before pg_dump starts for a tap that gets the archive's stream as it is written (a
    restore reading along); it gets the source's facts and role names. With `instants` the dump runs in
    a replication slot's snapshot (`dump_locks.import_locked_instant`) that a physical proof restores to:
    the manifest records its LSN (`snapshot_lsn`); the caller ends the slot's session once this returns.

    Raises SourceUnreachable, BinaryMissing, or DumpFailed; on failure the partial file is removed
    and no existing backup is touched.
    """
    started = time.monotonic()
    params = source.params
    with params.connect(autocommit=True) as session:  # no timeouts, row security off: PRODUCTION_OPTIONS
        info = server_info(session)
        executor = source.executor or LocalExecutor(
            binaries.choose(
                ("pg_dump",),
                configured_dir=postgres.bin_dir,
                minimum_major=info.major,
                prefer_major=info.major,
                purpose=f"dumping PostgreSQL {info.version}",
            )
        )
        if dump_config.format == "directory" and not executor.shares_filesystem:
            raise DumpFailed("dump.format 'directory' needs pg_dump on this host; use 'custom' for a container source")
        pg_dump_version = program_version(executor, "pg_dump")
        created_at = datetime.now(UTC)
        repository.remove_partials()
        name = repository.new_backup_name(params.dbname, created_at)
        final_path = repository.dump_path_for(name, dump_config.format, zstd=agent_compresses(dump_config))
        partial = final_path.with_name(final_path.name + PARTIAL_SUFFIX)
        directory = dump_config.format == "directory"

        def start_dump(snapshot_id: str, application_name: str) -> RunningProgram:
            argv = pg_dump_argv(
                dump_config.format,
                snapshot_id,
                jobs=dump_config.jobs,
                compression=0 if agent_compresses(dump_config) else dump_config.compression,
                output=partial if directory else None,
                lock_wait_timeout=dump_config.lock_wait_timeout,
            )
            environment = {**params.libpq_environment(), "PGAPPNAME": application_name}  # found in pg_stat_activity
            return executor.start(argv, environment=environment, stdout=not directory)

        snapshot = ProductionSnapshot(
            session,
            params.connect,
            verify or VerifyConfig(),
            jobs=dump_config.jobs,
            lock_timeout_seconds=dump_config.lock_wait_timeout,
            meter=meter,
        )
        try:
            # before the snapshot's transaction, one short transaction each (sequences, the database's
            # properties): the snapshot's transaction then holds no lock on any of them
            evidence.read_before_snapshot(snapshot)
            roles = catalog.list_roles(session)
            source_info = _source_info(params.label, params.dbname, info)
            tap = tap_for(source_info, roles) if tap_for is not None and dump_config.format == "custom" else None
            locked, program = dump_locks.start_dump_locked(
                session,
                params.connect,
                start_dump,
                lock_timeout_seconds=dump_config.lock_wait_timeout,
                discard=lambda: shutil.rmtree(partial, ignore_errors=True) if directory else None,
                take_instant=(lambda: _snapshot_of(instants.take(params))) if instants is not None else None,
            )
            snapshot_id = snapshot.snapshot_id = locked.snapshot_id
            logger.info("dump: snapshot %s, %s → %s", snapshot_id, params.label, final_path.name)
            database = database_properties.SECTION.of_sections(snapshot.sections)
            files, dump_warnings = _dump_in_snapshot(
                program,
                dump_config,
                partial,
                final_path.name,
                meter,
                tap,
                # a plain dump carries the database's own properties (see database_sql)
                database_sql.plain_section(database) if dump_config.format == "plain" and database else None,
                read=lambda wait: _read_snapshot(snapshot, source, wait),
            )
        except psycopg.Error as error:
            raise DumpFailed(f"reading the snapshot failed: {one_line_text(str(error))}") from None
        finally:
            if not session.closed:
                with contextlib.suppress(psycopg.Error):  # interrupted mid-query: closing the session ends it
                    session.execute("ROLLBACK")
    try:
        notes: list[str] = []
        globals_entry, without_passwords = None, False
        if dump_config.globals:
            globals_entry, globals_warning, without_passwords = dump_globals(
                executor, source, repository.globals_path_for(name)
            )
            if globals_warning:
                logger.warning("%s", globals_warning)
                notes.append(globals_warning)
        if globals_entry is not None:
            files.append(globals_entry)
        notes += [f"pg_dump: {w}" for w in dump_warnings if w != database_properties.SUBSCRIPTIONS_NOT_DUMPED]
        manifest = Manifest(
            name=name,
            format=dump_config.format,
            created_at=created_at,
            completed_at=datetime.now(UTC),
            tool_version=__version__,
            pg_dump_version=pg_dump_version,
            source=source_info,
            snapshot_id=snapshot_id,
            snapshot_lsn=instants.last.lsn if instants is not None and instants.last is not None else None,
            files=files,
            dump_path=final_path.name,
            globals_path=globals_entry.path if globals_entry else None,
            roles=roles,
            dump_seconds=round(time.monotonic() - started, 3),
            notes=notes,
            dump_warnings=dump_warnings,
            roles_without_passwords=without_passwords,
            **snapshot.sections,  # every kind's readings, each under its own keys
        )
        manifest.write(repository.manifest_path_for(name))
        # the commit point: until the dump has its final name, a manifest describes nothing (a killed run
        # leaves no dump without manifest; the next run removes the manifest with the .partial)
        partial.rename(final_path)
        fsync_directory(repository.path)
    except OSError as error:  # e.g. the disk filled up after pg_dump: no half-saved backup stays
        _remove_backup(repository, name, final_path)
        raise DumpFailed(f"saving backup {name} in {repository.path} failed: {error.strerror or error}") from None
    except BaseException:  # SIGTERM/Ctrl-C before the manifest is written: no manifest-less dump stays
        _remove_backup(repository, name, final_path)
        raise
    return manifest


def _snapshot_of(instant: Instant) -> str:
    """Returns the snapshot `instant` exported (an exact instant always exports one)."""
    assert instant.snapshot_id is not None, "an exact instant exports its snapshot"
    return instant.snapshot_id


def _source_info(label: str, dbname: str, info: ServerInfo) -> SourceInfo:
    return SourceInfo(
        label=label,
        dbname=dbname,
        server_version=info.version,
        server_version_num=info.version_num,
        encoding=info.encoding,
        collate=info.collate,
        ctype=info.ctype,
    )


def _remove_backup(repository: Repository, name: str, dump_path: Path) -> None:
    """Deletes whatever of backup `name` was written; never raises."""
    if dump_path.is_dir():
        shutil.rmtree(dump_path, ignore_errors=True)
    manifest_path = repository.manifest_path_for(name)
    partial = dump_path.with_name(dump_path.name + PARTIAL_SUFFIX)  # failed before (or at) its rename
    if partial.is_dir():
        shutil.rmtree(partial, ignore_errors=True)
    for path in (
        partial,
        dump_path,
        repository.globals_path_for(name),
        manifest_path,
        manifest_path.with_name(manifest_path.name + PARTIAL_SUFFIX),
    ):
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)


def program_version(executor: Executor, program: str) -> str:
    """Returns e.g. '15.18' from `program --version` run by the executor. Raises DumpFailed."""
    if isinstance(executor, LocalExecutor):
        return executor.installation.version
    running = executor.start([program, "--version"], environment={})
    output = b"".join(running.stdout_chunks()).decode(errors="replace")
    running.wait()
    try:
        return binaries.parse_major(output)[1]
    except ValueError:
        raise DumpFailed(
            f"cannot tell the version of {program}: {output.strip() or running.stderr_text().strip()}"
        ) from None


def _read_snapshot(snapshot: ProductionSnapshot, source: Source, wait: Callable[[], None]) -> None:
    """Reads every kind of evidence in the snapshot into `snapshot.sections`, `wait` called once the catalog is
    read (until a restore reading along has started). Raises DumpFailed."""
    try:
        evidence.read_in_snapshot(snapshot, wait)
    except (psycopg.Error, catalog.CountFailed) as error:
        cause = error.error if isinstance(error, catalog.CountFailed) else error
        if isinstance(cause, psycopg.errors.LockNotAvailable):
            where = f" on {str(error).split(':', 1)[0]}" if isinstance(error, catalog.CountFailed) else ""
            who = dump_locks.blocking_sessions(source.params.connect) or ["no session holds or awaits one now"]
            message = f"reading the snapshot waited dump.lock_wait_timeout for a lock{where}: {'; '.join(who)}"
            raise DumpFailed(message) from None
        raise DumpFailed(f"counting rows in the snapshot failed: {explain(str(error))}") from None
    except SourceUnreachable as error:
        raise DumpFailed(f"counting rows in the snapshot failed: {error}") from None


def _dump_in_snapshot(
    program: RunningProgram,
    dump_config: DumpConfig,
    partial: Path,
    final_name: str,
    meter: Meter | None,
    tap: Tap | None,
    plain_section: bytes | None,
    read: Callable[[Callable[[], None]], None],
) -> tuple[list[FileEntry], list[str]]:
    """Streams the running pg_dump's output while `read` reads the snapshot, adding `plain_section` to a
    plain dump. Returns (files, what a successful pg_dump warned about). Raises DumpFailed."""
    directory = dump_config.format == "directory"
    compression: Compression = (
        "gzip" if dump_config.format == "plain" else "zstd" if agent_compresses(dump_config) else None
    )
    if plain_section is not None:
        program = database_sql.WithSection(program, plain_section)
    streamer = None if directory else Streamer(program, partial, final_name, compression, meter=meter, tap=tap)
    try:
        if streamer is not None:
            streamer.start()

        def wait_for_tap() -> None:
            while tap is not None and streamer is not None and streamer.is_alive():
                if tap.wait_until_flowing(0.1):
                    break

        read(wait_for_tap)
        if streamer is not None:
            streamer.join()
        exit_code = program.wait()
        if streamer is not None and streamer.error is not None:  # first: the writer killed pg_dump
            raise DumpFailed(f"writing {partial} failed: {streamer.error}")
        if exit_code != 0:
            raise DumpFailed(f"pg_dump failed (exit {exit_code}): {pg_dump_error(program.stderr_text())}")
        warnings = pg_warned("pg_dump", program.stderr_text())
        if streamer is not None:
            assert streamer.entry is not None
            return [streamer.entry], warnings
        entries = [
            hash_existing(path, f"{final_name}/{path.relative_to(partial)}")
            for path in sorted(partial.rglob("*"))
            if path.is_file()
        ]
        fsync_directory(partial)  # its entries (pg_dump wrote them) survive a power cut too
        return entries, warnings
    except BaseException:
        program.kill()
        if streamer is not None:
            streamer.join()
            streamer.abandon()
        if directory:
            shutil.rmtree(partial, ignore_errors=True)
        raise
