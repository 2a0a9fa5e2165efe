"""How a database's own properties travel in a backup and reach a restored copy, whatever its name.

pg_dump writes `ALTER DATABASE … SET`, `ALTER ROLE … IN DATABASE … SET`, the database's comment, owner
and privileges only with `--create`, naming the database: restored elsewhere (the sandbox's database,
or a DBA's `createdb shop_copy`) they would act on the wrong database, or create production's.

- **Plain SQL**: the agent writes them itself, inside pg_dump's own `\\restrict` frame just before its
  completion trailer, as `DO` blocks that name `current_database()`: they apply to whichever database
  the file is restored into, and one that is refused (a restore by a role that may not) is a WARNING
  from psql, never a failed restore.
- **Custom and directory archives** hold them as pg_dump's `DATABASE`, `DATABASE PROPERTIES`, `COMMENT`
  and `ACL` entries, which pg_restore prints only with `--create`. `archive_statements` has pg_restore
  print those entries alone (`--create --schema-only` with a schema filter that matches nothing), keeps
  the statements of the few kinds that carry them, and `apply` runs them against the restored copy's
  own name. Nothing else of that text runs: the archive is untrusted input.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from verifier.archive import zstd
from verifier.errors import one_line
from verifier.postgres.backup.dump_errors import one_line_text
from verifier.postgres.catalog import Connection
from verifier.postgres.evidence.database_properties import DatabaseProperties
from verifier.process import Executor, RunningProgram

logger = logging.getLogger(__name__)

TRAILER = b"--\n-- PostgreSQL database dump complete\n"
_TAIL_KEPT = 64 * 1024  # the trailer and pg_dump's \unrestrict line are far less
_LIST_QUOTED = {  # settings whose value is a list of quoted names (pg_dump's variable_is_guc_list_quote)
    "local_preload_libraries",
    "search_path",
    "session_preload_libraries",
    "shared_preload_libraries",
    "temp_tablespaces",
    "unix_socket_directories",
}
_NO_SUCH_SCHEMA = "pg_backup_verifier_no_such_schema"
_HEADER = re.compile(r"^-- Name: (?P<name>.*); Type: (?P<type>[^;]*); Schema: [^;]*; Owner: .*$")
_IDENTIFIER = r'"(?:[^"]|"")+"|[^\s";]+'
# each kind of statement that carries a database property, the database's name in group `db`
_CARRIERS = (
    re.compile(rf"^(?P<head>ALTER DATABASE )(?P<db>{_IDENTIFIER})(?P<tail> (?:SET|RESET|OWNER TO) .*)$", re.DOTALL),
    re.compile(
        rf"^(?P<head>ALTER ROLE (?:{_IDENTIFIER}) IN DATABASE )(?P<db>{_IDENTIFIER})(?P<tail> (?:SET|RESET) .*)$",
        re.DOTALL,
    ),
    re.compile(rf"^(?P<head>COMMENT ON DATABASE )(?P<db>{_IDENTIFIER})(?P<tail> IS .*)$", re.DOTALL),
    re.compile(
        rf"^(?P<head>(?:GRANT|REVOKE) [A-Z, ]+ ON DATABASE )(?P<db>{_IDENTIFIER})(?P<tail> (?:TO|FROM) .*)$",
        re.DOTALL,
    ),
)
_SESSION = re.compile(rf"^(?:SET SESSION AUTHORIZATION (?:{_IDENTIFIER})|RESET SESSION AUTHORIZATION)$")
_SUBSCRIPTION_ENTRY = re.compile(r"^\d+; \d+ \d+ SUBSCRIPTION - (?P<name>.+) \S+$", re.MULTILINE)
_UNSAFE_SETTING = re.compile(r"\b(?:session|local|shared)_preload_libraries\b", re.IGNORECASE)


@dataclass(frozen=True)
class Carried:
    """One statement that carries a database property, split around the database's name."""

    head: str
    tail: str  # empty for a session statement (SET/RESET SESSION AUTHORIZATION), which names no database

    def composed(self, database: str) -> sql.Composed:
        """Returns the statement acting on `database`."""
        if not self.tail:
            return sql.Composed([sql.SQL(self.head)])
        return sql.SQL(self.head) + sql.Identifier(database) + sql.SQL(self.tail)


class WithSection:
    """pg_dump's running program as the dump's writer sees it: its stdout with `section` inserted before
    the completion trailer (see `insert_before_trailer`); everything else is pg_dump's."""

    def __init__(self, program: RunningProgram, section: bytes) -> None:
        self.program = program
        self.section = section

    def stdout_chunks(self) -> Iterator[bytes]:
        """Yields pg_dump's output with the section inserted."""
        return insert_before_trailer(self.program.stdout_chunks(), self.section)

    def output_started(self) -> bool:
        """Returns True once pg_dump wrote to its stdout."""
        return self.program.output_started()

    def write_stdin(self, data: bytes) -> None:
        """Writes to pg_dump's stdin."""
        self.program.write_stdin(data)

    def close_stdin(self) -> None:
        """Closes pg_dump's stdin."""
        self.program.close_stdin()

    def wait(self) -> int:
        """Returns pg_dump's exit code once it exited."""
        return self.program.wait()

    def stderr_text(self) -> str:
        """Returns what pg_dump wrote to stderr."""
        return self.program.stderr_text()

    def kill(self) -> None:
        """Stops pg_dump."""
        self.program.kill()


