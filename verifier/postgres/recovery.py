"""Where a restored cluster's recovery ended: still recovering or promoted, and the last WAL it replayed."""

from __future__ import annotations

from dataclasses import dataclass

from verifier.postgres.catalog import Connection


@dataclass(frozen=True)
class RecoveryState:
    """`in_recovery`: pg_is_in_recovery(); `replayed`: pg_last_wal_replay_lsn() (None when the server never
    recovered); `timeline`: the timeline it writes on now (a new one after promotion)."""

    in_recovery: bool
    replayed: str | None
    timeline: int


def recovery_state(connection: Connection) -> RecoveryState:
    """Returns the connected server's recovery state. Raises psycopg.Error."""
    row = connection.execute(
        "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text, (SELECT timeline_id FROM pg_control_checkpoint())"
    ).fetchone()
    assert row is not None
    return RecoveryState(bool(row[0]), None if row[1] is None else str(row[1]), int(row[2]))  # type: ignore[call-overload]
