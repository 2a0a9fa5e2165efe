"""The console report: a verdict, the checks, the tables, the timings.

On a TTY it has colour; in a pipe or a journal it is plain text of the same shape, wide enough
that lines are not cut.
"""

from __future__ import annotations

import sys
from typing import TextIO

from rich import box
from rich.console import Console, Group
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from verifier.report import Report, Status, TableComparison
from verifier.units import format_seconds, plural

STYLE = {Status.OK: "green", Status.WARNING: "yellow", Status.UNKNOWN: "magenta", Status.CRITICAL: "bold red"}
MARK = {Status.OK: "✔", Status.WARNING: "!", Status.UNKNOWN: "?", Status.CRITICAL: "✖"}
ALL_TABLES_UP_TO = 60


def make_console(stream: TextIO | None = None) -> Console:
    """Returns a console for `stream` (stdout): coloured on a TTY, plain and 120 columns wide otherwise."""
    stream = stream or sys.stdout
    if stream.isatty():
        return Console(file=stream, highlight=False)
    return Console(file=stream, width=120, no_color=True, highlight=False, emoji=False, force_terminal=False)


def render(report: Report, console: Console, *, all_tables: bool = False) -> None:
    """Prints the report."""
    status = report.status if not report.could_not_run else Status.CRITICAL
    headline = Text()
    headline.append(f"{MARK[status]} {status.name}", style=STYLE[status])
    headline.append(f"  {report.command} {report.run_id} · {report.source}")
    if report.backup_name:
        headline.append(f" · backup {report.backup_name}")
    console.print(headline)
    if report.could_not_run:
        console.print(Text(f"could not run: {report.could_not_run}", style="bold red"))
    console.print(_checks_table(report))
    if report.verification is not None and report.verification.tables:
        verification = report.verification
        console.print(
            _tables_table(verification.tables, verification.exact, all_tables=all_tables, width=console.width)
        )
    timings = " · ".join(f"{name} {format_seconds(seconds)}" for name, seconds in report.timings.items())
    footer = f"exit {report.exit_code}"
    if timings:
        footer = f"timings: {timings}   {footer}"
    console.print(Text(footer, style="dim"))


def _checks_table(report: Report) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, title=None)
    table.add_column("status", no_wrap=True)
    table.add_column("check", no_wrap=True)
    table.add_column("result")
    for result in report.every_result:
        text = Text(result.summary)
        for detail in result.details[:20] if result.status is not Status.OK else ():
            text.append(f"\n  - {detail}", style="dim")
        if result.status is not Status.OK and len(result.details) > 20:
            text.append(f"\n  … {len(result.details) - 20} more in the JSON report", style="dim")
        table.add_row(
            Text(f"{MARK[result.status]} {result.status.name}", style=STYLE[result.status]), result.name, text
        )
    return table


def _tables_table(tables: list[TableComparison], exact: bool, *, all_tables: bool, width: int) -> Table:
    """Returns the per-table counts. A table name too long for the column wraps; when the notes do
    not fit beside the numbers in `width` columns, each goes on its own line below its table."""
    shown = (
        tables
        if all_tables or len(tables) <= ALL_TABLES_UP_TO
        else [t for t in tables if t.status is not Status.OK or t.drifted]
    )
    hidden = len(tables) - len(shown)
    title = f"{len(tables):,} {plural(len(tables), 'table')}" + (
        f" ({hidden:,} matching {plural(hidden, 'table')} not shown; --all-tables)" if hidden else ""
    )
    headers = ("snapshot" if exact else "snapshot\n(none)", "restored", "production\nnow")
    numbers = [
        (_number(comparison.snapshot_rows), _number(comparison.restored_rows), _number(comparison.production_rows))
        for comparison in shown
    ]
    numbers_width = sum(
        max([*map(len, header.split("\n")), *(len(row[index]) for row in numbers)]) + 2
        for index, header in enumerate(headers)
    )
    longest_name = max((len(comparison.qualified_name) for comparison in shown), default=0)
    longest_note = max((len(_note(comparison)) for comparison in shown), default=0)
    notes_beside = width >= longest_name + 2 + numbers_width + 2 + longest_note
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, title=title, title_justify="left")
    table.add_column("table", overflow="fold")
    for header in headers:
        table.add_column(header, justify="right", no_wrap=True)
    table.add_column("", no_wrap=notes_beside)
    for comparison, counts in zip(shown, numbers, strict=True):
        style = STYLE[comparison.status]
        mark = Text(MARK[comparison.status], style=style)
        name: Text | Group = Text(comparison.qualified_name)
        note = _note(comparison)
        if note and notes_beside:
            mark.append(f" {note}")
        elif note:  # below the name, indented also where it wraps
            name = Group(name, Padding(Text(note, style=style), (0, 0, 0, 2)))
        table.add_row(name, *counts, mark)
    return table


def _note(comparison: TableComparison) -> str:
    """Returns the verdict's note, else the drift sentence of a table beyond the drift tolerance."""
    return comparison.note or (f"drift: {comparison.drift_note}" if comparison.drifted else "")


def _number(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"
