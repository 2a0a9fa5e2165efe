"""The physical proof (issue 24): the newest pgBackRest backup restored to an instant of production and
compared with what production held at that instant, through the logical proof's own evidence.

    production session ── every kind's `before_snapshot` (sequences, the database's properties)
    take_instant       ── a temporary slot's exported snapshot at its consistent_point LSN (exact)
    the same session   ── SET TRANSACTION SNAPSHOT: every kind's `read_catalog` and `read_snapshot`
    restore_to_instant ── pgBackRest restores the backup, recovery stops at the instant, it promotes
    compare_restored   ── the logical proof's comparison, through `PhysicalSandbox`, into a Verification
    amcheck, collations ── what only a physical copy can have wrong, as findings of their own checks

The evidence read at the instant is what a logical dump's manifest holds (`evidence.KINDS`' sections); it is
held in memory in a `Manifest` whose other fields `physical_manifest` says the meaning of. It is never written.

One snapshot for both proofs (`verifier run` with the logical dump and `target: exact`): the dump ran in the
slot's snapshot (`dump_locks.import_locked_instant`), so the first three lines above are the dump's own; this
proof gets that instant and the dump's manifest (`one_snapshot`), reads only the collation versions, and
restores to the same LSN.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from verifier import __version__
from verifier.config import Config
from verifier.errors import SandboxError, VerifierError, one_line
from verifier.manifest import Manifest
from verifier.physical.amcheck import run_amcheck
from verifier.physical.collations import collation_findings
from verifier.physical.engine import Engine, Inventory, PhysicalBackup, PhysicalError
from verifier.physical.instant_proof import engine_for, restore_to_instant, take_instant
from verifier.physical.restored import RestoredCluster
from verifier.pipeline.proof import compare_restored
from verifier.postgres import catalog
from verifier.postgres.collations import actual_versions
from verifier.postgres.connection import DatabaseError, Source
from verifier.postgres.instant import Instant, InstantUnavailable
from verifier.postgres.instant_evidence import AtInstant, read_at_instant
from verifier.process import Executor, LocalExecutor
from verifier.progress import Step
from verifier.report import PhysicalRestore, Verification
from verifier.repository.backups import Backup

logger = logging.getLogger(__name__)
SANDBOX_KIND = "physical"
# the self-test's hook: damages the restored copy (sessions of the connector) held to the instant's manifest,
# before the comparison
Damage = Callable[[catalog.Connector, Manifest], None]
AMCHECK = "amcheck"  # the checks (checks/physical.py) reading the findings only a physical copy has
COLLATIONS = "collations"


class PhysicalSandbox:
    """One database of a restored, promoted physical copy, as the `Sandbox` that `compare_restored` reads.
    Nothing is restored into it (the backup tool restored the whole cluster): `archive_path` refuses."""

    kind = SANDBOX_KIND

    def __init__(self, restored: RestoredCluster, dbname: str) -> None:
        self.restored = restored
        self.dbname = dbname
        self.executor: Executor = LocalExecutor(restored.cluster.installation)

    def restore_environment(self) -> dict[str, str]:
        """Returns the PG* environment reaching the database on the restored server's unix socket."""
        cluster = self.restored.cluster
        return {
            "PGHOST": str(cluster.socket_dir),
            "PGPORT": str(cluster.port),
            "PGUSER": cluster.superuser,
            "PGDATABASE": self.dbname,
        }

    def archive_path(self, backup: Backup) -> str:
        """Raises SandboxError: a physical copy restores no dump file."""
        raise SandboxError(f"a physical copy restores no dump file ({backup.name})")

    def connect(self) -> catalog.Connection:
        """Returns an autocommit connection to the database in the restored copy. Raises DatabaseError."""
        return self.restored.connect(self.dbname)

    def describe(self) -> str:
        """Returns e.g. 'backup 20261207-122737F restored to LSN 0/41203C0 (recovery stopped before …)'."""
        return self.restored.describe()


