"""RTO and RPO: measured from this run and the repository, with their trend from the real run history."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from checks import recovery
from tests.support.check_context import NOW, backup, config, context
from verifier.check_registry import RECENT_RUNS, RECOVERY_TREND_RUNS
from verifier.pipeline.selftest import STATE_FILE, SelfTest, report_selftest, selftest_due
from verifier.report import CheckResult, Report, Status, Verification
from verifier.repository.history import History


def record_run(history: History, hours_ago: int, backup_name: str, *, ok: bool, rto: float) -> None:
    started = NOW - timedelta(hours=hours_ago)
    verification = Verification(backup_name, exact=True, restored=ok, sandbox="local", restore_seconds=rto)
    metrics: dict[str, int | float | str] = {"rto_seconds": rto, "rpo_seconds": 3600 * (hours_ago % 5)}
    history.record(
        Report(
            run_id=f"run-{hours_ago}", command="run", source="db", started_at=started, finished_at=started,
            backup_name=backup_name, verification=verification,
            results=[CheckResult("recovery", Status.OK, "x", metrics=metrics)],
        )
    )  # fmt: skip


def test_rpo_is_the_age_of_the_newest_verified_snapshot_and_rto_this_restore(tmp_path: Path) -> None:
    old, new = backup(tmp_path, 2, 1000, {"users": 1}), backup(tmp_path, 1, 1000, {"users": 1})
    history = History(tmp_path / "history.sqlite")
    record_run(history, 48, old.name, ok=True, rto=50.0)
    record_run(history, 24, new.name, ok=False, rto=70.0)  # the newer backup failed its verification
    ctx = replace(
        context(tmp_path, [old, new], verify_seconds=60.0),
        recent_runs=history.runs(limit=RECENT_RUNS),
        recovery_trend=history.check_metrics("recovery", RECOVERY_TREND_RUNS),
    )
    ctx = replace(ctx, verification=replace(ctx.verification, backup_name="not in the repository"))  # type: ignore[type-var]
    result = recovery.check(ctx)
    assert result is not None
    assert result.metrics == {"rto_seconds": 60.0, "rpo_seconds": 2 * 86400}
    assert result.status is Status.WARNING  # 48 h > checks.max_age_hours (36)
    assert f"snapshot of {old.name}" in result.summary
    assert (
        result.details[0] == "RTO over the last 3 runs: min 50.0 s, median 1m 00s, max 1m 10s; 50.0 s → 1m 10s → 1m 00s"
    )


def test_a_verified_backup_of_this_run_gives_a_fresh_rpo_and_no_trend_without_history(tmp_path: Path) -> None:
    fresh = backup(tmp_path, 0, 1000, {"users": 1})
    ctx = context(tmp_path, [fresh], verify_seconds=5.0)
    ctx = replace(ctx, verification=replace(ctx.verification, backup_name=fresh.name))  # type: ignore[type-var]
    result = recovery.check(ctx)
    assert result is not None and result.status is Status.OK
    assert result.metrics == {"rto_seconds": 5.0, "rpo_seconds": 0} and result.details == ()


def test_no_verified_backup_is_a_warning_and_a_single_file_says_nothing(tmp_path: Path) -> None:
    unverified = backup(tmp_path, 0, 1000, {"users": 1})
    result = recovery.check(context(tmp_path, [unverified]))
    assert result is not None and result.status is Status.WARNING and "RPO unknown" in result.summary
    assert "rpo_seconds" not in result.metrics
    assert recovery.check(context(tmp_path, [unverified], single_file=True)) is None


def test_weekly_selftest_is_due_after_seven_days_and_never_when_off(tmp_path: Path) -> None:
    weekly = config(f"repository: {{path: {tmp_path}}}\nschedule: {{selftest: weekly}}\n")
    assert selftest_due(weekly, NOW)  # never ran
    report_selftest(weekly, SelfTest("b", error="no backup", finished_at=NOW - timedelta(days=6)))
    assert (tmp_path / "state" / STATE_FILE).exists()
    assert not selftest_due(weekly, NOW)
    assert selftest_due(weekly, NOW + timedelta(days=1))
    assert not selftest_due(config(f"repository: {{path: {tmp_path}}}\n"), NOW + timedelta(days=30))
