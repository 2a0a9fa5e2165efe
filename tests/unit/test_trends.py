"""Trend checks over a real SQLite history and real manifests: size drop, slow steps, vanished rows."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from pg_backup_verifier_checks import duration_trend, row_trend, size_trend

from tests.support.check_context import NOW, backup, config, context
from verifier.check_registry import load_checks
from verifier.report import DumpOutcome, Report, Status, Verification
from verifier.repository.history import History


def record_runs(history: History, durations: list[tuple[float, float]]) -> None:
    """Stores past nightly runs (oldest first) with these (dump, restore) durations."""
    for age, (dump_seconds, verify_seconds) in enumerate(reversed(durations), start=1):
        started = NOW - timedelta(days=age)
        history.record(
            Report(
                run_id=f"run-{age}",
                command="run",
                source="eatfit24",
                started_at=started,
                finished_at=started + timedelta(minutes=3),
                dump=DumpOutcome(ok=True, duration_seconds=dump_seconds),
                verification=Verification(
                    "b", exact=True, restored=True, sandbox="local", restore_seconds=verify_seconds
                ),
            )
        )


def test_trend_checks_are_registered_entry_points() -> None:
    names = [name for name, _ in load_checks()]
    assert {"size_trend", "duration_trend", "row_trend"} <= set(names)


def test_size_drop_beyond_the_limit_warns(tmp_path: Path) -> None:
    backups = [backup(tmp_path, 1, 80_000_000, {}), backup(tmp_path, 0, 30_000_000, {})]
    result = size_trend.check(context(tmp_path, backups))
    assert result is not None and result.status is Status.WARNING
    assert result.summary == "backup is 62% smaller than the previous one (limit 50%)"
    assert "was a table truncated or dropped?" in result.details[0]
    assert result.metrics["change_percent"] == -62.5


def test_size_growth_and_small_drops_are_ok(tmp_path: Path) -> None:
    backups = [backup(tmp_path, 1, 80_000_000, {}), backup(tmp_path, 0, 72_000_000, {})]
    result = size_trend.check(context(tmp_path, backups))
    assert result is not None and result.status is Status.OK
    assert result.summary.startswith("size -10.0% vs the previous backup")
    stricter = size_trend.check(context(tmp_path, backups, cfg=config("checks: {trends: {size_drop_percent: 5}}")))
    assert stricter is not None and stricter.status is Status.WARNING


def test_size_is_not_compared_across_formats_or_without_a_previous_backup(tmp_path: Path) -> None:
    mixed = [backup(tmp_path, 1, 80_000_000, None, fmt="plain"), backup(tmp_path, 0, 10_000_000, {})]
    result = size_trend.check(context(tmp_path, mixed))
    assert result is not None and result.status is Status.OK and "not compared" in result.summary
    assert size_trend.check(context(tmp_path, mixed[1:])) is None
    assert size_trend.check(context(tmp_path, mixed, single_file=True)) is None


def test_slow_dump_warns_against_the_median_of_the_last_seven(tmp_path: Path) -> None:
    # ten nights; the three oldest were slow and fall outside the window of seven
    history = History(tmp_path / "history.sqlite")
    record_runs(history, [(900, 60)] * 3 + [(100, 60), (110, 65), (90, 70), (100, 60), (105, 66), (95, 64), (100, 61)])
    ctx = context(tmp_path, [], dump_seconds=400.0, verify_seconds=70.0)
    result = duration_trend.check(ctx)
    assert result is not None and result.status is Status.WARNING
    assert result.summary.startswith("dump took 6m 40s, 4.0x the median 1m 40s of the last 7 runs")
    assert "restore" not in result.summary
    assert result.metrics["dump_median_seconds"] == 100.0


def test_normal_durations_are_ok_and_tiny_ones_never_warn(tmp_path: Path) -> None:
    record_runs(History(tmp_path / "history.sqlite"), [(100, 1.0)] * 5)
    ctx = context(tmp_path, [], dump_seconds=110.0, verify_seconds=5.0)
    result = duration_trend.check(ctx)
    assert result is not None and result.status is Status.OK  # restore is 5x but only 5 s
    assert "restore 5.0 s (5.0x the median 1.0 s)" in result.summary


def test_duration_needs_three_comparable_runs(tmp_path: Path) -> None:
    record_runs(History(tmp_path / "history.sqlite"), [(10, 10)] * 2)
    ctx = context(tmp_path, [], dump_seconds=1000.0)
    assert duration_trend.check(ctx) is None
    assert duration_trend.check(context(tmp_path, [])) is None


def test_row_drop_names_the_tables(tmp_path: Path) -> None:
    before = {"meals": 1_200_000, "users": 18_000, "coupons": 500, "tiny": 8, "audit": 4000}
    after = {"meals": 1_200_500, "users": 9_000, "coupons": 0, "tiny": 0}
    backups = [backup(tmp_path, 2, 1, before), backup(tmp_path, 1, 1, None), backup(tmp_path, 0, 1, after)]
    result = row_trend.check(context(tmp_path, backups))
    assert result is not None and result.status is Status.WARNING
    assert result.summary.startswith("3 table(s) lost more than 20% of their rows since eatfit24_2026-11-24")
    assert "public.audit, public.coupons, public.users" in result.summary
    assert "public.users: 18,000 → 9,000 rows (-50%)" in result.details
    assert "public.audit: gone (4,000 rows in eatfit24_2026-11-24_00-40-00Z)" in result.details
    assert not any("tiny" in line or "meals" in line for line in result.details)


def test_row_counts_that_grow_are_ok(tmp_path: Path) -> None:
    backups = [backup(tmp_path, 1, 1, {"meals": 100}), backup(tmp_path, 0, 1, {"meals": 150, "new": 3})]
    result = row_trend.check(context(tmp_path, backups))
    assert result is not None and result.status is Status.OK
    assert row_trend.check(context(tmp_path, backups[1:])) is None
