"""The report is assembled once, from the steps' outcomes (`pipeline.outcomes.build_report`), and every
target shows the same results: the checks', then the deliveries made before the target was rendered.

Plain data only: the outcomes and reports are the real models, built by hand.
"""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import UTC, datetime

from verifier.pipeline.outcomes import Checked, Crashed, Dumped, Outcomes, Proven, RunStart, build_report
from verifier.render.console import make_console, render
from verifier.render.html import render_html
from verifier.render.page import ReportPage
from verifier.render.text import render_text
from verifier.report import CheckResult, DumpOutcome, Integrity, Report, Status, Verification, report_from_dict

STARTED = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)
TIMED_OUT = "the run took longer than run_timeout (1 h) and was ended"


def _outcomes(**steps: object) -> Outcomes:
    return Outcomes(RunStart("20261207T030000Z-abcd", "check", "app", STARTED), **steps)  # type: ignore[arg-type]


def _verification(error: str | None = None) -> Verification:
    return Verification("app_2026-12-07", exact=True, restored=True, sandbox="local", restore_seconds=2.0, error=error)


def test_the_deadline_blames_the_verification_it_ended_without_rewriting_the_step_outcome() -> None:
    proven = Proven(_verification(error="sandbox database error: terminating connection"))
    outcomes = _outcomes(backup=("app_2026-12-07", None), proven=proven, timed_out=TIMED_OUT)
    report = build_report(outcomes)
    assert report.verification is not None and report.verification.error == TIMED_OUT
    assert proven.verification.error == "sandbox database error: terminating connection"
    assert report.timings == {"restore": 2.0, "compare": 0.0}


def test_the_deadline_blames_a_failed_dump_when_nothing_was_verified() -> None:
    dumped = Dumped(DumpOutcome(ok=False, duration_seconds=3.5, error="pg_dump: connection lost"))
    report = build_report(_outcomes(dumped=dumped, timed_out=TIMED_OUT))
    assert report.dump is not None and report.dump.error == TIMED_OUT and not report.dump.ok
    assert dumped.outcome.error == "pg_dump: connection lost"
    assert report.timings == {"dump": 3.5}


def test_a_crash_names_the_run_could_not_run_and_fails_the_verification_it_cut_short() -> None:
    crashed = Crashed("unexpected error in step restore: KeyError: 'x'", "Traceback …", False, True, "local")
    integrity = Integrity("app_2026-12-07", checksummed=True, problems=[], seconds=0.25)
    report = build_report(
        _outcomes(
            backup=("app_2026-12-07", None),
            checked=Checked(integrity),
            history_problem="the run history is unreadable",
            crashed=crashed,
        )
    )
    assert report.could_not_run == crashed.line and report.exit_code == 3
    assert report.traceback == "Traceback …"
    assert report.verification is not None and report.verification.error == crashed.line
    assert not report.verification_passed
    assert report.timings == {"integrity": 0.25}  # no timing for a step that did not end


def test_the_later_step_could_not_run_line_wins() -> None:
    report = build_report(
        _outcomes(
            history_problem="the run history is unreadable",
            dumped=Dumped(DumpOutcome(ok=False, duration_seconds=0.1, error="no pg_dump 16"), "no pg_dump 16"),
        )
    )
    assert report.could_not_run == "no pg_dump 16"


def _delivered_report() -> Report:
    results = [
        CheckResult("backup_age", Status.OK, "newest backup is 2 h old"),
        CheckResult("restore", Status.OK, "restored and matched"),
    ]
    deliveries = [
        CheckResult("zabbix", Status.OK, "27 values sent"),
        CheckResult("email", Status.WARNING, "not sent: connection refused"),
    ]
    outcomes = _outcomes(backup=("app_2026-12-07", None), proven=Proven(_verification()))
    return build_report(outcomes, results=results, deliveries=deliveries, finished_at=STARTED)


def test_every_target_shows_the_same_results_then_the_deliveries() -> None:
    report = _delivered_report()
    names = ["backup_age", "restore", "zabbix", "email"]
    assert [result.name for result in report.every_result] == names
    assert report.status is Status.WARNING and report.exit_code == 1  # a failed e-mail counts, as it always did
    stored = report.to_dict()
    assert [result["name"] for result in stored["results"]] == names  # the JSON file keeps its one list
    assert "deliveries" not in stored
    assert [result.name for result in report_from_dict(stored).every_result] == names
    assert report_from_dict(stored).exit_code == report.exit_code
    buffer = io.StringIO()
    render(report, make_console(buffer))
    text = render_text(ReportPage(report=report))
    html = render_html(ReportPage(report=report))
    for summary in ("newest backup is 2 h old", "27 values sent", "not sent: connection refused"):
        assert summary in buffer.getvalue() and summary in text and summary in html


def test_a_target_rendered_before_a_delivery_shows_the_results_without_it() -> None:
    report = _delivered_report()
    before_zabbix = replace(report, deliveries=[])
    assert before_zabbix.results == report.results
    assert before_zabbix.status is Status.OK and before_zabbix.exit_code == 0
