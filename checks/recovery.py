"""How long would a recovery take, and how much data would it lose? The restore's duration (RTO, as
measured in the sandbox) and the data-loss window (RPO: time since the snapshot of the newest verified
backup), each with its trend over the last 30 runs."""

from __future__ import annotations

import statistics
from datetime import datetime

from verifier.check_registry import CheckContext
from verifier.report import CheckResult, Command, Metric, Status
from verifier.repository.backups import Backup
from verifier.units import format_seconds

NAME = "recovery"


def check(context: CheckContext) -> CheckResult | None:
    """Returns OK with the RTO (when this run restored) and the RPO, each with its 30-run trend; WARNING when
    the RPO exceeds `checks.max_age_hours` or no backup in the repository is verified; None for a single file."""
    if context.single_file:
        return None
    metrics: dict[str, Metric] = {}
    parts: list[str] = []
    verification = context.verification
    if verification is not None and verification.restored:
        metrics["rto_seconds"] = round(verification.restore_seconds, 3)
        parts.append(f"RTO {format_seconds(verification.restore_seconds)} (restore of {verification.backup_name})")
    newest = _newest_verified(context)
    if newest is None:
        summary = "; ".join([*parts, "RPO unknown: no backup in the repository has been verified"])
        return CheckResult(NAME, Status.WARNING, summary, tuple(_trend_lines(context, metrics)), metrics)
    snapshot = _snapshot_time(newest)
    rpo = max(0, int((context.now - snapshot).total_seconds()))
    metrics["rpo_seconds"] = rpo
    parts.append(f"RPO {format_seconds(rpo)} (snapshot of {newest.name})")
    status = Status.WARNING if rpo > context.config.checks.max_age_hours * 3600 else Status.OK
    if status is Status.WARNING:
        parts[-1] += f", over {context.config.checks.max_age_hours:g} h"
    return CheckResult(NAME, status, "; ".join(parts), tuple(_trend_lines(context, metrics)), metrics)


def _newest_verified(context: CheckContext) -> Backup | None:
    """Returns the newest backup in the repository whose newest verification passed (this run's included)."""
    verified: dict[str, bool] = {}
    for run in reversed(context.recent_runs):  # oldest first: the newest verdict of each backup wins
        if run.backup_name and run.verify_ok is not None and run.command != Command.CHECK_FILE:
            verified[run.backup_name] = run.verify_ok
    if context.verification is not None and context.command != Command.CHECK_FILE:
        verified[context.verification.backup_name] = context.verified_now
    candidates = [backup for backup in context.backups if verified.get(backup.name)]
    return max(candidates, key=_snapshot_time, default=None)


def _snapshot_time(backup: Backup) -> datetime:
    return backup.manifest.created_at if backup.manifest is not None else backup.created_at


def _trend_lines(context: CheckContext, current: dict[str, Metric]) -> list[str]:
    """Returns one line per measure: this run's value against the last 30 runs (min, median, max) and
    the values themselves, oldest first."""
    lines = []
    for metric, label in (("rto_seconds", "RTO"), ("rpo_seconds", "RPO")):
        past = [
            float(value)
            for _, metrics in context.recovery_trend
            if isinstance(value := metrics.get(metric), int | float)
        ]
        values = [*reversed(past), *([float(current[metric])] if metric in current else [])][-30:]
        if len(values) < 2:
            continue
        lines.append(
            f"{label} over the last {len(values)} runs: min {format_seconds(min(values))}, "
            f"median {format_seconds(statistics.median(values))}, max {format_seconds(max(values))}; "
            + " → ".join(format_seconds(value) for value in values[-10:])
            + (" (last 10)" if len(values) > 10 else "")
        )
    return lines