def inventory_measures(inventory: Inventory, now: datetime) -> dict[str, int]:
    """Returns, in whole seconds at `now`: `backup_age` (the newest backup's end), `full_age` (the newest full
    backup's), `archive_lag` (since the newest WAL segment reached the archive: a PITR's data-loss window) and
    `window` (from the oldest backup's end to the newest archived segment: how far back a recovery can go),
    each only where the repository holds what it needs."""
    measures: dict[str, int] = {}
    backups, arrived = inventory.backups, inventory.wal.newest_archived_at
    if backups:
        measures["backup_age"] = max(0, int((now - max(backup.stopped for backup in backups)).total_seconds()))
    fulls = [backup.stopped for backup in backups if backup.kind == "full"]
    if fulls:
        measures["full_age"] = max(0, int((now - max(fulls)).total_seconds()))
    if arrived is not None:
        measures["archive_lag"] = max(0, int((now - arrived).total_seconds()))
        if backups:
            measures["window"] = max(0, int((arrived - min(backup.stopped for backup in backups)).total_seconds()))
    return measures


def physical_restore(backup: PhysicalBackup, instant: Instant, inventory: Inventory) -> PhysicalRestore:
    """Returns what the report says of `backup`, restored or failed: its label and kind, the instant's target
    and LSN, and the WAL window `inventory` holds (from the oldest backup's end to the newest segment's
    arrival)."""
    wal = inventory.wal
    return PhysicalRestore(
        label=backup.label,
        kind=backup.kind,
        target=instant.how,
        lsn=instant.lsn,
        wal_oldest=wal.oldest,
        wal_newest=wal.newest,
        recoverable_from=min((backup.stopped for backup in inventory.backups), default=None),
        recoverable_to=wal.newest_archived_at,
    )


def physical_name(label: str, instant: Instant) -> str:
    """Returns what a physical proof is named in reports and the history: '20261207-122737F@0/41203C0'."""
    return f"{label}@{instant.lsn}"


def physical_manifest(label: str, instant: Instant, read: AtInstant, dumped: Manifest | None = None) -> Manifest:
    """Returns the in-memory manifest of a physical backup recovered to `instant`: what production held at
    the instant (every kind's sections, read in the instant's snapshot; with `dumped`, the manifest of the
    logical dump that ran in the instant's snapshot, whose sections are taken as they are), the comparison's
    reference.

    For a physical backup the other fields mean: `name` the backup's label and the instant's LSN;
    `format` "physical"; `created_at` when the instant was taken; `files` none and `dump_path` "" (the
    backup lives in the backup tool's repository, whose own checksums its restore verifies: the agent
    checksums no file of it); `pg_dump_version` "" and `dump_seconds` 0 (no pg_dump ran); `roles` none
    (a physical copy holds production's roles itself); `snapshot_id` the instant's exported snapshot."""
    if dumped is not None:
        return dumped.model_copy(update=_physical_fields(label, instant, read))
    return Manifest(**_physical_fields(label, instant, read), **read.sections)


def _physical_fields(label: str, instant: Instant, read: AtInstant) -> dict[str, Any]:
    """Returns the fields of a physical backup's manifest that are not evidence (see `physical_manifest`)."""
    return dict(
        name=physical_name(label, instant),
        format="physical",
        created_at=instant.taken_at,
        completed_at=datetime.now(UTC),
        tool_version=__version__,
        pg_dump_version="",
        source=read.source,
        snapshot_id=instant.snapshot_id or "",
        files=[],
        dump_path="",
        dump_seconds=0.0,
        notes=[f"physical backup {label} recovered to {instant.describe()}"],
        globals_path=None,
        roles=[],
        dump_warnings=[],
        roles_without_passwords=False,
        snapshot_lsn=instant.lsn if instant.exact else None,
    )


def read_of_dump(dumped: Manifest, source: Source) -> AtInstant:
    """Returns what production held at the instant a logical dump ran in, as far as the manifest does not
    hold it: the source's facts and the collation versions production's host gives now (the evidence is
    the manifest's own, read once, in the slot's snapshot). Raises InstantUnavailable, SourceUnreachable."""
    try:
        with source.params.connect() as connection:
            collations = actual_versions(connection)
    except DatabaseError as error:
        raise InstantUnavailable(f"reading production's collation versions failed: {one_line(error)}") from None
    return AtInstant({}, dumped.source, collations)


def one_snapshot_note(instant: Instant, dumped: Manifest) -> str:
    """Returns e.g. 'one snapshot: LSN 0/41203C0 (exact), the logical dump postgres_20261207… read in it'."""
    return f"one snapshot: {instant.describe()}, the logical dump {dumped.name} read in it too"


