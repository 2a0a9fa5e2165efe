"""retention on plain data: what `run` and `prune` deleted and kept, and what they refused or could not
delete. Plans made by `retention.plan` over real files are in test_retention.py; here a plan is written
out decision by decision."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from pg_backup_verifier_checks.retention import check

from tests.support.check_context import NOW, context_with
from verifier.config import RetentionConfig
from verifier.report import Status
from verifier.repository.retention import Decision, RetentionOutcome, RetentionPlan

SKIPPED = "retention skipped: the run history is unreadable, so the newest verified backup is unknown"


def decision(days_ago: int, *, keep: bool, future: bool = False) -> Decision:
    created = NOW - timedelta(days=days_ago)
    name = f"eatfit24_{created:%Y-%m-%d_%H-%M-%SZ}"
    return Decision(name, created, 1000, (Path(f"/backups/{name}.dump"),), keep, ("a reason",), future)


PLAN = RetentionPlan(NOW, RetentionConfig(), (decision(0, keep=True), decision(1, keep=True), decision(20, keep=False)))


def test_what_retention_deleted_and_kept_is_ok() -> None:
    outcome = RetentionOutcome(deleted=["eatfit24_2026-11-06_00-40-00Z"], freed_bytes=1000)
    result = check(context_with(retention=(PLAN, outcome)))
    assert result is not None and result.status is Status.OK
    assert result.summary == "deleted 1 backup, kept 2"
    assert result.details == ()
    assert result.metrics == {"deleted": 1, "kept": 2, "freed_bytes": 1000, "future": 0}


def test_a_dry_run_says_what_it_would_delete() -> None:
    result = check(context_with(retention=(PLAN, RetentionOutcome(dry_run=True))))
    assert result is not None and result.status is Status.OK
    assert result.summary == "would delete 1 backup, kept 2"
    assert result.metrics["deleted"] == 1


def test_deletions_refused_or_failed_are_a_warning_naming_each() -> None:
    plan = RetentionPlan(NOW, RetentionConfig(), (*PLAN.decisions, decision(21, keep=False)))
    outcome = RetentionOutcome(
        refused=["eatfit24_2026-11-06_00-40-00Z: /backups/eatfit24_2026-11-06_00-40-00Z.dump is a symlink"],
        failed=["eatfit24_2026-11-05_00-40-00Z: Permission denied"],
    )
    result = check(context_with(retention=(plan, outcome)))
    assert result is not None and result.status is Status.WARNING
    assert result.summary == "deleted 0 backups, kept 2; 2 could not be deleted"
    assert result.details == (
        "refused: eatfit24_2026-11-06_00-40-00Z: /backups/eatfit24_2026-11-06_00-40-00Z.dump is a symlink",
        "failed: eatfit24_2026-11-05_00-40-00Z: Permission denied",
    )


def test_a_backup_dated_in_the_future_is_kept_and_a_warning() -> None:
    plan = RetentionPlan(NOW, RetentionConfig(), (decision(-3, keep=True, future=True), decision(0, keep=True)))
    result = check(context_with(retention=(plan, RetentionOutcome())))
    assert result is not None and result.status is Status.WARNING
    assert result.summary == "deleted 0 backups, kept 2; 1 dated in the future (check the clock)"
    assert result.details == ("kept from the future: eatfit24_2026-11-29_00-40-00Z",)
    assert result.metrics == {"deleted": 0, "kept": 2, "freed_bytes": 0, "future": 1}


def test_a_skipped_retention_is_a_warning_with_its_reason() -> None:
    result = check(context_with(retention_skipped=SKIPPED))
    assert result is not None and result.status is Status.WARNING
    assert result.summary == SKIPPED
    assert result.metrics == {}


def test_a_command_that_applies_no_retention_says_nothing() -> None:
    assert check(context_with()) is None
