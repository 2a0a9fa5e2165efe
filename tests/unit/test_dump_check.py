"""The dump check: failed is CRITICAL, a backup that lacks something (roles) is a WARNING."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from pg_backup_verifier_checks.dump import check

from verifier.check_registry import CheckContext
from verifier.config import Config
from verifier.manifest import FileEntry, Manifest, SourceInfo
from verifier.report import DumpOutcome, Status


def context(tmp_path: Path, dump: DumpOutcome) -> CheckContext:
    return CheckContext(config=Config.model_validate({"source": {"dbname": "app"}}), now=datetime.now(UTC),
                        command="run", backups=[], single_file=False, quick=False, dump=dump, integrity=None,
                        verification=None)  # fmt: skip


def manifest() -> Manifest:
    now = datetime.now(UTC)
    return Manifest(
        name="app_x", format="custom", created_at=now, completed_at=now, tool_version="0",
        pg_dump_version="15.18", snapshot_id="s", dump_path="app_x.dump", row_counts=[], schema_objects={},
        source=SourceInfo(label="app", dbname="app", server_version="15.18", server_version_num=150018),
        files=[FileEntry(path="app_x.dump", size=10, sha256="0", chunk_size=1)],
        schema_fingerprint="f", dump_seconds=1.0,
    )  # fmt: skip


def test_failed_dump_is_critical_with_its_error(tmp_path: Path) -> None:
    result = check(context(tmp_path, DumpOutcome(ok=False, duration_seconds=0.1, error="cannot connect to x")))
    assert result is not None and result.status is Status.CRITICAL
    assert result.summary == "dump failed: cannot connect to x"


def test_roles_not_saved_is_a_warning_that_says_so(tmp_path: Path) -> None:
    note = "roles not saved (pg_dumpall --globals-only): permission denied"
    dump = DumpOutcome(ok=True, duration_seconds=1.0, manifest=manifest(), warnings=[note])
    result = check(context(tmp_path, dump))
    assert result is not None and result.status is Status.WARNING
    assert result.details == (note,)


def test_a_complete_dump_is_ok(tmp_path: Path) -> None:
    result = check(context(tmp_path, DumpOutcome(ok=True, duration_seconds=1.0, manifest=manifest())))
    assert result is not None and result.status is Status.OK


def test_a_dump_in_the_physical_proofs_slot_names_the_one_snapshot_lsn(tmp_path: Path) -> None:
    shared = manifest().model_copy(update={"snapshot_lsn": "0/41203C0"})
    result = check(context(tmp_path, DumpOutcome(ok=True, duration_seconds=1.0, manifest=shared)))
    assert result is not None and result.status is Status.OK
    assert result.summary.endswith(
        "0 tables counted in one snapshot: LSN 0/41203C0 (exact), the physical proof's instant too"
    ), result.summary


def test_a_dump_in_a_snapshot_of_its_own_names_the_snapshot(tmp_path: Path) -> None:
    result = check(context(tmp_path, DumpOutcome(ok=True, duration_seconds=1.0, manifest=manifest())))
    assert result is not None and result.summary.endswith("0 tables counted in snapshot s"), result.summary
