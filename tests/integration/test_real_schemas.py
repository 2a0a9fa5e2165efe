"""Real application schemas and every database PostgreSQL accepts: no false alarm, no crash, no pass
for a damaged backup (issue 20, points 3, 4, 5, 9).

Every database here is owned by, and every run connects as, a non-superuser application role; the
superuser only creates the role and the database (with its encoding).
"""

from __future__ import annotations

import gzip
import io
import json
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from rich.console import Console

from tests.support.real_world import owner_config
from verifier.config import Config
from verifier.names import quote_ident
from verifier.pipeline import commands
from verifier.postgres.binaries import Installation
from verifier.postgres.evidence import contents
from verifier.postgres.throwaway.cluster import TemporaryCluster
from verifier.render.console import render
from verifier.report import CheckResult, Report, Status
from verifier.zabbix import keys
from verifier.zabbix.values import values_from_report


@dataclass
class OwnedDatabase:
    """A database owned by a non-superuser role on the shared 'production' cluster."""

    cluster: TemporaryCluster
    dbname: str
    owner: str
    encoding: str | None = None

    def execute(self, statement: str, *, as_owner: bool = True) -> None:
        """Runs `statement` (ASCII text: non-ASCII bytes as escapes) as the owner or the superuser."""
        kwargs = self.cluster.connection_kwargs(self.dbname)
        if as_owner:
            kwargs["user"] = self.owner
        with psycopg.connect(**kwargs, autocommit=True) as connection:  # type: ignore[arg-type]
            connection.execute(statement)  # type: ignore[arg-type]

    def config(self, repository: Path, **sections: Any) -> Config:
        """Returns a config connecting as the owner, `sections` merged in (min_count 1)."""
        return owner_config(self.cluster, self.dbname, self.owner, repository, **sections)


def _create(cluster: TemporaryCluster, encoding: str | None = None) -> OwnedDatabase:
    suffix = secrets.token_hex(3)
    database = OwnedDatabase(cluster, f"real_{suffix}", f"real_app_{suffix}", encoding)
    owner = sql.Identifier(database.owner)
    with cluster.connect() as connection:
        connection.execute(sql.SQL("CREATE ROLE {} LOGIN").format(owner))
        create = sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(database.dbname), owner)
        if encoding is not None:
            create += sql.SQL(" TEMPLATE template0 ENCODING {} LC_COLLATE 'C' LC_CTYPE 'C'").format(
                sql.Literal(encoding)
            )
        connection.execute(create)
    return database


def _drop(database: OwnedDatabase) -> None:
    with database.cluster.connect() as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database.dbname)))
        connection.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(database.owner)))


@pytest.fixture
def owned_db(production: TemporaryCluster) -> Iterator[OwnedDatabase]:
    database = _create(production)
    try:
        yield database
    finally:
        _drop(database)


def result(report: Report, name: str) -> CheckResult:
    return next(r for r in report.results if r.name == name)


def problems(report: Report) -> list[tuple[str, str, str, tuple[str, ...]]]:
    return [(r.name, r.status.name, r.summary, r.details[:5]) for r in report.results if r.status is not Status.OK]


def assert_quiet(report: Report) -> None:
    """A healthy backup: exit 0, verified, every table exact, nothing WARNING or CRITICAL."""
    assert report.exit_code == 0, (report.could_not_run, problems(report))
    assert report.verification_passed, problems(report)
    assert report.verification is not None and report.verification.mismatched_tables == []


def legacy_dump(database: OwnedDatabase, installation: Installation, path: Path, edit: Any = None) -> None:
    """Writes a plain dump made as a cron script makes it (`pg_dump | gzip`, as the owner) to
    `path`, its SQL text passed through `edit` first when given."""
    argv = [
        str(installation.program("pg_dump")),
        "-h",
        database.cluster.host,
        "-p",
        str(database.cluster.port),
        "-U",
        database.owner,
        database.dbname,
    ]
    import subprocess

    dumped = subprocess.run(argv, check=True, capture_output=True).stdout
    path.write_bytes(gzip.compress(edit(dumped) if edit else dumped))


# --- point 3: sequences are judged against the snapshot -------------------------------------------------

USERS_WITH_EXPLICIT_IDS = """
CREATE TABLE users (id serial PRIMARY KEY, name text);
INSERT INTO users (id, name) VALUES (1, 'a'), (2, 'b');
"""
USERS_FROM_THEIR_SEQUENCE = (
    "CREATE TABLE users (id serial PRIMARY KEY, name text); INSERT INTO users (name) VALUES ('a'), ('b')"
)


