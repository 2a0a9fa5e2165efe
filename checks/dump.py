"""Did the last dump succeed?"""

from __future__ import annotations

from verifier.check_registry import CheckContext
from verifier.report import CheckResult, Status
from verifier.units import format_bytes, format_seconds, plural


def check(context: CheckContext) -> CheckResult | None:
    """Returns this run's dump status (WARNING when the backup lacks something, e.g. the roles), or the
    last recorded one for `verifier check`; None if no dump ever ran."""
    dump = context.dump
    if dump is not None:
        metrics: dict[str, int | float | str] = {"ok": int(dump.ok), "seconds": dump.duration_seconds}
        if not dump.ok:
            return CheckResult("dump", Status.CRITICAL, f"dump failed: {dump.error}", tuple(dump.warnings), metrics)
        assert dump.manifest is not None
        metrics["size_bytes"] = dump.manifest.size_bytes
        skipped = dump.manifest.unlogged_not_dumped
        information = (
            (f"dumped from a standby: the rows of unlogged tables are not in the backup ({', '.join(skipped)})",)
            if skipped
            else ()
        )
        # information, not a WARNING: an application role cannot read passwords, and a recovery sets them again
        passwords = "; roles saved without passwords (not a superuser)" if dump.manifest.roles_without_passwords else ""
        lsn = dump.manifest.snapshot_lsn  # a replication slot's snapshot, the physical proof's instant too
        snapshot = (
            f"one snapshot: LSN {lsn} (exact), the physical proof's instant too"
            if lsn
            else f"snapshot {dump.manifest.snapshot_id}"
        )
        return CheckResult(
            "dump",
            Status.WARNING if dump.warnings else Status.OK,
            f"{dump.manifest.dump_path}: {format_bytes(dump.manifest.size_bytes)} in "
            f"{format_seconds(dump.duration_seconds)}, {len(dump.manifest.row_counts):,} "
            f"{plural(len(dump.manifest.row_counts), 'table')} counted in {snapshot}"
            f"{passwords}",
            tuple(dump.warnings) + information,
            metrics,
        )
    if context.single_file:
        return None
    last = context.last_dump
    if last is None:
        return None
    when = last.started_at.isoformat(timespec="minutes")
    if last.dump_ok:
        return CheckResult("dump", Status.OK, f"last dump at {when} succeeded", metrics={"ok": 1})
    return CheckResult(
        "dump", Status.CRITICAL, f"last dump at {when} failed (see `verifier history`)", metrics={"ok": 0}
    )
