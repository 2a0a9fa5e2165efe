"""The tables' own settings against real PostgreSQL: storage parameters, the TOAST table's, replica identity,
clustering and column statistics/storage read in the snapshot and restored as they were; a plain dump that
lost one of pg_dump's ALTER TABLE statements (then re-sealed, so its sha256 matches again) is CRITICAL
naming the table; the self-test's fillfactor is caught."""

from __future__ import annotations

from pathlib import Path

from tests.integration.conftest import SourceDatabase
from tests.support.dumps import alter_and_reseal
from tests.support.reports import newest_manifest, result
from verifier.pipeline import commands
from verifier.pipeline.selftest import run_selftest
from verifier.postgres.evidence import table_settings
from verifier.report import Status

SETTINGS = """
ALTER TABLE "Sales"."OrderLines" SET (fillfactor = 70, autovacuum_enabled = false, toast.autovacuum_enabled = false);
ALTER TABLE "Sales"."OrderLines" REPLICA IDENTITY FULL;
ALTER TABLE "Sales"."OrderLines" CLUSTER ON "OrderLines_pkey";
ALTER TABLE "Sales"."OrderLines" ALTER COLUMN note SET STATISTICS 500, ALTER COLUMN note SET STORAGE EXTERNAL;
ALTER TABLE cities SET (autovacuum_vacuum_scale_factor = 0.01)
"""


def test_table_settings_are_read_in_the_snapshot_and_restored(source_db: SourceDatabase, tmp_path: Path) -> None:
    source_db.execute(SETTINGS)
    config = source_db.config(tmp_path / "repo", dump={"format": "plain"})
    report = commands.run(config)
    assert report.exit_code == 0, [(r.name, r.summary) for r in report.results if r.status != Status.OK]
    _, manifest = newest_manifest(tmp_path / "repo")
    saved = table_settings.SECTION.of(manifest)
    assert saved is not None
    assert saved['table "Sales"."OrderLines"'] == (
        "with (autovacuum_enabled=false, fillfactor=70); toast with (autovacuum_enabled=false); "
        'replica identity full; clustered on "OrderLines_pkey"; column note statistics 500 storage external'
    )
    assert saved["table public.cities"] == "with (autovacuum_vacuum_scale_factor=0.01)"
    assert result(report, "table_settings").summary == "the 2 tables' own settings restored as in the snapshot"


def test_a_lost_replica_identity_is_critical_naming_the_table(source_db: SourceDatabase, tmp_path: Path) -> None:
    source_db.execute(SETTINGS)
    config = source_db.config(tmp_path / "repo", dump={"format": "plain"})
    assert commands.run(config).exit_code == 0
    alter_and_reseal(tmp_path / "repo", ('ALTER TABLE ONLY "Sales"."OrderLines" REPLICA IDENTITY FULL;\n', ""))
    report = commands.check(config)
    found = result(report, "table_settings")
    assert found.status is Status.CRITICAL, found
    assert found.summary == (
        '1 table differs in settings from the snapshot: table "Sales"."OrderLines": restored with '
        "'with (autovacuum_enabled=false, fillfactor=70); toast with (autovacuum_enabled=false); "
        'clustered on "OrderLines_pkey"; column note statistics 500 storage external\', expected '
        "'with (autovacuum_enabled=false, fillfactor=70); toast with (autovacuum_enabled=false); "
        'replica identity full; clustered on "OrderLines_pkey"; column note statistics 500 storage external\''
    )
    assert report.exit_code == 2 and not report.verification_passed
    assert result(report, "row_counts").status is Status.OK  # the rows are all there


def test_the_selftest_catches_a_changed_fillfactor(source_db: SourceDatabase, tmp_path: Path) -> None:
    config = source_db.config(tmp_path / "repo")
    assert commands.run(config).exit_code == 0
    outcome = run_selftest(config)
    (damage,) = [done for done in outcome.damages if done.check == "table_settings"]
    assert damage.what.startswith("set fillfactor 37 on ") and damage.caught, outcome
