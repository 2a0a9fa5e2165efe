"""Check contexts from plain values, as the pipeline hands them to the checks.

How to test a new check: a check is a plain function of a `CheckContext`, so its unit test needs no
server, no restore and no history on disk. Build the context from the few things the check looks at,
e.g. `context_with(backups=[backup(...)], verification=verification(table(...), your_field=...))`,
with `dumped()`/`failed_dump()`, `integrity()` and `past_run()` for the rest; call the check directly
and assert what a person and Zabbix read: the status, the whole summary (not a fragment), the details
and the metrics. Write one short test per answer the check can give, None ("does not apply") included,
in `tests/unit/test_checks_NAME.py`; tests/unit/test_checks_backup_age.py is the example to copy. (A
check never returns UNKNOWN: `run_checks` makes it of one that raises, see test_check_registry.py.)
Only what cannot be plain data (a real dump, a real restore) needs an integration test.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.support.sample_report import sample_manifest
from verifier.check_registry import RECENT_RUNS, CheckContext
from verifier.config import Config, parse_config
from verifier.findings import Findings
from verifier.manifest import FileEntry, Manifest, TableCount
from verifier.report import CheckResult, DumpOutcome, Integrity, Status, TableComparison, Verification
from verifier.repository.backups import Backup
from verifier.repository.history import History, RunRecord

NOW = datetime(2026, 11, 26, 0, 40, tzinfo=UTC)
LAST_NIGHT = sample_manifest().name  # the backup `dumped()` made and `verification()` restored


def config(extra: str = "") -> Config:
    """Returns the configuration of a source `eatfit24` with the defaults, plus the YAML `extra`."""
    return parse_config("source: {dbname: eatfit24}\n" + extra)


def backup(tmp_path: Path, days_ago: float, size: int, counts: dict[str, int] | None, fmt: str = "custom") -> Backup:
    """A backup as the repository lists it; `counts` None makes a legacy (manifest-less) one.
    `days_ago` may be a fraction (1.5: 36 hours before NOW) or negative (dated in the future)."""
    created = NOW - timedelta(days=days_ago)
    name = f"eatfit24_{created.strftime('%Y-%m-%d_%H-%M-%SZ')}"
    manifest: Manifest | None = None
    if counts is not None:
        manifest = sample_manifest(name).model_copy(
            update={
                "created_at": created,
                "files": [FileEntry(path=f"{name}.dump", size=size, sha256="0" * 64, chunk_size=1 << 24)],
                "row_counts": [TableCount(schema="public", table=t, rows=r) for t, r in counts.items()],
            }
        )
    return Backup(name, tmp_path / f"{name}.dump", None, manifest, created, size, fmt)


def context(
    tmp_path: Path,
    backups: list[Backup],
    *,
    cfg: Config | None = None,
    dump_seconds: float | None = None,
    verify_seconds: float | None = None,
    single_file: bool = False,
) -> CheckContext:
    """Returns a `run`'s context whose recent runs are read from a real history at tmp_path/history.sqlite."""
    verification = None
    if verify_seconds is not None:
        verification = Verification("b", exact=True, restored=True, sandbox="local", restore_seconds=verify_seconds)
    return CheckContext(
        config=cfg or config(),
        now=NOW,
        command="run",
        backups=backups,
        single_file=single_file,
        quick=False,
        dump=DumpOutcome(ok=True, duration_seconds=dump_seconds) if dump_seconds is not None else None,
        integrity=None,
        verification=verification,
        recent_runs=History(tmp_path / "history.sqlite").runs(limit=RECENT_RUNS),  # what the pipeline hands over
    )


def context_with(
    *,
    cfg: Config | None = None,
    backups: Sequence[Backup] = (),
    dump: DumpOutcome | None = None,
    integrity: Integrity | None = None,
    verification: Verification | None = None,
    recent_runs: Sequence[RunRecord] = (),
    single_file: bool = False,
    **more: Any,
) -> CheckContext:
    """Returns what a check sees at NOW, from plain values: a `run` in which nothing happened unless
    given (`single_file`: a `check --backup FILE`). `more` sets the other CheckContext fields
    (`last_dump`, `last_successful_verification`, `retention`, `retention_skipped`, `recovery_trend`).
    `backups` are oldest first, as the repository lists them; `recent_runs` newest first."""
    return CheckContext(
        config=cfg or config(),
        now=NOW,
        command="check --backup" if single_file else "run",
        backups=list(backups),
        single_file=single_file,
        quick=False,
        dump=dump,
        integrity=integrity,
        verification=verification,
        recent_runs=list(recent_runs),
        **more,
    )


