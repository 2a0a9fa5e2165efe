"""Large objects, materialized views and constraints against real PostgreSQL: quiet on a healthy backup
of an application's database under concurrent writes (non-superuser role), CRITICAL naming the object
when the restored copy is damaged (a plain dump altered and re-sealed, or the sandbox copy damaged
directly), and in the self-test."""

from __future__ import annotations

import gzip
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.integration.conftest import SourceDatabase
from tests.support.real_world import ApplicationDatabase, create_application_database, drop_application_database
from tests.support.reports import newest_manifest, result
from verifier.archive.files import hash_existing
from verifier.manifest import Manifest
from verifier.pipeline import commands
from verifier.pipeline.selftest import run_selftest
from verifier.pipeline.verify import verify_backup
from verifier.postgres import catalog
from verifier.postgres.evidence import objects
from verifier.postgres.throwaway.cluster import TemporaryCluster
from verifier.report import Status, verification_passed
from verifier.repository.backups import Repository

# Run as the application role: two large objects it owns, a materialized view whose stored rows go stale
# under the writer, one never populated, a deferrable foreign key, and a CHECK added NOT VALID over old rows.
OBJECTS_SQL = """
SELECT lo_from_bytea(0, convert_to('receipt one', 'UTF8'));
SELECT lo_from_bytea(0, decode(repeat('00ff', 5000), 'hex'));
CREATE MATERIALIZED VIEW big_totals AS SELECT id, total FROM orders WHERE total > 250;
CREATE MATERIALIZED VIEW never_filled AS SELECT customer FROM orders WITH NO DATA;
CREATE TABLE refunds (id serial PRIMARY KEY, payment_id bigint NOT NULL
    REFERENCES payments (id) DEFERRABLE INITIALLY DEFERRED, amount numeric NOT NULL);
INSERT INTO refunds (payment_id, amount) SELECT g, 1 FROM generate_series(1, 50) g;
ALTER TABLE orders ADD CONSTRAINT orders_no_customer_zero CHECK (customer <> 'customer 0') NOT VALID;
"""


@pytest.fixture
def app_db(production: TemporaryCluster) -> Iterator[ApplicationDatabase]:
    database = create_application_database(production)
    try:
        database.execute(OBJECTS_SQL)
        yield database
    finally:
        drop_application_database(database)


def test_healthy_backup_under_writes_is_quiet(app_db: ApplicationDatabase, tmp_path: Path) -> None:
    stop = threading.Event()
    written = 0

    def write() -> None:
        nonlocal written
        kwargs = {**app_db.cluster.connection_kwargs(app_db.dbname), "user": app_db.owner}
        with psycopg.connect(**kwargs, autocommit=True) as connection:  # type: ignore[arg-type]
            while not stop.is_set():
                with connection.transaction():
                    connection.execute("INSERT INTO orders (customer, total) VALUES ('late', 299)")
                    connection.execute("INSERT INTO refunds (payment_id, amount) VALUES (%s, 2)", (1 + written % 500,))
                written += 1

    writer = threading.Thread(target=write)
    writer.start()
    deadline = time.monotonic() + 30
    while written == 0 and time.monotonic() < deadline:  # rows written after the view's refresh, before the snapshot
        time.sleep(0.01)
    try:
        report = commands.run(app_db.config(tmp_path / "repo", dump={"format": "custom"}))
    finally:
        stop.set()
        writer.join()
    problems = [(r.name, r.summary, r.details[:5]) for r in report.results if r.status is not Status.OK]
    assert report.exit_code == 0 and report.verification_passed, problems
    assert written > 0
    _, manifest = newest_manifest(tmp_path / "repo")
    snapshot = objects.SECTION.of(manifest)
    assert snapshot is not None
    assert snapshot.large_objects.count == 2 and snapshot.large_objects.hashed == 2
    views = {view.name: view for view in snapshot.materialized_views}
    assert views["never_filled"].populated is False
    # the stored rows were refreshed before the writes; the snapshot's count is what the restore produces
    stored = app_db.execute("SELECT count(*) FROM big_totals")[0][0]
    assert views["big_totals"].populated and views["big_totals"].rows is not None
    assert views["big_totals"].rows > stored
    assert snapshot.constraints["constraint app.orders.orders_no_customer_zero"] is False
    assert snapshot.constraints["constraint app.refunds.refunds_payment_id_fkey"] is True
    assert result(report, "large_objects").summary == "all 2 large objects match the snapshot"
    assert result(report, "materialized_views").summary.startswith("all 2 materialized views are populated")
    constraints = result(report, "constraints")
    assert constraints.status is Status.OK
    assert "constraint app.orders.orders_no_customer_zero is NOT VALID in production" in "\n".join(constraints.details)


def alter_and_reseal(repository: Path, replace: list[tuple[str, str]]) -> None:
    """Applies regex replacements to the newest plain backup and re-seals its manifest, so that only a
    restore-and-compare can tell."""
    dump_path, manifest = newest_manifest(repository)
    text = gzip.decompress(dump_path.read_bytes()).decode()
    for pattern, new in replace:
        text, replaced = re.subn(pattern, new, text)
        assert replaced == 1, pattern
    dump_path.write_bytes(gzip.compress(text.encode()))
    manifest.files = [hash_existing(dump_path, dump_path.name), *manifest.files[1:]]
    manifest.write(repository / f"{manifest.name}.json")


