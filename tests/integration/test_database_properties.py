"""The database's own properties against real PostgreSQL, the agent connected as the application's
non-superuser owner: `ALTER DATABASE … SET` (search_path, statement_timeout, timezone), `ALTER ROLE …
IN DATABASE … SET`, `GRANT/REVOKE … ON DATABASE` and `COMMENT ON DATABASE` are kept by custom and
plain backups, restored and compared; a dump made by hand without them is CRITICAL naming them; a
publication is compared; a subscription pg_dump leaves out (not a superuser) is a named WARNING;
the self-test's damage to a database setting is caught."""

from __future__ import annotations

import gzip
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from psycopg import sql

from tests.support.real_world import ApplicationDatabase, create_application_database, drop_application_database
from tests.support.reports import newest_manifest, result
from verifier.archive.files import hash_existing
from verifier.pipeline import commands
from verifier.pipeline.selftest import run_selftest
from verifier.postgres.evidence import database_properties
from verifier.postgres.throwaway.cluster import TemporaryCluster
from verifier.report import Status

# Run by the superuser on production, as a DBA sets a database up (formatted with the identifiers).
DATABASE_SETUP = (
    "ALTER DATABASE {db} SET search_path = app, public",
    "ALTER DATABASE {db} SET statement_timeout = '25s'",
    "ALTER DATABASE {db} SET timezone = 'Asia/Tokyo'",
    "ALTER ROLE {anon} IN DATABASE {db} SET work_mem = '8MB'",
    "REVOKE CONNECT, TEMPORARY ON DATABASE {db} FROM PUBLIC",
    "GRANT CONNECT ON DATABASE {db} TO {anon}",
    "COMMENT ON DATABASE {db} IS 'the shop''s orders; do not drop'",
)
PUBLICATION = "CREATE PUBLICATION orders_pub FOR TABLE orders, payments"  # run as the owner
# a subscription that needs no publisher: set up by the superuser, as it must be
SUBSCRIPTION = (
    "CREATE SUBSCRIPTION app_sub CONNECTION 'host=127.0.0.1 port=1 dbname=nowhere' PUBLICATION orders_pub "
    "WITH (connect = false, slot_name = NONE, enabled = false)"
)


@pytest.fixture
def app_db(production: TemporaryCluster) -> Iterator[ApplicationDatabase]:
    database = create_application_database(production)
    try:
        identifiers = {"db": sql.Identifier(database.dbname), "anon": sql.Identifier(database.anonymous)}
        for statement in DATABASE_SETUP:
            database.execute(sql.SQL(statement).format(**identifiers), as_owner=False)
        database.execute(PUBLICATION)
        yield database
    finally:
        # the database's own statement_timeout (5 ms in one test) must not cancel the clean-up
        with production.connect(database.dbname) as connection:
            connection.execute("SET statement_timeout = 0")
            connection.execute("DROP SUBSCRIPTION IF EXISTS app_sub")
        drop_application_database(database)


def _problems(report: commands.Report) -> list[tuple[str, str]]:
    return [(outcome.name, outcome.summary) for outcome in report.results if outcome.status is not Status.OK]


@pytest.mark.parametrize("dump_format", ["custom", "plain"])
def test_backup_keeps_and_restores_the_database_properties(
    app_db: ApplicationDatabase, tmp_path: Path, dump_format: str
) -> None:
    report = commands.run(app_db.config(tmp_path / "repo", dump={"format": dump_format}))
    assert report.exit_code == 0 and report.verification_passed, _problems(report)
    _, manifest = newest_manifest(tmp_path / "repo")
    saved = database_properties.SECTION.of(manifest)
    assert saved is not None
    assert saved.settings == ["TimeZone=Asia/Tokyo", "search_path=app, public", "statement_timeout=25s"]
    assert saved.role_settings == {app_db.anonymous: ["work_mem=8MB"]}
    assert saved.comment == "the shop's orders; do not drop"
    assert f"{app_db.anonymous}:CONNECT" in saved.grants
    assert not any(grant.startswith("PUBLIC:") for grant in saved.grants)
    assert [publication.name for publication in saved.publications] == ["orders_pub"]
    properties = result(report, "database_properties")
    assert properties.status is Status.OK and properties.summary.endswith("restored as in the snapshot")
    assert properties.metrics["compared"] == 3 + 1 + 4 + 1 + 1  # settings, role's, grants (owner's 3), comment, owner
    replication = result(report, "replication")
    assert replication.status is Status.OK and replication.metrics["compared"] == 1
    assert "roles saved without passwords" in result(report, "dump").summary
    if dump_format == "plain":  # the file itself carries them, for any database it is restored into
        dump_path, _ = newest_manifest(tmp_path / "repo")
        text = gzip.decompress(dump_path.read_bytes()).decode()
        section = text.index("-- Database properties (pg-backup-verifier)")
        assert section < text.index("-- PostgreSQL database dump complete") < text.rindex("\\unrestrict")
        assert app_db.dbname not in text[section:]


