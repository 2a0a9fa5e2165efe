"""The "Physical backup" section of a physical proof's report (`check --physical`, the nightly run's
physical part): the backup restored, the instant, RTO and RPO, the WAL window, amcheck and the collations,
and the verdict line. Read from the report's verification and its `physical` check result, so the section
and the checks never disagree; the text and HTML reports draw the same `PhysicalSection`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from verifier.render.page import ReportPage
from verifier.report import Command, Report, Status, Verification
from verifier.units import format_age, format_seconds, plural

PHYSICAL_COMMANDS = (Command.CHECK_PHYSICAL.value, Command.RUN_PHYSICAL.value)


@dataclass(frozen=True)
class PhysicalSection:
    """What the section shows: the verdict line and its status, the facts (label, value) in order, and the
    problems amcheck and the collation check named (empty when none)."""

    status: Status
    verdict: str
    facts: tuple[tuple[str, str], ...]
    problems: tuple[str, ...]


def physical_section(page: ReportPage) -> PhysicalSection | None:
    """Returns the section of a physical proof's report, None for any other report."""
    report = page.report
    verification = report.verification
    if verification is None or (verification.instant is None and report.command not in PHYSICAL_COMMANDS):
        return None
    status, verdict = _verdict(report, verification)
    restored = verification.physical
    facts: list[tuple[str, str]] = []
    if restored is not None:
        kind = {"full": "full", "diff": "differential", "incr": "incremental"}.get(restored.kind, restored.kind)
        facts.append(("Backup", f"{restored.label} ({kind})"))
    if verification.instant is not None:
        latest = restored is not None and restored.target == "latest"
        facts.append(("Instant", f"the end of the archive, {verification.instant}" if latest else verification.instant))
    if verification.restored:
        facts.append(("Restore (RTO)", f"{format_seconds(verification.restore_seconds)}, to a promoted copy"))
    lag = verification.inventory.get("archive_lag")
    if lag is not None:
        facts.append(("Archive lag (RPO)", f"{format_seconds(lag)} since the newest WAL segment was archived"))
    window = _window(page, verification)
    if window:
        facts.append(("WAL window", window))
    if restored is not None and restored.wal_oldest and restored.wal_newest:
        facts.append(("WAL segments", f"{restored.wal_oldest} … {restored.wal_newest}"))
    facts.append(("amcheck", _amcheck(verification)))
    facts.append(("Collations", _collations(verification)))
    problems = (*verification.finding("amcheck").problems, *verification.finding("collations").problems)
    return PhysicalSection(status, verdict, tuple(facts), tuple(problems))


def physical_text(page: ReportPage) -> list[str]:
    """Returns the section as the text report's lines (none for a report that is not a physical proof)."""
    section = physical_section(page)
    if section is None:
        return []
    width = max(len(label) for label, _ in section.facts)
    lines = ["", "Physical backup:", f"  {section.status.name}: {section.verdict}"]
    lines += [f"  {label + ':':<{width + 1}} {value}" for label, value in section.facts]
    lines += [f"    - {problem}" for problem in section.problems]
    return lines


def _verdict(report: Report, verification: Verification) -> tuple[Status, str]:
    """Returns the `physical` check's status and summary ("restored backup … to LSN … (exact): every table
    equal to production at that instant"); without one, why nothing was proven: UNKNOWN when the proof could
    not run, CRITICAL when the backup could not be restored to the instant."""
    for result in report.results:
        if result.name == "physical":
            return result.status, result.summary
    if report.could_not_run:  # the proof could not run (exit 3): not a finding about the backup
        return Status.UNKNOWN, f"not proven: {verification.error or report.could_not_run}"
    if verification.error:
        return Status.CRITICAL, f"not proven: {verification.error}"
    return Status.UNKNOWN, "not proven: the physical check did not run"


def _window(page: ReportPage, verification: Verification) -> str:
    """Returns e.g. '2026-12-01 02:12 UTC … 2026-12-08 08:11 UTC (7d 6h)': from the oldest backup's end to the
    newest archived segment, or its length alone, or "" when the repository said nothing of it."""
    restored = verification.physical
    seconds = verification.inventory.get("window")
    length = format_age(timedelta(seconds=seconds)) if seconds is not None else ""
    if restored is None or restored.recoverable_from is None or restored.recoverable_to is None:
        return length
    span = f"{page.local(restored.recoverable_from)} … {page.local(restored.recoverable_to)}"
    return f"{span} ({length})" if length else span


def _amcheck(verification: Verification) -> str:
    """Returns e.g. 'full: 12 relations (84 pages) in 0.4 s, no findings', or why it did not run."""
    if "amcheck" not in verification.findings:
        return "off (physical.amcheck)" if verification.restored and not verification.error else "not reached"
    found = verification.finding("amcheck")
    measures = found.measures
    checked = ""
    relations, pages = measures.get("relations"), measures.get("pages")
    if isinstance(relations, int):
        checked = f" {relations:,} {plural(relations, 'relation')}"
        checked += f" ({pages:,} {plural(pages, 'page')})" if isinstance(pages, int) else ""
    seconds = measures.get("seconds")
    took = f" in {format_seconds(seconds)}" if isinstance(seconds, int | float) else ""
    outcome = f"{len(found.problems):,} {plural(len(found.problems), 'finding')}" if found.problems else "no findings"
    return f"{measures.get('mode', 'full')}:{checked}{took}, {outcome}"


def _collations(verification: Verification) -> str:
    """Returns e.g. '14 versions compared, none differs' or '2 of 14 differ', or why not compared."""
    if "collations" not in verification.findings:
        return "not reached"
    found = verification.finding("collations")
    compared = f"{found.compared:,} {plural(found.compared, 'version')} compared"
    if not found.problems:
        return f"{compared}, none differs"
    return f"{compared}, {len(found.problems):,} {'differs' if len(found.problems) == 1 else 'differ'}"
