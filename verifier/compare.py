"""Comparing row counts: restored vs the snapshot (must be exact) and vs production now (drift).

Pure functions over dictionaries, so every rule is unit-tested without a database.
"""

from __future__ import annotations

from verifier.config import DriftConfig
from verifier.report import Status, TableComparison

TableName = tuple[str, str]


def within_drift(restored: int, production: int, drift: DriftConfig) -> bool:
    """Returns True when production has moved from the restored count by no more than the tolerance:
    the larger of `max_rows` and `max_percent` of production's count."""
    allowed = max(drift.max_rows, abs(production) * drift.max_percent / 100.0)
    return abs(restored - production) <= allowed


def compare_exact(
    snapshot: dict[TableName, int],
    restored: dict[TableName, int],
    production: dict[TableName, int] | None,
    drift: DriftConfig,
) -> list[TableComparison]:
    """Returns one comparison per table for a backup with a manifest.

    Restored must equal the snapshot exactly (else CRITICAL, naming both numbers); a table missing
    after the restore is CRITICAL; production now beyond the drift tolerance is a WARNING.
    """
    comparisons = []
    for name in sorted(snapshot.keys() | restored.keys()):
        expected, got = snapshot.get(name), restored.get(name)
        now = production.get(name) if production is not None else None
        status, note = Status.OK, ""
        if expected is None:
            status, note = Status.WARNING, "restored, but not counted in the snapshot"
        elif got is None:
            status, note = Status.CRITICAL, f"missing after restore (snapshot had {expected} rows)"
        elif got != expected:
            status, note = Status.CRITICAL, f"restored {got} rows, snapshot had {expected}"
        elif production is not None and now is None:
            status, note = Status.WARNING, "no longer in production"
        elif now is not None and not within_drift(got, now, drift):
            status, note = Status.WARNING, f"production now has {now} rows ({_percent(got, now)} since the backup)"
        elif now is not None and now != got:
            note = f"production moved on by {now - got:+,} rows since"
        comparisons.append(TableComparison(name[0], name[1], expected, got, now, status, note))
    return comparisons


def compare_legacy(
    restored: dict[TableName, int],
    production: dict[TableName, int],
    drift: DriftConfig,
) -> list[TableComparison]:
    """Returns one comparison per table for a backup without a manifest (no snapshot to match).

    A production table missing from the backup, or empty in it while production has rows, is
    CRITICAL; other differences beyond the drift tolerance are WARNINGs (production moves on).
    """
    comparisons = []
    for name in sorted(restored.keys() | production.keys()):
        got, now = restored.get(name), production.get(name)
        status, note = Status.OK, ""
        if got is None:
            status, note = Status.CRITICAL, f"missing from the backup (production has {now} rows)"
        elif now is None:
            status, note = Status.WARNING, "in the backup, not in production now"
        elif got == 0 and now > 0:
            status, note = Status.CRITICAL, f"empty in the backup, production has {now} rows"
        elif not within_drift(got, now, drift):
            status, note = Status.WARNING, f"backup has {got} rows, production now {now} ({_percent(got, now)})"
        comparisons.append(TableComparison(name[0], name[1], None, got, now, status, note))
    return comparisons


def _percent(before: int, after: int) -> str:
    if before == 0:
        return f"+{after} rows"
    change = (after - before) * 100.0 / before
    return f"{change:+.1f}%"
