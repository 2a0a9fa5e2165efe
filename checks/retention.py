"""`retention`: what retention deleted and kept, and what it refused or could not delete."""

from __future__ import annotations

from verifier.check_registry import CheckContext
from verifier.report import CheckResult, Status
from verifier.repository.retention import RetentionOutcome, RetentionPlan


def check(context: CheckContext) -> CheckResult | None:
    """Returns what retention did (`run`, `prune`): OK, or WARNING for future backups, refusals, failed
    deletions or a retention skipped; None for commands that apply no retention."""
    if context.retention_skipped:
        return CheckResult("retention", Status.WARNING, context.retention_skipped)
    if context.retention is None:
        return None
    return result(*context.retention)


def result(retention_plan: RetentionPlan, outcome: RetentionOutcome) -> CheckResult:
    """Returns the `retention` result of a plan and what was done: OK, or WARNING for future backups,
    refusals or failed deletions."""
    details = [f"kept from the future: {decision.name}" for decision in retention_plan.from_the_future]
    details += [f"refused: {line}" for line in outcome.refused]
    details += [f"failed: {line}" for line in outcome.failed]
    verb = "would delete" if outcome.dry_run else "deleted"
    count = len(retention_plan.to_delete) if outcome.dry_run else len(outcome.deleted)
    summary = f"{verb} {count} backup{'' if count == 1 else 's'}, kept {len(retention_plan.kept)}"
    if retention_plan.from_the_future:
        summary += f"; {len(retention_plan.from_the_future)} dated in the future (check the clock)"
    if outcome.refused or outcome.failed:
        summary += f"; {len(outcome.refused) + len(outcome.failed)} could not be deleted"
    return CheckResult(
        name="retention",
        status=Status.WARNING if details else Status.OK,
        summary=summary,
        details=tuple(details),
        metrics={
            "deleted": count,
            "kept": len(retention_plan.kept),
            "freed_bytes": outcome.freed_bytes,
            "future": len(retention_plan.from_the_future),
        },
    )
