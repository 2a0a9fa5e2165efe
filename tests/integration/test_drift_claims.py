"""Drift is claimed only where it is known (issue 22.6): production's statistics can be stale (right after
a bulk load, or after their counters were reset the planner's reltuples from the last ANALYZE remains),
and were read as production's row count: `app.coupons: production now has about 600 rows, 300 more
than the backup's 300` while count(*) was 300. A table the statistics put beyond the tolerance is
recounted exactly when it is small; the note says how production was measured."""

from __future__ import annotations

from pathlib import Path

from tests.integration.conftest import SourceDatabase
from verifier.pipeline import commands


def _stale_statistics(source_db: SourceDatabase) -> None:
    """Leaves `coupons` with 300 rows while its statistics say 600: 600 loaded and analyzed, 300 deleted,
    then the table's activity counters reset (n_live_tup 0: the estimate falls back to reltuples 600)."""
    source_db.execute("CREATE TABLE coupons (id int PRIMARY KEY, code text)")
    source_db.execute("INSERT INTO coupons SELECT g, md5(g::text) FROM generate_series(1, 600) g")
    source_db.execute("ANALYZE coupons")
    source_db.execute("DELETE FROM coupons WHERE id > 300")
    source_db.execute("SELECT pg_stat_force_next_flush()")
    source_db.execute("SELECT pg_stat_reset_single_table_counters('coupons'::regclass)")
    assert source_db.execute("SELECT count(*) FROM coupons") == [(300,)]
    assert source_db.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = 'coupons'::regclass") == [(600,)]


def test_stale_statistics_do_not_invent_drift(source_db: SourceDatabase, tmp_path: Path) -> None:
    _stale_statistics(source_db)
    report = commands.run(source_db.config(tmp_path / "repo", verify={"drift": {"warn": True}}))
    assert report.verification is not None
    (coupons,) = [table for table in report.verification.tables if table.table == "coupons"]
    assert coupons.snapshot_rows == 300
    assert not coupons.drifted, coupons.drift_note
    assert coupons.production_rows == 300, "the small table was recounted"
    drift = next(result for result in report.results if result.name == "drift")
    assert "coupons" not in drift.summary + " ".join(drift.details), drift
    assert report.exit_code == 0, [(result.name, result.summary) for result in report.results]


def test_real_drift_of_a_small_table_is_counted_and_says_so(source_db: SourceDatabase, tmp_path: Path) -> None:
    source_db.execute("CREATE TABLE coupons (id int PRIMARY KEY, code text)")
    source_db.execute("INSERT INTO coupons SELECT g, md5(g::text) FROM generate_series(1, 300) g")
    config = source_db.config(tmp_path / "repo", verify={"drift": {"warn": True}})
    assert commands.run(config).verification_passed
    source_db.execute("INSERT INTO coupons SELECT g, md5(g::text) FROM generate_series(301, 600) g")
    source_db.execute("SELECT pg_stat_force_next_flush()")
    report = commands.check(config)
    assert report.verification is not None
    (coupons,) = [table for table in report.verification.tables if table.table == "coupons"]
    assert coupons.drifted and coupons.production_rows == 600
    assert coupons.drift_note == "production now has 600 rows (counted), 300 more than the backup's 300"
