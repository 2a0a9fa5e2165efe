"""Exposures found while opening a run: a repository others could write, a config file others can read
that holds a secret inline. Each is a WARNING in the run's report (exit 1), never a silent fix."""

from __future__ import annotations

from collections.abc import Sequence

from verifier.report import CheckResult, Status

CHECK_NAME = "exposure"


def exposure_results(warnings: Sequence[str]) -> list[CheckResult]:
    """Returns one WARNING result listing `warnings`, or [] when there are none."""
    if not warnings:
        return []
    summary = warnings[0] if len(warnings) == 1 else f"{len(warnings)} exposures: {'; '.join(warnings)}"
    return [CheckResult(CHECK_NAME, Status.WARNING, summary, details=tuple(warnings))]
