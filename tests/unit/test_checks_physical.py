"""The physical proof's checks on plain data: its one result line, amcheck's and the collations' findings;
and the repository's ages, lag and window measured from pgBackRest's inventory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pg_backup_verifier_checks import physical

from tests.support.check_context import judged, proof_context, table, verification
from verifier.findings import Findings
from verifier.physical.engine import BackupKind, Inventory, PhysicalBackup, WalWindow
from verifier.pipeline.physical_proof import inventory_measures
from verifier.report import Status, Verification

LABEL = "20261207-122737F_20261207-130001I"


def physical_verification(exact: bool = True, **findings: Findings) -> Verification:
    instant = (
        "LSN 0/41203C0 (exact)"
        if exact
        else "restore point pgbv_x at LSN 0/5000090 (not exact: wal_level = replica has no snapshot at an LSN)"
    )
    proven = verification(table("t", 7918), backup_name=f"{LABEL}@0/41203C0", instant=instant, exact=exact)
    proven.findings = {"amcheck": Findings(compared=1, measures={"mode": "full"}), **findings}
    return proven


def test_an_exact_proof_says_every_table_is_equal_to_production_at_that_instant() -> None:
    assert judged(physical.proof(proof_context(physical_verification()))) == (
        Status.OK,
        f"restored backup {LABEL} to LSN 0/41203C0 (exact): every table equal to production at that instant",
    )


def test_a_restore_point_says_it_is_not_exact_and_why() -> None:
    assert judged(physical.proof(proof_context(physical_verification(exact=False)))) == (
        Status.OK,
        f"restored backup {LABEL} to restore point pgbv_x at LSN 0/5000090 (not exact: wal_level = replica has "
        "no snapshot at an LSN): every table equal to production's snapshot beside it",
    )


def test_a_difference_fails_the_proof_naming_the_checks() -> None:
    differing = physical_verification(row_counts=Findings(problems=["public.t: 1 row fewer"]))
    assert judged(physical.proof(proof_context(differing))) == (
        Status.CRITICAL,
        f"restored backup {LABEL} to LSN 0/41203C0 (exact): not as production held it (row_counts)",
    )


def test_a_logical_proof_or_a_failed_restore_is_not_the_physical_checks() -> None:
    assert physical.proof(proof_context(verification(table("t", 1)))) is None
    failed = physical_verification()
    failed.restored, failed.error = False, "WAL segment 000000010000000000000003 is missing from the archive"
    assert physical.proof(proof_context(failed)) is None  # the restore check says it, once
    assert physical.collations(proof_context(verification())) is None


def test_amcheck_findings_are_critical_naming_the_first() -> None:
    found = Findings(problems=['btree index "public.t_pkey": block 1 is corrupt', "heap block 2"], compared=1)
    result = physical.amcheck(proof_context(physical_verification(amcheck=found)))
    assert judged(result) == (
        Status.CRITICAL,
        'pg_amcheck: btree index "public.t_pkey": block 1 is corrupt (and 1 more)',
    )
    assert result is not None and len(result.details) == 2
    assert judged(physical.amcheck(proof_context(physical_verification()))) == (
        Status.OK,
        "pg_amcheck (full) found nothing",
    )


def test_a_collation_whose_version_differs_is_critical() -> None:
    line = "collation de-x is version 2.37 on the restored host, version 2.36 on production's: indexes …"
    assert judged(physical.collations(proof_context(physical_verification(collations=Findings([line]))))) == (
        Status.CRITICAL,
        line,
    )
    clean = physical_verification(collations=Findings(compared=811))
    assert judged(physical.collations(proof_context(clean))) == (
        Status.OK,
        "all 811 collation versions as on production's host",
    )


def test_the_inventory_measures_ages_lag_and_window_in_seconds() -> None:
    now = datetime(2026, 12, 7, 14, 0, tzinfo=UTC)

    def backup(label: str, kind: BackupKind, hours_ago: float) -> PhysicalBackup:
        stopped = now - timedelta(hours=hours_ago)
        return PhysicalBackup(label, kind, stopped - timedelta(minutes=1), stopped, "0/2000028", "0/2000100",
                              "000000010000000000000002", "000000010000000000000002", 1, 1, None)  # fmt: skip

    inventory = Inventory(
        (backup("F1", "full", 50), backup("I1", "incr", 2)),
        WalWindow("000000010000000000000002", "000000010000000000000009", now - timedelta(seconds=30)),
        15,
    )
    assert inventory_measures(inventory, now) == {
        "backup_age": 7200, "full_age": 180000, "archive_lag": 30, "window": 50 * 3600 - 30,
    }  # fmt: skip
    assert inventory_measures(Inventory((), WalWindow(None, None, None), None), now) == {}
