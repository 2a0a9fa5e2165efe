"""Does the restored schema have the fingerprint the snapshot had?"""

from __future__ import annotations

from verifier.check_registry import CheckContext
from verifier.report import CheckResult, Status


def check(context: CheckContext) -> CheckResult | None:
    """Returns CRITICAL listing objects that are missing, unexpected or different (WARNING for a
    backup without manifest, compared with production now); WARNING naming extensions whose version
    in the sandbox differs from production's; None when nothing was restored."""
    verification = context.verification
    if verification is None or (not verification.restored and not verification.tables):
        return None
    schema = verification.finding("schema")
    differences, extensions = schema.problems, schema.warnings
    reference = "the snapshot" if verification.exact else "production now"
    if differences:
        status = Status.CRITICAL if verification.exact else Status.WARNING
        noun = "difference" if len(differences) == 1 else "differences"
        return CheckResult(
            "schema",
            status,
            f"{len(differences):,} schema {noun} from {reference}: {differences[0]}",
            tuple(differences + extensions),
            {"differences": len(differences)},
        )
    if extensions:
        return CheckResult(
            "schema",
            Status.WARNING,
            f"schema matches {reference}, but {extensions[0]}",
            tuple(extensions[1:]),
            {"differences": 0},
        )
    if schema.not_compared is not None:
        return CheckResult("schema", Status.OK, f"schema not compared: {schema.not_compared}")
    return CheckResult("schema", Status.OK, f"schema matches {reference}", metrics={"differences": 0})
