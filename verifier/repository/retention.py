"""Retention: decide which backups to delete (the plan), then delete exactly those (apply).

The plan is pure: it looks at the backups' timestamps, the policy and which backups were verified,
and gives every backup a decision with the reasons for it. `apply` only deletes what the plan says,
and re-checks every path on the way (inside the repository, one of the backup's own files, not a
symlink), so a foreign file can never be removed, even by a plan built from a wrong listing.

Guarantees, whatever the policy says:
- the newest verified backup is kept;
- at least `keep_min` backups are kept (counting only backups with a believable timestamp whose
  verification did not fail);
- a backup "from the future" (clock skew, or a copied-in file) is kept and reported, and does not
  count towards `keep_min`, because its age cannot be trusted;
- a backup's files (dump, manifest, globals) are deleted together, dump first, so an interrupted
  prune leaves a manifest that says its dump is gone rather than a dump that looks like a foreign file.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Protocol

from verifier.config import RetentionConfig
from verifier.repository.backups import Repository
from verifier.repository.history import History
from verifier.units import format_bytes

logger = logging.getLogger(__name__)

# A backup whose timestamp is ahead of the clock by more than this is "from the future".
CLOCK_SKEW_TOLERANCE = timedelta(minutes=5)


class BackupLike(Protocol):
    """What retention needs to know about a backup (`verifier.repository.backups.Backup` has it)."""

    @property
    def name(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def size_bytes(self) -> int: ...
    @property
    def paths(self) -> list[Path]: ...


@dataclass(frozen=True)
class Decision:
    """What the plan does with one backup, and why."""

    name: str
    created_at: datetime
    size_bytes: int
    paths: tuple[Path, ...]
    keep: bool
    reasons: tuple[str, ...]
    future: bool = False

    @property
    def action(self) -> str:
        """Returns "keep" or "delete"."""
        return "keep" if self.keep else "delete"


@dataclass(frozen=True)
class RetentionPlan:
    """Every backup of the repository with its decision, newest first."""

    now: datetime
    policy: RetentionConfig
    decisions: tuple[Decision, ...]
    timezone: tzinfo = UTC

    @property
    def to_delete(self) -> list[Decision]:
        """Returns the backups the plan deletes, newest first."""
        return [decision for decision in self.decisions if not decision.keep]

    @property
    def kept(self) -> list[Decision]:
        """Returns the backups the plan keeps, newest first."""
        return [decision for decision in self.decisions if decision.keep]

    @property
    def from_the_future(self) -> list[Decision]:
        """Returns the backups whose timestamp is ahead of the clock (kept, reported)."""
        return [decision for decision in self.decisions if decision.future]

    @property
    def freed_bytes(self) -> int:
        """Returns how many bytes deleting the plan's backups frees."""
        return sum(decision.size_bytes for decision in self.to_delete)

    def summary(self) -> str:
        """Returns one line: how many are kept and deleted under which policy."""
        return (
            f"retention {describe_policy(self.policy)}: keep {len(self.kept)}, "
            f"delete {len(self.to_delete)} ({format_bytes(self.freed_bytes)})"
        )

    def to_dict(self) -> dict[str, object]:
        """Returns a JSON-ready description of the plan."""
        return {
            "now": self.now.isoformat(),
            "policy": self.policy.model_dump(),
            "decisions": [
                {
                    "name": decision.name,
                    "created_at": decision.created_at.isoformat(),
                    "size_bytes": decision.size_bytes,
                    "action": decision.action,
                    "reasons": list(decision.reasons),
                    "future": decision.future,
                    "paths": [str(path) for path in decision.paths],
                }
                for decision in self.decisions
            ],
        }


@dataclass
class RetentionOutcome:
    """What `apply` did: the backups deleted, the bytes freed, the paths it refused or failed to delete."""

    deleted: list[str] = field(default_factory=list)
    freed_bytes: int = 0
    refused: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    dry_run: bool = False


def plan(
    backups: Iterable[BackupLike],
    policy: RetentionConfig,
    *,
    now: datetime,
    verified: Collection[str] = (),
    failed: Collection[str] = (),
    timezone: tzinfo = UTC,
) -> RetentionPlan:
    """Returns the retention plan for `backups` at time `now` (aware).

    `verified` names the backups whose verification passed, `failed` those whose verification failed
    (they do not count toward `keep_min`: a week of failed nights must not push out the good ones);
    `timezone` is where calendar days, weeks and months of the daily/weekly/monthly rules begin.
    Raises ValueError if `now` is naive.
    """
    if now.tzinfo is None:
        raise ValueError("retention needs an aware 'now'")
    ordered = sorted(backups, key=lambda backup: (backup.created_at, backup.name), reverse=True)
    reasons: dict[str, list[str]] = {backup.name: [] for backup in ordered}
    future = {backup.name for backup in ordered if backup.created_at > now + CLOCK_SKEW_TOLERANCE}
    for name in future:
        reasons[name].append("timestamp is in the future (clock skew?): kept, age unknown")
    believable = [backup for backup in ordered if backup.name not in future]

    for backup in believable:
        if now - backup.created_at < timedelta(days=policy.keep_days):
            reasons[backup.name].append(f"younger than {policy.keep_days} days")
    for backup in [backup for backup in believable if backup.name not in failed][: policy.keep_min]:
        reasons[backup.name].append(f"one of the newest {policy.keep_min} (keep_min)")
    newest_verified = next((backup for backup in believable if backup.name in verified), None)
    if newest_verified is not None:
        reasons[newest_verified.name].append("newest verified backup")
    for rule, count, period in (
        ("keep_daily", policy.keep_daily, _day),
        ("keep_weekly", policy.keep_weekly, _week),
        ("keep_monthly", policy.keep_monthly, _month),
    ):
        for backup in _newest_per_period(believable, count or 0, period, timezone):
            reasons[backup.name].append(f"{rule}: newest of {period(backup.created_at, timezone)}")

    decisions = tuple(
        Decision(
            name=backup.name,
            created_at=backup.created_at,
            size_bytes=backup.size_bytes,
            paths=tuple(backup.paths),
            keep=bool(reasons[backup.name]),
            reasons=tuple(reasons[backup.name]) or (f"older than {policy.keep_days} days",),
            future=backup.name in future,
        )
        for backup in ordered
    )
    return RetentionPlan(now=now, policy=policy, decisions=decisions, timezone=timezone)


