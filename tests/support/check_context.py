"""Check contexts over real manifests, as the pipeline hands them to the checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.support.sample_report import sample_manifest
from verifier.check_registry import RECENT_RUNS, CheckContext
from verifier.config import Config, parse_config
from verifier.manifest import FileEntry, Manifest, TableCount
from verifier.report import DumpOutcome, Verification
from verifier.repository.backups import Backup
from verifier.repository.history import History

NOW = datetime(2026, 11, 26, 0, 40, tzinfo=UTC)


def config(extra: str = "") -> Config:
    return parse_config("source: {dbname: eatfit24}\n" + extra)


def backup(tmp_path: Path, days_ago: int, size: int, counts: dict[str, int] | None, fmt: str = "custom") -> Backup:
    """A backup as the repository lists it; `counts` None makes a legacy (manifest-less) one."""
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
