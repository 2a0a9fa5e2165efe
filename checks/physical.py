"""Does the physical backup, recovered to an instant of production, hold what production held then? And
what only a physical copy can have wrong: pg_amcheck's findings, collations whose version differs."""

from __future__ import annotations

from verifier.check_registry import CheckContext
from verifier.report import CheckResult, Status, verdict_failures


def proof(context: CheckContext) -> CheckResult | None:
    """Returns the physical proof's verdict in one line: OK 'restored backup 20261207-122737F to LSN
    0/41203C0 (exact): every table equal to production at that instant' (not exact: what was compared and
    why it is not exact), CRITICAL naming the failed checks; None for a logical backup or when nothing was
    restored (the `restore` check says why)."""
    verification = context.verification
    if verification is None or verification.instant is None or not verification.restored or verification.error:
        return None
    label = verification.backup_name.split("@", 1)[0]
    tables = len(verification.tables)
    metrics: dict[str, int | float | str] = {"tables": tables, "restore_seconds": verification.restore_seconds}
    failed = verdict_failures(verification, None, context.config.checks.disabled)
    where = f"restored backup {label} to {verification.instant}"
    if failed:
        return CheckResult("physical", Status.CRITICAL, f"{where}: not as production held it ({', '.join(failed)})",
                           tuple(verification.notes), metrics)  # fmt: skip
    if verification.exact:  # the notes say when the logical dump ran in the same snapshot
        return CheckResult("physical", Status.OK, f"{where}: every table equal to production at that instant",
                           tuple(verification.notes), metrics)  # fmt: skip
    # not exact: `instant` says why (e.g. a transaction committed between the snapshot and the restore point)
    return CheckResult("physical", Status.OK, f"{where}: every table equal to production's snapshot beside it",
                       metrics=metrics)  # fmt: skip


def amcheck(context: CheckContext) -> CheckResult | None:
    """Returns CRITICAL with pg_amcheck's first finding on the restored physical copy (each one a detail),
    OK when it found none; None when it did not run."""
    verification = context.verification
    if verification is None or "amcheck" not in verification.findings:
        return None
    found = verification.finding("amcheck")
    metrics: dict[str, int | float | str] = {"findings": len(found.problems), **found.measures}
    if found.problems:
        more = f" (and {len(found.problems) - 1} more)" if len(found.problems) > 1 else ""
        return CheckResult("amcheck", Status.CRITICAL, f"pg_amcheck: {found.problems[0]}{more}",
                           tuple(found.problems), metrics)  # fmt: skip
    return CheckResult("amcheck", Status.OK, f"pg_amcheck ({found.measures.get('mode', 'full')}) found nothing",
                       metrics=metrics)  # fmt: skip


def collations(context: CheckContext) -> CheckResult | None:
    """Returns CRITICAL naming each collation whose version differs between production's host and the
    restored host, with the indexes sorted by it; OK when none differs; None when not compared."""
    verification = context.verification
    if verification is None or "collations" not in verification.findings:
        return None
    found = verification.finding("collations")
    metrics: dict[str, int | float | str] = {"collations": found.compared, "differing": len(found.problems)}
    if found.problems:
        return CheckResult("collations", Status.CRITICAL, found.problems[0], tuple(found.problems), metrics)
    return CheckResult("collations", Status.OK, f"all {found.compared:,} collation versions as on production's host",
                       metrics=metrics)  # fmt: skip