def apply(retention_plan: RetentionPlan, repository_root: Path, *, dry_run: bool = False) -> RetentionOutcome:
    """Deletes the backups the plan marks for deletion (nothing when `dry_run`), manifest and dump together.

    Every path is re-checked first: it must lie directly inside `repository_root`, not be a symlink,
    and start with the backup's name; a backup with any path failing that is refused whole.
    Returns what was deleted, refused and failed; never raises for a single file (OSError is logged
    and recorded in `failed`), so one stuck file does not stop the rest.
    """
    outcome = RetentionOutcome(dry_run=dry_run)
    root = repository_root.resolve()
    for decision in retention_plan.to_delete:
        refusal = _refusal(decision, root)
        if refusal is not None:
            logger.error("retention: refusing to delete %s: %s", decision.name, refusal)
            outcome.refused.append(f"{decision.name}: {refusal}")
            continue
        if dry_run:
            logger.info("retention (dry run): would delete %s", decision.name)
            continue
        try:
            for path in decision.paths:
                _remove(path)
        except OSError as error:
            logger.error("retention: could not delete %s: %s", decision.name, error)
            outcome.failed.append(f"{decision.name}: {error.strerror or error}")
            continue
        logger.info("retention: deleted %s (%s)", decision.name, format_bytes(decision.size_bytes))
        outcome.deleted.append(decision.name)
        outcome.freed_bytes += decision.size_bytes
    return outcome


def describe_policy(policy: RetentionConfig) -> str:
    """Returns the policy in one short phrase, e.g. "14 days, keep_min 3, daily 7"."""
    parts = [f"{policy.keep_days} days", f"keep_min {policy.keep_min}"]
    for label, value in (("daily", policy.keep_daily), ("weekly", policy.keep_weekly)):
        if value:
            parts.append(f"{label} {value}")
    if policy.keep_monthly:
        parts.append(f"monthly {policy.keep_monthly}")
    return ", ".join(parts)


def _refusal(decision: Decision, root: Path) -> str | None:
    for path in decision.paths:
        if path.is_symlink():
            return f"{path} is a symlink"
        if path.parent.resolve() != root:
            return f"{path} is not directly inside the repository {root}"
        if not path.name.startswith(decision.name):
            return f"{path.name} is not a file of backup {decision.name}"
    return None


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _day(moment: datetime, timezone: tzinfo) -> str:
    return moment.astimezone(timezone).strftime("%Y-%m-%d")


def _week(moment: datetime, timezone: tzinfo) -> str:
    year, week, _ = moment.astimezone(timezone).isocalendar()
    return f"{year}-W{week:02d}"


def _month(moment: datetime, timezone: tzinfo) -> str:
    return moment.astimezone(timezone).strftime("%Y-%m")


def _newest_per_period(
    newest_first: Sequence[BackupLike], count: int, period: _Period, timezone: tzinfo
) -> list[BackupLike]:
    """Returns the newest backup of each of the `count` most recent periods that have a backup."""
    chosen: list[BackupLike] = []
    seen: set[str] = set()
    for backup in newest_first:
        if len(seen) >= count:
            break
        key = period(backup.created_at, timezone)
        if key not in seen:
            seen.add(key)
            chosen.append(backup)
    return chosen


class _Period(Protocol):
    def __call__(self, moment: datetime, timezone: tzinfo, /) -> str: ...


def plan_repository(
    repository: Repository,
    history: History,
    policy: RetentionConfig,
    *,
    now: datetime,
    timezone: tzinfo = UTC,
    also_verified: Collection[str] = (),
) -> RetentionPlan:
    """Returns the retention plan over the repository's backups (`apply` carries it out).

    The backups verified successfully are read from the history, plus `also_verified` (this run's
    backup, not recorded yet).
    """
    verifications = history.verifications()
    verified = {name for name, record in verifications.items() if record.verify_ok} | set(also_verified)
    failed = {name for name, record in verifications.items() if record.verify_ok is False} - verified
    return plan(repository.backups(), policy, now=now, verified=verified, failed=failed, timezone=timezone)
