"""Did the backup restore into the sandbox without errors?"""

from __future__ import annotations

from verifier.check_registry import CheckContext
from verifier.report import CheckResult, Status
from verifier.units import format_seconds


def check(context: CheckContext) -> CheckResult | None:
    """Returns CRITICAL listing every restore error by object; None under `--quick` (no restore)."""
    verification = context.verification
    if verification is None:
        return None
    metrics: dict[str, int | float | str] = {"seconds": verification.restore_seconds}
    if verification.error is not None and not verification.restore_issues:
        return CheckResult("restore", Status.CRITICAL, f"restore not possible: {verification.error}", metrics=metrics)
    if verification.restore_issues:
        details = tuple(f"{issue.object}: {issue.message}" for issue in verification.restore_issues)
        first = verification.restore_issues[0]
        if len(details) == 1:
            return CheckResult("restore", Status.CRITICAL, f"restore failed in {details[0]}", metrics=metrics)
        return CheckResult(
            "restore",
            Status.CRITICAL,
            f"{len(details)} restore errors, first in {first.object}: {first.message}",
            details,
            metrics,
        )
    return CheckResult(
        "restore",
        Status.OK,
        f"restored into {verification.sandbox} in {format_seconds(verification.restore_seconds)}",
        metrics=metrics,
    )
