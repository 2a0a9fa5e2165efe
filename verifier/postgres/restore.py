"""Restoring a backup into a sandbox database, and reading an archive end to end.

Custom and directory archives go through `pg_restore -j N`; plain SQL (`.sql`, `.sql.gz`) is
streamed, decompressed on the fly, into `psql -v ON_ERROR_STOP=1`, never unpacked to disk. Both
restore without owners and privileges (the sandbox has none of production's roles); for plain SQL
the equivalent lines are blanked, so psql's line numbers still match the file. Every error is
attributed to the object being restored.
"""

from __future__ import annotations

import gzip
import logging
import re
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import psycopg
from psycopg import sql

from verifier.manifest import SourceInfo
from verifier.postgres.catalog import Connection
from verifier.postgres.psql_guard import plan_restore
from verifier.report import RestoreIssue
from verifier.source import Executor

_TOC_ENTRY = re.compile(r"from TOC entry \d+; \d+ \d+ (?P<object>.+?)(?: \S+)?$")
_PSQL_ERROR = re.compile(r"^psql:[^:]*:(?P<line>\d+): (?P<message>(?:ERROR|FATAL|error):.*)$")
_OBJECT_COMMENT = re.compile(
    rb"^-- (?:Data for )?Name: (?P<name>[^;]*); Type: (?P<type>[^;]*); Schema: (?P<schema>[^;]*);"
)
# pg_dump writes ownership and privileges one statement per line; these are what --no-owner and
# --no-privileges drop.
_OWNERSHIP_OR_PRIVILEGE = re.compile(
    rb"^(?:ALTER [A-Z ]+ .* OWNER TO .*;|GRANT .*;|REVOKE .*;|ALTER DEFAULT PRIVILEGES .*;)\n?$"
)
_COPY_START = re.compile(rb"^COPY .* FROM stdin;\n?$")
BATCH_BYTES = 1024 * 1024
logger = logging.getLogger(__name__)


@dataclass
class RestoreResult:
    """What a restore reported: issues per object, and whether it ran to the end."""

    completed: bool
    issues: list[RestoreIssue] = field(default_factory=list)


def create_restore_database(connection: Connection, dbname: str, source: SourceInfo | None) -> str:
    """Creates the database a backup is restored into, with the source's encoding and locale when
    the server has them. Returns "" or a note saying which locale was used instead.

    Raises psycopg.Error when even a default database cannot be created.
    """
    plain = sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(dbname))
    if source is None or not source.collate:
        connection.execute(plain)
        return ""
    try:
        connection.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING {} LC_COLLATE {} LC_CTYPE {}").format(
                sql.Identifier(dbname),
                sql.Literal(source.encoding),
                sql.Literal(source.collate),
                sql.Literal(source.ctype),
            )
        )
        return ""
    except psycopg.Error as error:
        logger.warning("sandbox: %s; restoring with the server's default locale", " ".join(str(error).split()))
    connection.execute(plain)
    return f"source locale {source.collate} unavailable, restored with the default locale"


def pg_restore_argv(archive: str, dbname: str, jobs: int) -> list[str]:
    """Returns pg_restore's argv for a sandbox restore (connection details travel in the environment)."""
    return [
        "pg_restore",
        "--no-password",
        f"--dbname={dbname}",
        f"--jobs={jobs}",
        "--no-owner",
        "--no-privileges",
        "--no-tablespaces",
        "--no-subscriptions",
        "--no-publications",
        "--no-security-labels",
        archive,
    ]


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


