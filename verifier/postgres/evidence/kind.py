"""The evidence protocol: what each kind of evidence declares about itself (`Kind`), so that the verdict's
order, the self-test's judgement of its damages and the checks that report the findings come from one list
(`verifier.postgres.evidence.KINDS`) instead of the kind's name written into each of them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from verifier.findings import Findings
from verifier.postgres.evidence.damage import Damage, Damager


def named_in_a_problem(damage: Damage, findings: Findings) -> bool:
    """Returns True when a problem line of `findings` names the damaged object (the default judgement)."""
    return any(damage.evidence in line for line in findings.problems)


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
