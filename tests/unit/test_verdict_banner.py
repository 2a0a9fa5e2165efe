"""The report's verdict sentence names the checks that set its status (issue 22.6: "2 tables have changed
in production since" while the WARNING came from backup_count, which the banner never named)."""

from __future__ import annotations

import dataclasses

from tests.support.sample_report import sample_page, sample_report
from verifier.render.page import ReportPage
from verifier.report import CheckResult, Status


def test_the_verdict_names_the_check_behind_a_warning_beside_drift() -> None:
    verdict = sample_page().verdict()
    assert "1 table has changed in production since" in verdict
    assert "WARNING from size_trend: backup is 41% smaller than the previous one" in verdict, verdict


def test_the_verdict_names_backup_count_when_it_alone_warns() -> None:
    report = sample_report(problem=False)
    report = dataclasses.replace(
        report, results=[*report.results, CheckResult("backup_count", Status.WARNING, "2 backups, fewer than 3")]
    )
    verdict = ReportPage(report).verdict()
    assert "WARNING from backup_count: 2 backups, fewer than 3" in verdict, verdict
    assert "Some checks need attention" not in verdict


def test_an_ok_verdict_names_no_check() -> None:
    assert " from " not in ReportPage(sample_report(problem=False)).verdict()
