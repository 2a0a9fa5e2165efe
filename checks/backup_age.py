"""Is the newest backup, and the newest successful verification, younger than the maximum age?"""

from __future__ import annotations

from datetime import datetime, timedelta

from verifier.check_registry import CheckContext
from verifier.report import CheckResult, Status
from verifier.repository.backups import future_backups


def check(context: CheckContext) -> CheckResult | None:
    """Returns CRITICAL when there is no backup, the newest (not dated in the future) is older than
    `checks.max_age_hours`, or no verification succeeded within that time; WARNING naming backups
    dated in the future; None for a single `--backup` file."""
    if context.single_file:
        return None
    limit = timedelta(hours=context.config.checks.max_age_hours)
    newest = context.newest
    if newest is None:
        ahead = future_backups(context.backups, context.now)
        dated = f"; {len(ahead)} dated in the future (a wrong clock?), not counted" if ahead else ""
        return CheckResult("backup_age", Status.CRITICAL, f"no backup in {context.config.repository.path}{dated}")
    age = max(context.now - newest.created_at, timedelta(0))  # a few minutes ahead (see `newest`): just taken
    verified_at = context.now if context.verified_now else context.last_successful_verification
    metrics: dict[str, int | float | str] = {"age_seconds": int(age.total_seconds())}
    if verified_at is not None:
        metrics["last_verified"] = int(verified_at.timestamp())
    problems = []
    future = [
        f"backup {backup.name} is dated {_human(backup.created_at - context.now)} in the future (a wrong clock?) "
        "and is not counted as fresh"
        for backup in future_backups(context.backups, context.now)
    ]
    if age > limit:
        problems.append(f"newest backup {newest.name} is {_human(age)} old (limit {_human(limit)})")
    if verified_at is None:
        problems.append("no backup has ever been verified")
    elif context.now - verified_at > limit:
        problems.append(f"no successful verification for {_human(context.now - verified_at)} (limit {_human(limit)})")
    if problems or future:
        status = Status.CRITICAL if problems else Status.WARNING
        return CheckResult("backup_age", status, "; ".join(problems + future), metrics=metrics)
    return CheckResult(
        "backup_age",
        Status.OK,
        f"newest backup {_human(age)} old, verified {_ago(context.now, verified_at)}",
        metrics=metrics,
    )


def _ago(now: datetime, then: datetime | None) -> str:
    return (
        "never" if then is None else ("just now" if now - then < timedelta(minutes=1) else f"{_human(now - then)} ago")
    )


def _human(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 0:
        return "from the future"
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 3 * 86400:
        return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"
    return f"{seconds // 86400}d{(seconds % 86400) // 3600}h"
