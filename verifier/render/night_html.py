"""The HTML report of a night of several databases: a summary table, one row per database (name, newest
backup, its age, verdict, a link to its section), then each database's section drawn by the one report's
own body (report_body.html.j2, ids prefixed with the section's anchor)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo

from verifier.render.html import ENVIRONMENT, report_context, status_class
from verifier.render.page import ReportPage
from verifier.report import Status


@dataclass(frozen=True)
class NightSection:
    """One database's row of the summary and its section: its report's page, or None when it has no
    report tonight (its run could not start, it vanished from the server, the config left it out)."""

    name: str
    status: Status
    verdict: str  # "verified, OK", "FAILED", "WARNING: no longer on the server"
    line: str  # why, when not OK ("" otherwise)
    newest: str | None  # the newest backup's name
    newest_at: datetime | None
    age: str  # the newest backup's age at the night's end ("—" without one)
    backups: int
    page: ReportPage | None


@dataclass(frozen=True)
class NightPage:
    """Everything the night's HTML report shows."""

    run_id: str
    started_at: datetime
    finished_at: datetime
    status: Status
    exit_code: int
    sections: Sequence[NightSection]
    summary: str  # "3 databases; the sandbox started 1 time; exit 2"
    notes: Sequence[str] = ()
    timezone: tzinfo = UTC
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def local(self, moment: datetime | None) -> str:
        """Returns `moment` as "YYYY-mm-dd HH:MM TZ" in the report's time zone ("—" for None)."""
        if moment is None:
            return "—"
        return moment.astimezone(self.timezone).strftime("%Y-%m-%d %H:%M %Z")


def anchors(names: Sequence[str]) -> list[str]:
    """Returns an HTML id for each database name, in order: "db-" and the name's letters, digits, '_'
    and '-' (the rest become '-'), made unique with a number where two names would meet."""
    taken: set[str] = set()
    result = []
    for name in names:
        base = "db-" + re.sub(r"[^A-Za-z0-9_-]", "-", name)
        anchor, number = base, 2
        while anchor in taken:
            anchor, number = f"{base}-{number}", number + 1
        taken.add(anchor)
        result.append(anchor)
    return result


def render_night_html(night: NightPage) -> str:
    """Returns the night's report as one HTML page. Raises jinja2.TemplateError only on a bug in a template."""
    sections = [
        (section, anchor, report_context(section.page) if section.page is not None else None)
        for section, anchor in zip(night.sections, anchors([section.name for section in night.sections]), strict=True)
    ]
    return ENVIRONMENT.get_template("night.html.j2").render(
        night=night, sections=sections, status_class=status_class, Status=Status
    )
