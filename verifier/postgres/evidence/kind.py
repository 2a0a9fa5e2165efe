"""The evidence protocol: what each kind of evidence declares about itself (`Kind`), so that the readings in
production's snapshot (the manifest's sections), the proof on the restored copy, the verdict's order, the
self-test's judgement of its damages and the checks that report the findings come from one list
(`verifier.postgres.evidence.KINDS`) instead of the kind's name written into each of them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from verifier.config import DriftConfig, VerifyConfig
from verifier.errors import VerifierError, one_line
from verifier.findings import Findings
from verifier.manifest import Manifest
from verifier.postgres import catalog
from verifier.postgres.connection import DatabaseError
from verifier.postgres.evidence.damage import Damage, Damager
from verifier.progress import Meter
from verifier.report import Verification


def named_in_a_problem(damage: Damage, findings: Findings) -> bool:
    """Returns True when a problem line of `findings` names the damaged object (the default judgement)."""
    return any(damage.evidence in line for line in findings.problems)


def named_first_in_a_problem(damage: Damage, findings: Findings) -> bool:
    """Returns True when a problem line of `findings` begins with the damaged object ("public.orders: …"),
    so that a table's name is not mistaken for a longer one's prefix."""
    return any(line.startswith(f"{damage.evidence}: ") for line in findings.problems)


_T = TypeVar("_T")
OLDER_AGENT = "the backup was made by an older version of the agent"  # why a manifest's section was not compared


def read_on(
    connect: catalog.Connector, verification: Verification, read: Callable[[catalog.Connection], _T]
) -> _T | None:
    """Returns what `read` reads on a new session of `connect` (production), or None, the reason recorded in
    `verification.production_error`, when it cannot be reached or read."""
    try:
        with connect() as session:
            return read(session)
    except (VerifierError, DatabaseError) as error:
        verification.production_error = str(error) if isinstance(error, VerifierError) else one_line(error)
        return None


@dataclass
class ProductionSnapshot:
    """What a kind's reading on production is handed: the snapshot's session (before its transaction
    begins, then inside it), production for the sessions that join the snapshot (`snapshot_id`), how the
    contents are hashed, and where the readings go: `sections`, the manifest's keys by name."""

    session: catalog.Connection
    connect: catalog.Connector
    verify: VerifyConfig
    jobs: int
    lock_timeout_seconds: float
    snapshot_id: str = ""
    meter: Meter | None = None
    sections: dict[str, Any] = field(default_factory=dict)


@dataclass
class ProductionCounts:
    """Production's row counts now, and how each was measured (`estimated`: from the statistics)."""

    rows: dict[catalog.TableName, int]
    counted: set[catalog.TableName] = field(default_factory=set)  # counted exactly (count(*)), not estimated
    unknown: set[catalog.TableName] = field(default_factory=set)  # the statistics say nothing: no drift claimed
    estimated: bool = False


@dataclass
class RestoredCopy:
    """What a kind's proof is handed: sessions on the restored copy, what it is held to (the manifest; None
    for a backup without one, then production now where the kind can read it), where its findings go, and
    the rows counted on the way (content checksums count while they hash: row counts use them)."""

    connect: catalog.Connector
    manifest: Manifest | None
    verification: Verification
    jobs: int
    meter: Meter | None = None
    production: catalog.Connector | None = None
    archive_subscriptions: list[str] | None = None  # the subscriptions an archive holds (none are restored)
    counts: dict[catalog.TableName, int] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)  # what a kind read earlier in the proof, by kind name
    drift: DriftConfig | None = None  # how far production may have moved (row counts' drift)
    production_now: ProductionCounts | None = None  # production's row counts now; None: not known

    def read_production(self, read: Callable[[catalog.Connection], _T]) -> _T | None:
        """Returns what `read` reads on a new production session, or None (the reason recorded in the
        verification's `production_error`) when production is not configured, cannot be reached or read."""
        return read_on(self.production, self.verification, read) if self.production is not None else None


@dataclass(frozen=True)
class Kind:
    """One kind of evidence: read on production into the manifest's sections (its own keys, typed by its
    `section.Section`s), read again in the restored copy, compared into `Findings` kept under each of its
    `checks` (the checks that report them, each part of the verdict), damaged by the self-test's `damages`
    and judged by `caught`."""

    name: str
    checks: tuple[str, ...]  # Verification.findings keys, the checks reporting them, the verdict's names
    caught: Callable[[Damage, Findings], bool] = named_in_a_problem  # did the comparison name the damage?
    damages: tuple[Damager, ...] = ()  # the self-test's steps damaging this kind's evidence in a restored copy
    # the readings on production, in the order `evidence.read_production` calls them (each into `sections`):
    # before the snapshot's transaction, one short transaction each (what pg_dump reads outside the snapshot:
    # sequences; what the snapshot's transaction must not lock: the database's properties)
    before_snapshot: Callable[[ProductionSnapshot], None] | None = None
    # first thing in the snapshot, for what reads the catalog as it is now (pg_get_*def: the schema)
    read_catalog: Callable[[ProductionSnapshot], None] | None = None
    # in the snapshot, once a restore reading along has started (row counts and contents, objects)
    read_snapshot: Callable[[ProductionSnapshot], None] | None = None
    # the proof on the restored copy, in the order `pipeline/proof.py` calls them (each kind has what it needs):
    # first thing on the proof's first session, before its own sessions (the database's properties)
    prepare: Callable[[catalog.Connection, RestoredCopy], None] | None = None
    # reads the restored copy and compares it into findings, along the row counts (contents, sequences, objects)
    prove: Callable[[RestoredCopy], None] | None = None
    # reads the restored copy on the first session once the rows are counted (the schema's fingerprint)
    read_restored: Callable[[catalog.Connection, RestoredCopy], None] | None = None
    # compares what was read into findings once production's counts are known (never for a backup without a
    # manifest whose production could not be counted: nothing to compare with)
    judge: Callable[[RestoredCopy], None] | None = None