def test_sequence_behind_its_column_in_production_is_a_warning_about_production(
    owned_db: OwnedDatabase, tmp_path: Path
) -> None:
    """Ids given explicitly (every data import does it) leave production's own sequence behind: the
    backup is exactly production, so it is verified, and production is named."""
    owned_db.execute(USERS_WITH_EXPLICIT_IDS)
    report = commands.run(owned_db.config(tmp_path / "repo"))
    sequences = result(report, "sequences")
    assert sequences.status is Status.WARNING, problems(report)
    expected = "production's sequence public.users_id_seq gives 1 while public.users.id holds 2: inserts fail there too"
    assert sequences.summary == expected
    assert report.exit_code == 1, problems(report)
    assert report.verification_passed, problems(report)
    assert [r.name for r in report.results if r.status is not Status.OK] == ["sequences"]


def test_sequence_reset_in_the_restored_copy_is_still_a_failed_backup(owned_db: OwnedDatabase, tmp_path: Path) -> None:
    """The negative control: production's sequence is healthy, the restored one is set back."""
    owned_db.execute(USERS_FROM_THEIR_SEQUENCE)
    config = owned_db.config(tmp_path / "repo")
    assert_quiet(commands.run(config))
    from verifier.pipeline import verify

    real_compare = verify.compare_restored

    def reset_then_compare(sandbox: Any, *arguments: Any, **options: Any) -> Any:
        with sandbox.connect() as connection:
            connection.execute("SELECT setval('public.users_id_seq', 1, false)")
        return real_compare(sandbox, *arguments, **options)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(verify, "compare_restored", reset_then_compare)
        report = commands.check(config)
    sequences = result(report, "sequences")
    assert sequences.status is Status.CRITICAL, problems(report)
    assert "sequence public.users_id_seq restarts at 1" in sequences.summary
    assert not report.verification_passed


def test_legacy_dump_whose_sequence_was_reset_is_a_damaged_backup(
    owned_db: OwnedDatabase, tmp_path: Path, postgres_installation: Installation
) -> None:
    """No manifest: production's sequence is ahead of its column, the dump's (setval reset to 1) is
    not. The backup is damaged: inserts would fail after a recovery from it."""
    owned_db.execute(USERS_FROM_THEIR_SEQUENCE)
    path = tmp_path / "cron.sql.gz"

    def reset(text: bytes) -> bytes:
        setval = rb"setval\('public\.users_id_seq', 2, true\)"
        edited, replaced = re.subn(setval, b"setval('public.users_id_seq', 1, false)", text)
        assert replaced == 1, text.decode()
        return edited

    legacy_dump(owned_db, postgres_installation, path, reset)
    report = commands.check(owned_db.config(tmp_path / "repo"), backup_file=path)
    sequences = result(report, "sequences")
    assert sequences.status is Status.CRITICAL, problems(report)
    assert sequences.summary == (
        "inserts into public.users would fail after a recovery: sequence public.users_id_seq gives 1, "
        "public.users.id already holds 2 (production's sequence gives 3)"
    )
    assert report.exit_code == 2
    assert not report.verification_passed


def test_legacy_dump_of_production_behind_its_column_is_a_warning_about_production(
    owned_db: OwnedDatabase, tmp_path: Path, postgres_installation: Installation
) -> None:
    owned_db.execute(USERS_WITH_EXPLICIT_IDS)
    path = tmp_path / "cron.sql.gz"
    legacy_dump(owned_db, postgres_installation, path)
    report = commands.check(owned_db.config(tmp_path / "repo"), backup_file=path)
    sequences = result(report, "sequences")
    assert sequences.status is Status.WARNING, problems(report)
    assert sequences.summary == (
        "production's sequence public.users_id_seq gives 1 while public.users.id holds 2: inserts fail there too"
    )
    assert report.verification is not None and report.verification.finding("sequences").problems == []


# --- point 4: a zero-column table -------------------------------------------------------------------------


@pytest.mark.parametrize(("content", "dump_format"), [("full", "custom"), ("sample", "plain")])
def test_zero_column_table_is_dumped_restored_counted_and_checksummed(
    owned_db: OwnedDatabase, tmp_path: Path, content: str, dump_format: str
) -> None:
    """`CREATE TABLE heartbeat ()` crashed the agent in the checksum (no column to hash)."""
    owned_db.execute("CREATE TABLE heartbeat (); INSERT INTO heartbeat SELECT FROM generate_series(1, 77)")
    config = owned_db.config(tmp_path / "repo", verify={"content": content}, dump={"format": dump_format})
    report = commands.run(config)
    assert_quiet(report)
    checksums = contents.SECTION.of(report.manifest)
    assert checksums is not None
    entry = next(item for item in checksums if item.table == "heartbeat")
    assert (entry.rows, entry.hashed_rows) == (77, 77)
    assert report.verification is not None
    heartbeat = next(table for table in report.verification.tables if table.table == "heartbeat")
    assert (heartbeat.snapshot_rows, heartbeat.restored_rows) == (77, 77)
    assert result(report, "contents").status is Status.OK


