"""pgBackRest's repository on an S3 server (the off-site tests' SeaweedFS) over TLS, the certificate
verified against the test's own CA: stanza-create, WAL pushed by archive_command, a full backup, and the
backup restored to the exact instant of a logical slot's snapshot, holding exactly what the snapshot held
while a writer moved production on (issue 24). Real PostgreSQL, real pgBackRest, a real S3 server."""

from __future__ import annotations

from tests.integration.physical.conftest import PhysicalProduction, content_sums
from verifier.config import PostgresConfig, VerifyConfig
from verifier.physical.amcheck import run_amcheck
from verifier.physical.instant_proof import restore_to_instant, take_instant
from verifier.physical.pgbackrest import PgBackRest
from verifier.postgres.catalog import count_rows

TABLES = [("public", "t"), ("public", "u"), ("public", "still")]


def test_a_backup_in_an_s3_repository_restores_to_the_exact_instant(s3_production: PhysicalProduction) -> None:
    production = s3_production
    assert "repo1-type=s3" in production.physical.config.read_text()  # type: ignore[union-attr]
    writer = production.write_continuously()
    try:
        production.backup("full")
        inventory = PgBackRest(production.physical).inventory()
        assert [backup.kind for backup in inventory.backups] == ["full"]
        assert inventory.wal.oldest is not None and inventory.wal.newest is not None
        assert inventory.wal.newest_archived_at is not None, "archive_command pushed WAL to S3"
        writes_before = production.writes
        with take_instant(production.physical, production.params) as instant:
            with production.cluster.connect() as connection:
                snapshot_sums = content_sums(connection, instant.snapshot_id)
            snapshot_counts = count_rows(TABLES, production.cluster.connect, snapshot_id=instant.snapshot_id)
        assert instant.exact and instant.describe() == f"LSN {instant.lsn} (exact)"
        with restore_to_instant(
            production.physical, VerifyConfig(), PostgresConfig(), production.params, instant
        ) as restored:
            assert production.writes > writes_before, "the writer wrote while the instant was taken"
            with restored.connect() as connection:
                restored_sums = content_sums(connection)
            restored_counts = count_rows(TABLES, restored.connect)
            amcheck = run_amcheck(restored, "sample")
            assert restored.backup.label == inventory.backups[0].label
            assert restored.stopped_at == f"recovery stopped before {instant.lsn}"
            assert not restored.state.in_recovery
    finally:
        production.stop_writing(writer)
    assert restored_counts == snapshot_counts
    assert restored_sums == snapshot_sums
    now = count_rows(TABLES, production.cluster.connect)
    assert now[("public", "u")] > snapshot_counts[("public", "u")], "production moved on after the instant"
    assert amcheck is not None and amcheck.findings == ()