def plain_section(properties: DatabaseProperties) -> bytes:
    """Returns the SQL that sets `properties` on whichever database a plain dump is restored into."""
    statements = [("ALTER DATABASE ", f" OWNER TO {_identifier(properties.owner)}")]
    statements += [("ALTER DATABASE ", f" SET {_setting(entry)}") for entry in properties.settings]
    for role, entries in sorted(properties.role_settings.items()):
        statements += [(f"ALTER ROLE {_identifier(role)} IN DATABASE ", f" SET {_setting(e)}") for e in entries]
    if not properties.default_grants:
        statements += [("REVOKE ALL ON DATABASE ", " FROM PUBLIC")]
        statements += [("REVOKE ALL ON DATABASE ", f" FROM {_identifier(properties.owner)}")]
        for grant in properties.grants:
            grantee, privilege = grant.rsplit(":", 1)
            who = "PUBLIC" if grantee == "PUBLIC" else _identifier(grantee)
            option = " WITH GRANT OPTION" if privilege.endswith("*") else ""
            statements.append((f"GRANT {privilege.rstrip('*')} ON DATABASE ", f" TO {who}{option}"))
    if properties.comment is not None:
        statements.append(("COMMENT ON DATABASE ", f" IS {_literal(properties.comment)}"))
    lines = [
        "--",
        "-- Database properties (pg-backup-verifier): pg_dump writes them only with --create, for a database",
        "-- of production's name; these apply to the database this file is restored into.",
        "--",
        "",
    ]
    lines += [_do_block(head, tail) for head, tail in statements]
    return ("\n".join(lines) + "\n\n").encode()


def insert_before_trailer(chunks: Iterable[bytes], section: bytes) -> Iterator[bytes]:
    """Yields `chunks` with `section` inserted before pg_dump's completion trailer (its last
    occurrence: a row of COPY data may read alike), so it stays inside pg_dump's `\\restrict` frame.
    A stream without the trailer (pg_dump failed) is passed on unchanged."""
    held = b""
    for chunk in chunks:
        held += chunk
        if len(held) > 2 * _TAIL_KEPT:
            yield held[:-_TAIL_KEPT]
            held = held[-_TAIL_KEPT:]
    at = held.rfind(TRAILER)
    if at < 0:
        yield held
        return
    yield held[:at] + section + held[at:]


def archive_statements(executor: Executor, archive: str, dump_path: Path, *, compressed: bool) -> list[Carried]:
    """Returns the statements of a custom or directory archive that carry the database's properties.
    `archive` is its path as the executor sees it; `compressed` (zstd by the agent): streamed from
    `dump_path` into pg_restore's stdin. Never raises for an unreadable archive (the restore names it):
    returns what could be read. Raises BinaryMissing."""
    argv = ["pg_restore", "--create", "--schema-only", f"--schema={_NO_SUCH_SCHEMA}", "--file=-"]
    return carried_statements(_pg_restore_output(executor, argv, archive, dump_path, compressed=compressed))


def archive_subscriptions(executor: Executor, archive: str, dump_path: Path, *, compressed: bool) -> list[str]:
    """Returns the names of the subscriptions in an archive's table of contents (the sandbox restores
    none: see restore.pg_restore_argv). Arguments as for `archive_statements`. Raises BinaryMissing."""
    listing = _pg_restore_output(executor, ["pg_restore", "--list"], archive, dump_path, compressed=compressed)
    return sorted(match.group("name") for match in _SUBSCRIPTION_ENTRY.finditer(listing))


def carried_statements(text: str) -> list[Carried]:
    """Returns the statements of pg_restore's `--create` output that carry a database property: those
    of its DATABASE, DATABASE PROPERTIES and the database's COMMENT and ACL entries, of the kinds in
    _CARRIERS (a setting that would load a library is left out). Pure."""
    database: str | None = None
    carried = []
    for entry_type, name, body in _entries(text):
        if entry_type == "DATABASE":
            database = name
        if entry_type not in ("DATABASE", "DATABASE PROPERTIES") and not (
            entry_type in ("COMMENT", "ACL") and name.startswith("DATABASE ")
        ):
            continue
        for statement in _statements(body):
            found = _carried(statement, database)
            if found is not None:
                carried.append(found)
    return carried


def apply(connection: Connection, statements: list[Carried]) -> list[str]:
    """Runs `statements` against the connected (restored) database, each on its own. Returns one line per
    statement the server refused (the comparison then names what is missing)."""
    row = connection.execute("SELECT pg_catalog.current_database()").fetchone()
    assert row is not None
    database = str(row[0])
    refused = []
    for statement in statements:
        try:
            connection.execute(statement.composed(database))
        except psycopg.Error as error:
            refused.append(f"not restored in the sandbox: {statement.head.strip()}…: {one_line(error)}")
    return refused


