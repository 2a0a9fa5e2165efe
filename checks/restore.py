"""Did the backup restore into the sandbox without errors?"""

from __future__ import annotations

from verifier.check_registry import CheckContext
from verifier.postgres.restore.restore_errors import describe, failed_object_lines, failures
from verifier.report import CheckResult, Status
from verifier.units import format_seconds


def check(context: CheckContext) -> CheckResult | None:
    """Returns CRITICAL with one line per object that failed to restore (its TOC entry and error text),
    the objects that failed only because of an earlier one indented below it; None under `--quick`."""
    verification = context.verification
    if verification is None:
        return None
    metrics: dict[str, int | float | str] = {"seconds": verification.restore_seconds}
    # an error after the restore (the deadline, a count that failed) fails it even when the only issue was
    # a REFRESH that needed a server outside the sandbox: nothing was proven
    if verification.error is not None and not failures(verification.restore_issues):
        return CheckResult("restore", Status.CRITICAL, f"restore not possible: {verification.error}", metrics=metrics)
    issues = failures(verification.restore_issues)  # not a REFRESH that needed a server outside the sandbox
    if issues:
        details = tuple(failed_object_lines(issues))
        causes = sum(1 for issue in issues if issue.caused_by is None)
        metrics["failed_objects"] = len(issues)
        if len(issues) == 1:
            return CheckResult("restore", Status.CRITICAL, f"restore failed in {describe(issues[0])}", metrics=metrics)
        grouped = f" ({causes} {'cause' if causes == 1 else 'causes'})" if causes < len(issues) else ""
        return CheckResult(
            "restore",
            Status.CRITICAL,
            f"{len(issues)} objects failed to restore{grouped}, first {describe(issues[0])}",
            details,
            metrics,
        )
    unrefreshed = len(verification.restore_issues)
    note = f" ({unrefreshed} materialized view(s) need a server outside the sandbox)" if unrefreshed else ""
    return CheckResult(
        "restore",
        Status.OK,
        f"restored into {verification.sandbox} in {format_seconds(verification.restore_seconds)}{note}",
        metrics=metrics,
    )