def past_run(
    days_ago: float,
    *,
    dump_seconds: float | None = None,
    verify_seconds: float | None = None,
    dump_ok: bool | None = None,
    verify_ok: bool | None = None,
    backup_name: str | None = None,
    command: str = "run",
) -> RunRecord:
    """Returns one earlier run as the history lists it: it dumped when `dump_seconds` is given (and
    succeeded unless `dump_ok=False`), verified when `verify_seconds` is given (and passed unless
    `verify_ok=False`)."""
    started = NOW - timedelta(days=days_ago)
    if dump_ok is None and dump_seconds is not None:
        dump_ok = True
    if verify_ok is None and verify_seconds is not None:
        verify_ok = True
    failed = dump_ok is False or verify_ok is False
    return RunRecord(
        run_id=f"run-{started:%Y%m%dT%H%M%S}",
        command=command,
        started_at=started,
        finished_at=started + timedelta(minutes=3),
        status="CRITICAL" if failed else "OK",
        exit_code=2 if failed else 0,
        backup_name=backup_name,
        dump_ok=dump_ok,
        dump_seconds=dump_seconds,
        verify_ok=verify_ok,
        verify_seconds=verify_seconds,
        size_bytes=None,
    )


def dumped(seconds: float = 41.2, *, warnings: Sequence[str] = (), **manifest_fields: Any) -> DumpOutcome:
    """Returns this run's successful dump of LAST_NIGHT (tests/support/sample_report.py's manifest: 3
    tables, 46.1 MiB), with `manifest_fields` changed in its manifest."""
    manifest = sample_manifest().model_copy(update=manifest_fields)
    return DumpOutcome(ok=True, duration_seconds=seconds, manifest=manifest, warnings=list(warnings))


def failed_dump(error: str, seconds: float = 3.0, *, warnings: Sequence[str] = ()) -> DumpOutcome:
    """Returns this run's dump that failed with the one-line `error`."""
    return DumpOutcome(ok=False, duration_seconds=seconds, error=error, warnings=list(warnings))


def integrity(
    *problems: str, checksummed: bool = True, read_through: bool = True, backup_name: str = LAST_NIGHT
) -> Integrity:
    """Returns the archive check's reading of a backup's files: intact without `problems`."""
    return Integrity(backup_name, checksummed=checksummed, problems=list(problems), seconds=0.4,
                     read_through=read_through)  # fmt: skip


def verification(*tables: TableComparison, **fields: Any) -> Verification:
    """Returns the proof of LAST_NIGHT: restored into the local sandbox in 63 s, exact (it has a
    manifest), holding `tables`; `fields` set any other Verification field (restored=False, error=...)."""
    values: dict[str, Any] = {
        "backup_name": LAST_NIGHT,
        "exact": True,
        "restored": True,
        "sandbox": "local",
        "tables": list(tables),
        "restore_seconds": 63.0,
    }
    return Verification(**(values | fields))


def table(
    name: str, rows: int, *, restored: int | None = None, status: Status = Status.OK, **fields: Any
) -> TableComparison:
    """Returns the comparison of table public.`name`: `rows` in the snapshot, as many restored unless
    `restored` says otherwise; `fields` set production_rows, note, drifted, drift_note."""
    values: dict[str, Any] = {"production_rows": None} | fields
    return TableComparison("public", name, rows, rows if restored is None else restored, status=status, **values)


def proof_context(verification: Verification) -> CheckContext:
    """A context for the proof checks: this run's verification only (no backups listed, no history)."""
    return CheckContext(config(), NOW, "run", [], False, False, None, None, verification)


def restored(exact: bool = True, **findings: Findings) -> Verification:
    """A verification whose copy restored, holding `findings` by check name (`exact`: with a manifest)."""
    verification = Verification("shop_2026-11-26_00-30-00Z", exact=exact, restored=True, sandbox="local")
    verification.findings = dict(findings)
    return verification


def judged(result: CheckResult | None) -> tuple[Status, str]:
    """Returns a check's answer as (status, summary); a check that said nothing fails the test."""
    assert result is not None
    return result.status, result.summary