def test_selftest_catches_a_lost_database_setting(app_db: ApplicationDatabase, tmp_path: Path) -> None:
    config = app_db.config(tmp_path / "repo", dump={"format": "custom"})
    assert commands.run(config, prove=False).dump is not None
    outcome = run_selftest(config)
    damage = next(done for done in outcome.damages if done.check == "database_properties")
    assert damage.caught, outcome.result().details
    assert outcome.passed, outcome.result().details


def test_plain_dump_made_by_hand_without_them_is_critical(app_db: ApplicationDatabase, tmp_path: Path) -> None:
    cluster = app_db.cluster
    backup = tmp_path / "cron" / f"{app_db.dbname}_by_hand.sql.gz"
    backup.parent.mkdir()
    environment = {
        **os.environ,
        "PGHOST": cluster.host,
        "PGPORT": str(cluster.port),
        "PGUSER": app_db.owner,
        "PGDATABASE": app_db.dbname,
    }
    dumped = subprocess.run(
        [str(cluster.installation.program("pg_dump")), "--format=plain"],
        env=environment,
        capture_output=True,
        check=True,
    )
    backup.write_bytes(gzip.compress(dumped.stdout))
    report = commands.check(app_db.config(tmp_path / "repo"), backup_file=backup)
    properties = result(report, "database_properties")
    assert properties.status is Status.CRITICAL, _problems(report)
    details = "\n".join(properties.details)
    for missing in (
        "database setting statement_timeout = 25s is missing after the restore",
        "database setting search_path = app, public is missing after the restore",
        "database setting TimeZone = Asia/Tokyo is missing after the restore",
        f"setting work_mem of role {app_db.anonymous} in the database = 8MB is missing after the restore",
        f"database privilege CONNECT of {app_db.anonymous} is missing after the restore",
        "database privilege CONNECT of PUBLIC is in the restored copy but not in production now",
        "the database's comment is missing after the restore",
    ):
        assert missing in details
    assert report.exit_code == 2 and not report.verification_passed


def test_publication_changed_in_the_backup_is_critical(app_db: ApplicationDatabase, tmp_path: Path) -> None:
    config = app_db.config(tmp_path / "repo", dump={"format": "plain"})
    assert commands.run(config).exit_code == 0
    dump_path, manifest = newest_manifest(tmp_path / "repo")  # the table taken out, the manifest re-sealed
    text = gzip.decompress(dump_path.read_bytes()).decode()
    dump_path.write_bytes(
        gzip.compress(text.replace("ALTER PUBLICATION orders_pub ADD TABLE ONLY app.payments;", "").encode())
    )
    manifest.files = [hash_existing(dump_path, dump_path.name), *manifest.files[1:]]
    manifest.write(tmp_path / "repo" / f"{manifest.name}.json")
    report = commands.check(config)
    replication = result(report, "replication")
    assert replication.status is Status.CRITICAL, _problems(report)
    assert replication.summary == (
        "publication orders_pub publishes app.orders (insert, update, delete, truncate) after the restore, "
        "app.orders, app.payments (insert, update, delete, truncate) in the snapshot"
    )
    assert not report.verification_passed


@pytest.mark.parametrize("dump_format", ["custom", "plain"])
def test_subscription_the_owner_cannot_dump_is_a_named_warning(
    app_db: ApplicationDatabase, tmp_path: Path, dump_format: str
) -> None:
    app_db.execute(SUBSCRIPTION, as_owner=False)
    report = commands.run(app_db.config(tmp_path / "repo", dump={"format": dump_format}))
    replication = result(report, "replication")
    assert replication.status is Status.WARNING, _problems(report)
    assert (
        replication.summary
        == "subscription app_sub is not in the backup: pg_dump needs a superuser to dump subscriptions"
    )
    assert report.verification_passed and report.exit_code == 1, _problems(report)
    _, manifest = newest_manifest(tmp_path / "repo")
    assert manifest.dump_warnings == ["subscriptions not dumped because current user is not a superuser"]


@pytest.mark.parametrize("dump_format", ["custom", "plain"])
def test_production_timeouts_do_not_govern_the_proof(
    app_db: ApplicationDatabase, tmp_path: Path, dump_format: str
) -> None:
    """A database-level statement_timeout shorter than hashing a table takes: it is restored and compared,
    and the sandbox's own sessions (counting, hashing, fingerprinting) still run to the end."""
    app_db.execute("INSERT INTO orders (customer) SELECT 'bulk ' || g FROM generate_series(1, 200000) g")
    app_db.execute(
        sql.SQL("ALTER DATABASE {} SET statement_timeout = '5ms'").format(sql.Identifier(app_db.dbname)), as_owner=False
    )
    config = app_db.config(tmp_path / "repo", dump={"format": dump_format})
    report = commands.run(config)
    assert report.exit_code == 0 and report.verification_passed, _problems(report)
    _, manifest = newest_manifest(tmp_path / "repo")
    saved = database_properties.SECTION.of(manifest)
    assert saved is not None and "statement_timeout=5ms" in saved.settings
    outcome = run_selftest(config)
    assert outcome.passed, outcome.result().details
