"""Reading a stored report back: the JSON that `Report.to_dict()` wrote (history, reports/) → `Report`.

`verifier report` renders past runs with the same renderers as a fresh one. Unknown keys are
ignored and missing ones take their defaults, so reports written by older versions still load.
"""

from __future__ import annotations

from dataclasses import fields
from datetime import datetime
from typing import Any, TypeVar

from verifier.manifest import Manifest
from verifier.report import (
    CheckResult,
    DumpOutcome,
    Integrity,
    Report,
    RestoreIssue,
    Status,
    TableComparison,
    Verification,
)

_T = TypeVar("_T")


def report_from_dict(data: dict[str, Any]) -> Report:
    """Returns the report stored as `data`. Raises ValueError when a required field is missing or invalid."""
    try:
        verification = data.get("verification")
        integrity = data.get("integrity")
        dump = data.get("dump")
        manifest = data.get("manifest")
        return Report(
            run_id=str(data["run_id"]),
            command=str(data["command"]),
            source=str(data["source"]),
            started_at=datetime.fromisoformat(data["started_at"]),
            finished_at=datetime.fromisoformat(data["finished_at"]) if data.get("finished_at") else None,
            results=[_result(item) for item in data.get("results", [])],
            manifest=Manifest.model_validate(manifest) if manifest else None,
            dump=_known(DumpOutcome, {**dump, "manifest": None}) if dump else None,
            verification=_verification(verification) if verification else None,
            integrity=_known(Integrity, integrity) if integrity else None,
            backup_name=data.get("backup_name"),
            could_not_run=data.get("could_not_run"),
            timings={str(step): float(seconds) for step, seconds in (data.get("timings") or {}).items()},
        )
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"stored report is not readable: {error}") from None


def _result(item: dict[str, Any]) -> CheckResult:
    return CheckResult(
        name=str(item["name"]),
        status=Status[item["status"]],
        summary=str(item["summary"]),
        details=tuple(item.get("details") or ()),
        metrics=dict(item.get("metrics") or {}),
    )


def _verification(data: dict[str, Any]) -> Verification:
    tables = [_known(TableComparison, {**table, "status": Status[table["status"]]}) for table in data.get("tables", [])]
    issues = [_known(RestoreIssue, issue) for issue in data.get("restore_issues", [])]
    return _known(Verification, {**data, "tables": tables, "restore_issues": issues})


def _known(cls: type[_T], data: dict[str, Any]) -> _T:
    names = {field.name for field in fields(cls)}  # type: ignore[arg-type]
    return cls(**{key: value for key, value in data.items() if key in names})
