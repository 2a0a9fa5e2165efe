"""Findings by name (issue 23): a report stored before `Verification.findings` existed still loads, with its
old per-kind fields read into findings, and the JSON report keeps every key it had."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from verifier.findings import Findings
from verifier.report import Report, Verification, report_from_dict, verdict_failures

# the verification of a report written by the released agent (before findings), trimmed to what matters here
OLD_VERIFICATION: dict[str, Any] = {
    "backup_name": "shop_2026-12-01_00-30-00Z",
    "exact": True,
    "restored": True,
    "sandbox": "local",
    "tables": [],
    "restore_issues": [],
    "schema_differences": ["table public.orders: missing"],
    "extension_differences": ["extension citext is 1.5 in the sandbox, 1.6 in production"],
    "schema_not_compared": None,
    "content_differences": [],
    "content_tables": 12,
    "content_modes": ["full", "sample"],
    "content_seconds": 1.5,
    "content_production_seconds": 2.25,
    "content_not_compared": None,
    "sequence_problems": [],
    "sequence_warnings": ["production's sequence public.s gives 1 while public.t.id holds 2: inserts fail there too"],
    "sequences_compared": 3,
    "object_problems": {"large_objects": [], "materialized_views": [], "constraints": ["fk broken"]},
    "object_notes": {"large_objects": [], "materialized_views": ["materialized view public.v was not populated"]},
    "object_warnings": {"materialized_views": []},
    "objects_compared": {"large_objects": 2, "materialized_views": 1, "constraints": 7},
    "objects_not_compared": None,
    "database_problems": {"database_properties": [], "replication": []},
    "database_warnings": {"database_properties": [], "replication": ["subscription s is not in the backup"]},
    "database_notes": {"database_properties": [], "replication": []},
    "database_compared": {"database_properties": 4, "replication": 1},
    "database_not_compared": None,
}


def stored(verification: dict[str, Any]) -> dict[str, Any]:
    started = datetime(2026, 12, 1, 0, 30, tzinfo=UTC).isoformat()
    return {"run_id": "r1", "command": "run", "source": "shop", "started_at": started, "verification": verification}


def test_an_old_report_loads_its_fields_into_findings() -> None:
    verification = report_from_dict(stored(OLD_VERIFICATION)).verification
    assert verification is not None
    assert verification.finding("schema").problems == ["table public.orders: missing"]
    assert verification.finding("schema").warnings == OLD_VERIFICATION["extension_differences"]
    contents = verification.finding("contents")
    assert (contents.compared, contents.measures) == (
        12,
        {"modes": "full/sample", "restored_seconds": 1.5, "production_seconds": 2.25},
    )
    assert verification.finding("sequences").warnings == OLD_VERIFICATION["sequence_warnings"]
    assert verification.finding("sequences").compared == 3
    assert verification.finding("constraints").problems == ["fk broken"]
    assert verification.finding("constraints").compared == 7
    assert verification.finding("materialized_views").notes == ["materialized view public.v was not populated"]
    assert verification.finding("replication").warnings == ["subscription s is not in the backup"]
    assert verification.finding("database_properties").compared == 4
    assert verdict_failures(verification, None) == ["schema", "constraints"]


def test_an_old_report_without_a_manifest_keeps_schema_out_of_the_verdict() -> None:
    verification = report_from_dict(stored({**OLD_VERIFICATION, "exact": False})).verification
    assert verification is not None and verdict_failures(verification, None) == ["constraints"]


def test_an_old_report_says_why_objects_were_not_compared_for_each_check() -> None:
    old = {**OLD_VERIFICATION, "object_problems": {}, "objects_compared": {}, "objects_not_compared": "no manifest"}
    verification = report_from_dict(stored(old)).verification
    assert verification is not None
    for name in ("large_objects", "materialized_views", "constraints"):
        assert verification.finding(name).not_compared == "no manifest"


def test_the_json_report_keeps_the_old_keys_and_reads_back_the_same_findings() -> None:
    verification = Verification("b", exact=True, restored=True, sandbox="local")
    verification.findings = {
        "contents": Findings(["public.orders: differs"], compared=2, measures={"modes": "sample"}),
        "constraints": Findings(notes=["constraint c is NOT VALID in production"], compared=5),
        "replication": Findings(warnings=["subscription s is not in the backup"]),
    }
    report = Report("r1", "run", "shop", datetime(2026, 12, 1, tzinfo=UTC), verification=verification)
    written = json.loads(json.dumps(report.to_dict()))["verification"]
    assert set(OLD_VERIFICATION) <= set(written)
    assert written["content_differences"] == ["public.orders: differs"]
    assert written["content_modes"] == ["sample"] and written["content_tables"] == 2
    assert written["object_notes"] == {"constraints": ["constraint c is NOT VALID in production"]}
    assert written["database_warnings"] == {"replication": ["subscription s is not in the backup"]}
    assert written["schema_differences"] == [] and written["schema_not_compared"] is None
    read = report_from_dict(json.loads(json.dumps(report.to_dict()))).verification
    assert read is not None and read.findings == verification.findings
