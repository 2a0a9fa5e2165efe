"""What bench_speed.py measured, the targets of issue 13 judged against it, and the 80-column table.

Pure data and text: nothing here starts a program or touches a database, so the table and the targets
can be tested alone (tests/unit/test_bench_speed_results.py).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

WIDTH = 80
MIB = 1024 * 1024
RSS_LIMIT_BYTES = 150_000_000  # the 150 MB, shown in MiB like every size of the project
FLOOR_FACTOR_LIMIT = 1.25
PLAIN_FACTOR_TARGET = 3.0
PLAIN_FACTOR_SCALES = (50, 100)
SANDBOX_READY_LIMIT_SECONDS = 1.0
# the dump reads every row once (it must); the proof may read each table once more, in the snapshot, and
# no more: production's "now" comes from its statistics (the "once a night for the proof")
ROWS_READ_LIMIT = 2.1
# the order phases are shown in; a phase the verifier adds later and this list does not know goes before "other"
PHASE_ORDER = (
    "snapshot",
    "counts",
    "dump",
    "integrity",
    "cluster",
    "sandbox",
    "restore",
    "restore data",
    "post-data",
    "count production",
    "count restored",
    "compare",
    "teardown",
)
OTHER = "other"


@dataclass
class PipelineResult:
    """One pipeline's run on one database: phases in seconds and what it cost."""

    name: str
    phases: dict[str, float] = field(default_factory=dict)
    wall_seconds: float | None = None
    stored_bytes: int | None = None
    peak_rss_bytes: int | None = None
    rows_read: int | None = None
    snapshot_seconds: float | None = None
    longest_snapshot_seconds: float | None = None
    exit_code: int | None = None
    error: str | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Returns True when the pipeline ran to its end (the verifier: exit code 0 or 1)."""
        return self.error is None and self.wall_seconds is not None and (self.exit_code or 0) < 2


@dataclass
class Target:
    """One target of the issue: what was measured and whether it was met (None: does not apply here)."""

    name: str
    measured: str
    met: bool | None

    @property
    def status(self) -> str:
        """Returns "met", "MISSED" or "n/a"."""
        return "n/a" if self.met is None else "met" if self.met else "MISSED"


@dataclass
class DatabaseResult:
    """Everything measured on one generated database."""

    name: str
    description: str
    scale: int | None
    tables: int
    size_bytes: int
    live_rows: int | None = None
    table_bytes: dict[str, int] = field(default_factory=dict)
    plain: PipelineResult | None = None
    verifier: PipelineResult | None = None
    verifier_runs: list[PipelineResult] = field(default_factory=list)
    floor: PipelineResult | None = None

    @property
    def plain_over_verifier(self) -> float | None:
        """Returns plain total / verifier wall time, or None when either did not finish."""
        return _ratio(self.plain, self.verifier)

    @property
    def verifier_over_floor(self) -> float | None:
        """Returns verifier wall time / floor total, or None when either did not finish."""
        return _ratio(self.verifier, self.floor)

    def targets(self) -> list[Target]:
        """Returns the issue's targets judged on this database (a target whose numbers are missing is MISSED)."""
        verifier = self.verifier or PipelineResult("verifier")
        faster, over_floor = self.plain_over_verifier, self.verifier_over_floor
        found = []
        if self.scale is not None:
            no_larger = _stored_no_larger(verifier, self.plain)
            met = faster is not None and faster >= PLAIN_FACTOR_TARGET and bool(no_larger)
            found.append(
                Target(
                    f">= {PLAIN_FACTOR_TARGET:g}x plain at scale 50/100, no larger",
                    _factor(faster) + _sizes(verifier, self.plain),
                    met if self.scale in PLAIN_FACTOR_SCALES else None,
                )
            )
        else:
            found.append(Target("verifier no slower than plain", _factor(faster), faster is not None and faster >= 1))
        found.append(
            Target(
                f"<= {FLOOR_FACTOR_LIMIT:g}x the floor",
                _factor(over_floor),
                over_floor is not None and over_floor <= FLOOR_FACTOR_LIMIT,
            )
        )
        rss = verifier.peak_rss_bytes
        found.append(
            Target(
                f"agent peak RSS < {RSS_LIMIT_BYTES // 1_000_000} MB ({RSS_LIMIT_BYTES // MIB} MiB)",
                _mebibytes(rss),
                rss is not None and rss < RSS_LIMIT_BYTES,
            )
        )
        sandbox = verifier.phases.get("sandbox")
        found.append(
            Target(
                f"local sandbox ready < {SANDBOX_READY_LIMIT_SECONDS:g} s",
                "n/a" if sandbox is None else f"{sandbox:.2f} s",
                None if sandbox is None else sandbox < SANDBOX_READY_LIMIT_SECONDS,
            )
        )
        reads = verifier.rows_read / self.live_rows if verifier.rows_read is not None and self.live_rows else None
        found.append(
            Target(
                f"proof reads each table once (<= {ROWS_READ_LIMIT:g}x live rows)",
                _factor(reads),
                reads is not None and reads <= ROWS_READ_LIMIT,
            )
        )
        return found

    def to_dict(self) -> dict[str, Any]:
        """Returns a JSON-ready dictionary of the measurements, the ratios and the judged targets."""
        data = asdict(self)
        data["plain_over_verifier"] = self.plain_over_verifier
        data["verifier_over_floor"] = self.verifier_over_floor
        data["targets"] = [{**asdict(target), "status": target.status} for target in self.targets()]
        return data


