"""Does the restored data hold the user's own rules (`verify.assertions`)? One result per assertion."""

from __future__ import annotations

from verifier.check_registry import CheckContext
from verifier.report import AssertionOutcome, CheckResult, Status


def check(context: CheckContext) -> list[CheckResult]:
    """Returns one result per assertion run on the restored copy, named `assertion NAME`: CRITICAL showing
    what it got and what was expected (or why its query failed), OK otherwise. Empty when none ran."""
    verification = context.verification
    if verification is None:
        return []
    return [_result(outcome) for outcome in verification.assertions]


def _result(outcome: AssertionOutcome) -> CheckResult:
    name = f"assertion {outcome.name}"
    metrics: dict[str, int | float | str] = {"assertion": outcome.name, "seconds": outcome.seconds}
    got = "NULL" if outcome.got is None else repr(outcome.got)
    if outcome.error is not None:
        return CheckResult(
            name, Status.CRITICAL, f"failed on the restored copy: {outcome.error} (expected {outcome.expected!r})", (),
            metrics,
        )  # fmt: skip
    if not outcome.passed:
        return CheckResult(
            name, Status.CRITICAL, f"failed on the restored copy: got {got}, expected {outcome.expected!r}", (), metrics
        )
    return CheckResult(name, Status.OK, f"holds on the restored copy: got {got} (expected {outcome.expected!r})", (),
                       metrics)  # fmt: skip
