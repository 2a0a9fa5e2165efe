"""The "Physical backup" section of a physical proof's text and HTML report, rendered from a report built
as `check --physical` builds it (the `physical` check's own result line): the backup and its type, the
instant, RTO, RPO, the WAL window, amcheck, the collations and the verdict; what a failed proof shows;
escaped in HTML; absent from a logical report; and a stored report read back shows the same."""

from __future__ import annotations

import dataclasses
import json

from tests.support.html_rows import visible_text
from tests.support.physical_report import LABEL, RESTORED, VERDICT, physical_page
from tests.support.sample_report import sample_page
from verifier.findings import Findings
from verifier.render.html import render_html
from verifier.render.text import render_text
from verifier.report import CheckResult, Status, report_from_dict


def section(text: str) -> list[str]:
    """Returns the text report's "Physical backup:" section, its lines up to the next blank one."""
    return text.split("\nPhysical backup:\n", 1)[1].split("\n\n", 1)[0].splitlines()


def test_the_text_report_has_the_physical_section() -> None:
    assert section(render_text(physical_page())) == [
        f"  OK: {VERDICT}",
        f"  Backup:            {LABEL} (incremental)",
        "  Instant:           LSN 0/41203C0 (exact)",
        "  Restore (RTO):     12.3 s, to a promoted copy",
        "  Archive lag (RPO): 41.0 s since the newest WAL segment was archived",
        "  WAL window:        2026-12-01 02:12 UTC … 2026-12-07 13:29 UTC (6d 11h)",
        "  WAL segments:      000000010000000000000001 … 000000010000000000000041",
        "  amcheck:           full: 12 relations (84 pages) in 420 ms, no findings",
        "  Collations:        14 versions compared, none differs",
    ]


def test_the_html_report_has_the_same_section() -> None:
    html = render_html(physical_page())
    assert "<h2>Physical backup</h2>" in html
    verdict = html.split('<p id="physical-verdict">', 1)[1].split("</p>", 1)[0]
    assert visible_text(verdict) == f"OK {VERDICT}"
    facts = visible_text(html.split('<dl class="facts" id="physical">', 1)[1].split("</dl>", 1)[0])
    assert facts.startswith(f"Backup {LABEL} (incremental) Instant LSN 0/41203C0 (exact) Restore (RTO) 12.3 s")
    assert "Archive lag (RPO) 41.0 s since" in facts and "WAL window 2026-12-01 02:12 UTC … 2026-12-07 13:29" in facts
    assert facts.endswith("amcheck full: 12 relations (84 pages) in 420 ms, no findings "
                          "Collations 14 versions compared, none differs")  # fmt: skip


def test_a_restore_point_says_why_it_is_not_exact_and_latest_says_so() -> None:
    instant = "restore point pgbv_x at LSN 0/5000090 (not exact: wal_level = replica has no snapshot at an LSN)"
    lines = section(render_text(physical_page(exact=False, instant=instant)))
    assert f"  Instant:           {instant}" in lines
    assert lines[0].endswith(": every table equal to production's snapshot beside it")
    latest = dataclasses.replace(RESTORED, target="latest")
    lines = section(render_text(physical_page(exact=False, instant="LSN 0/6000000 (not exact: …)", physical=latest)))
    assert "  Instant:           the end of the archive, LSN 0/6000000 (not exact: …)" in lines


def test_findings_are_named_and_the_verdict_says_what_failed() -> None:
    finding = 'btree index "postgres.public.still_pkey": ERROR: item order invariant violated for index "<i>"'
    page = physical_page(
        findings={
            "amcheck": Findings(problems=[finding], compared=1, measures={"mode": "sample", "seconds": 2.5}),
            "collations": Findings(problems=['collation "de_DE" 2.36 here, 2.31 on production'], compared=3),
        }
    )
    lines = section(render_text(page))
    assert lines[0] == f"  CRITICAL: restored backup {LABEL} to LSN 0/41203C0 (exact): not as production held it " \
                       "(amcheck, collations)"  # fmt: skip
    assert "  amcheck:           sample: in 2.5 s, 1 finding" in lines
    assert "  Collations:        3 versions compared, 1 differs" in lines
    assert lines[-2:] == [f"    - {finding}", '    - collation "de_DE" 2.36 here, 2.31 on production']
    html = render_html(page)
    assert "&lt;i&gt;" in html and '"<i>"' not in html, "a finding is escaped"
    problems = html.split('<ul id="physical-problems">', 1)[1].split("</ul>", 1)[0]
    assert visible_text(problems).startswith('btree index "postgres.public.still_pkey": ERROR')


def test_a_proof_that_restored_nothing_says_why_and_what_it_knows() -> None:
    error = "WAL segment 000000010000000000000003 is missing from the archive: recovery stopped at 0/2FFFFF8"
    lines = section(render_text(physical_page(restored=False, error=error, physical=None, findings={})))
    assert lines == [
        f"  CRITICAL: not proven: {error}",
        "  Instant:           LSN 0/41203C0 (exact)",
        "  Archive lag (RPO): 41.0 s since the newest WAL segment was archived",
        "  WAL window:        6d 11h",
        "  amcheck:           not reached",
        "  Collations:        not reached",
    ]


def test_a_backup_that_failed_to_restore_is_named() -> None:
    error = f"pgBackRest could not restore backup {LABEL}: [026] error restoring 'base/5/16384': checksum"
    lines = section(render_text(physical_page(restored=False, error=error, findings={})))
    assert lines[:3] == [
        f"  CRITICAL: not proven: {error}",
        f"  Backup:            {LABEL} (incremental)",
        "  Instant:           LSN 0/41203C0 (exact)",
    ]
    assert not any(line.startswith("  Restore (RTO)") for line in lines)


def test_amcheck_off_says_so() -> None:
    lines = section(render_text(physical_page(findings={"collations": Findings(compared=2)})))
    assert "  amcheck:           off (physical.amcheck)" in lines


def test_a_logical_report_has_no_physical_section() -> None:
    page = sample_page(problem=False)
    assert "Physical backup" not in render_text(page) and "Physical backup" not in render_html(page)


def test_a_stored_report_read_back_shows_the_same_section() -> None:
    page = physical_page()
    stored = report_from_dict(json.loads(json.dumps(page.report.to_dict())))
    assert stored.verification is not None and stored.verification.physical == RESTORED
    assert render_text(dataclasses.replace(page, report=stored)) == render_text(page)


def test_a_proof_that_could_not_run_is_unknown_not_critical() -> None:
    page = physical_page(restored=False, physical=None, findings={}, instant=None, error="pgbackrest: not found")
    report = dataclasses.replace(page.report, results=[CheckResult("restore", Status.UNKNOWN, "x")],
                                 could_not_run="pgbackrest: not found")  # fmt: skip
    lines = section(render_text(dataclasses.replace(page, report=report)))
    assert lines[0] == "  UNKNOWN: not proven: pgbackrest: not found"
    assert "  Collations:        not reached" in lines
