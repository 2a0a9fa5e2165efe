"""The nightly integrity report after a run: the page (run + backups + recent runs), the HTML file
in `reports/`, the e-mail, and the pruning of old report files.

The JSON report is written by the pipeline; this module adds the human-facing parts and never
raises for a delivery problem: a file that cannot be written is logged, a mail that cannot be sent
is a WARNING result.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from verifier import mailer
from verifier.config import Config
from verifier.render.html import CHART_RUNS, render_html
from verifier.render.page import BackupRow, ReportPage, RunPoint
from verifier.render.text import render_text
from verifier.report import CheckResult, Report, Status
from verifier.repository.backups import Backup, Repository
from verifier.repository.history import History, RunRecord

logger = logging.getLogger(__name__)


def build_page(
    report: Report,
    config: Config,
    repository: Repository,
    history: History,
    *,
    retention_summary: str | None = None,
    now: datetime | None = None,
    backups: list[Backup] | None = None,
) -> ReportPage:
    """Returns the report page: `report`, every backup with its newest verification, the last 30 runs.

    `report` is shown as the newest run even when the history does not hold it yet.
    """
    verifications = history.verifications()
    current = report.verification
    rows = []
    for backup in reversed(repository.backups() if backups is None else backups):
        status: Status | None = None
        verified_at: datetime | None = None
        if current is not None and current.backup_name == backup.name:
            status = Status.OK if report.verification_passed else Status.CRITICAL
            verified_at = report.finished_at or report.started_at
        elif backup.name in verifications:
            record = verifications[backup.name]
            status = Status.OK if record.verify_ok else Status.CRITICAL
            verified_at = record.finished_at or record.started_at
        rows.append(
            BackupRow(
                backup.name,
                backup.created_at,
                backup.size_bytes,
                backup.format,
                backup.legacy,
                status,
                verified_at,
                problem=backup.problem,
            )
        )
    past = [_point(record) for record in history.runs(limit=CHART_RUNS) if record.run_id != report.run_id]
    runs = [*reversed(past), _current_point(report)][-CHART_RUNS:]
    return ReportPage(
        report=report,
        backups=rows,
        runs=runs,
        timezone=config.schedule.display_zone,
        generated_at=now or datetime.now(UTC),
        retention_summary=retention_summary,
    )


def deliver_html_and_email(
    report: Report,
    config: Config,
    repository: Repository,
    history: History,
    *,
    retention_summary: str | None = None,
    backups: list[Backup] | None = None,
) -> list[CheckResult]:
    """Writes reports/<run_id>.html (when `report.html`), e-mails the report (when `report.email`)
    and prunes report files beyond `report.keep`. Returns the `email` check's result, if any."""
    page = build_page(report, config, repository, history, retention_summary=retention_summary, backups=backups)
    html = render_html(page)
    if config.report.html:
        write_report_file(html, repository.reports_dir / f"{report.run_id}.html")
    results = []
    if config.report.email is not None:
        results.append(mailer.send_report(report, config.report.email, html=html, text=render_text(page)))
    prune_reports(repository.reports_dir, keep=config.report.keep)
    return results


def write_report_file(text: str | dict[str, Any], path: Path) -> Path | None:
    """Writes a report file (mode 0600): `text`, or a JSON document streamed piece by piece (a report of
    10,000 tables is tens of MB as one string). Returns the path, or None when it could not be written
    (logged)."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            if isinstance(text, str):
                handle.write(text)
            else:
                json.dump(text, handle, indent=2)
    except OSError as error:
        logger.error("could not write the report %s: %s", path, error.strerror)
        return None
    logger.info("report: %s", path)
    return path


def prune_reports(reports_dir: Path, *, keep: int) -> list[Path]:
    """Deletes the report files (`<run_id>.json`/`.html`) of all but the newest `keep` runs.

    Run ids begin with their UTC start time, so name order is time order. Returns what was deleted.
    """
    if not reports_dir.is_dir():
        return []
    by_run: dict[str, list[Path]] = {}
    for path in reports_dir.iterdir():
        if path.is_file() and path.suffix in (".json", ".html"):
            by_run.setdefault(path.stem, []).append(path)
    removed = []
    for run_id in sorted(by_run)[:-keep]:
        for path in by_run[run_id]:
            try:
                path.unlink()
                removed.append(path)
            except OSError as error:
                logger.warning("could not delete old report %s: %s", path, error.strerror)
    return removed


def _point(record: RunRecord) -> RunPoint:
    return RunPoint(
        started_at=record.started_at,
        status=Status[record.status] if record.status in Status.__members__ else Status.UNKNOWN,
        backup_bytes=record.size_bytes,
        dump_seconds=record.dump_seconds,
        verify_seconds=record.verify_seconds,
    )


def _current_point(report: Report) -> RunPoint:
    return RunPoint(
        started_at=report.started_at,
        status=report.status,
        backup_bytes=report.manifest.size_bytes if report.manifest else None,
        dump_seconds=report.dump.duration_seconds if report.dump and report.dump.ok else None,
        verify_seconds=report.verification.duration_seconds if report.verification else None,
    )
