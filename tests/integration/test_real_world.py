"""The verdict on databases as real applications leave them: no false alarm on a healthy backup,
no pass for a broken one.

Healthy cases assert exit 0 (with `checks.min_count: 1`), `verification_passed` and no CRITICAL;
broken cases assert the CRITICAL and the object it names. Everything runs against real PostgreSQL.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
import yaml

from tests.e2e.conftest import verifier
from tests.support.dumps import legacy_dump
from tests.support.mounts import tmpfs
from tests.support.real_world import (
    ApplicationDatabase,
    create_application_database,
    drop_application_database,
    leave_invalid_index,
)
from verifier.errors import RepositoryError
from verifier.pipeline import commands
from verifier.postgres.binaries import Installation
from verifier.postgres.evidence.fingerprint import fingerprint_schema
from verifier.postgres.throwaway.cluster import TemporaryCluster
from verifier.report import Report, Status
from verifier.repository.backups import Repository
from verifier.repository.history import History
from verifier.zabbix import keys
from verifier.zabbix.values import values_from_report


@pytest.fixture
def app_db(production: TemporaryCluster) -> Iterator[ApplicationDatabase]:
    database = create_application_database(production)
    try:
        yield database
    finally:
        drop_application_database(database)


def result(report: Report, name: str):  # type: ignore[no-untyped-def]
    return next(r for r in report.results if r.name == name)


def assert_quiet(report: Report) -> None:
    """A healthy backup: exit 0, verified, nothing CRITICAL or WARNING."""
    problems = [(r.name, r.status.name, r.summary, r.details[:5]) for r in report.results if r.status is not Status.OK]
    assert report.exit_code == 0, problems
    assert report.verification_passed, problems
    assert report.verification is not None and report.verification.mismatched_tables == []


def test_application_role_with_its_own_schema_on_its_search_path(app_db: ApplicationDatabase, tmp_path: Path) -> None:
    """Finding 2 (fingerprint depended on search_path) and 4 (roles in policies, owners, grants)."""
    config = app_db.config(tmp_path / "repo")
    report = commands.run(config)
    assert_quiet(report)
    assert result(report, "schema").summary == "schema matches the snapshot"
    assert report.manifest is not None
    objects = report.manifest.schema_objects
    assert "function app.order_count(integer)" in objects and "view app.big_orders" in objects
    assert "policy app.documents.public_documents" in objects
    assert "check" in commands.check(config).command
    assert_quiet(commands.check(config))


def test_owners_and_grants_are_part_of_the_fingerprint(app_db: ApplicationDatabase) -> None:
    """What a recovery needs besides the tables: a revoked grant or a changed owner changes it."""

    def fingerprint() -> dict[str, str]:
        kwargs = app_db.cluster.connection_kwargs(app_db.dbname)
        with psycopg.connect(**kwargs, autocommit=True) as connection:  # type: ignore[arg-type]
            return fingerprint_schema(connection).objects

    before = fingerprint()
    app_db.execute(f'REVOKE SELECT ON documents FROM "{app_db.anonymous}"')
    after_revoke = fingerprint()
    assert [key for key in before if before[key] != after_revoke.get(key)] == ["table app.documents"]
    app_db.execute(f'ALTER TABLE app.big_orders OWNER TO "{app_db.anonymous}"', as_owner=False)
    assert fingerprint()["view app.big_orders"] != after_revoke["view app.big_orders"]


def test_leftover_invalid_index_is_not_a_missing_index(app_db: ApplicationDatabase, tmp_path: Path) -> None:
    """Finding 3: pg_dump never dumps invalid indexes, so the fingerprint must not hold them."""
    leave_invalid_index(app_db)
    report = commands.run(app_db.config(tmp_path / "repo"))
    assert_quiet(report)
    assert report.manifest is not None
    assert "index app.orders_customer_unique" not in report.manifest.schema_objects
    assert "index app.orders_customer" in report.manifest.schema_objects


def test_busy_small_table_far_beyond_the_drift_tolerance_is_not_a_failed_verification(
    app_db: ApplicationDatabase, tmp_path: Path
) -> None:
    """Finding 1: drift is information, never the verdict; it goes to Zabbix as its own item."""
    stop = threading.Event()

    def enqueue() -> None:
        kwargs = {**app_db.cluster.connection_kwargs(app_db.dbname), "user": app_db.owner}
        with psycopg.connect(**kwargs, autocommit=True) as connection:  # type: ignore[arg-type]
            while not stop.is_set():
                connection.execute("INSERT INTO jobs (state) SELECT 'queued' FROM generate_series(1, 5)")

    writer = threading.Thread(target=enqueue)
    writer.start()
    try:
        report = commands.run(app_db.config(tmp_path / "repo"))
        pipeline_check = commands.check(app_db.config(tmp_path / "repo"))
    finally:
        stop.set()
        writer.join()
    for current in (report, pipeline_check):
        assert_quiet(current)
        drift = result(current, "drift")
        assert drift.status is Status.OK
        assert "app.jobs" in " ".join(drift.details), drift
        assert drift.metrics["tables"] >= 1
    assert History(tmp_path / "repo" / "state" / "history.sqlite").verified_backups() == {report.backup_name}
    values = {value.key: value.value for value in values_from_report(report, [], datetime.now(UTC), database="x").all()}
    assert values[keys.VERIFY_STATUS] == "1"
    assert values[keys.VERIFY_MISMATCHED_TABLES] == "0"
    assert int(values[keys.DRIFT_TABLES]) >= 1


def test_drift_beyond_the_tolerance_can_be_asked_to_warn(app_db: ApplicationDatabase, tmp_path: Path) -> None:
    config = app_db.config(tmp_path / "repo", verify={"drift": {"warn": True, "exact": True}})
    assert commands.run(config).exit_code == 0
    app_db.execute("INSERT INTO jobs (state) SELECT 'queued' FROM generate_series(1, 200)")
    report = commands.check(config)
    assert report.verification_passed
    drift = result(report, "drift")
    assert drift.status is Status.WARNING
    assert "app.jobs" in drift.summary
    assert any("production now has 220 rows, 200 more than the backup's 20" in d for d in drift.details), drift


def test_role_statement_timeout_does_not_kill_the_counts(app_db: ApplicationDatabase, tmp_path: Path) -> None:
    """Finding 11: every connection to production gets the snapshot session's settings."""
    app_db.execute("INSERT INTO orders (customer) SELECT 'bulk' FROM generate_series(1, 400000)")
    app_db.execute(f"ALTER ROLE \"{app_db.owner}\" SET statement_timeout = '20ms'", as_owner=False)
    report = commands.run(app_db.config(tmp_path / "repo", dump={"jobs": 2}))
    assert_quiet(report)


