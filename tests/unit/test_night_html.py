"""The night's HTML page draws each database's section with the one report's own body: every section
the single report has (the physical proof's too) is there, its ids prefixed by the database's anchor."""

from __future__ import annotations

from datetime import timedelta

from tests.support.html_rows import visible_text
from tests.support.physical_report import TAKEN, VERDICT, physical_page
from tests.support.sample_report import sample_page
from verifier.render.night_html import NightPage, NightSection, render_night_html
from verifier.report import Status


def night_of(**pages: object) -> NightPage:
    sections = [
        NightSection(name=name, status=Status.OK, verdict="verified, OK", line="", newest=f"{name}-backup",
                     newest_at=TAKEN, age="1h 00m", backups=3, page=page)  # type: ignore[arg-type]
        for name, page in pages.items()
    ]  # fmt: skip
    return NightPage(
        run_id="20261207T020000Z-ab12", started_at=TAKEN, finished_at=TAKEN + timedelta(minutes=5),
        status=Status.OK, exit_code=0, sections=sections, summary=f"{len(sections)} databases; exit 0",
    )  # fmt: skip


def test_each_database_has_its_section_and_the_summary_a_row() -> None:
    html = render_night_html(night_of(app=sample_page(), billing=sample_page()))
    summary = visible_text(html.split("<table", 1)[1].split("</table>", 1)[0])
    assert "app" in summary and "billing" in summary
    assert 'id="db-app"' in html and 'id="db-billing"' in html


def test_a_section_of_a_physical_proof_shows_its_physical_backup() -> None:
    html = render_night_html(night_of(app=physical_page()))
    verdict = html.split('<p id="db-app-physical-verdict">', 1)[1].split("</p>", 1)[0]
    assert visible_text(verdict) == f"OK {VERDICT}"
