"""The evidence protocol: what each kind of evidence declares about itself (`Kind`), so that the verdict's
order, the self-test's judgement of its damages and the checks that report the findings come from one list
(`verifier.postgres.evidence.KINDS`) instead of the kind's name written into each of them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from verifier.findings import Findings
from verifier.manifest import Manifest
from verifier.postgres import catalog
from verifier.postgres.evidence.damage import Damage, Damager
from verifier.progress import Meter
from verifier.report import Verification


def named_in_a_problem(damage: Damage, findings: Findings) -> bool:
    """Returns True when a problem line of `findings` names the damaged object (the default judgement)."""
    return any(damage.evidence in line for line in findings.problems)


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
    counts: dict[catalog.TableName, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Kind:
    """One kind of evidence: read in production's snapshot into the manifest's `sections`, read again in
    the restored copy, compared into `Findings` kept under each of its `checks` (the checks that report
    them, each part of the verdict), damaged by the self-test's `damages` and judged by `caught`."""

    name: str
    checks: tuple[str, ...]  # Verification.findings keys, the checks reporting them, the verdict's names
    sections: tuple[str, ...]  # the manifest fields this kind fills in the snapshot
    caught: Callable[[Damage, Findings], bool] = named_in_a_problem  # did the comparison name the damage?
    damages: tuple[Damager, ...] = ()  # the self-test's steps damaging this kind's evidence in a restored copy
    # reads the restored copy and compares it into findings, along the row counts (`evidence.prove_restored`);
    # None: compared once production's counts are known (`pipeline/proof.py`: row counts, schema, database)
    prove: Callable[[RestoredCopy], None] | None = None
