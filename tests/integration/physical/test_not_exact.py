"""With wal_level = replica there is no snapshot at an LSN: a named restore point is the target, and the
instant says it is not exact and why; `latest` recovers to the end of the archive. Real pgBackRest."""

from __future__ import annotations

from tests.integration.physical.conftest import PhysicalProduction, content_sums
from verifier.config import PostgresConfig, VerifyConfig
from verifier.physical.instant_proof import restore_to_instant, take_instant
from verifier.postgres.catalog import count_rows

TABLES = [("public", "t"), ("public", "u"), ("public", "still")]


def test_a_restore_point_is_restored_to_and_said_not_to_be_exact(replica_production: PhysicalProduction) -> None:
    production = replica_production
    production.backup("full")
    production.execute("INSERT INTO u (t_count) SELECT count(*) FROM t")
    physical = production.physical.model_copy(update={"target": "restore-point"})
    with take_instant(physical, production.params) as instant:
        counts = count_rows(TABLES, production.cluster.connect, snapshot_id=instant.snapshot_id)
        with production.cluster.connect() as connection:
            sums = content_sums(connection, instant.snapshot_id)
    production.execute("INSERT INTO u (t_count) VALUES (0)")  # after the restore point: not restored
    assert not instant.exact and instant.restore_point is not None
    assert instant.describe() == (
        f"restore point {instant.restore_point} at LSN {instant.lsn} (not exact: wal_level = replica has no "
        "snapshot at an LSN: a transaction committed between the snapshot and the restore point is in one only)"
    )
    with restore_to_instant(physical, VerifyConfig(), PostgresConfig(), production.params, instant) as restored:
        assert restored.stopped_at.startswith(f"recovery stopped at restore point {instant.restore_point}, LSN ")
        assert count_rows(TABLES, restored.connect) == counts  # nobody wrote between snapshot and restore point
        with restored.connect() as connection:
            assert content_sums(connection) == sums


def test_latest_recovers_to_the_end_of_the_archive(replica_production: PhysicalProduction) -> None:
    production = replica_production
    production.backup("full")
    production.execute("DELETE FROM t WHERE id % 3 = 0")
    physical = production.physical.model_copy(update={"target": "latest"})
    with take_instant(physical, production.params) as instant:
        counts = count_rows(TABLES, production.cluster.connect, snapshot_id=instant.snapshot_id)
    assert not instant.exact and instant.restore_point is None
    with restore_to_instant(physical, VerifyConfig(), PostgresConfig(), production.params, instant) as restored:
        assert not restored.state.in_recovery
        assert count_rows(TABLES, restored.connect) == counts
