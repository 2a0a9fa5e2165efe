"""Reading a run's outcome in tests: one check's result, the newest backup's manifest."""

from __future__ import annotations

from pathlib import Path

from verifier.manifest import Manifest
from verifier.report import CheckResult, Report
from verifier.repository.backups import Repository


def result(report: Report, name: str) -> CheckResult:
    """Returns the result of the check `name` (StopIteration when the report has none)."""
    return next(outcome for outcome in report.every_result if outcome.name == name)


def newest_manifest(repository: Path) -> tuple[Path, Manifest]:
    """Returns the newest backup's dump path and manifest."""
    backup = Repository(repository).newest()
    assert backup is not None and backup.manifest is not None
    return backup.dump_path, backup.manifest
