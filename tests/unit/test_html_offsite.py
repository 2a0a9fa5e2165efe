"""The report's off-site section: per target the newest copy, its age, the last upload and proof status and
the count, from the very results (and metrics) the off-site step produces for Zabbix; escaped; absent when
no copy was made or checked."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from tests.support.html_rows import table_rows, visible_text
from tests.support.sample_report import STARTED, sample_page
from verifier.config_offsite import OffsiteTargetConfig
from verifier.offsite.index import Copy, OffsiteFile, OffsiteIndex
from verifier.offsite.storage import RsyncTarget
from verifier.offsite.upload import TargetOutcome, target_result
from verifier.render.html import render_html
from verifier.render.page import ReportPage
from verifier.render.text import render_text
from verifier.report import CheckResult, Status

HOSTILE_TARGET = "<b>vault</b>"


def copy_of(name: str, age: timedelta) -> Copy:
    entry = OffsiteFile(
        key=f"{name}.dump.gpg", local_name=f"{name}.dump", plaintext_size=10, plaintext_sha256="a" * 64,
        size=12, sha256="b" * 64,
    )  # fmt: skip
    created = STARTED - age
    index = OffsiteIndex(
        backup=name, created_at=created, format="custom", dump_key=entry.key, files=[entry],
        uploaded_at=created + timedelta(minutes=3), proven_at=created + timedelta(minutes=3),
    )  # fmt: skip
    return Copy(index, ())


def offsite_page() -> ReportPage:
    """Last night's page with two targets: one holding 3 copies (the newest uploaded tonight), one down."""
    vault = RsyncTarget(OffsiteTargetConfig(url="rsync://backup@vault.example.org/srv/", name=HOSTILE_TARGET))
    s3 = RsyncTarget(OffsiteTargetConfig(url="rsync://backup@s3.example.org/srv/", name="s3"))
    copies = [copy_of(f"eatfit24_night{night}", timedelta(days=night)) for night in (2, 1, 0)]
    healthy = TargetOutcome(vault, uploaded=["eatfit24_night0"], copies=copies, listed=True)
    down = TargetOutcome(s3, error="off-site target s3: list failed: Connection refused")
    now = STARTED + timedelta(hours=2, minutes=10)
    page = sample_page(problem=False)
    report = dataclasses.replace(
        page.report, results=[*page.report.results, target_result(healthy, now), target_result(down, now)]
    )
    return dataclasses.replace(page, report=report)


def test_html_shows_each_target_with_newest_copy_age_upload_proof_and_count() -> None:
    html = render_html(offsite_page())
    vault, s3 = table_rows(html, "offsite")
    assert vault.startswith(HOSTILE_TARGET + " OK eatfit24_night0 2h 10m")
    assert "2026-11-26 00:35 UTC (uploaded)" in vault and "read back intact" in vault and vault.endswith(" 3")
    assert s3.startswith("s3 WARNING — ") and "Connection refused" in s3 and "(FAILED)" in s3
    assert "&lt;b&gt;vault&lt;/b&gt;" in html and HOSTILE_TARGET not in html, "a target name is escaped"


def test_text_report_has_the_off_site_section() -> None:
    text = render_text(offsite_page())
    section = text.split("Off-site copies:\n", 1)[1]
    assert (
        f"  {HOSTILE_TARGET}: OK, newest eatfit24_night0 (2h 10m old), 3 copies, "
        "last upload 2026-11-26 00:35 UTC (uploaded), proof read back intact"
    ) in section
    assert "  s3: WARNING, newest — (— old), — copies, last upload — (FAILED), proof read back intact" in section
    assert "    off-site target s3: list failed: Connection refused" in section


def test_a_proof_failure_from_check_offsite_is_shown_failed() -> None:
    page = sample_page(problem=False)
    damaged = CheckResult(
        "offsite s3", Status.CRITICAL, "newest copy x on s3 is damaged: x.dump.gpg: sha256 differs",
        metrics={"target": "s3", "proof_status": 0, "count": 4, "age_seconds": 3600, "newest": "x"},
    )  # fmt: skip
    page = dataclasses.replace(page, report=dataclasses.replace(page.report, results=[damaged]))
    html = render_html(page)
    assert visible_text(html.split('<table id="offsite">', 1)[1].split("<tbody>")[0]) == (
        "Target Status Newest copy Age Last upload Proof Copies"
    )
    [row] = table_rows(html, "offsite")
    assert row.startswith("s3 CRITICAL x")
    assert "x.dump.gpg: sha256 differs" in row and "1h 0m" in row and "FAILED 4" in row


def test_no_off_site_section_without_off_site_copies() -> None:
    page = sample_page()
    assert 'id="offsite"' not in render_html(page)
    assert "Off-site copies" not in render_text(page)
