"""The verdict is made of the proof checks the user has enabled (issue 20, point 2): a check named in
`checks.disabled` neither fails the verdict (backup_age, history, `list`, Zabbix) nor hides a real
failure of another check."""

from __future__ import annotations

from pathlib import Path

from tests.support import check_context
from verifier.check_registry import CheckContext, run_checks
from verifier.config import Config
from verifier.findings import Findings
from verifier.report import Integrity, Report, Status, TableComparison, Verification, verdict_failures
from verifier.repository.history import History

SCHEMA_DIFFERENCE = "constraint public.subscriptions.subscriptions_state_check: definition differs"


def restored(**fields: object) -> Verification:
    """Returns a verification of a restored backup with a manifest, with `fields` set."""
    verification = Verification("eatfit24_2026-11-26_00-30-00Z", exact=True, restored=True, sandbox="local")
    for name, value in fields.items():
        setattr(verification, name, value)
    return verification


def mismatched_table() -> TableComparison:
    return TableComparison("public", "orders", 10, 9, None, Status.CRITICAL)


def test_a_disabled_check_does_not_fail_the_verdict() -> None:
    verification = restored(findings={"schema": Findings([SCHEMA_DIFFERENCE])})
    assert verdict_failures(verification, None) == ["schema"]
    assert verdict_failures(verification, None, ["schema"]) == []


def test_a_disabled_check_does_not_hide_another_failure() -> None:
    verification = restored(findings={"schema": Findings([SCHEMA_DIFFERENCE])}, tables=[mismatched_table()])
    assert verdict_failures(verification, None, ["schema"]) == ["row_counts"]
    damaged = Integrity("b", checksummed=True, problems=["sha256 differs"], seconds=0.1)
    assert verdict_failures(restored(), damaged, ["schema", "contents"]) == ["archive"]
    assert verdict_failures(restored(), damaged, ["archive"]) == []


def test_each_proof_check_can_be_disabled_alone() -> None:
    verification = restored(
        tables=[mismatched_table()],
        findings={
            "schema": Findings([SCHEMA_DIFFERENCE]),
            "contents": Findings(["public.orders"]),
            "sequences": Findings(["public.orders_id_seq"]),
            "large_objects": Findings(["16401 missing"]),
            "materialized_views": Findings([]),
            "constraints": Findings(["fk broken"]),
        },
    )
    failing = ["row_counts", "schema", "contents", "sequences", "large_objects", "constraints"]
    assert sorted(verdict_failures(verification, None)) == sorted(failing)
    for name in failing:
        assert name not in verdict_failures(verification, None, [name])
        assert len(verdict_failures(verification, None, [name])) == len(failing) - 1


def test_nothing_restored_fails_whatever_is_disabled() -> None:
    everything = ["restore", "archive", "row_counts", "schema", "contents", "sequences"]
    assert verdict_failures(None, None, everything) == ["restore"]
    assert verdict_failures(restored(restored=False, error="pg_restore failed"), None, everything) == ["restore"]


def test_report_history_and_checks_follow_checks_disabled(tmp_path: Path) -> None:
    """The reported case: `checks: {disabled: [schema]}`, every shown check OK, yet backup_age said
    "no backup has ever been verified" (exit 2) and the history (so `list`) said FAILED."""
    config = check_context.config("checks: {disabled: [schema], min_count: 1}\n")
    backup = check_context.backup(tmp_path, 0, 1000, {"orders": 10})
    verification = restored(backup_name=backup.name, findings={"schema": Findings([SCHEMA_DIFFERENCE])})
    results = run_checks(_context(config, [backup], verification))
    assert [result.name for result in results if result.status is not Status.OK] == [], [
        (result.name, result.summary) for result in results
    ]
    report = Report(
        run_id="r1",
        command="run",
        source="eatfit24",
        started_at=check_context.NOW,
        finished_at=check_context.NOW,
        results=results,
        verification=verification,
        backup_name=backup.name,
        disabled_checks=list(config.checks.disabled),
    )
    assert report.verification_passed and report.exit_code == 0
    history = History(tmp_path / "history.sqlite")
    history.record(report)
    assert history.verified_backups() == {backup.name}
    assert history.last_successful_verification() == check_context.NOW


def test_with_the_check_enabled_the_same_run_fails(tmp_path: Path) -> None:
    backup = check_context.backup(tmp_path, 0, 1000, {"orders": 10})
    verification = restored(backup_name=backup.name, findings={"schema": Findings([SCHEMA_DIFFERENCE])})
    results = {result.name: result for result in run_checks(_context(check_context.config(), [backup], verification))}
    assert results["schema"].status is Status.CRITICAL
    assert results["backup_age"].status is Status.CRITICAL


def _context(config: Config, backups: list[check_context.Backup], verification: Verification) -> CheckContext:
    return CheckContext(
        config=config,
        now=check_context.NOW,
        command="run",
        backups=backups,
        single_file=False,
        quick=False,
        dump=None,
        integrity=None,
        verification=verification,
    )
