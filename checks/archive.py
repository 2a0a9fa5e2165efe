"""Do the backup's files match their manifest (sha256, byte ranges), and does the archive read to the end?"""

from __future__ import annotations

from verifier.check_registry import CheckContext
from verifier.report import CheckResult, Status


def check(context: CheckContext) -> CheckResult | None:
    """Returns CRITICAL naming the damaged file and byte ranges, or the restore's reason why the archive
    cannot be read; None when no backup was examined."""
    integrity = context.integrity
    if integrity is None:
        return None
    if not integrity.ok:
        return CheckResult(
            "archive",
            Status.CRITICAL,
            f"{integrity.backup_name} is damaged: {integrity.problems[0]}",
            tuple(integrity.problems[1:]),
            {"ok": 0},
        )
    unreadable = [
        issue.message
        for issue in (context.verification.restore_issues if context.verification else [])
        if issue.object == "archive"
    ]
    if unreadable and not integrity.read_through:  # the restore is what read it to the end
        return CheckResult(
            "archive",
            Status.CRITICAL,
            f"{integrity.backup_name}: {unreadable[0]}",
            tuple(unreadable[1:]),
            {"ok": 0},
        )
    checked = "checksums match the manifest" if integrity.checksummed else "no manifest to checksum against"
    return CheckResult(
        "archive",
        Status.OK,
        f"{integrity.backup_name}: {checked}; {_how_far_read(context)}",
        metrics={"ok": 1, "seconds": integrity.seconds},
    )


def _how_far_read(context: CheckContext) -> str:
    """Returns what read the archive to the end, or that nothing did (only what happened is said)."""
    assert context.integrity is not None
    if context.integrity.read_through:
        return "the archive reads to the end"
    verification = context.verification
    if verification is not None and verification.restored:
        return "the restore read it to the end"
    if verification is None:
        return "not read to the end: no restore ran"
    return "not read to the end: the restore did not complete"