def prove_physical(
    config: Config,
    source: Source,
    step: Step,
    *,
    damage: Damage | None = None,
    engine: Engine | None = None,
    one_snapshot: tuple[Instant, Manifest] | None = None,
) -> tuple[Verification, Manifest | None]:
    """Takes the instant, reads the evidence in it, restores the newest backup to it, compares the restored
    copy through every kind (`compare_restored`), runs amcheck and the collation check. `damage` (the
    self-test's hook, as `Proof.prove` has it) damages the restored copy before it is compared; `engine`
    replaces the backup tool `physical.tool` names (a test's damaged restore). `one_snapshot` is an exact
    instant a logical dump ran in and that dump's manifest: no instant is taken and nothing read again,
    the backup is restored to that instant and compared with the manifest's evidence.

    Returns the verification (its `error` the one line of a damage that kept the backup from being proven:
    a missing WAL segment, a damaged backup file, recovery short of its target) and the instant's manifest
    (None when the instant could not be read). Raises the VerifierErrors that mean it could not run."""
    physical = config.physical
    assert physical is not None, "prove_physical needs a physical: section"
    step("instant")
    engine = engine or engine_for(physical)
    inventory = engine.inventory()
    measures = inventory_measures(inventory, datetime.now(UTC))
    if one_snapshot is None:
        instant, read = read_at_instant(
            config.verify, config.dump.lock_wait_timeout, source, lambda: take_instant(physical, source.params)
        )
    else:
        instant, dumped = one_snapshot
        read = read_of_dump(dumped, source)
    verification = Verification(
        backup_name=f"physical backup at {instant.lsn}",
        exact=instant.exact,
        restored=False,
        sandbox=SANDBOX_KIND,
        instant=instant.describe(),
        inventory=measures,
    )
    manifest: Manifest | None = None
    step("restore")
    started = time.monotonic()
    try:
        with restore_to_instant(
            physical, config.verify, config.postgres, source.params, instant, engine=engine
        ) as restored:
            verification.restore_seconds = round(time.monotonic() - started, 3)
            if one_snapshot is None:
                manifest = physical_manifest(restored.backup.label, instant, read)
            else:
                manifest = physical_manifest(restored.backup.label, instant, read, dumped=one_snapshot[1])
                verification.notes.append(one_snapshot_note(instant, one_snapshot[1]))
            verification.backup_name = manifest.name
            verification.sandbox = (
                f"the physical sandbox ({restored.stopped_at})"  # the restore check's "restored into …"
            )
            verification.restored = True
            verification.physical = physical_restore(restored.backup, instant, inventory)
            sandbox = PhysicalSandbox(restored, source.params.dbname)
            if damage is not None:
                damage(sandbox.connect, manifest)
            compare_restored(sandbox, manifest, config, source, verification, step)
            _physical_findings(restored, read, source.params.dbname, physical.amcheck, verification)
    except VerifierError as error:
        if error.could_not_run:
            raise
        logger.error("physical proof: %s", error)
        verification.error = str(error)
        if isinstance(error, PhysicalError) and error.backup is not None and verification.physical is None:
            verification.physical = physical_restore(error.backup, instant, inventory)  # the backup that failed
    except (DatabaseError, catalog.CountFailed) as error:
        verification.error = f"comparing the restored copy failed: {one_line(error)}"
    return verification, manifest


def _physical_findings(
    restored: RestoredCluster, read: AtInstant, dbname: str, mode: Any, verification: Verification
) -> None:
    """Records pg_amcheck's findings (`amcheck`) and the collations whose version differs on the restored
    host (`collations`) in `verification`. Raises AmcheckFailed, DatabaseError."""
    checked = run_amcheck(restored, mode)
    if checked is not None:
        found = verification.findings_of(AMCHECK)
        found.problems += list(checked.findings)
        found.compared = 1
        found.measures["seconds"] = round(checked.seconds, 3)
        found.measures["mode"] = checked.mode
        if checked.relations is not None:
            found.measures["relations"] = checked.relations
        if checked.pages is not None:
            found.measures["pages"] = checked.pages
    collations = verification.findings_of(COLLATIONS)
    collations.problems += collation_findings(read.collations, restored, dbname)
    collations.compared = len(read.collations)
