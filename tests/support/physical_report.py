"""A physical proof's report page, built as `check --physical` builds it (the `physical` check's own
result line), for the tests of the reports that show it."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from pg_backup_verifier_checks import physical

from tests.support.check_context import proof_context, table, verification
from verifier.findings import Findings
from verifier.render.page import ReportPage
from verifier.report import Command, PhysicalRestore, Report

LABEL = "20261207-122737F_20261207-130001I"
TAKEN = datetime(2026, 12, 7, 13, 30, tzinfo=UTC)
RESTORED = PhysicalRestore(
    label=LABEL, kind="incr", target="exact", lsn="0/41203C0",
    wal_oldest="000000010000000000000001", wal_newest="000000010000000000000041",
    recoverable_from=datetime(2026, 12, 1, 2, 12, tzinfo=UTC), recoverable_to=TAKEN - timedelta(seconds=41),
)  # fmt: skip
VERDICT = f"restored backup {LABEL} to LSN 0/41203C0 (exact): every table equal to production at that instant"


def physical_page(**changes: object) -> ReportPage:
    """Returns the page of a passed exact physical proof; `changes` replace fields of its verification."""
    proven = verification(
        table("t", 7918), backup_name=f"{LABEL}@0/41203C0", instant="LSN 0/41203C0 (exact)", sandbox="physical"
    )
    proven.restore_seconds = 12.345
    proven.inventory = {"archive_lag": 41, "window": 559_740, "backup_age": 5400, "full_age": 7200}
    proven.physical = RESTORED
    proven.findings = {
        "amcheck": Findings(compared=1, measures={"mode": "full", "seconds": 0.42, "relations": 12, "pages": 84}),
        "collations": Findings(compared=14),
    }
    proven = dataclasses.replace(proven, **changes)  # type: ignore[arg-type]
    results = [result for check in (physical.proof, physical.amcheck, physical.collations)
               if (result := check(proof_context(proven))) is not None]  # fmt: skip
    report = Report(
        run_id="20261207-133000-ab12", command=Command.CHECK_PHYSICAL, source="postgres on db1:5432",
        started_at=TAKEN, finished_at=TAKEN + timedelta(minutes=1), results=results, verification=proven,
        backup_name=proven.backup_name,
    )  # fmt: skip
    return ReportPage(report=report, generated_at=TAKEN + timedelta(minutes=1))