def test_lock_wait_timeout_ends_the_dump_instead_of_hanging(app_db: ApplicationDatabase, tmp_path: Path) -> None:
    kwargs = {**app_db.cluster.connection_kwargs(app_db.dbname), "user": app_db.owner}
    with psycopg.connect(**kwargs) as blocker:  # type: ignore[arg-type]
        blocker.execute("LOCK TABLE app.payments IN ACCESS EXCLUSIVE MODE")
        report = commands.run(app_db.config(tmp_path / "repo", dump={"lock_wait_timeout": "2s"}))
        blocker.rollback()
    dump = result(report, "dump")
    assert dump.status is Status.CRITICAL
    assert "app.payments" in dump.summary and "lock" in dump.summary, dump.summary
    assert report.exit_code == 2
    assert Repository(tmp_path / "repo").backups() == []


@pytest.fixture
def standby(postgres_installation: Installation, tmp_path: Path) -> Iterator[tuple[TemporaryCluster, TemporaryCluster]]:
    """A primary and a streaming-replication hot standby made with `pg_basebackup -R`."""
    replication = {"wal_level": "replica", "max_wal_senders": "4", "hot_standby": "on"}
    with TemporaryCluster(postgres_installation, tcp=True, settings=replication) as primary:
        base = Path(tempfile.mkdtemp(prefix="pgbv-standby-"))  # in the session's temp dir, which postgres can reach
        shutil.chown(base, "postgres", "postgres")
        subprocess.run(
            [
                "runuser", "-u", "postgres", "--",
                str(postgres_installation.program("pg_basebackup")),
                "-h", primary.host, "-p", str(primary.port), "-U", "postgres",
                "-D", str(base / "data"), "-R", "--checkpoint=fast", "--no-sync",
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip
        try:
            with TemporaryCluster(
                postgres_installation, tcp=True, settings=replication, copy_of=base / "data"
            ) as replica:
                yield primary, replica
        finally:
            shutil.rmtree(base, ignore_errors=True)


def test_dump_from_a_hot_standby_with_an_unlogged_table(
    standby: tuple[TemporaryCluster, TemporaryCluster], tmp_path: Path
) -> None:
    """Finding 5: pg_dump skips unlogged data on a standby; the counts must too."""
    primary, replica = standby
    with primary.connect() as connection:
        connection.execute("CREATE DATABASE shop")
    with primary.connect("shop") as connection:
        connection.execute("CREATE TABLE orders AS SELECT g AS id FROM generate_series(1, 1000) g")
        connection.execute("CREATE UNLOGGED TABLE sessions AS SELECT g AS id FROM generate_series(1, 50) g")
    deadline = datetime.now(UTC) + timedelta(seconds=120)  # a loaded CI machine replays slowly
    while True:  # the precondition: the standby shows both tables (replayed, visible to new snapshots)
        with contextlib.suppress(psycopg.OperationalError), replica.connect("shop") as connection:
            row = connection.execute(
                "SELECT to_regclass('public.sessions') IS NOT NULL AND to_regclass('public.orders') IS NOT NULL"
            ).fetchone()
            if row is not None and row[0]:
                break
        assert datetime.now(UTC) < deadline, "the standby did not replay the primary's tables"
        threading.Event().wait(0.1)
    config = {
        "source": {"host": replica.host, "port": replica.port, "dbname": "shop", "user": "postgres"},
        "repository": {"path": str(tmp_path / "repo")},
        "checks": {"min_count": 1},
    }
    from verifier.config import Config

    report = commands.run(Config.model_validate(config))
    assert_quiet(report)
    tables = {t.qualified_name: t for t in report.verification.tables}  # type: ignore[union-attr]
    assert tables["public.orders"].restored_rows == 1000
    assert tables["public.sessions"].snapshot_rows == 0 and tables["public.sessions"].restored_rows == 0
    assert report.manifest is not None
    assert report.manifest.unlogged_not_dumped == ["public.sessions"]
    assert any("public.sessions" in detail for detail in result(report, "dump").details)


def cut_before_post_data(sql_text: str) -> str:
    """Returns a plain dump cut where its constraints section starts, as a killed cron job leaves it."""
    position = sql_text.rindex("--\n-- Name:", 0, sql_text.index("Type: CONSTRAINT"))
    return sql_text[:position]


def test_legacy_dump_cut_before_its_constraints_is_incomplete(
    app_db: ApplicationDatabase, tmp_path: Path, postgres_installation: Installation
) -> None:
    """Finding 6: the completion trailer is checked, in the full check and in --quick."""
    from tests.integration.conftest import SourceDatabase

    whole = legacy_dump(SourceDatabase(app_db.cluster, app_db.dbname), postgres_installation, tmp_path / "w.sql.gz")
    cut = tmp_path / f"{app_db.dbname}_2025-12-23_20-44-19.sql.gz"
    cut.write_bytes(gzip.compress(cut_before_post_data(whole.decode()).encode()))
    lines = cut_before_post_data(whole.decode()).count("\n")
    config = app_db.config(tmp_path / "repo")
    for quick in (False, True):
        report = commands.check(config, backup_file=cut, quick=quick)
        assert report.exit_code == 2
        archive = result(report, "archive")
        assert archive.status is Status.CRITICAL
        assert f"incomplete dump (ends at line {lines:,})" in archive.summary, archive.summary
        assert not report.verification_passed


def test_empty_and_non_gzip_sql_gz_are_critical_in_quick_check(app_db: ApplicationDatabase, tmp_path: Path) -> None:
    """Finding 6: the 20-byte file a failed `pg_dump | gzip` leaves, and a text file named .sql.gz."""
    empty = tmp_path / "empty.sql.gz"
    empty.write_bytes(gzip.compress(b""))
    text = tmp_path / "notes.sql.gz"
    text.write_text("SELECT 1;\n")
    not_sql = tmp_path / "photo.sql.gz"
    not_sql.write_bytes(gzip.compress(b"\x89PNG\r\n binary"))
    config = app_db.config(tmp_path / "repo")
    expected = {empty: "is empty", text: "is not gzip-compressed", not_sql: "is not a pg_dump SQL file"}
    for path, words in expected.items():
        for quick in (True, False):
            report = commands.check(config, backup_file=path, quick=quick)
            archive = result(report, "archive")
            assert archive.status is Status.CRITICAL, (path, quick, archive)
            assert words in archive.summary, archive.summary
            assert report.exit_code == 2


def test_gzip_damage_is_found_even_after_psql_stopped_early(
    app_db: ApplicationDatabase, tmp_path: Path, postgres_installation: Installation
) -> None:
    from tests.integration.conftest import SourceDatabase

    sql_text = legacy_dump(SourceDatabase(app_db.cluster, app_db.dbname), postgres_installation, tmp_path / "w.sql.gz")
    broken = sql_text.decode().replace("CREATE TABLE app.orders (", "CREATE TABLE app.orders (x no_such_type,", 1)
    data = bytearray(gzip.compress(broken.encode()))
    data[-8] ^= 0xFF  # the CRC in the trailer
    path = tmp_path / "broken.sql.gz"
    path.write_bytes(bytes(data))
    report = commands.check(app_db.config(tmp_path / "repo"), backup_file=path)
    archive = result(report, "archive")
    assert archive.status is Status.CRITICAL
    assert "CRC" in archive.summary, archive.summary
    assert result(report, "restore").status is Status.CRITICAL


def test_two_databases_in_one_repository_are_refused(
    app_db: ApplicationDatabase, production: TemporaryCluster, tmp_path: Path
) -> None:
    """Finding 7: one repository, one database."""
    other = create_application_database(production)
    try:
        assert commands.run(app_db.config(tmp_path / "repo")).exit_code == 0
        for call in (commands.run, commands.check):
            with pytest.raises(RepositoryError) as raised:
                call(other.config(tmp_path / "repo"))
            assert app_db.dbname in str(raised.value) and "repository.path" in str(raised.value)
            assert raised.value.exit_code == 3
        assert len(Repository(tmp_path / "repo").backups()) == 1
    finally:
        drop_application_database(other)


def write_config(path: Path, app_db: ApplicationDatabase, repository: Path) -> Path:
    data = {
        "source": {"host": app_db.cluster.host, "port": app_db.cluster.port, "dbname": app_db.dbname},
        "repository": {"path": str(repository)},
        "checks": {"min_count": 1},
    }
    data["source"]["user"] = app_db.owner
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "readonly", "ro,size=1m") as mount_point:
        yield mount_point


def test_unwritable_repository_is_exit_3_in_one_line(
    app_db: ApplicationDatabase, tmp_path: Path, read_only_dir: Path
) -> None:
    """Finding 8: no traceback, exit 3 (could not run), not 1."""
    completed = verifier("run", "--config", write_config(tmp_path / "c.yaml", app_db, read_only_dir / "repo"))
    assert completed.returncode == 3, completed.stdout + completed.stderr
    assert "Traceback" not in completed.stderr
    error_lines = [line for line in completed.stderr.splitlines() if line.strip()]
    assert len(error_lines) == 1 and "read-only" in error_lines[0].lower(), completed.stderr


def test_corrupt_history_still_writes_the_report_and_exits_3(app_db: ApplicationDatabase, tmp_path: Path) -> None:
    """Finding 8: the report is written, the history error is named, exit 3."""
    config_path = write_config(tmp_path / "c.yaml", app_db, tmp_path / "repo")
    assert verifier("run", "--config", config_path).returncode == 0
    history = tmp_path / "repo" / "state" / "history.sqlite"
    history.write_bytes(b"this is not a database" * 100)
    completed = verifier("run", "--config", config_path)
    assert completed.returncode == 3, completed.stdout + completed.stderr
    assert "Traceback" not in completed.stderr
    assert "history" in completed.stdout + completed.stderr
    reports = sorted((tmp_path / "repo" / "reports").glob("*.json"))
    assert len(reports) == 2
    last = json.loads(reports[-1].read_text())
    assert "history" in (last["could_not_run"] or "")
    assert len(Repository(tmp_path / "repo").backups()) == 2  # retention cannot judge: it deletes nothing


def test_check_names_why_production_was_not_compared(app_db: ApplicationDatabase, tmp_path: Path) -> None:
    """Finding 9: on the console, not only in the JSON."""
    config_path = write_config(tmp_path / "c.yaml", app_db, tmp_path / "repo")
    assert verifier("run", "--config", config_path).returncode == 0
    data = yaml.safe_load(config_path.read_text())
    data["source"]["port"] = 1
    config_path.write_text(yaml.safe_dump(data))
    completed = verifier("check", "--config", config_path)
    assert "production not compared" in completed.stdout, completed.stdout
    assert "cannot connect" in completed.stdout
    report = json.loads(sorted((tmp_path / "repo" / "reports").glob("*.json"))[-1].read_text())
    assert report["verification"]["restored"] is True


def test_missing_manifest_of_an_agent_backup_is_critical_not_legacy(
    app_db: ApplicationDatabase, tmp_path: Path
) -> None:
    """Finding 10."""
    config = app_db.config(tmp_path / "repo")
    assert commands.run(config).exit_code == 0
    backup = Repository(tmp_path / "repo").newest()
    assert backup is not None and backup.manifest_path is not None
    backup.manifest_path.unlink()
    report = commands.check(config, quick=True)
    archive = result(report, "archive")
    assert archive.status is Status.CRITICAL and "manifest missing" in archive.summary, archive


def test_manifest_paths_must_stay_inside_the_repository(app_db: ApplicationDatabase, tmp_path: Path) -> None:
    config = app_db.config(tmp_path / "repo")
    assert commands.run(config).exit_code == 0
    backup = Repository(tmp_path / "repo").newest()
    assert backup is not None and backup.manifest_path is not None
    outside = tmp_path / "outside.dump"
    outside.write_bytes(backup.dump_path.read_bytes())
    data = json.loads(backup.manifest_path.read_text())
    data["dump_path"] = "../outside.dump"
    data["files"][0]["path"] = "../outside.dump"
    backup.manifest_path.write_text(json.dumps(data))
    report = commands.check(config, quick=True)
    archive = result(report, "archive")
    assert archive.status is Status.CRITICAL and "outside the repository" in archive.summary, archive


def test_future_dated_backup_is_reported_and_not_fresh(app_db: ApplicationDatabase, tmp_path: Path) -> None:
    config = app_db.config(tmp_path / "repo", checks={"max_age_hours": 1})
    assert commands.run(config).exit_code == 0
    first = Repository(tmp_path / "repo").newest()
    assert first is not None and first.manifest_path is not None
    data = json.loads(first.manifest_path.read_text())
    data["created_at"] = (datetime.now(UTC) - timedelta(hours=5)).isoformat()
    first.manifest_path.write_text(json.dumps(data))
    assert commands.run(config).exit_code == 0
    second = Repository(tmp_path / "repo").newest()
    assert second is not None and second.manifest_path is not None
    data = json.loads(second.manifest_path.read_text())
    data["created_at"] = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    second.manifest_path.write_text(json.dumps(data))
    report = commands.check(config, quick=True)
    age = result(report, "backup_age")
    assert age.status is Status.CRITICAL, age
    assert "in the future" in age.summary and second.name in age.summary
    assert age.metrics["age_seconds"] >= 5 * 3600 - 60


def test_check_of_a_foreign_file_never_counts_as_the_sources_verification(
    app_db: ApplicationDatabase, tmp_path: Path, postgres_installation: Installation
) -> None:
    """Finding 12."""
    from tests.integration.conftest import SourceDatabase

    foreign = tmp_path / "foreign.sql.gz"
    legacy_dump(SourceDatabase(app_db.cluster, app_db.dbname), postgres_installation, foreign)
    config = app_db.config(tmp_path / "repo")
    report = commands.check(config, backup_file=foreign)
    assert report.command == "check --backup"
    assert report.verification is not None and report.verification.restored
    history = History(tmp_path / "repo" / "state" / "history.sqlite")
    assert history.last_successful_verification() is None
    sent = {value.key for value in values_from_report(report, [], datetime.now(UTC), database="x").all()}
    assert keys.VERIFY_STATUS not in sent and keys.VERIFY_LAST_SUCCESS not in sent


def test_run_timeout_ends_the_run_cleanly_as_critical(app_db: ApplicationDatabase, tmp_path: Path) -> None:
    """An overall run timeout: the step it lands in cleans up, the run still reports."""
    kwargs = {**app_db.cluster.connection_kwargs(app_db.dbname), "user": app_db.owner}
    config = app_db.config(tmp_path / "repo", dump={"lock_wait_timeout": "10m"})
    config = config.model_copy(update={"run_timeout": 2.0})
    with psycopg.connect(**kwargs) as blocker:  # type: ignore[arg-type]
        blocker.execute("LOCK TABLE app.payments IN ACCESS EXCLUSIVE MODE")
        started = datetime.now(UTC)
        report = commands.run(config)
        blocker.rollback()
    assert datetime.now(UTC) - started < timedelta(seconds=30)
    dump = result(report, "dump")
    assert dump.status is Status.CRITICAL and "run_timeout" in dump.summary, dump.summary
    assert report.exit_code == 2
    assert list((tmp_path / "repo").glob("*.partial")) == []
    assert len(list((tmp_path / "repo" / "reports").glob("*.json"))) == 1


def test_a_backup_made_by_the_previous_version_still_verifies(app_db: ApplicationDatabase, tmp_path: Path) -> None:
    """Its manifest has no roles and the older fingerprint: roles come from production, the schema
    is said to be not compared instead of differing everywhere."""
    config = app_db.config(tmp_path / "repo")
    assert commands.run(config).exit_code == 0
    backup = Repository(tmp_path / "repo").newest()
    assert backup is not None and backup.manifest_path is not None
    data = json.loads(backup.manifest_path.read_text())
    data["manifest_version"] = 1
    data["schema_objects"] = {key: "0" * 16 for key in data["schema_objects"]}
    data.pop("roles")
    backup.manifest_path.write_text(json.dumps(data))
    report = commands.check(config)
    assert_quiet(report)
    assert "not compared" in result(report, "schema").summary
