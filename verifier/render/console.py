"""The console report: a verdict, the checks, the tables, the timings.

On a TTY it has colour; in a pipe or a journal it is plain text of the same shape, wide enough
that lines are not cut.
"""

from __future__ import annotations

import sys
from typing import TextIO

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from verifier.report import Report, Status, TableComparison

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
        console.print(_tables_table(report.verification.tables, report.verification.exact, all_tables=all_tables))
    timings = " · ".join(f"{name} {seconds:.1f}s" for name, seconds in report.timings.items())
    footer = f"exit {report.exit_code}"
    if timings:
        footer = f"timings: {timings}   {footer}"
    console.print(Text(footer, style="dim"))


def _checks_table(report: Report) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, title=None)
    table.add_column("status", no_wrap=True)
    table.add_column("check", no_wrap=True)
    table.add_column("result")
    for result in report.results:
        text = Text(result.summary)
        for detail in result.details[:20] if result.status is not Status.OK else ():
            text.append(f"\n  - {detail}", style="dim")
        if result.status is not Status.OK and len(result.details) > 20:
            text.append(f"\n  … {len(result.details) - 20} more in the JSON report", style="dim")
        table.add_row(
            Text(f"{MARK[result.status]} {result.status.name}", style=STYLE[result.status]), result.name, text
        )
    return table


def _tables_table(tables: list[TableComparison], exact: bool, *, all_tables: bool) -> Table:
    shown = (
        tables if all_tables or len(tables) <= ALL_TABLES_UP_TO else [t for t in tables if t.status is not Status.OK]
    )
    hidden = len(tables) - len(shown)
    title = f"{len(tables)} tables" + (f" ({hidden} matching tables not shown; --all-tables)" if hidden else "")
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, title=title, title_justify="left")
    table.add_column("table")
    table.add_column("snapshot" if exact else "snapshot (none)", justify="right")
    table.add_column("restored", justify="right")
    table.add_column("production now", justify="right")
    table.add_column("", no_wrap=True)
    for comparison in shown:
        table.add_row(
            comparison.qualified_name,
            _number(comparison.snapshot_rows),
            _number(comparison.restored_rows),
            _number(comparison.production_rows),
            Text(f"{MARK[comparison.status]} {comparison.note}".strip(), style=STYLE[comparison.status]),
        )
    return table


def _number(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"
