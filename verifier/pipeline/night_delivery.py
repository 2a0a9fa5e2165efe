"""The human-facing parts of a night of several databases: its HTML report in the root's `reports/`
(a summary table and each database's section) and ONE e-mail for the night, never one per database
(the night's runs are given a config without `report.email`: `deliver_night` sends it)."""

from __future__ import annotations

import logging
from dataclasses import replace

from verifier import mailer
from verifier.config import Config
from verifier.pipeline.night_report import DatabaseNight, Night
from verifier.pipeline.report_delivery import build_page, write_report_file
from verifier.render.night_html import NightPage, NightSection, render_night_html
from verifier.render.text import render_text
from verifier.report import Status
from verifier.repository.databases import Databases
from verifier.repository.history import History
from verifier.units import format_age, plural

logger = logging.getLogger(__name__)


def deliver_night(config: Config, databases: Databases, night: Night) -> Night:
    """Writes the root's reports/<night>.html (when `report.html`) and e-mails the night once (when
    `report.email`). Returns the night, with a note when the e-mail could not be sent. Never raises
    for a delivery problem (a file that cannot be written is logged)."""
    page = night_page(config, databases, night)
    html = render_night_html(page)
    if config.report.html:
        write_report_file(html, databases.root.reports_dir / f"{night.run_id}.html")
    if config.report.email is None:
        return night
    about = f"{len(night.databases)} {plural(len(night.databases), 'database')}"
    sent = mailer.send(page.status, about, config.report.email, html=html, text=night_text(config, night, page))
    if sent.status is Status.OK:
        return night
    return replace(night, notes=[*night.notes, sent.summary])


def night_page(config: Config, databases: Databases, night: Night) -> NightPage:
    """Returns the night's page: a section per database, each with its report's page when it has one."""
    zone = config.schedule.display_zone
    sections = [_section(config, databases, night, database) for database in night.databases]
    count = len(night.databases)
    starts = night.sandbox_starts
    sandbox = f"; the sandbox started {starts} {plural(starts, 'time')}" if starts else ""
    return NightPage(
        run_id=night.run_id,
        started_at=night.started_at,
        finished_at=night.finished_at,
        status=status_of(night.exit_code),
        exit_code=night.exit_code,
        sections=sections,
        summary=night.could_not_run or f"{count} {plural(count, 'database')}{sandbox}; exit {night.exit_code}",
        notes=night.notes,
        timezone=zone,
    )


def night_text(config: Config, night: Night, page: NightPage) -> str:
    """Returns the night as plain text: its opening lines (one per database), then each database's report."""
    parts = ["\n".join(night.summary_lines(config.schedule.display_zone))]
    parts += [render_text(section.page) for section in page.sections if section.page is not None]
    return "\n\n".join(parts) + "\n"


def status_of(exit_code: int) -> Status:
    """Returns the status an exit code stands for (0 OK, 1 WARNING, above: CRITICAL)."""
    return {0: Status.OK, 1: Status.WARNING}.get(exit_code, Status.CRITICAL)


def _section(config: Config, databases: Databases, night: Night, database: DatabaseNight) -> NightSection:
    newest = database.newest
    page = None
    if database.report is not None:
        repository = databases.repository(database.name)
        history = History(repository.history_path)
        history.probe()  # unreadable: the page shows no past runs rather than failing the night's report
        page = build_page(database.report, config, repository, history)
    return NightSection(
        name=database.name,
        status=database.report.status if database.report is not None else status_of(database.exit_code),
        verdict=database.verdict,
        line=database.line if database.exit_code else "",
        newest=newest.name if newest else None,
        newest_at=newest.created_at if newest else None,
        age=format_age(night.finished_at - newest.created_at) if newest else "—",
        backups=database.backups,
        page=page,
    )
