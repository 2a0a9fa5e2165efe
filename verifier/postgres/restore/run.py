"""Restoring a backup into a sandbox database, and reading an archive end to end.

Custom and directory archives go through `pg_restore -j N`; a custom archive the agent compressed
with zstd is decompressed on the fly into `pg_restore` reading its stdin (one job: pg_restore cannot
seek in a pipe; the sandbox builds each index with parallel workers instead); plain SQL (`.sql`, `.sql.gz`) is
streamed, decompressed on the fly, into `psql -v ON_ERROR_STOP=1`, never unpacked to disk. Owners
and privileges are restored (the sandbox gets production's role names first), so a recovery's
grants and policies are proven too. Every error is attributed to the object being restored.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from verifier.archive import zstd
from verifier.errors import one_line
from verifier.manifest import SourceInfo
from verifier.postgres.catalog import Connection
from verifier.postgres.connection import ConnectionParams
from verifier.postgres.restore.plain import READ_ERRORS, PlainDump
from verifier.postgres.restore.psql_guard import plan_restore
from verifier.postgres.restore.restore_errors import parse_pg_restore_errors
from verifier.process import Executor
from verifier.report import RestoreIssue

_PSQL_ERROR = re.compile(r"^psql:[^:]*:(?P<line>\d+): (?P<message>(?:ERROR|FATAL|error):.*)$")
logger = logging.getLogger(__name__)
RESTORE_DATABASE = "restored"  # the database a local or docker sandbox restores into


@dataclass
class RestoreResult:
    """What a restore reported: issues per object, and whether it ran to the end."""

    completed: bool
    issues: list[RestoreIssue] = field(default_factory=list)


def create_scratch_database(maintenance: ConnectionParams, dbname: str) -> None:
    """Creates the empty database `dbname` through the `maintenance` connection. Raises psycopg.Error."""
    with maintenance.connect_plain() as connection:
        connection.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(dbname)))


def drop_scratch_database(maintenance: ConnectionParams, dbname: str) -> None:
    """Drops `dbname` (its sessions ended by force) through the `maintenance` connection. Raises psycopg.Error."""
    with maintenance.connect_plain() as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))


def create_restore_database(connection: Connection, dbname: str, source: SourceInfo | None) -> str:
    """Creates the database a backup is restored into, with the source's encoding and locale when
    the server has them; without the locale, with the source's encoding and locale C (any encoding
    takes it): rows converted to another encoding would hash differently, and a SQL_ASCII dump's
    bytes may be valid in no other. Returns "" or a note saying which locale was used instead.

    Raises psycopg.Error when even a default database cannot be created.
    """
    plain = sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(dbname))
    if source is None or not source.collate:
        connection.execute(plain)
        return ""
    with_locale = sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING {} LC_COLLATE {} LC_CTYPE {}")
    attempts = ((source.collate, source.ctype, ""), ("C", "C", "locale C"))
    for collate, ctype, instead in attempts:
        try:
            connection.execute(
                with_locale.format(
                    sql.Identifier(dbname), sql.Literal(source.encoding), sql.Literal(collate), sql.Literal(ctype)
                )
            )
        except psycopg.Error as error:
            logger.warning("sandbox: %s", one_line(error))
            continue
        return f"source locale {source.collate} unavailable, restored with {instead}" if instead else ""
    logger.warning("sandbox: restoring with the server's default encoding and locale")
    connection.execute(plain)
    return f"source locale {source.collate} unavailable, restored with the default locale"


def drop_restore_database(connection: Connection, dbname: str) -> None:
    """Drops the database a backup was restored into, ending the sessions still in it (PostgreSQL 13
    and later; before, they must have ended). Raises psycopg.Error."""
    force = sql.SQL(" WITH (FORCE)") if connection.info.server_version >= 130000 else sql.SQL("")
    connection.execute(sql.SQL("DROP DATABASE IF EXISTS {}{}").format(sql.Identifier(dbname), force))


def pg_restore_argv(archive: str | None, dbname: str, jobs: int, *, publications: bool = True) -> list[str]:
    """Returns pg_restore's argv for a sandbox restore from `archive`, or from stdin when None
    (connection details travel in the environment). Publications are restored (and compared) unless
    `publications` is False (a server sandbox: publishing all tables needs a superuser); subscriptions
    never (their names are read from the archive's table of contents)."""
    argv = [
        "pg_restore",
        "--no-password",
        f"--dbname={dbname}",
        f"--jobs={jobs}",
        "--no-tablespaces",
        "--no-subscriptions",
        *([] if publications else ["--no-publications"]),
        "--no-security-labels",
        "--verbose",  # names the TOC entry of each error (see restore_errors)
    ]
    return argv if archive is None else [*argv, archive]


def psql_restore_argv(dbname: str, restrict_key: str | None = None) -> list[str]:
    """Returns psql's argv for restoring plain SQL from stdin, stopping at the first error, in
    `\\restrict` mode (no meta-command runs) when a key is given."""
    return [
        "psql",
        "--no-password",
        "--no-psqlrc",
        "--quiet",
        "--set=ON_ERROR_STOP=1",
        f"--dbname={dbname}",
        *([f"--command=\\restrict {restrict_key}"] if restrict_key else []),
        "--file=-",
    ]


class StreamedRestore:
    """pg_restore reading a custom archive from its stdin, fed chunk by chunk (from a zstd file, or
    from pg_dump while it dumps). A pg_restore that stopped reading makes `feed` a no-op: its stderr
    says why, and `finish` returns it."""

    def __init__(
        self, executor: Executor, dbname: str, environment: Mapping[str, str], *, publications: bool = True
    ) -> None:
        """Starts pg_restore (see `pg_restore_argv` for `publications`). Raises BinaryMissing."""
        self.program = executor.start(
            pg_restore_argv(None, dbname, 1, publications=publications),
            environment=environment,
            stdin=True,
            stdout=False,
        )
        self.stopped_reading = False
        self.read_problem: str | None = None

    def feed(self, chunk: bytes) -> None:
        """Writes `chunk` to pg_restore (blocks while it is busy: the writer keeps its pace)."""
        if self.stopped_reading:
            return
        try:
            self.program.write_stdin(chunk)
        except (BrokenPipeError, ValueError):  # it exited (an error, or it has read all it needs)
            self.stopped_reading = True

    def finish(self) -> RestoreResult:
        """Ends the input and waits for pg_restore. Returns what it reported."""
        self.program.close_stdin()
        exit_code = self.program.wait()
        issues = parse_pg_restore_errors(self.program.stderr_text())
        if self.read_problem is not None:
            issues.insert(0, RestoreIssue("archive", self.read_problem))
        if exit_code != 0 and not issues:
            issues.append(RestoreIssue("pg_restore", f"exit {exit_code} without a message"))
        return RestoreResult(completed=exit_code == 0 and not issues, issues=issues)

    def abort(self) -> None:
        """Stops pg_restore at once; safe after it exited."""
        self.program.kill()


def restore_compressed(
    executor: Executor, dump_path: Path, dbname: str, environment: Mapping[str, str], *, publications: bool = True
) -> RestoreResult:
    """Streams the zstd-compressed custom archive at `dump_path` (a path on this host) into pg_restore.
    Returns what it reported; a damaged or cut stream is an issue of the archive. Raises BinaryMissing."""
    restore = StreamedRestore(executor, dbname, environment, publications=publications)
    try:
        for chunk in zstd.decompressed_chunks(dump_path):
            restore.feed(chunk)
    except zstd.ERRORS as error:
        restore.read_problem = f"{dump_path.name}: {one_line(error)}"
    except BaseException:  # interrupted (SIGTERM, Ctrl-C): pg_restore must not outlive us
        restore.abort()
        raise
    return restore.finish()


def restore_archive(
    executor: Executor,
    archive: str,
    dbname: str,
    jobs: int,
    environment: Mapping[str, str],
    *,
    publications: bool = True,
) -> RestoreResult:
    """Restores a custom/directory archive with pg_restore. Returns what it reported.

    `archive` is the path as the executor sees it. Never raises for restore errors: they are
    returned as issues. Raises BinaryMissing.
    """
    program = executor.start(
        pg_restore_argv(archive, dbname, jobs, publications=publications), environment=environment, stdout=False
    )
    try:
        exit_code = program.wait()
    except BaseException:  # interrupted (SIGTERM, Ctrl-C): pg_restore must not outlive us
        program.kill()
        raise
    issues = parse_pg_restore_errors(program.stderr_text())
    if exit_code != 0 and not issues:
        issues.append(RestoreIssue("pg_restore", f"exit {exit_code} without a message"))
    return RestoreResult(completed=exit_code == 0 and not issues, issues=issues)


def restore_plain(
    executor: Executor, dump_path: Path, dbname: str, environment: Mapping[str, str], *, server: bool = False
) -> RestoreResult:
    """Streams plain SQL (gzip or not) from `dump_path` into psql. Returns what it reported.

    A file that is no plain dump, or one with psql meta-commands (or, with `server`, statements acting
    on the whole server) is refused before anything of it runs (see `plain` and `psql_guard`). When
    psql stops at an error the file is still read to the end, so a damaged gzip stream or a cut dump
    is reported too. Never raises for SQL or decompression errors: they are returned as issues.
    Raises BinaryMissing.
    """
    plan = plan_restore(executor, dump_path, server=server)  # first: a hostile file is named as such
    with PlainDump(dump_path) as dump:
        try:
            refused = plan.refusal or dump.problem_before_start()
        except READ_ERRORS as error:
            refused = dump.read_error(error)
        if refused is not None:
            return RestoreResult(completed=False, issues=[RestoreIssue("archive", refused)])
        argv = psql_restore_argv(dbname, plan.restrict_key)
        program = executor.start(argv, environment=environment, stdin=True, stdout=False)
        read_problem: str | None = None
        try:
            batches = dump.batches()
            try:
                for batch in batches:
                    program.write_stdin(batch)
            except BrokenPipeError:  # psql stopped at an error (its stderr says which): read on to the end
                for _ in batches:
                    pass
            read_problem = dump.problem_at_end()
        except READ_ERRORS as error:
            read_problem = dump.read_error(error)
        except BaseException:  # interrupted (SIGTERM, Ctrl-C): psql must not outlive us
            program.kill()
            raise
        finally:
            program.close_stdin()
        exit_code = program.wait()
        issues = parse_psql_errors(program.stderr_text(), dump.objects)
    if read_problem is not None:
        issues.insert(0, RestoreIssue("archive", read_problem))
    if exit_code != 0 and not issues:
        issues.append(RestoreIssue("psql", f"exit {exit_code} without a message"))
    return RestoreResult(completed=exit_code == 0 and not issues, issues=issues)


def read_to_end(executor: Executor, backup_format: str, dump_path: Path) -> str | None:
    """Reads a whole archive, decompressing every block. Returns None when readable, else the problem.

    Plain SQL is read here (gzip CRC and length, pg_dump's header and completion trailer are
    checked); custom and directory archives go through `pg_restore --file=/dev/null`, which reads
    and inflates every data block.
    """
    if backup_format == "plain":
        with PlainDump(dump_path) as dump:
            try:
                problem = dump.problem_before_start()
                if problem is None:
                    for _ in dump.batches():
                        pass
                    problem = dump.problem_at_end()
            except READ_ERRORS as error:
                problem = dump.read_error(error)
        return problem
    if backup_format == "custom" and zstd.is_compressed(dump_path):
        program = executor.start(["pg_restore", "--file=/dev/null"], environment={}, stdin=True, stdout=False)
        try:
            for chunk in zstd.decompressed_chunks(dump_path):
                program.write_stdin(chunk)
        except zstd.ERRORS as error:
            program.kill()
            return f"{dump_path.name}: {one_line(error)}"
        except BrokenPipeError:
            pass  # pg_restore stopped reading: its exit code and stderr say why
        finally:
            program.close_stdin()
    else:
        program = executor.start(["pg_restore", "--file=/dev/null", str(dump_path)], environment={}, stdout=False)
    if program.wait() != 0:
        issues = parse_pg_restore_errors(program.stderr_text())
        return "; ".join(f"{issue.object}: {issue.message}" for issue in issues[:3]) or "pg_restore cannot read it"
    return None


def parse_psql_errors(stderr: str, objects: list[tuple[int, str]]) -> list[RestoreIssue]:
    """Returns psql's errors, each attributed to the object whose section holds the failing line."""
    issues = []
    for line in stderr.splitlines():
        match = _PSQL_ERROR.match(line.strip())
        if match is None:
            continue
        line_number = int(match.group("line"))
        owner = "SQL before the first object"
        for start, name in objects:
            if start > line_number:
                break
            owner = name
        issues.append(RestoreIssue(f"{owner} (line {line_number})", " ".join(match.group("message").split())))
    return issues


def detect_server_major(dump_path: Path, backup_format: str) -> int | None:
    """Returns the source server's major version from a plain dump's header, or None if not found."""
    if backup_format != "plain":
        return None
    with PlainDump(dump_path) as dump:
        try:
            return dump.server_major() if dump.problem_before_start() is None else None
        except READ_ERRORS:
            return None


def detect_source(dump_path: Path, backup_format: str) -> SourceInfo | None:
    """Returns what a restore database needs to know of the source of a plain dump without manifest
    whose text is not UTF8 (its encoding, with locale C, which takes any), or None: the sandbox's
    own UTF8 database then holds it (a SQL_ASCII dump's bytes may be valid in no other encoding)."""
    if backup_format != "plain":
        return None
    with PlainDump(dump_path) as dump:
        try:
            encoding = dump.encoding() if dump.problem_before_start() is None else None
        except READ_ERRORS:
            return None
    if encoding is None or encoding.upper() in ("UTF8", "UTF-8", "UNICODE"):
        return None
    return SourceInfo(
        label=dump_path.name,
        dbname="",
        server_version="",
        server_version_num=0,
        encoding=encoding,
        collate="C",
        ctype="C",
    )