def _pg_restore_output(executor: Executor, argv: list[str], archive: str, dump_path: Path, *, compressed: bool) -> str:
    """Returns what pg_restore prints to stdout for the archive (fed from `dump_path` when `compressed`)."""
    program = executor.start(argv if compressed else [*argv, archive], environment={}, stdin=compressed)
    feeder = None
    if compressed:

        def feed() -> None:
            try:
                for chunk in zstd.decompressed_chunks(dump_path):
                    program.write_stdin(chunk)
            except zstd.ERRORS:  # pg_restore read what it needed (BrokenPipeError), or the file is damaged
                pass
            except ValueError:  # pg_restore's stdin was closed under us
                pass
            finally:
                program.close_stdin()

        feeder = threading.Thread(target=feed, name="archive-header-feed", daemon=True)
        feeder.start()
    try:
        text = b"".join(program.stdout_chunks()).decode(errors="replace")
    finally:
        if feeder is not None:
            feeder.join()
        exit_code = program.wait()
    if exit_code != 0:
        logger.warning("database properties: %s failed: %s", " ".join(argv[:2]), one_line_text(program.stderr_text()))
    return text


def _entries(text: str) -> Iterator[tuple[str, str, str]]:
    """Yields (type, name, SQL) of each TOC entry pg_restore printed."""
    entry_type, name = "", ""
    body: list[str] = []
    for line in text.splitlines(keepends=True):
        header = _HEADER.match(line.rstrip("\n"))
        if header is not None:
            if entry_type:
                yield entry_type, name, "".join(body)
            entry_type, name, body = header.group("type"), header.group("name"), []
        elif entry_type:
            body.append(line)
    if entry_type:
        yield entry_type, name, "".join(body)


def _statements(body: str) -> Iterator[str]:
    """Yields the SQL statements of an entry's text (without the `;`): quotes and comments as
    pg_dump writes them, psql meta-command lines skipped."""
    statement: list[str] = []
    quote = ""
    position = 0
    while position < len(body):
        character = body[position]
        if quote:
            statement.append(character)
            if character == quote:
                quote = ""
        elif character in "'\"":
            quote = character
            statement.append(character)
        elif body.startswith("--", position) or (character == "\\" and not "".join(statement).strip()):
            end = body.find("\n", position)
            position = len(body) if end < 0 else end
            continue
        elif character == ";":
            text = "".join(statement).strip()
            if text:
                yield text
            statement = []
        else:
            statement.append(character)
        position += 1


def _carried(statement: str, database: str | None) -> Carried | None:
    if _SESSION.match(statement):
        return Carried(statement, "")
    for pattern in _CARRIERS:
        match = pattern.match(statement)
        if match is None or _unquoted(match.group("db")) != database:
            continue
        if _UNSAFE_SETTING.search(match.group("tail")):
            logger.warning("database properties: not applied in the sandbox (loads a library): %s", statement[:200])
            return None
        return Carried(match.group("head"), match.group("tail"))
    return None


def _unquoted(identifier: str) -> str:
    return identifier[1:-1].replace('""', '"') if identifier.startswith('"') else identifier


def _do_block(head: str, tail: str) -> str:
    """Returns a DO block running `head <this database> tail`, a refusal only a WARNING."""
    template = head.replace("%", "%%") + "%1$I" + tail.replace("%", "%%")
    body = (
        f"BEGIN EXECUTE pg_catalog.format({_literal(template)}, pg_catalog.current_database()); "
        "EXCEPTION WHEN OTHERS THEN RAISE WARNING 'database property not restored: %', SQLERRM; END"
    )
    tag = "$pgbv$"
    while tag in body:
        tag = tag[:-1] + "x$"
    return f"DO {tag}{body}{tag};"


def _setting(entry: str) -> str:
    """Returns `name TO value` for one "name=value" of pg_db_role_setting, as pg_dump writes it."""
    name, _, value = entry.partition("=")
    quoted_name = ".".join(_identifier(part) for part in name.split("."))
    if name.lower() in _LIST_QUOTED:
        return f"{quoted_name} TO {', '.join(_literal(element) for element in _split_list(value)) or _literal('')}"
    return f"{quoted_name} TO {_literal(value)}"


def _split_list(value: str) -> list[str]:
    """Returns the elements of a list setting's value (`app, "My Schema"` → app, My Schema)."""
    elements, current, quoted, position = [], "", False, 0
    while position < len(value):
        character = value[position]
        if quoted:
            if character == '"' and value[position + 1 : position + 2] == '"':
                current += '"'
                position += 1
            elif character == '"':
                quoted = False
            else:
                current += character
        elif character == '"':
            quoted = True
        elif character == ",":
            elements.append(current.strip())
            current = ""
        else:
            current += character
        position += 1
    if current.strip() or elements:
        elements.append(current.strip())
    return elements


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