# --- point 5: every server encoding --------------------------------------------------------------------

# Per encoding: a table and a column with a non-ASCII name, non-ASCII rows. SQL_ASCII's rows hold bytes
# that are valid in no encoding (0xff, 0xc0 0xaf), and its names bytes that are not UTF-8 (0xe9).
ENCODED_SCHEMAS = {
    "LATIN1": """
        CREATE TABLE "café" (id serial PRIMARY KEY, "naïve" text, note varchar(20));
        INSERT INTO "café" ("naïve", note) VALUES ('Straße', 'ÿ¡'), ('crème brûlée', NULL);
    """,
    "WIN1251": """
        CREATE TABLE "заказы" (id serial PRIMARY KEY, "клиент" text);
        INSERT INTO "заказы" ("клиент") VALUES ('Привет, мир'), ('Ёжик в тумане');
    """,
    "EUC_JP": """
        CREATE TABLE "データ" (id serial PRIMARY KEY, "名前" text);
        INSERT INTO "データ" ("名前") VALUES ('日本語テキスト'), ('カタカナ');
    """,
    "SQL_ASCII": r"""
        CREATE TABLE legacy (id serial PRIMARY KEY, raw text, label varchar(10));
        INSERT INTO legacy (raw, label) VALUES (E'\xff\xfe\x80 broken', E'caf\xc3\xa9'), (E'\xc0\xaf', E'\xe9t\xe9');
        DO $$
        DECLARE
            odd_table text := convert_from('\x6c6567e9'::bytea, 'SQL_ASCII');
            odd_column text := convert_from('\x6e6f7465e9'::bytea, 'SQL_ASCII');
        BEGIN
            EXECUTE format('CREATE TABLE %I (%I text)', odd_table, odd_column);
            EXECUTE format('INSERT INTO %I VALUES (%L), (%L)', odd_table,
                           convert_from('\xe9e8ff'::bytea, 'SQL_ASCII'), 'plain');
        END $$;
    """,
}


@pytest.fixture
def encoded_db(production: TemporaryCluster, request: pytest.FixtureRequest) -> Iterator[OwnedDatabase]:
    database = _create(production, request.param)
    try:
        database.execute(ENCODED_SCHEMAS[request.param])
        yield database
    finally:
        _drop(database)


@pytest.mark.parametrize("encoded_db", sorted(ENCODED_SCHEMAS), indirect=True)
def test_every_server_encoding_gets_an_exact_backup(encoded_db: OwnedDatabase, tmp_path: Path) -> None:
    """A SQL_ASCII database got no backup at all (bytes where text was expected); the others must
    stay exact, their non-ASCII names and rows included."""
    report = commands.run(encoded_db.config(tmp_path / "repo"))
    assert_quiet(report)
    assert report.verification is not None
    assert report.manifest is not None and report.manifest.source.encoding == encoded_db.encoding
    assert len(report.verification.tables) == (2 if encoded_db.encoding == "SQL_ASCII" else 1)
    assert all(table.snapshot_rows == table.restored_rows == 2 for table in report.verification.tables)
    assert result(report, "contents").status is Status.OK
    assert report.verification.finding("contents").compared == len(report.verification.tables)


@pytest.mark.parametrize(
    ("encoded_db", "sections"),
    [("SQL_ASCII", {"verify": {"content": "off"}}), ("SQL_ASCII", {"dump": {"format": "plain"}})],
    indirect=["encoded_db"],
)
def test_sql_ascii_without_content_checksums_and_in_plain_format(
    encoded_db: OwnedDatabase, tmp_path: Path, sections: dict[str, Any]
) -> None:
    report = commands.run(encoded_db.config(tmp_path / "repo", **sections))
    assert_quiet(report)
    assert report.verification is not None and len(report.verification.tables) == 2


@pytest.mark.parametrize("encoded_db", ["LATIN1", "SQL_ASCII"], indirect=True)
def test_a_source_locale_the_sandbox_lacks_keeps_the_source_encoding(encoded_db: OwnedDatabase, tmp_path: Path) -> None:
    """The sandbox falls back to locale C in the source's encoding, not to its own UTF8: converted rows
    would hash differently (a false CRITICAL), and a SQL_ASCII dump's bytes would not restore at all."""
    config = encoded_db.config(tmp_path / "repo")
    assert_quiet(commands.run(config))
    manifest_path = next((tmp_path / "repo").glob("*.json"))
    data = json.loads(manifest_path.read_text())
    data["source"]["collate"] = data["source"]["ctype"] = "xx_XX.ISO-8859-1"  # installed on no machine
    manifest_path.write_text(json.dumps(data))
    report = commands.check(config)
    assert_quiet(report)
    assert report.verification is not None
    assert "source locale xx_XX.ISO-8859-1 unavailable, restored with locale C" in report.verification.sandbox