def format_machine(machine: dict[str, str]) -> str:
    """Returns the machine's description, one `key: value` per line."""
    return "\n".join(f"{key + ':':<12}{value}" for key, value in machine.items())


def format_database(result: DatabaseResult) -> str:
    """Returns the 80-column table of one database: phases, totals, costs, ratios and targets."""
    pipelines = (result.plain, result.verifier, result.floor)
    lines = _wrap(f"== {result.name}: {result.description}")
    summary = f"   {_mebibytes(result.size_bytes)}, {result.tables:,} tables"
    summary += f", {result.live_rows:,} rows" if result.live_rows is not None else ""
    sizes = ", ".join(f"{name} {_mebibytes(size)}" for name, size in result.table_bytes.items())
    lines += _wrap(summary + (f": {sizes}" if sizes else ""))
    lines.append(_row("phase (seconds)", "plain", "verifier", "floor"))
    for phase in ordered_phases([pipeline.phases if pipeline else {} for pipeline in pipelines]):
        lines.append(
            _row(phase, *(_seconds(pipeline.phases.get(phase)) if pipeline else "-" for pipeline in pipelines))
        )
    verifier = result.verifier
    if verifier is not None and verifier.wall_seconds is not None and verifier.phases:
        rest = verifier.wall_seconds - sum(verifier.phases.values())
        lines.append(_row(OTHER, "-", _seconds(rest) if rest >= 0 else "overlap", "-"))
    lines.append(
        _row("total (wall)", *(_seconds(pipeline.wall_seconds if pipeline else None) for pipeline in pipelines))
    )
    lines.append(
        _row("stored MiB", *(_mebibytes(pipeline.stored_bytes if pipeline else None, "") for pipeline in pipelines))
    )
    lines.append(_row("agent peak RSS MiB", "-", _mebibytes(verifier.peak_rss_bytes if verifier else None, ""), "-"))
    lines.append(
        _row("production rows read", *(_count(pipeline.rows_read if pipeline else None) for pipeline in pipelines))
    )
    lines.append(_row("snapshot held s (longest)", *(_held(pipeline) for pipeline in pipelines)))
    lines.append(
        _row("exit code", "-", str(verifier.exit_code) if verifier and verifier.exit_code is not None else "-", "-")
    )
    runs = ", ".join(_seconds(run.wall_seconds) + (" kept" if run is verifier else "") for run in result.verifier_runs)
    ratios = f"plain / verifier {_factor(result.plain_over_verifier)}"
    ratios += f" · verifier / floor {_factor(result.verifier_over_floor)}"
    lines += _wrap(ratios + (f" · verifier runs (s): {runs}" if runs else ""))
    for pipeline in pipelines:
        if pipeline is not None and pipeline.error:
            lines += _wrap(f"{pipeline.name} failed: {pipeline.error}")
    lines.append(f"{'target':<46} {'measured':<22} {'status':>9}")
    lines += [f"{target.name:<46} {target.measured:<22} {target.status:>9}" for target in result.targets()]
    return "\n".join(lines)


def ordered_phases(phase_lists: list[dict[str, float]]) -> list[str]:
    """Returns the union of the pipelines' phase names: known ones in PHASE_ORDER, unknown ones after them."""
    names = {name for phases in phase_lists for name in phases}
    unknown = [name for phases in phase_lists for name in phases if name not in PHASE_ORDER]
    return [name for name in PHASE_ORDER if name in names] + list(dict.fromkeys(unknown))


def _ratio(numerator: PipelineResult | None, denominator: PipelineResult | None) -> float | None:
    if numerator is None or denominator is None or not numerator.ok or not denominator.ok:
        return None
    assert numerator.wall_seconds is not None and denominator.wall_seconds is not None
    return numerator.wall_seconds / denominator.wall_seconds if denominator.wall_seconds > 0 else None


def _stored_no_larger(verifier: PipelineResult, plain: PipelineResult | None) -> bool | None:
    if plain is None or verifier.stored_bytes is None or plain.stored_bytes is None:
        return None
    return verifier.stored_bytes <= plain.stored_bytes


def _sizes(verifier: PipelineResult, plain: PipelineResult | None) -> str:
    if plain is None or verifier.stored_bytes is None or plain.stored_bytes is None:
        return ""
    return f"; {verifier.stored_bytes / MIB:.0f}/{plain.stored_bytes / MIB:.0f} MiB"


def _row(label: str, *values: str) -> str:
    label = label if len(label) <= 25 else label[:24] + "…"
    return f"{label:<26}" + "".join(f"{value:>18}" for value in values)


def _wrap(text: str) -> list[str]:
    lines = []
    while len(text) > WIDTH:
        cut = text.rfind(" ", 0, WIDTH)
        cut = cut if cut > 0 else WIDTH
        lines.append(text[:cut])
        text = "   " + text[cut:].lstrip()
    return [*lines, text]


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _mebibytes(value: int | None, unit: str = " MiB") -> str:
    if value is None:
        return "-"
    return f"{value / MIB:.{2 if value < 10 * MIB else 1}f}{unit}"


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _factor(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _held(pipeline: PipelineResult | None) -> str:
    if pipeline is None or pipeline.snapshot_seconds is None:
        return "-"
    return f"{pipeline.snapshot_seconds:.1f} ({pipeline.longest_snapshot_seconds or 0:.1f})"