def restore_archive(
    executor: Executor, archive: str, dbname: str, jobs: int, environment: Mapping[str, str]
) -> RestoreResult:
    """Restores a custom/directory archive with pg_restore. Returns what it reported.

    `archive` is the path as the executor sees it. Never raises for restore errors: they are
    returned as issues. Raises BinaryMissing.
    """
    program = executor.start(pg_restore_argv(archive, dbname, jobs), environment=environment, stdout=False)
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

    A file with psql meta-commands (or, with `server`, statements acting on the whole server) is
    refused before anything of it runs (see `psql_guard`). Never raises for SQL or decompression
    errors: they are returned as issues. Raises BinaryMissing.
    """
    plan = plan_restore(executor, dump_path, server=server)
    if plan.refusal is not None:
        return RestoreResult(completed=False, issues=[RestoreIssue("archive", plan.refusal)])
    argv = psql_restore_argv(dbname, plan.restrict_key)
    program = executor.start(argv, environment=environment, stdin=True, stdout=False)
    objects: list[tuple[int, str]] = []
    read_error: str | None = None
    try:
        with dump_path.open("rb") as raw:
            try:
                for batch in _filtered_batches(raw, objects):
                    program.write_stdin(batch)
            except BrokenPipeError:
                pass  # psql stopped at an error: its stderr says which
            except (OSError, EOFError, zlib.error, gzip.BadGzipFile) as error:
                read_error = _archive_read_error(error, dump_path, raw.tell())
    except BaseException:  # interrupted (SIGTERM, Ctrl-C): psql must not outlive us
        program.kill()
        raise
    finally:
        program.close_stdin()
    exit_code = program.wait()
    issues = parse_psql_errors(program.stderr_text(), objects)
    if read_error is not None:
        issues.insert(0, RestoreIssue("archive", read_error))
    if exit_code != 0 and not issues:
        issues.append(RestoreIssue("psql", f"exit {exit_code} without a message"))
    return RestoreResult(completed=exit_code == 0 and not issues, issues=issues)


def read_to_end(executor: Executor, backup_format: str, dump_path: Path) -> str | None:
    """Reads a whole archive, decompressing every block. Returns None when readable, else the error.

    Plain SQL is decompressed here (gzip CRC and length are checked); custom and directory
    archives go through `pg_restore --file=/dev/null`, which reads and inflates every data block.
    """
    if backup_format == "plain":
        with dump_path.open("rb") as raw:
            try:
                stream = _open_plain(raw)
                while stream.read(BATCH_BYTES):
                    pass
            except (OSError, EOFError, zlib.error, gzip.BadGzipFile) as error:
                return _archive_read_error(error, dump_path, raw.tell())
        return None
    program = executor.start(["pg_restore", "--file=/dev/null", str(dump_path)], environment={}, stdout=False)
    if program.wait() != 0:
        issues = parse_pg_restore_errors(program.stderr_text())
        return "; ".join(f"{issue.object}: {issue.message}" for issue in issues[:3]) or "pg_restore cannot read it"
    return None


def parse_pg_restore_errors(stderr: str) -> list[RestoreIssue]:
    """Returns pg_restore's errors, each attributed to the TOC entry it was processing."""
    issues: list[RestoreIssue] = []
    current = "archive"
    for line in stderr.splitlines():
        entry = _TOC_ENTRY.search(line)
        if entry is not None:
            current = entry.group("object")
            continue
        if line.startswith("pg_restore: error:"):
            message = line.removeprefix("pg_restore: error:").strip()
            issues.append(RestoreIssue(current, " ".join(message.split())))
    return issues


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
    try:
        with dump_path.open("rb") as raw, _open_plain(raw) as stream:
            head = stream.read(4096).decode("utf-8", errors="replace")
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile):
        return None
    match = re.search(r"-- Dumped from database version (\d+)", head)
    return int(match.group(1)) if match else None


def _open_plain(raw: BinaryIO) -> BinaryIO:
    magic = raw.read(2)
    raw.seek(0)
    return gzip.GzipFile(fileobj=raw) if magic == b"\x1f\x8b" else raw  # type: ignore[return-value]


def _filtered_batches(raw: BinaryIO, objects: list[tuple[int, str]]) -> Iterator[bytes]:
    """Yields the SQL in ~1 MiB batches with ownership/privilege lines blanked (line count kept),
    recording (line number, object) for every `-- Name:` header pg_dump writes.

    COPY data (nearly all of a dump) is passed through in blocks up to its `\\.` terminator
    without splitting it into lines; only the statements between are looked at line by line.
    """
    stream = _open_plain(raw)
    lines_done = 0  # complete lines already yielded
    pending = b""
    in_copy = False
    while True:
        block = stream.read(BATCH_BYTES)
        data = pending + block
        if not block:
            if data:
                yield _filter_statement_line(data, lines_done + 1, objects) if not in_copy else data
            return
        output: list[bytes] = []
        position = 0
        while position < len(data):
            if in_copy:
                if data.startswith(b"\\.\n", position):
                    terminator = position
                else:
                    found = data.find(b"\n\\.\n", position)
                    terminator = found + 1 if found >= 0 else -1
                if terminator >= 0:
                    end = terminator + 3  # through the terminator line
                    in_copy = False
                else:  # whole lines only: the partial last one may be the start of the terminator
                    last_newline = data.rfind(b"\n", position)
                    if last_newline < position:
                        break
                    end = last_newline + 1
                chunk = data[position:end]
                lines_done += chunk.count(b"\n")
                output.append(chunk)
                position = end
                continue
            newline = data.find(b"\n", position)
            if newline < 0:
                break
            line = data[position : newline + 1]
            lines_done += 1
            if _COPY_START.match(line):
                in_copy = True
                output.append(line)
            else:
                output.append(_filter_statement_line(line, lines_done, objects))
            position = newline + 1
        pending = data[position:]
        yield b"".join(output)


def _filter_statement_line(line: bytes, number: int, objects: list[tuple[int, str]]) -> bytes:
    """Returns the line, blanked when it sets an owner or a privilege; records `-- Name:` headers."""
    if line.startswith(b"--"):
        header = _OBJECT_COMMENT.match(line)
        if header is not None:
            schema = header.group("schema").decode(errors="replace")
            name = header.group("name").decode(errors="replace")
            kind = header.group("type").decode(errors="replace")
            objects.append((number, f"{kind} {schema + '.' if schema != '-' else ''}{name}"))
        return line
    if _OWNERSHIP_OR_PRIVILEGE.match(line):
        return b"\n"
    return line


def _archive_read_error(error: BaseException, path: Path, position: int) -> str:
    text = str(error) or type(error).__name__
    if isinstance(error, EOFError):
        text = "compressed file ended before the end-of-stream marker (truncated)"
    return f"{path.name} is not readable to the end: {text} (near byte {position})"