@pytest.mark.parametrize("encoded_db", ["SQL_ASCII", "WIN1251"], indirect=True)
def test_a_legacy_dump_restores_in_its_own_encoding(
    encoded_db: OwnedDatabase, tmp_path: Path, postgres_installation: Installation
) -> None:
    """No manifest says the encoding: the plain dump's own `SET client_encoding` does."""
    path = tmp_path / "cron.sql.gz"
    legacy_dump(encoded_db, postgres_installation, path)
    report = commands.check(encoded_db.config(tmp_path / "repo"), backup_file=path)
    assert report.verification is not None and report.verification.restored, problems(report)
    assert report.verification.restore_issues == []
    assert report.verification.mismatched_tables == [] and report.verification.tables, problems(report)
    assert result(report, "restore").status is Status.OK


# --- point 10: small things a user reads -----------------------------------------------------------------


@pytest.mark.parametrize("dump_format", ["custom", "plain"])
def test_step_lines_of_a_small_dump_say_what_was_written_and_restored(
    owned_db: OwnedDatabase, tmp_path: Path, caplog: pytest.LogCaptureFixture, dump_format: str
) -> None:
    """A small dump's step lines said "0 B written, 0 rows restored": the compressor had not flushed
    yet, and the restore's statistics were read before its sessions had sent them."""
    from verifier.render.progress import LogProgress

    owned_db.execute(USERS_FROM_THEIR_SEQUENCE)
    progress = LogProgress()
    with caplog.at_level("INFO", logger="verifier"):
        report = commands.run(owned_db.config(tmp_path / "repo", dump={"format": dump_format}), step=progress)
        progress.close()
    assert_quiet(report)
    ends = [record.getMessage() for record in caplog.records if ": done in " in record.getMessage()]
    written = [re.search(r"([\d.]+) (B|KiB) written", line) for line in ends]
    sizes = [match.group(0) for match in written if match]
    assert sizes and not any(size.startswith("0 B") for size in sizes), ends
    assert any(re.search(r"\b2 of 2 rows restored", line) for line in ends), ends
    assert not any(re.search(r"\b0 rows restored", line) for line in ends), ends


# --- point 9: unambiguous names ---------------------------------------------------------------------------


def test_names_that_printed_alike_are_two_tables_in_every_report_and_in_zabbix(
    owned_db: OwnedDatabase, tmp_path: Path
) -> None:
    owned_db.execute("""
        CREATE SCHEMA app;
        CREATE TABLE app."orders.archive" (id integer);
        INSERT INTO app."orders.archive" SELECT generate_series(1, 3);
        CREATE SCHEMA "app.orders";
        CREATE TABLE "app.orders".archive (id integer);
        INSERT INTO "app.orders".archive SELECT generate_series(1, 5);
    """)
    config = owned_db.config(tmp_path / "repo")
    report = commands.run(config)
    assert_quiet(report)
    assert report.verification is not None
    names = {table.qualified_name: table.restored_rows for table in report.verification.tables}
    assert names == {'app."orders.archive"': 3, '"app.orders".archive': 5}
    values = values_from_report(report, [], datetime.now(UTC), database=owned_db.dbname)
    sent = {value.key: value.value for value in values.prototypes if value.key.startswith(keys.TABLE_ROWS + "[")}
    assert sent == {
        keys.item_key(keys.TABLE_ROWS, owned_db.dbname, 'app."orders.archive"'): "3",
        keys.item_key(keys.TABLE_ROWS, owned_db.dbname, '"app.orders".archive'): "5",
    }
    output = io.StringIO()
    render(report, Console(file=output, width=120, no_color=True, force_terminal=False), all_tables=True)
    assert 'app."orders.archive"' in output.getvalue() and '"app.orders".archive' in output.getvalue()


def test_quote_ident_agrees_with_the_servers(production: TemporaryCluster) -> None:
    """Every keyword of the installed server and a few awkward names print as its quote_ident prints them."""
    with production.connect() as connection:
        keywords = [str(word) for (word,) in connection.execute("SELECT word FROM pg_get_keywords()").fetchall()]
        awkward = ["orders", "Orders", "orders.archive", 'say "hi"', "2fa", "_x9", "café", "a b", "$x", "x$"]
        for name in [*keywords, *awkward]:
            row = connection.execute("SELECT quote_ident(%s)", (name,)).fetchone()
            assert row is not None
            assert quote_ident(name) == row[0], name
