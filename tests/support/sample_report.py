"""A realistic report of one nightly run, with history, for the renderer and mailer tests.

Built from the real models (Report, Manifest, Verification); nothing is mocked.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from verifier.manifest import FileEntry, Manifest, SourceInfo, TableCount
from verifier.render.page import BackupRow, ReportPage, RunPoint
from verifier.report import CheckResult, DumpOutcome, Report, Status, TableComparison, Verification

STARTED = datetime(2026, 11, 26, 0, 32, tzinfo=UTC)
HOSTILE_TABLE = "<script>alert(1)</script>"


def sample_manifest(name: str = "eatfit24_2026-11-26_00-32-00Z") -> Manifest:
    """Returns the manifest of last night's backup."""
    return Manifest(
        name=name,
        format="custom",
        created_at=STARTED,
        completed_at=STARTED + timedelta(seconds=41),
        tool_version="0.1.0",
        pg_dump_version="15.14",
        source=SourceInfo(
            label="127.0.0.1:5432/eatfit24", dbname="eatfit24", server_version="15.14", server_version_num=150014
        ),
        snapshot_id="00000003-0000001B-1",
        files=[FileEntry(path=f"{name}.dump", size=48_312_000, sha256="ab" * 32, chunk_size=1 << 24)],
        dump_path=f"{name}.dump",
        row_counts=[
            TableCount(schema="public", table="meals", rows=1_204_331),
            TableCount(schema="public", table="users", rows=18_220),
            TableCount(schema="public", table=HOSTILE_TABLE, rows=500),
        ],
        schema_objects={},
        schema_fingerprint="f" * 64,
        dump_seconds=41.2,
    )


def sample_report(*, problem: bool = True, hostile: bool = True) -> Report:
    """Returns last night's report: WARNING (size trend) with one drifting table and a hostile table name, or all OK."""
    manifest = sample_manifest()
    tables = [
        TableComparison("public", "meals", 1_204_331, 1_204_331, 1_204_390, Status.OK),
        TableComparison("public", "users", 18_220, 18_220, 18_221, Status.OK),
    ]
    if problem:
        tables.append(
            TableComparison(
                "public",
                HOSTILE_TABLE if hostile else "coupons",
                500,
                500,
                12,
                Status.OK,
                drifted=True,
                drift_note="production now has 12 rows, 488 fewer than the backup's 500",
            )
        )
    verification = Verification(
        backup_name=manifest.name,
        exact=True,
        restored=True,
        sandbox="local",
        tables=tables,
        restore_seconds=63.0,
        compare_seconds=2.5,
    )
    results = [
        CheckResult("backup_age", Status.OK, "newest backup is 0.1 h old"),
        CheckResult("restore", Status.OK, "restored in 1m 03s"),
        CheckResult("row_counts", Status.OK, "3 tables match the snapshot exactly"),
    ]
    if problem:
        results.append(
            CheckResult(
                "size_trend",
                Status.WARNING,
                "backup is 41% smaller than the previous one",
                details=("46.1 MiB now, 76.2 MiB before: somebody truncated a table?",),
            )
        )
    return Report(
        run_id="20261126T003200Z-4821",
        command="run",
        source="127.0.0.1:5432/eatfit24",
        started_at=STARTED,
        finished_at=STARTED + timedelta(minutes=2),
        results=results,
        manifest=manifest,
        dump=DumpOutcome(ok=True, duration_seconds=41.2, manifest=manifest),
        verification=verification,
        timings={"snapshot": 0.8, "dump": 41.2, "restore": 63.0, "compare": 2.5},
    )


def sample_page(*, problem: bool = True, hostile: bool = True) -> ReportPage:
    """Returns the report page with 20 backups and 30 nights of history."""
    backups = [
        BackupRow(
            name=f"eatfit24_{(STARTED - timedelta(days=age)).strftime('%Y-%m-%d_%H-%M-%SZ')}",
            created_at=STARTED - timedelta(days=age),
            size_bytes=80_000_000 - age * 100_000 if age else 48_312_000,
            format="custom",
            legacy=False,
            verification=Status.OK if age != 3 else Status.CRITICAL,
            verified_at=STARTED - timedelta(days=age) + timedelta(minutes=2),
        )
        for age in range(20)
    ]
    runs = [
        RunPoint(
            started_at=STARTED - timedelta(days=age),
            status=Status.OK,
            backup_bytes=80_000_000 - age * 100_000 if age else 48_312_000,
            dump_seconds=40.0 + (age % 5),
            verify_seconds=60.0 + (age % 7),
        )
        for age in reversed(range(30))
    ]
    return ReportPage(
        report=sample_report(problem=problem, hostile=hostile),
        backups=backups,
        runs=runs,
        generated_at=STARTED + timedelta(minutes=2),
        retention_summary="retention 14 days, keep_min 3: keep 14, delete 0 (0 B)",
    )
