"""The physical proof's entry points: the instant on production, and the backup restored to it.

    with take_instant(physical, params) as instant:
        ... read the evidence in instant.snapshot_id ...
    with restore_to_instant(physical, verify, postgres, params, instant) as restored:
        ... read the same evidence through restored.connect(dbname) ...

`restore_to_instant` waits until the instant's WAL is archived, lists the backups, takes the newest one that
ended before the instant, restores it into the sandbox and recovers it to the instant (`restored.py`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from verifier.config import PostgresConfig, VerifyConfig
from verifier.config_physical import PhysicalConfig
from verifier.physical.engine import Engine, Inventory, PhysicalBackup, PhysicalError, RecoveryTarget
from verifier.physical.pgbackrest import PgBackRest
from verifier.physical.restored import RestoredCluster, restored_cluster
from verifier.physical.wal import lsn_value
from verifier.postgres.connection import ConnectionParams
from verifier.postgres.instant import Instant, exact_instant, snapshot_instant, wait_until_archived


def engine_for(physical: PhysicalConfig) -> Engine:
    """Returns the engine `physical.tool` names."""
    return PgBackRest(physical)


@contextlib.contextmanager
def take_instant(physical: PhysicalConfig, params: ConnectionParams) -> Iterator[Instant]:
    """Yields the instant `physical.target` asks for on production (exact: a slot's snapshot), held for the
    `with` block. Raises InstantUnavailable, SourceUnreachable."""
    if physical.target == "exact":
        taking = exact_instant(params, physical.instant_wait)
    else:
        taking = snapshot_instant(params, physical.target)
    with taking as instant:
        yield instant


def target_for(instant: Instant) -> RecoveryTarget:
    """Returns where recovery must stop for `instant`."""
    if instant.how == "exact":
        return RecoveryTarget("lsn", instant.lsn)
    if instant.how == "restore-point":
        return RecoveryTarget("name", instant.restore_point)
    return RecoveryTarget("latest")


def backup_before(inventory: Inventory, instant: Instant, label: str | None = None) -> PhysicalBackup:
    """Returns backup `label`, or the newest backup that ended before the instant. Raises PhysicalError."""
    if label is not None:
        chosen = [backup for backup in inventory.backups if backup.label == label]
        if not chosen:
            raise PhysicalError(f"no backup {label} in the repository")
        return chosen[0]
    before = [backup for backup in inventory.backups if lsn_value(backup.stop_lsn) <= lsn_value(instant.lsn)]
    same_timeline = [backup for backup in before if int(backup.wal_start[:8], 16) == instant.timeline]
    if before and not same_timeline:
        raise PhysicalError(
            f"production is on timeline {instant.timeline}, every backup before the instant on an older one: "
            f"recovery across a timeline switch is not proven yet; take a new full backup"
        )
    before = same_timeline
    if not before:
        raise PhysicalError(
            f"no backup in the repository ended before the instant (LSN {instant.lsn}): "
            f"{len(inventory.backups)} backup(s), none old enough"
        )
    return max(before, key=lambda backup: lsn_value(backup.stop_lsn))


@contextlib.contextmanager
def restore_to_instant(
    physical: PhysicalConfig,
    verify: VerifyConfig,
    postgres: PostgresConfig,
    params: ConnectionParams,
    instant: Instant,
    *,
    engine: Engine | None = None,
    label: str | None = None,
) -> Iterator[RestoredCluster]:
    """Yields the newest backup that ended before `instant` (or backup `label`), restored and recovered to
    the instant and promoted, in the local sandbox; removes it on exit, whatever happened.

    Raises ArchiveLagging (the instant's WAL not archived within physical.archive_wait), PhysicalError (a
    damaged backup file, a missing WAL segment, recovery short of the target: its `backup` the one chosen),
    EngineFailed, SandboxError,
    BinaryMissing, SourceUnreachable.
    """
    wait_until_archived(params, instant, physical.archive_wait)
    engine = engine or engine_for(physical)
    inventory = engine.inventory()
    backup = backup_before(inventory, instant, label)
    last = instant.segment
    if instant.how == "latest" and inventory.wal.newest is not None:
        last = max(last, inventory.wal.newest)
    try:
        with restored_cluster(
            engine,
            backup,
            target_for(instant),
            last_segment=last,
            segment_bytes=instant.wal_segment_bytes,
            superuser=instant.superuser,
            major=instant.major,
            verify=verify,
            postgres=postgres,
            recovery_timeout=physical.recovery_timeout,
            prepared_transactions=instant.prepared_transactions,
            at_least=instant.lsn if instant.how == "latest" else None,
        ) as restored:
            yield restored
    except PhysicalError as error:
        error.backup = error.backup or backup  # the backup that failed, for the report and the history
        raise