def test_altered_backup_is_critical_naming_each_object(app_db: ApplicationDatabase, tmp_path: Path) -> None:
    config = app_db.config(tmp_path / "repo", dump={"format": "plain"})
    assert commands.run(config).exit_code == 0
    _, manifest = newest_manifest(tmp_path / "repo")
    snapshot = objects.SECTION.of(manifest)
    assert snapshot is not None and objects.SECTION.of(manifest).large_objects.hashes is not None
    first_oid = min(snapshot.large_objects.hashes, key=int)
    alter_and_reseal(
        tmp_path / "repo",
        [
            (b"receipt one".hex(), b"receipt two".hex()),  # the object's bytes, as lowrite writes
            (r"REFRESH MATERIALIZED VIEW app\.big_totals;", "-- refresh left out"),
            (
                r"(ADD CONSTRAINT refunds_payment_id_fkey FOREIGN KEY \(payment_id\) REFERENCES app\.payments\(id\)"
                r" DEFERRABLE INITIALLY DEFERRED);",
                r"\1 NOT VALID;",
            ),
        ],
    )
    damaged = commands.check(config)
    assert damaged.exit_code == 2 and not damaged.verification_passed
    large = result(damaged, "large_objects")
    assert large.status is Status.CRITICAL and large.summary == f"large object {first_oid} differs from the snapshot"
    views = result(damaged, "materialized_views")
    assert views.status is Status.CRITICAL
    assert views.summary == "materialized view app.big_totals is not populated after the restore (it was in production)"
    constraints = result(damaged, "constraints")
    assert constraints.status is Status.CRITICAL
    assert constraints.summary == (
        "constraint app.refunds.refunds_payment_id_fkey is NOT VALID after the restore (valid in production)"
    )
    assert result(damaged, "row_counts").status is Status.OK  # the counts cannot see any of it


def test_broken_foreign_key_and_invalid_index_in_the_restored_copy_are_critical(
    app_db: ApplicationDatabase, tmp_path: Path
) -> None:
    config = app_db.config(tmp_path / "repo")
    assert commands.run(config).exit_code == 0
    backup = Repository(tmp_path / "repo").newest()
    assert backup is not None

    def damage(connect: catalog.Connector) -> None:
        """Rows loaded with triggers off, as a data-only restore would; an index a restore left invalid."""
        with connect() as connection:
            connection.autocommit = True
            connection.execute("SET session_replication_role = replica")
            connection.execute("DELETE FROM app.payments WHERE id = 7")
            connection.execute(
                "UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'app.orders_customer'::regclass"
            )

    verification = verify_backup(backup, config, None, damage=damage)
    problems = verification.finding("constraints").problems
    assert (
        "constraint app.refunds.refunds_payment_id_fkey is broken by 1 row(s) of app.refunds without a match in "
        "app.payments" in problems
    )
    assert "index app.orders_customer is left invalid by the restore" in problems
    assert not verification_passed(verification, None)


def test_large_objects_the_role_may_not_read_are_named_not_fatal(app_db: ApplicationDatabase) -> None:
    foreign = app_db.execute("SELECT lo_from_bytea(0, 'superuser only'::bytea)", as_owner=False)[0][0]
    kwargs = {**app_db.cluster.connection_kwargs(app_db.dbname), "user": app_db.owner}
    with psycopg.connect(**kwargs, autocommit=True) as connection:  # type: ignore[arg-type]
        connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        large = objects.read_large_objects(connection, keep_hashes=None)
        assert connection.execute("SELECT 1").fetchone() == (1,)  # the transaction survived
    assert large.error is None
    assert (large.count, large.hashed, large.unreadable, large.unreadable_count) == (3, 2, [foreign], 1)
    restored = large.model_copy(update={"unreadable": [], "unreadable_count": 0})
    problems, notes = objects.compare_large_objects(large, restored)
    assert problems == []
    assert notes == [f"1 large object(s) not readable by the dumping role, counted but not hashed: {foreign}"]


def test_older_manifest_without_objects_still_verifies(app_db: ApplicationDatabase, tmp_path: Path) -> None:
    config = app_db.config(tmp_path / "repo")
    assert commands.run(config).exit_code == 0
    _, manifest = newest_manifest(tmp_path / "repo")
    data = manifest.model_dump(mode="json", by_alias=True)
    del data["objects"]
    Manifest.model_validate(data).write(tmp_path / "repo" / f"{manifest.name}.json")
    report = commands.check(config)
    assert report.exit_code == 0, [(r.name, r.summary) for r in report.results]
    expected = "large objects not compared: the backup was made by an older version of the agent"
    assert result(report, "large_objects").summary == expected
    assert result(report, "constraints").summary.startswith("foreign keys hold, no index invalid")


def test_selftest_damages_every_object_kind_and_catches_it(source_db: SourceDatabase, tmp_path: Path) -> None:
    source_db.execute(
        "SELECT lo_from_bytea(0, 'attachment'::bytea);"
        'ALTER TABLE "Sales"."OrderLines" ADD CONSTRAINT qty_not_negative CHECK ("Qty" >= 0);'
    )
    config = source_db.config(tmp_path / "repo")
    assert commands.run(config).exit_code == 0
    outcome = run_selftest(config)
    assert outcome.passed, outcome.result().details
    by_check = {damage.check: damage for damage in outcome.damages}
    assert {"large_objects", "materialized_views", "constraints"} <= by_check.keys()
    assert by_check["materialized_views"].what == "emptied materialized view public.city_count"
    assert not [reason for reason in outcome.not_attempted if "large object" in reason or "materialized" in reason]


def test_selftest_without_large_objects_says_not_attempted(source_db: SourceDatabase, tmp_path: Path) -> None:
    config = source_db.config(tmp_path / "repo")
    assert commands.run(config).exit_code == 0
    outcome = run_selftest(config)
    assert outcome.passed, outcome.result().details
    assert "remove a large object: the database has none" in outcome.not_attempted
    assert "not attempted: remove a large object: the database has none" in outcome.result().details
