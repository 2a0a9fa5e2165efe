"""Did the dump or the restore take much longer than usual (disk, network, bloat, lock waits)?"""

from __future__ import annotations

import statistics

from verifier.check_registry import CheckContext
from verifier.report import CheckResult, Metric, Status
from verifier.units import format_seconds

NAME = "duration_trend"
MIN_SAMPLES = 3


def check(context: CheckContext) -> CheckResult | None:
    """Returns WARNING when this run's dump or restore took more than `checks.trends.duration_factor`
    times the median of the last `duration_window` runs; None when this run measured neither or the
    history has fewer than three comparable runs."""
    trends = context.config.checks.trends
    current: dict[str, float] = {}
    if context.dump is not None and context.dump.ok:
        current["dump"] = context.dump.duration_seconds
    if context.verification is not None and context.verification.restored:
        current["restore"] = context.verification.duration_seconds
    if not current:
        return None
    runs = context.recent_runs
    past = {
        "dump": _recent([run.dump_seconds for run in runs if run.dump_ok], trends.duration_window),
        "restore": _recent([run.verify_seconds for run in runs if run.verify_ok], trends.duration_window),
    }
    metrics: dict[str, Metric] = {}
    slow: list[str] = []
    compared: list[str] = []
    for step, seconds in current.items():
        metrics[f"{step}_seconds"] = round(seconds, 3)
        samples = past[step]
        if len(samples) < MIN_SAMPLES:
            continue
        median = statistics.median(samples)
        metrics[f"{step}_median_seconds"] = round(median, 3)
        ratio = seconds / median if median > 0 else 1.0
        compared.append(f"{step} {format_seconds(seconds)} ({ratio:.1f}x the median {format_seconds(median)})")
        if ratio > trends.duration_factor and seconds >= trends.duration_min_seconds:
            slow.append(
                f"{step} took {format_seconds(seconds)}, {ratio:.1f}x the median {format_seconds(median)} "
                f"of the last {len(samples)} runs"
            )
    if not compared:
        return None
    if slow:
        return CheckResult(
            NAME, Status.WARNING, "; ".join(slow) + f" (limit {trends.duration_factor:g}x)", metrics=metrics
        )
    return CheckResult(NAME, Status.OK, ", ".join(compared), metrics=metrics)


def _recent(values: list[float | None], window: int) -> list[float]:
    """Returns the newest `window` known values (the history lists runs newest first)."""
    return [value for value in values if value is not None][:window]
