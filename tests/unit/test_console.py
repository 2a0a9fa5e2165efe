"""The console report stays readable in 80 columns: long table names wrap, notes move below."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from rich.console import Console

from verifier.render.console import render
from verifier.report import Report, Status, TableComparison, Verification

LONG = "customer_invoice_line_items_with_adjustments_and_credit_notes"
NOTE = "Production has 1,132 more rows than the snapshot had (+8.5 %), within the tolerance."


def _report() -> Report:
    tables = [
        TableComparison("accounting_archive_2019", LONG, 1_234_567, 1_234_567, 1_234_567, Status.OK),
        TableComparison("public", "meals", 13_248, 13_248, 14_380, Status.OK, NOTE),
        TableComparison("public", "users", 3_000, 3_000, 3_000, Status.OK),
    ]
    verification = Verification(backup_name="app_2026", exact=True, restored=True, sandbox="local", tables=tables)
    return Report(
        run_id="20261126T003000Z-ab12",
        command="run",
        source="db:5432/app",
        started_at=datetime(2026, 11, 26, tzinfo=UTC),
        verification=verification,
        timings={"dump": 0.48, "restore": 1.6},
    )


def _rendered(width: int) -> list[str]:
    output = io.StringIO()
    render(_report(), Console(file=output, width=width, no_color=True, force_terminal=False))
    return [line.rstrip() for line in output.getvalue().splitlines()]


def test_at_80_columns_names_wrap_and_the_note_moves_below_its_table() -> None:
    lines = _rendered(80)
    assert max(map(len, lines)) <= 80
    assert "…" not in "\n".join(lines)
    first = next(index for index, line in enumerate(lines) if line.startswith("accounting_archive_2019."))
    assert lines[first].endswith("1,234,567   ✔")
    continued = [line.strip() for line in lines[first + 1 : first + 3]]
    assert "".join([lines[first].split()[0], *continued]) == f"accounting_archive_2019.{LONG}"
    meals = next(index for index, line in enumerate(lines) if line.startswith("public.meals"))
    assert lines[meals].endswith("14,380   ✔")
    below = " ".join(line.strip() for line in lines[meals + 1 : meals + 4])
    assert below.startswith(NOTE), below
    assert lines[meals + 1].startswith("  Production has")


def test_on_a_wide_console_the_note_stays_beside_the_counts() -> None:
    lines = _rendered(220)
    meals = next(line for line in lines if line.startswith("public.meals"))
    assert meals.endswith(f"14,380   ✔ {NOTE}")


def test_timings_use_the_same_units_as_everywhere() -> None:
    assert _rendered(80)[-1] == "timings: dump 480 ms · restore 1.6 s   exit 0"
