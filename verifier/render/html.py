"""The nightly integrity report as one self-contained HTML page (no external assets).

Rendered with Jinja2 with autoescaping on, so table names, error messages and anything else that
came from the database or a subprocess are HTML-escaped. The charts are inline SVG whose geometry
is computed here; the template only places numbers and escaped labels.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from verifier.render.offsite import offsite_rows
from verifier.render.page import ReportPage, RunPoint
from verifier.render.physical import physical_section
from verifier.report import Status
from verifier.units import format_bytes, format_seconds

TEMPLATES = Path(__file__).parent  # the *.html.j2 lie beside this module: package data of verifier.render
CHART_RUNS = 30

_Value = Callable[[RunPoint], float | None]
_Formatter = Callable[[float], str]

ENVIRONMENT = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(enabled_extensions=("html", "j2"), default=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True)
class Series:
    """One line of a chart: its label, colour and the SVG polyline points."""

    label: str
    colour: str
    points: str
    dots: tuple[tuple[float, float, str], ...]


@dataclass(frozen=True)
class Chart:
    """An inline SVG line chart of recent runs."""

    title: str
    width: int
    height: int
    plot_left: int
    plot_bottom: int
    plot_top: int
    y_max_label: str
    x_first_label: str
    x_last_label: str
    series: tuple[Series, ...]

    @property
    def empty(self) -> bool:
        """Returns True when no series has a point."""
        return not any(line.dots for line in self.series)


def render_html(page: ReportPage) -> str:
    """Returns the report page as HTML. Raises jinja2.TemplateError only on a bug in the template."""
    return ENVIRONMENT.get_template("report.html.j2").render(**report_context(page))


def report_context(page: ReportPage) -> dict[str, Any]:
    """Returns what report_body.html.j2 needs to draw `page`: its report, status, charts, off-site rows,
    the physical proof's section and the helpers."""
    runs = list(page.runs)[-CHART_RUNS:]
    charts = [
        line_chart(
            "Backup size",
            runs,
            [("size", "#2563eb", lambda run: None if run.backup_bytes is None else float(run.backup_bytes))],
            format_bytes,
            page,
        ),
        line_chart(
            "Durations",
            runs,
            [
                ("dump", "#7c3aed", lambda run: run.dump_seconds),
                ("restore + compare", "#ea580c", lambda run: run.verify_seconds),
            ],
            format_seconds,
            page,
        ),
    ]
    return {
        "page": page,
        "report": page.report,
        "status": page.report.status,
        "Status": Status,
        "charts": charts,
        "offsite": offsite_rows(page.report),
        "physical": physical_section(page),
        "format_bytes": format_bytes,
        "format_seconds": format_seconds,
        "status_class": status_class,
        "signed": signed,
    }


def line_chart(
    title: str,
    runs: Sequence[RunPoint],
    lines: Sequence[tuple[str, str, _Value]],
    label: _Formatter,
    page: ReportPage,
    *,
    width: int = 460,
    height: int = 160,
) -> Chart:
    """Returns a chart of `lines` over `runs` (oldest left), scaled from 0 to the largest value."""
    left, right, top, bottom = 64, 10, 12, height - 24
    values = [value(run) for _, _, value in lines for run in runs]
    largest = max((v for v in values if v is not None), default=0.0) or 1.0
    step = (width - left - right) / max(len(runs) - 1, 1)
    series = []
    for name, colour, value in lines:
        dots = []
        for index, run in enumerate(runs):
            measured = value(run)
            if measured is None:
                continue
            x = left + index * step if len(runs) > 1 else left + (width - left - right) / 2
            y = bottom - (measured / largest) * (bottom - top)
            dots.append((round(x, 1), round(y, 1), f"{page.local(run.started_at)}: {name} {label(measured)}"))
        points = " ".join(f"{x},{y}" for x, y, _ in dots)
        series.append(Series(name, colour, points, tuple(dots)))
    return Chart(
        title=title,
        width=width,
        height=height,
        plot_left=left,
        plot_bottom=bottom,
        plot_top=top,
        y_max_label=label(largest) if values and any(v is not None for v in values) else "",
        x_first_label=_day(runs[0].started_at, page) if runs else "",
        x_last_label=_day(runs[-1].started_at, page) if runs else "",
        series=tuple(series),
    )


def status_class(status: Status | None) -> str:
    """Returns the CSS class of a status ("ok", "warning", "critical", "unknown", "none")."""
    return status.name.lower() if status is not None else "none"


def signed(number: int | None) -> str:
    """Returns a difference with its sign ("+3", "-12", "0"), or "—" when unknown."""
    if number is None:
        return "—"
    return f"{number:+,}" if number else "0"


def _day(moment: datetime, page: ReportPage) -> str:
    return moment.astimezone(page.timezone).strftime("%d %b")
