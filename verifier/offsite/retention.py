"""Off-site retention: the same plan as the repository's (`verifier.repository.retention.plan`: keep_days,
keep_min, daily/weekly/monthly; never the newest copy, never below keep_min), over the copies a
target holds, under `offsite_retention`. Every copy on a target was verified before it left, so all
count as verified."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, tzinfo

from verifier.config import RetentionConfig
from verifier.offsite.index import Copy, delete_copy
from verifier.offsite.storage import Target, TargetError
from verifier.repository import retention

logger = logging.getLogger(__name__)


def plan_copies(
    copies: Sequence[Copy], policy: RetentionConfig, *, now: datetime, timezone: tzinfo = UTC
) -> retention.RetentionPlan:
    """Returns the retention plan for a target's copies. Raises ValueError if `now` is naive."""
    return retention.plan(copies, policy, now=now, verified={copy.name for copy in copies}, timezone=timezone)


def apply_plan(
    target: Target, copies: Sequence[Copy], retention_plan: retention.RetentionPlan, *, dry_run: bool = False
) -> tuple[list[str], list[str]]:
    """Deletes the copies the plan marks (nothing when `dry_run`). Returns the names deleted and one
    line per copy that could not be; never raises for a single copy."""
    by_name = {copy.name: copy for copy in copies}
    deleted: list[str] = []
    failures: list[str] = []
    for decision in retention_plan.to_delete:
        if dry_run:
            continue
        try:
            delete_copy(target, by_name[decision.name])
        except TargetError as error:
            logger.error("%s", error)
            failures.append(str(error))
            continue
        logger.info("off-site target %s: deleted %s", target.name, decision.name)
        deleted.append(decision.name)
    return deleted, failures
