"""Step 5 of `run`: retention, applied after the night's verification is in the history (so the
backup this run verified is protected like every verified one), and never after a crash."""

from __future__ import annotations

import logging
from datetime import datetime

from verifier.config import Config
from verifier.render.retention import plan_table
from verifier.repository import retention
from verifier.repository.backups import Repository
from verifier.repository.history import History

logger = logging.getLogger(__name__)

# retention's plan and what was done (None when skipped), and its one-line summary
Pruned = tuple[tuple[retention.RetentionPlan, retention.RetentionOutcome] | None, str]


def apply_retention(
    config: Config, repository: Repository, history: History, *, verified_now: str | None, now: datetime
) -> Pruned:
    """Step 5: applies retention as of `now` (the run's clock), the backup this run verified
    (`verified_now`, None: none) protected like every verified one; returns the plan and what was done
    (None when skipped) and the plan's one-line summary (or why it was skipped)."""
    if history.unreadable:  # which backups were verified is unknown: delete nothing
        return None, "retention skipped: the run history is unreadable, so the newest verified backup is unknown"
    plan = retention.plan_repository(
        repository,
        history,
        config.retention,
        now=now,
        timezone=config.schedule.display_zone,
        also_verified=[verified_now] if verified_now else [],
    )
    for line in plan_table(plan).splitlines():
        logger.info("retention plan: %s", line)
    return (plan, retention.apply(plan, repository.path)), plan.summary()
