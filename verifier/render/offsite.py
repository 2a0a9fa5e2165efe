"""The off-site section of the nightly report: one row per target, read from the run's `offsite <target>`
results (the same metrics Zabbix's per-target items are sent from), so the page and Zabbix never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from verifier.render.page import ReportPage
from verifier.report import Report, Status
from verifier.units import format_age


@dataclass(frozen=True)
class OffsiteRow:
    """One off-site target as the report shows it."""

    target: str
    status: Status
    newest: str | None
    age: str
    last_upload: datetime | None
    upload: str
    proof: str
    count: int | None
    summary: str


def offsite_rows(report: Report) -> list[OffsiteRow]:
    """Returns one row per off-site target this run uploaded to or checked, in the results' order; a
    step-wide failure (`offsite` without a target: the keys could not be used) is a row named "all targets"."""
    rows = []
    for result in report.results:
        if result.name != "offsite" and not result.name.startswith("offsite "):
            continue
        metrics = result.metrics
        age = metrics.get("age_seconds")
        count = metrics.get("count")
        newest = metrics.get("newest")
        last_upload = metrics.get("last_upload")
        rows.append(
            OffsiteRow(
                target=str(metrics.get("target", "all targets")),
                status=result.status,
                newest=str(newest) if newest else None,
                age=format_age(timedelta(seconds=age)) if isinstance(age, int | float) else "—",
                last_upload=datetime.fromisoformat(last_upload) if isinstance(last_upload, str) else None,
                upload=_flag(metrics.get("upload_status"), "uploaded", "FAILED"),
                proof=_flag(metrics.get("proof_status"), "read back intact", "FAILED"),
                count=count if isinstance(count, int) else None,
                summary=result.summary,
            )
        )
    return rows


def offsite_text(page: ReportPage) -> list[str]:
    """Returns the off-site section of the text report (no lines when the run made or checked no copy)."""
    rows = offsite_rows(page.report)
    if not rows:
        return []
    lines = ["", "Off-site copies:"]
    for row in rows:
        count = "—" if row.count is None else f"{row.count:,}"
        lines.append(
            f"  {row.target}: {row.status.name}, newest {row.newest or '—'} ({row.age} old), {count} copies, "
            f"last upload {page.local(row.last_upload)} ({row.upload}), proof {row.proof}"
        )
        if row.status is not Status.OK:
            lines.append(f"    {row.summary}")
    return lines


def _flag(value: object, good: str, bad: str) -> str:
    if value is None:
        return "—"
    return good if value == 1 else bad
