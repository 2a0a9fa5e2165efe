"""Words a person reads: one unit system for sizes (IEC), singular and plural, thousands separators."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from pg_backup_verifier_checks import backup_count, dump, restore

from tests.support.check_context import backup, config, context
from verifier.report import DumpOutcome, Verification
from verifier.units import format_bytes, plural


def test_plural_and_iec_sizes() -> None:
    assert [plural(count, "backup") for count in (0, 1, 2)] == ["backups", "backup", "backups"]
    assert format_bytes(1_468_006) == "1.4 MiB"


def test_one_backup_is_singular_and_its_size_is_in_mib(tmp_path: Path) -> None:
    result = backup_count.check(
        context(tmp_path, [backup(tmp_path, 0, 1_468_006, {"t": 1})], cfg=config("checks: {min_count: 1}"))
    )
    assert result is not None and result.summary == "1 backup, 1.4 MiB"
    warned = backup_count.check(context(tmp_path, [backup(tmp_path, 0, 10, {"t": 1})]))
    assert warned is not None and warned.summary == "1 backup, fewer than 3"


def test_dump_and_restore_summaries_use_the_shared_units(tmp_path: Path) -> None:
    made = backup(tmp_path, 0, 1_468_006, {"t": 1})
    checked = replace(
        context(tmp_path, [made]), dump=DumpOutcome(ok=True, duration_seconds=0.48, manifest=made.manifest)
    )
    result = dump.check(checked)
    assert result is not None
    assert result.summary.startswith(f"{made.manifest.dump_path}: 1.4 MiB in 480 ms, 1 table counted in snapshot ")  # type: ignore[union-attr]
    verification = Verification("b", exact=True, restored=True, sandbox="local", restore_seconds=61.2)
    restored = restore.check(replace(checked, verification=verification))
    assert restored is not None and restored.summary == "restored into local in 1m 01s"
