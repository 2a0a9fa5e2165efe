"""Were the tables' own settings (storage parameters, replica identity, clustering, column statistics,
storage and compression) restored as the snapshot had them?"""

from __future__ import annotations

from verifier.check_registry import CheckContext
from verifier.report import CheckResult, Status


def check(context: CheckContext) -> CheckResult | None:
    """Returns CRITICAL naming each table whose settings differ from the snapshot's (WARNING for a backup
    without a manifest, compared with production now); OK with how many tables have settings of their own,
    or why they were not compared; None when nothing was restored or nothing has settings of its own."""
    verification = context.verification
    if verification is None or not verification.restored:
        return None
    found = verification.finding("table_settings")
    reference = "the snapshot" if verification.exact else "production now"
    if found.problems:
        noun = "table differs" if len(found.problems) == 1 else "tables differ"
        return CheckResult(
            "table_settings",
            Status.CRITICAL if found.verdict else Status.WARNING,
            f"{len(found.problems):,} {noun} in settings from {reference}: {found.problems[0]}",
            tuple(found.problems),
            {"differing": len(found.problems)},
        )
    if found.not_compared is not None:
        return CheckResult("table_settings", Status.OK, f"table settings not compared: {found.not_compared}")
    if found.compared == 0:
        return None
    tables = "table's" if found.compared == 1 else f"{found.compared:,} tables'"
    return CheckResult(
        "table_settings", Status.OK, f"the {tables} own settings restored as in {reference}", metrics={"differing": 0}
    )
