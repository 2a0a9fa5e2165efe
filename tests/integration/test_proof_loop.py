"""The proof loop against real PostgreSQL: dump → restore into a temporary cluster → exact compare."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import psycopg
import pytest

from tests.integration.conftest import SourceDatabase
from tests.support.dumps import flip_bytes, legacy_dump
from verifier.errors import LockHeld
from verifier.pipeline import commands
from verifier.postgres.binaries import Installation
from verifier.report import Report, Status
from verifier.repository.backups import Repository
from verifier.repository.lock import RepositoryLock


def result(report: Report, name: str):  # type: ignore[no-untyped-def]
    return next(r for r in report.results if r.name == name)


def counts(report: Report) -> dict[tuple[str, str], tuple[int | None, int | None]]:
    assert report.verification is not None
    return {(t.schema, t.table): (t.snapshot_rows, t.restored_rows) for t in report.verification.tables}


@pytest.mark.parametrize("dump_format", ["custom", "directory", "plain"])
def test_awkward_schema_restores_with_exact_counts(source_db: SourceDatabase, tmp_path: Path, dump_format: str) -> None:
    config = source_db.config(tmp_path / "repo", dump={"format": dump_format})
    report = commands.run(config)
    assert report.exit_code == 0, [(r.name, r.summary) for r in report.results]
    assert result(report, "row_counts").summary.startswith("all ")
    found = counts(report)
    assert found[("public", "cities")] == (10, 10)  # ONLY: the inheritance child's rows are not counted twice
    assert found[("public", "capitals")] == (3, 3)
    assert found[("Sales", "OrderLines")] == (500, 500)
    assert found[("public", 'weird "quoted" table')] == (2, 2)
    assert found[("public", "cache")] == (1, 1)  # unlogged tables are dumped too
    assert ("public", "measurements") not in found and ("public", "measurements_old") not in found
    leaf_partitions = sum(rows for (schema, table), (rows, _) in found.items() if table.startswith("measurements_"))
    assert leaf_partitions == 3000
    assert result(report, "schema").status is Status.OK
    backup = Repository(tmp_path / "repo").newest()
    assert backup is not None and backup.manifest is not None
    assert (backup.dump_path.stat().st_mode & 0o777) in (0o600, 0o700)
    assert (tmp_path / "repo").stat().st_mode & 0o777 == 0o700


def test_busy_database_still_matches_its_snapshot_exactly(source_db: SourceDatabase, tmp_path: Path) -> None:
    source_db.execute("CREATE TABLE events (id bigserial PRIMARY KEY, payload text)")
    source_db.execute("INSERT INTO events (payload) SELECT repeat(md5(g::text), 8) FROM generate_series(1, 200000) g")
    stop = threading.Event()
    committed = {"total": 0}

    def write() -> None:
        with psycopg.connect(**source_db.cluster.connection_kwargs(source_db.dbname), autocommit=True) as connection:
            while not stop.is_set():
                connection.execute("INSERT INTO events (payload) VALUES ('during the dump')")
                connection.execute("UPDATE cities SET population = population + 1 WHERE name = 'city 1'")
                committed["total"] += 1

    writes_at: dict[str, int] = {}

    def step(name: str) -> None:
        writes_at[name] = committed["total"]

    writer = threading.Thread(target=write)
    writer.start()
    try:
        # directory format with -j 2: pg_dump's workers import the snapshot late; it must still be open
        config = source_db.config(tmp_path / "repo", dump={"format": "directory", "jobs": 2})
        report = commands.run(config, step=step)
    finally:
        stop.set()
        writer.join()
    assert writes_at["integrity"] - writes_at["snapshot and dump"] > 0, "the writer did not write during the dump"
    assert report.exit_code == 0, [(r.name, r.summary, r.details) for r in report.results]
    assert report.verification is not None
    events = next(t for t in report.verification.tables if t.table == "events")
    assert events.restored_rows == events.snapshot_rows
    assert events.production_rows is not None and events.production_rows > events.snapshot_rows  # type: ignore[operator]


def test_flipped_bytes_are_critical_and_named_by_byte_range(source_db: SourceDatabase, tmp_path: Path) -> None:
    source_db.execute("INSERT INTO cities SELECT md5(g::text), g FROM generate_series(1, 50000) g")
    config = source_db.config(tmp_path / "repo")
    assert commands.run(config).exit_code == 0
    backup = Repository(tmp_path / "repo").newest()
    assert backup is not None
    flip_bytes(backup.dump_path, backup.dump_path.stat().st_size // 2)
    report = commands.check(config)
    assert report.exit_code == 2
    archive = result(report, "archive")
    assert archive.status is Status.CRITICAL
    assert "sha256 mismatch; damaged byte range(s)" in archive.summary
    assert any(r.status is Status.CRITICAL for r in report.results if r.name in ("restore", "row_counts"))


def test_truncated_dump_is_critical_with_both_sizes(source_db: SourceDatabase, tmp_path: Path) -> None:
    config = source_db.config(tmp_path / "repo")
    assert commands.run(config).exit_code == 0
    backup = Repository(tmp_path / "repo").newest()
    assert backup is not None
    size = backup.dump_path.stat().st_size
    os.truncate(backup.dump_path, size // 2)
    report = commands.check(config)
    assert report.exit_code == 2
    assert f"size {size // 2} bytes, manifest says {size} (truncated)" in result(report, "archive").summary
    assert result(report, "restore").status is Status.CRITICAL


def test_legacy_cron_dump_is_compared_with_production_now(
    source_db: SourceDatabase, tmp_path: Path, postgres_installation: Installation
) -> None:
    legacy = tmp_path / "eatfit24_2025-12-23_20-44-19.sql.gz"
    legacy_dump(source_db, postgres_installation, legacy)
    config = source_db.config(tmp_path / "repo")
    report = commands.check(config, backup_file=legacy)
    row_counts = result(report, "row_counts")
    assert row_counts.status is Status.OK, row_counts
    assert any("exact comparison impossible" in detail for detail in row_counts.details)
    assert report.verification is not None and not report.verification.exact

    source_db.execute("CREATE TABLE added_later AS SELECT g FROM generate_series(1, 10) g")
    source_db.execute("DELETE FROM capitals")
    source_db.execute("INSERT INTO capitals SELECT 'c', 1, 'XX' FROM generate_series(1, 100)")
    report = commands.check(config, backup_file=legacy)
    assert report.exit_code == 2
    notes = {t.qualified_name: (t.status, t.note) for t in report.verification.tables}  # type: ignore[union-attr]
    assert notes["public.added_later"][0] is Status.CRITICAL
    assert notes["public.capitals"][0] is Status.WARNING
    assert result(report, "schema").status is Status.WARNING


def test_restore_error_is_reported_by_object(
    source_db: SourceDatabase, tmp_path: Path, postgres_installation: Installation
) -> None:
    sql_text = legacy_dump(source_db, postgres_installation, tmp_path / "ignored.sql.gz").decode()
    broken = sql_text.replace("CREATE TABLE public.cities (", "CREATE TABLE public.cities (broken_column broken_type,")
    assert broken != sql_text
    path = tmp_path / "broken.sql"
    path.write_text(broken)
    report = commands.check(source_db.config(tmp_path / "repo"), backup_file=path)
    restore = result(report, "restore")
    assert restore.status is Status.CRITICAL
    assert "TABLE public.cities (line" in restore.summary
    assert 'type "broken_type" does not exist' in restore.summary
    assert report.exit_code == 2


def test_unreachable_source_fails_the_dump_in_one_line(tmp_path: Path, source_db: SourceDatabase) -> None:
    config = source_db.config(tmp_path / "repo", source={"host": "127.0.0.1", "port": 1, "connect_timeout": 2})
    report = commands.run(config)
    dump = result(report, "dump")
    assert dump.status is Status.CRITICAL
    assert "cannot connect to postgres@127.0.0.1:1/" in dump.summary and "\n" not in dump.summary
    assert report.exit_code == 2
    assert list((tmp_path / "repo").glob("*.partial")) == []


def test_failed_dump_keeps_older_backups_and_leaves_no_partial(source_db: SourceDatabase, tmp_path: Path) -> None:
    config = source_db.config(tmp_path / "repo")
    assert commands.run(config).exit_code == 0
    before = sorted(p.name for p in (tmp_path / "repo").iterdir())
    role = f"no_access_{source_db.dbname}"
    source_db.execute(f"CREATE ROLE {role} LOGIN")
    try:
        source_db.execute("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM PUBLIC")
        report = commands.run(source_db.config(tmp_path / "repo", source={"user": role}))
    finally:
        source_db.execute(f"DROP OWNED BY {role}")
        source_db.execute(f"DROP ROLE {role}")
    dump = result(report, "dump")
    assert dump.status is Status.CRITICAL
    assert "permission denied" in dump.summary, dump.summary
    after = sorted(p.name for p in (tmp_path / "repo").iterdir())
    assert after == before


def test_second_concurrent_run_is_refused_naming_the_holder(source_db: SourceDatabase, tmp_path: Path) -> None:
    config = source_db.config(tmp_path / "repo")
    Repository(tmp_path / "repo").ensure()
    with RepositoryLock(tmp_path / "repo" / ".lock"), pytest.raises(LockHeld, match=r"another run \(pid \d+, started"):
        commands.run(config)


def test_server_sandbox_creates_and_drops_a_scratch_database(source_db: SourceDatabase, tmp_path: Path) -> None:
    cluster = source_db.cluster
    config = source_db.config(
        tmp_path / "repo",
        verify={"sandbox": "server", "server": {"host": cluster.host, "port": cluster.port, "user": "postgres"}},
    )
    report = commands.run(config)
    assert report.exit_code == 0, [(r.name, r.summary) for r in report.results]
    assert "scratch database pgbv_verify_" in result(report, "restore").summary
    with cluster.connect() as connection:
        left = connection.execute("SELECT datname FROM pg_database WHERE datname LIKE 'pgbv_verify_%'").fetchall()
    assert left == []


def test_quick_check_reads_but_does_not_restore(source_db: SourceDatabase, tmp_path: Path) -> None:
    config = source_db.config(tmp_path / "repo")
    commands.run(config)
    report = commands.check(config, quick=True)
    names = {r.name for r in report.results}
    assert {"backup_age", "backup_count", "archive"} <= names
    assert "restore" not in names and report.verification is None
    assert report.exit_code == 0
    shutil.rmtree(tmp_path / "repo")


@pytest.mark.skipif(os.geteuid() != 0, reason="verify.run_as only matters when the agent runs as root")
def test_missing_sandbox_user_is_could_not_run_exit_3(source_db: SourceDatabase, tmp_path: Path) -> None:
    config = source_db.config(tmp_path / "repo", verify={"run_as": "no_such_user_here"})
    report = commands.run(config)
    assert report.exit_code == 3
    assert report.could_not_run is not None and "verify.run_as: user 'no_such_user_here' does not exist" in (
        report.could_not_run
    )
    assert result(report, "dump").status is Status.OK
    assert result(report, "restore").status is Status.CRITICAL


def test_a_file_that_is_no_archive_is_reported_unreadable(source_db: SourceDatabase, tmp_path: Path) -> None:
    junk = tmp_path / "nightly.dump"
    junk.write_bytes(os.urandom(5000))
    report = commands.check(source_db.config(tmp_path / "repo"), backup_file=junk)
    archive = result(report, "archive")
    assert archive.status is Status.CRITICAL
    assert "nightly: input file does not appear to be a valid archive" in archive.summary
    assert report.exit_code == 2


def test_roles_are_saved_unless_disabled_also_by_a_non_superuser(source_db: SourceDatabase, tmp_path: Path) -> None:
    role = f"reader_{source_db.dbname}"
    source_db.execute(f"CREATE ROLE {role} LOGIN")
    try:
        source_db.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA public, "Sales" TO {role}')
        source_db.execute(f'GRANT USAGE ON SCHEMA "Sales" TO {role}')
        source_db.execute(f'GRANT SELECT ON ALL SEQUENCES IN SCHEMA public, "Sales" TO {role}')
        report = commands.run(source_db.config(tmp_path / "repo", source={"user": role}))
    finally:
        source_db.execute(f"DROP OWNED BY {role}")
        source_db.execute(f"DROP ROLE {role}")
    assert result(report, "dump").status is Status.OK, result(report, "dump")
    assert report.manifest is not None and report.manifest.globals_path is not None
    roles = (tmp_path / "repo" / report.manifest.globals_path).read_text()
    assert f"CREATE ROLE {role}" in roles and "SCRAM" not in roles  # not a superuser: without passwords

    report = commands.run(source_db.config(tmp_path / "other", dump={"globals": False}))
    assert report.manifest is not None and report.manifest.globals_path is None
    assert list((tmp_path / "other").glob("*.globals.sql")) == []
