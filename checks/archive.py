"""Do the backup's files match their manifest (sha256, byte ranges), and does the archive read to the end?"""

from __future__ import annotations

from verifier.catalogue import CheckContext
from verifier.report import CheckResult, Status


def check(context: CheckContext) -> CheckResult | None:
    """Returns CRITICAL naming the damaged file and byte ranges; None when no backup was examined."""
    integrity = context.integrity
    if integrity is None:
        return None
    if not integrity.ok:
        return CheckResult(
            "archive",
            Status.CRITICAL,
            f"{integrity.backup_name} is damaged: {integrity.problems[0]}",
            tuple(integrity.problems),
            {"ok": 0},
        )
    how = "checksums match the manifest and" if integrity.checksummed else "no manifest to checksum against;"
    return CheckResult(
        "archive",
        Status.OK,
        f"{integrity.backup_name}: {how} the archive reads to the end",
        metrics={"ok": 1, "seconds": integrity.seconds},
    )
