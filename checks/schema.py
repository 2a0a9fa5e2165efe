"""Does the restored schema have the fingerprint the snapshot had?"""

from __future__ import annotations

from verifier.catalogue import CheckContext
from verifier.report import CheckResult, Status


def check(context: CheckContext) -> CheckResult | None:
    """Returns CRITICAL listing objects that are missing, unexpected or different (WARNING for a
    backup without manifest, compared with production now); None when nothing was restored."""
    verification = context.verification
    if verification is None or (not verification.restored and not verification.tables):
        return None
    differences = verification.schema_differences
    if not differences:
        reference = "the snapshot" if verification.exact else "production now"
        return CheckResult("schema", Status.OK, f"schema matches {reference}", metrics={"differences": 0})
    status = Status.CRITICAL if verification.exact else Status.WARNING
    return CheckResult(
        "schema",
        status,
        f"{len(differences)} schema difference(s): {differences[0]}",
        tuple(differences),
        {"differences": len(differences)},
    )
